package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/pki"
	"github.com/myt-iot/myt/worker/handler"
)

type dashboardView struct {
	Platforms   []*myt.Platform
	Counts      map[string]int
	Credentials int
	Welcome     bool
	// Health is each running platform's health at a glance, by ID (nil
	// without a monitor).
	Health map[int64]*healthBadge
}

func (s *server) dashboard(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	ps, err := s.cfg.Platforms.FindPlatforms(ctx, myt.PlatformFilter{})
	if err != nil {
		return err
	}
	cs, err := s.cfg.Credentials.FindCredentials(ctx, myt.CredentialFilter{})
	if err != nil {
		return err
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Updated.After(ps[j].Updated) })
	v := &dashboardView{Platforms: ps, Counts: map[string]int{}, Credentials: len(cs), Welcome: r.URL.Query().Get("welcome") == "1"}
	for _, p := range ps {
		v.Counts[p.Status]++
		if h := s.healthOf(p); h != nil {
			if v.Health == nil {
				v.Health = map[int64]*healthBadge{}
			}
			v.Health[p.ID] = h
		}
	}
	pg := &page{Title: "Platforms", Section: "platforms", Data: v}
	if r.URL.Query().Get("ok") == "deleted" {
		pg.Notice = "The platform was deleted."
	}
	s.render(w, r, http.StatusOK, "dashboard", pg)
	return nil
}

// platformFor loads the {id} platform of the principal (404 otherwise).
func (s *server) platformFor(r *http.Request) (*myt.Platform, error) {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return s.cfg.Platforms.FindPlatformByID(r.Context(), id)
}

type platformView struct {
	P     *myt.Platform
	YAML  string
	Ports []int
	// Fields are the declared typed fields, sorted by name.
	Fields         [][2]string
	HandlerLines   int
	DatabaseReason string
	// Credential is the saved credential the design names, nil when it is
	// missing (deleted, or never saved).
	Credential *myt.Credential
	// Jobs are the latest jobs, newest first; Active is the one still
	// running, if any.
	Jobs   []*myt.Job
	Active *myt.Job
	// MoreJobs says there are older jobs than those listed.
	MoreJobs bool
	// Revealed holds the passwords after a reveal (a POST), else nil.
	Revealed *revealed
	CSRF     string
	// Monitor is the health and charts of a running, monitored platform.
	Monitor *monitorView
	// Alerts links the platform's alerts page (when alerting is wired).
	Alerts bool
	// DeadLetters links the dead-letter page of a running platform.
	DeadLetters bool
	// Backups links the platform's backups page.
	Backups bool
}

// platformJobs is how many jobs the platform page lists.
const platformJobs = 5

// Deployed reports whether a revision of the design runs on the target.
func (v *platformView) Deployed() bool { return v.P.DeployedRevision > 0 }

// UpdatePending reports whether the saved design is newer than the one
// running.
func (v *platformView) UpdatePending() bool {
	return v.P.DeployedRevision > 0 && v.P.Revision > v.P.DeployedRevision
}

// CanDeploy reports whether the Deploy action applies: nothing runs and
// nothing is deployed.
func (v *platformView) CanDeploy() bool {
	return v.Active == nil && v.P.DeployedRevision == 0 && v.P.Status != myt.StatusDeploying && v.P.Status != myt.StatusDestroying
}

// CertificateEnds says until when the broker's and Grafana's server
// certificate is valid, and Warn whether it is time to renew it (an
// update renews it from pki.RenewBefore before its end).
type CertificateEnds struct {
	At   time.Time
	Days int
	Warn bool
}

// Certificate returns the deployed server certificate's end, nil when it
// is not known (a platform deployed before it was recorded).
func (v *platformView) Certificate() *CertificateEnds {
	if v.P.Endpoints == nil || v.P.Endpoints.CertificateExpires.IsZero() {
		return nil
	}
	at := v.P.Endpoints.CertificateExpires
	left := time.Until(at)
	return &CertificateEnds{At: at, Days: int(left.Hours() / 24), Warn: left < pki.RenewBefore}
}

// CanUpdate reports whether the Update action applies.
func (v *platformView) CanUpdate() bool { return v.Active == nil && v.P.DeployedRevision > 0 }

// CanDestroy reports whether the Destroy action applies: something may
// exist on the target.
func (v *platformView) CanDestroy() bool {
	switch v.P.Status {
	case myt.StatusDesigned, myt.StatusDestroyed, myt.StatusDeploying, myt.StatusDestroying:
		return false
	}
	return v.Active == nil
}

// Quickstart is what a device needs to publish to the running platform.
type Quickstart struct {
	Host     string
	Port     int
	TLS      bool
	User     string
	Topic    string
	Password string // "" until revealed
	// Payload is an example message (JSON) with the design's fields.
	Payload string
	// ClientID is the MQTT client id of the examples (sensor-1 when
	// empty).
	ClientID string
}

// Quickstart returns the device quickstart, nil when the platform has no
// MQTT endpoint.
func (v *platformView) Quickstart() *Quickstart {
	ep := v.P.Endpoints
	if ep == nil {
		return nil
	}
	q := &Quickstart{Host: ep.Address, Port: 8883, TLS: true, User: ep.DeviceUser, Topic: ep.TopicPrefix + "/sensor-1/data"}
	raw := ep.MQTTS
	if raw == "" {
		raw, q.Port, q.TLS = ep.MQTT, 1883, false
	}
	if raw == "" {
		return nil
	}
	if u, err := url.Parse(raw); err == nil {
		q.Host = u.Hostname()
		if p, err := strconv.Atoi(u.Port()); err == nil {
			q.Port = p
		}
	}
	if v.Revealed != nil {
		q.Password = v.Revealed.Device
	}
	q.Payload = examplePayload(v.P.Design.Spec.Database.Fields)
	return q
}

// Mosquitto is a mosquitto_pub command that publishes one message.
func (q *Quickstart) Mosquitto() string {
	pw := `"$MYT_DEVICE_PASSWORD"`
	if q.Password != "" {
		pw = shellQuote(q.Password)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mosquitto_pub -h %s -p %d", shellQuote(q.Host), q.Port)
	if q.TLS {
		b.WriteString(" --cafile ca.crt")
	}
	fmt.Fprintf(&b, " \\\n  -u %s -P %s \\\n  -q 1 -t %s -m %s", shellQuote(q.User), pw, shellQuote(q.Topic), shellQuote(q.Payload))
	return b.String()
}

// Python is a paho-mqtt (2.x) program that publishes one message.
func (q *Quickstart) Python() string {
	lit := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	pw := `os.environ["MYT_DEVICE_PASSWORD"]`
	if q.Password != "" {
		pw = lit(q.Password)
	}
	var b strings.Builder
	b.WriteString("import json\n")
	if q.Password == "" {
		b.WriteString("import os\n")
	}
	b.WriteString("\nimport paho.mqtt.client as mqtt\n\n")
	id := q.ClientID
	if id == "" {
		id = "sensor-1"
	}
	fmt.Fprintf(&b, "client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=%s)\n", lit(id))
	fmt.Fprintf(&b, "client.username_pw_set(%s, %s)\n", lit(q.User), pw)
	if q.TLS {
		b.WriteString("client.tls_set(ca_certs=\"ca.crt\")\n")
	}
	fmt.Fprintf(&b, "client.connect(%s, %d)\n", lit(q.Host), q.Port)
	b.WriteString("client.loop_start()\n")
	fmt.Fprintf(&b, "msg = client.publish(%s, json.dumps(%s), qos=1)\n", lit(q.Topic), strings.ReplaceAll(q.Payload, ": true", ": True"))
	b.WriteString("msg.wait_for_publish()\nclient.loop_stop()\nclient.disconnect()\n")
	return b.String()
}

// examplePayload is a JSON message with every declared field.
func examplePayload(fields map[string]string) string {
	if len(fields) == 0 {
		return `{"temperature": 21.5}`
	}
	var parts []string
	for _, n := range sortedFieldNames(fields) {
		var v string
		switch fields[n] {
		case "int":
			v = "42"
		case "bool":
			v = "true"
		case "string":
			v = `"text"`
		default:
			v = "21.5"
		}
		k, _ := json.Marshal(n)
		parts = append(parts, string(k)+": "+v)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func (s *server) platformPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	return s.renderPlatform(w, r, p, nil)
}

// renderPlatform renders the platform page, with the passwords when rv
// is not nil.
func (s *server) renderPlatform(w http.ResponseWriter, r *http.Request, p *myt.Platform, rv *revealed) error {
	y, err := design.MarshalYAML(p.Design)
	if err != nil {
		return fmt.Errorf("marshal design of platform %d: %w", p.ID, err)
	}
	v := &platformView{P: p, YAML: string(y), Ports: p.Design.Spec.Broker.Ports(), Revealed: rv, CSRF: s.csrfToken(w, r), Alerts: s.cfg.Alerts != nil, Backups: s.cfg.Backups != nil,
		DeadLetters: s.cfg.Workers != nil && p.Status == myt.StatusRunning}
	if name := p.Design.Spec.Target.Credentials; name != "" {
		kind := p.Design.Spec.Target.Provider
		cs, err := s.cfg.Credentials.FindCredentials(r.Context(), myt.CredentialFilter{Name: &name, Kind: &kind})
		if err != nil {
			return err
		}
		if len(cs) > 0 {
			v.Credential = cs[0]
		}
	}
	pid := p.ID
	jobs, err := s.cfg.Jobs.FindJobs(r.Context(), myt.JobFilter{PlatformID: &pid, Limit: platformJobs + 1})
	if err != nil {
		return err
	}
	if len(jobs) > platformJobs {
		jobs, v.MoreJobs = jobs[:platformJobs], true
	}
	v.Jobs = jobs
	if len(jobs) > 0 && jobs[0].Active() {
		v.Active = jobs[0]
	}
	for _, n := range sortedFieldNames(p.Design.Spec.Database.Fields) {
		v.Fields = append(v.Fields, [2]string{n, p.Design.Spec.Database.Fields[n]})
	}
	if h := p.Design.Spec.Processing.Handler; h != "" {
		v.HandlerLines = strings.Count(strings.TrimRight(h, "\n"), "\n") + 1
	}
	for _, rec := range recommendations {
		if rec.Kind == p.Design.Spec.Database.Kind {
			v.DatabaseReason = rec.Why
		}
	}
	if v.Monitor, err = s.monitorFor(r, p); err != nil {
		return err
	}
	pg := &page{Title: p.Name, Section: "platforms", Data: v}
	switch {
	case r.URL.Query().Get("created") == "1":
		pg.Notice = "The platform design was saved. Review it, then deploy it when you are ready."
	case r.URL.Query().Get("updated") == "1":
		pg.Notice = fmt.Sprintf("The design was updated to revision %d.", p.Revision)
		if p.DeployedRevision > 0 {
			pg.Notice += fmt.Sprintf(" Revision %d is still the one running: update the platform to apply it.", p.DeployedRevision)
		}
	}
	s.render(w, r, http.StatusOK, "platform", pg)
	return nil
}

func (s *server) platformDesignDownload(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	y, err := design.MarshalYAML(p.Design)
	if err != nil {
		return fmt.Errorf("marshal design of platform %d: %w", p.ID, err)
	}
	w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", p.Name+".yaml"))
	w.Write(y)
	return nil
}

func (s *server) platformDeletePage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "platform_delete", &page{Title: "Delete " + p.Name, Section: "platforms", Data: p})
	return nil
}

func (s *server) platformDeleteSubmit(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	if strings.TrimSpace(r.PostForm.Get("confirm")) != p.Name {
		fe := &formErrors{Message: "The platform was not deleted."}
		fe.add("confirm", "Platform name", "Type the platform's name exactly to confirm.")
		s.render(w, r, http.StatusUnprocessableEntity, "platform_delete", &page{Title: "Delete " + p.Name, Section: "platforms", Data: p, Errs: fe})
		return nil
	}
	if err := s.cfg.Platforms.DeletePlatform(r.Context(), p.ID); err != nil {
		if myt.ErrorCode(err) == myt.EINVALID || myt.ErrorCode(err) == myt.ECONFLICT {
			s.render(w, r, http.StatusUnprocessableEntity, "platform_delete", &page{Title: "Delete " + p.Name, Section: "platforms", Data: p, Errs: &formErrors{Message: myt.ErrorMessage(err)}})
			return nil
		}
		return err
	}
	s.log.Info("platform deleted", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name)
	http.Redirect(w, r, "/?ok=deleted", http.StatusSeeOther)
	return nil
}

type importView struct {
	Document string
	// Example is the textarea's placeholder on the import page: a
	// document to copy, never one to delete before pasting.
	Example string
	// Platform is set when editing an existing platform's design.
	Platform *myt.Platform
}

func (s *server) importPage(w http.ResponseWriter, r *http.Request) error {
	s.render(w, r, http.StatusOK, "import", &page{Title: "Import a design", Section: "platforms", Data: &importView{Example: exampleDesign}})
	return nil
}

const exampleDesign = `apiVersion: myt/v1
kind: Platform
metadata:
  name: greenhouse
spec:
  target:
    provider: local
  database:
    kind: timescaledb
    fields: {temperature: float, humidity: float}
  broker: {mqtt: true, amqp: true, tls: true, plaintext: false}
`

func (s *server) importSubmit(w http.ResponseWriter, r *http.Request) error {
	doc := r.PostForm.Get("document")
	if r.MultipartForm != nil {
		if fhs := r.MultipartForm.File["file"]; len(fhs) > 0 && fhs[0].Size > 0 {
			f, err := fhs[0].Open()
			if err != nil {
				return fmt.Errorf("open uploaded design: %w", err)
			}
			b, err := io.ReadAll(io.LimitReader(f, design.MaxDocumentBytes+1))
			f.Close()
			if err != nil {
				return fmt.Errorf("read uploaded design: %w", err)
			}
			doc = string(b)
		}
	}
	v := &importView{Document: doc, Example: exampleDesign}
	d, err := design.ParsePartial([]byte(doc))
	if err != nil && d != nil {
		// Say now what creating it would refuse next: every error in
		// one answer, not one round at a time.
		if c, ok := s.cfg.Platforms.(myt.NewPlatformChecker); ok {
			err = myt.WithMoreFields(err, c.CheckNewPlatform(r.Context(), d))
		}
	}
	if err == nil {
		var p *myt.Platform
		p, err = s.cfg.Platforms.CreatePlatform(r.Context(), d)
		if err == nil {
			s.log.Info("platform imported", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name)
			http.Redirect(w, r, "/platforms/"+strconv.FormatInt(p.ID, 10)+"?created=1", http.StatusSeeOther)
			return nil
		}
	}
	fe := s.errorsFrom(r, err, nil)
	if myt.ErrorCode(err) == myt.ECONFLICT {
		fe.Message = myt.ErrorMessage(err) + " Change metadata.name, or delete the other platform first."
	}
	s.render(w, r, http.StatusUnprocessableEntity, "import", &page{Title: "Import a design", Section: "platforms", Data: v, Errs: fe})
	return nil
}

func sortedFieldNames(m map[string]string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (s *server) platformEditPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	y, err := design.MarshalYAML(p.Design)
	if err != nil {
		return fmt.Errorf("marshal design of platform %d: %w", p.ID, err)
	}
	s.render(w, r, http.StatusOK, "import", &page{Title: "Edit " + p.Name, Section: "platforms", Data: &importView{Document: string(y), Platform: p}})
	return nil
}

func (s *server) platformEditSubmit(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	doc := r.PostForm.Get("document")
	d, err := design.Parse([]byte(doc))
	if err == nil {
		_, err = s.cfg.Platforms.UpdatePlatform(r.Context(), p.ID, d)
	}
	if err != nil {
		fe := s.errorsFrom(r, err, nil)
		s.render(w, r, http.StatusUnprocessableEntity, "import", &page{Title: "Edit " + p.Name, Section: "platforms", Data: &importView{Document: doc, Platform: p}, Errs: fe})
		return nil
	}
	s.log.Info("platform design updated", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name)
	http.Redirect(w, r, "/platforms/"+strconv.FormatInt(p.ID, 10)+"?updated=1", http.StatusSeeOther)
	return nil
}

type handlerView struct {
	P       *myt.Platform
	Handler string
	// Publishable is set when the platform runs a handler that a publish
	// can replace; Versions are the handlers it ran, newest first.
	Publishable bool
	Versions    []*codeVersionRow
	// Tryable is set when the platform's worker can try code (Samples,
	// and Test its outcome).
	Tryable bool
	Samples string
	Test    *myt.CodeTest
}

func (s *server) platformHandlerPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	code := p.Design.Spec.Processing.Handler
	if code == "" {
		code = string(handler.Template())
	}
	v, err := s.handlerView(r, p, code)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "handler", &page{Title: "Processing code of " + p.Name, Section: "platforms", Data: v})
	return nil
}

func (s *server) platformHandlerSubmit(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	code := r.PostForm.Get("handler")
	up, err := uploadedFile(r, "handler_file", myt.MaxHandlerBytes+1)
	if err != nil {
		return err
	}
	if up != "" {
		code = up
	}
	code = strings.ReplaceAll(code, "\r\n", "\n")
	if a := r.PostForm.Get("action"); (a == "try" || a == "dead-letters") && s.cfg.Workers != nil {
		return s.codeTry(w, r, p, code)
	}
	if r.PostForm.Get("passthrough") == "1" {
		code = ""
	}
	d := *p.Design
	d.Spec.Processing.Handler = code
	err = design.CheckHandler(r.Context(), code)
	if errors.Is(err, design.ErrNoPython) {
		err = nil // the page says so
	}
	publish := r.PostForm.Get("action") == "publish" && s.cfg.Code != nil
	var updated *myt.Platform
	var job *myt.Job
	switch {
	case err != nil:
	case publish:
		job, err = s.cfg.Code.PublishCode(r.Context(), p.ID, code)
	default:
		updated, err = s.cfg.Platforms.UpdatePlatform(r.Context(), p.ID, &d)
	}
	if err != nil {
		fe := s.errorsFrom(r, err, func(path string) (string, string, bool) {
			return "handler", "handler.py", path == "spec.processing.handler" || path == "code"
		})
		if p2, ferr := s.cfg.Platforms.FindPlatformByID(r.Context(), p.ID); ferr == nil {
			p = p2 // a publish may have saved the design before its job was refused
		}
		v, verr := s.handlerView(r, p, code)
		if verr != nil {
			return verr
		}
		s.render(w, r, http.StatusUnprocessableEntity, "handler", &page{Title: "Processing code of " + p.Name, Section: "platforms", Data: v, Errs: fe})
		return nil
	}
	if job != nil {
		s.log.Info("handler published from the web", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name, "job", job.ID)
		http.Redirect(w, r, "/jobs/"+strconv.FormatInt(job.ID, 10)+"?started=1", http.StatusSeeOther)
		return nil
	}
	s.log.Info("platform handler updated", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name, "revision", updated.Revision)
	http.Redirect(w, r, "/platforms/"+strconv.FormatInt(p.ID, 10)+"?updated=1", http.StatusSeeOther)
	return nil
}
