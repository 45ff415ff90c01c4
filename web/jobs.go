package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/render"
)

// The deploy, update and destroy pages: a confirmation page per kind that
// says what the job will do, the job page (steps, plan, approval, log)
// followed live over server-sent events, and the job history.

// portRule is a port a deploy opens and to whom.
type portRule struct {
	Port  int
	Name  string
	CIDRs []string
	// Note replaces the CIDRs ("this machine only").
	Note string
}

var portNames = map[int]string{
	1883: "MQTT", 8883: "MQTT over TLS", 5672: "AMQP", 5671: "AMQP over TLS",
	render.GrafanaPort: "Grafana (HTTPS)",
}

// jobConfirmView is the confirmation page of a deploy, update or destroy.
type jobConfirmView struct {
	Kind string
	P    *myt.Platform
	// Cloud, SSH and Local tell where the platform runs.
	Cloud, SSH, Local bool
	// Credential is the design's saved credential (nil when missing);
	// Server is "user@host:port" of an ssh target.
	Credential *myt.Credential
	Server     string
	Host       string
	Ports      []portRule
	// DataWhere says where the platform's data lives (kept on destroy).
	DataWhere string
	// Active is a job that keeps this one from starting.
	Active *myt.Job
	// Form state of a destroy.
	DeleteData bool
	Confirm    string
}

// Title is the page's heading.
func (v *jobConfirmView) Title() string {
	switch v.Kind {
	case myt.JobUpdate:
		return "Update " + v.P.Name
	case myt.JobDestroy:
		return "Destroy " + v.P.Name
	}
	return "Deploy " + v.P.Name
}

func (s *server) jobConfirm(r *http.Request, kind string) (*jobConfirmView, error) {
	p, err := s.platformFor(r)
	if err != nil {
		return nil, err
	}
	t := p.Design.Spec.Target
	v := &jobConfirmView{Kind: kind, P: p, SSH: t.Provider == myt.ProviderSSH, Local: t.Provider == myt.ProviderLocal}
	v.Cloud = !v.SSH && !v.Local
	if name := t.Credentials; name != "" {
		cs, err := s.cfg.Credentials.FindCredentials(r.Context(), myt.CredentialFilter{Name: &name, Kind: &t.Provider})
		if err != nil {
			return nil, err
		}
		if len(cs) > 0 {
			v.Credential = cs[0]
		}
	}
	sshPort := 22
	if v.SSH && v.Credential != nil {
		pub := v.Credential.Public
		v.Host = pub["host"]
		port := pub["port"]
		if port == "" {
			port = "22"
		}
		sshPort, _ = strconv.Atoi(port)
		user := pub["user"]
		if user == "" {
			user = "root"
		}
		v.Server = user + "@" + v.Host + ":" + port
	}
	for _, port := range p.Design.Spec.Broker.Ports() {
		pr := portRule{Port: port, Name: portNames[port], CIDRs: t.DeviceCIDRs}
		if v.Local {
			pr.CIDRs, pr.Note = nil, "every network this machine is on"
		}
		v.Ports = append(v.Ports, pr)
	}
	grafana := portRule{Port: render.GrafanaPort, Name: portNames[render.GrafanaPort], CIDRs: t.AdminCIDRs}
	switch {
	case v.Local:
		grafana.Note = "this machine only (127.0.0.1)"
	case len(t.AdminCIDRs) == 0:
		grafana.Note = "no network: reach it through an SSH tunnel"
	}
	v.Ports = append(v.Ports, grafana)
	if !v.Local && len(t.AdminCIDRs) > 0 {
		v.Ports = append(v.Ports, portRule{Port: sshPort, Name: "SSH", CIDRs: t.AdminCIDRs})
	}
	switch {
	case v.Cloud:
		v.DataWhere = fmt.Sprintf("its %d GB data volume", t.DataVolumeGB)
	case v.SSH:
		v.DataWhere = render.HostDataDir + " on " + orDefault(v.Host, "the server")
	default:
		v.DataWhere = "its data directory on this machine (platforms/" + strconv.FormatInt(p.ID, 10) + "/data in MyT's data directory)"
	}
	pid := p.ID
	jobs, err := s.cfg.Jobs.FindJobs(r.Context(), myt.JobFilter{PlatformID: &pid, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(jobs) > 0 && jobs[0].Active() {
		v.Active = jobs[0]
	}
	return v, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (s *server) jobConfirmPage(kind string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := s.jobConfirm(r, kind)
		if err != nil {
			return err
		}
		s.render(w, r, http.StatusOK, "job_confirm", &page{Title: v.Title(), Section: "platforms", Data: v})
		return nil
	}
}

func (s *server) jobStart(kind string) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := s.jobConfirm(r, kind)
		if err != nil {
			return err
		}
		req := myt.JobRequest{Kind: kind}
		if kind == myt.JobDestroy && r.PostForm.Get("final_backup_offered") == "1" && r.PostForm.Get("final_backup") != "1" {
			req.FinalBackup = new(false) // declined explicitly
		}
		if kind == myt.JobDestroy && r.PostForm.Get("delete_data") == "1" {
			req.DeleteData = true
			req.Confirm = strings.TrimSpace(r.PostForm.Get("confirm"))
			v.DeleteData, v.Confirm = true, req.Confirm
			if req.Confirm != v.P.Name {
				fe := &formErrors{Message: "Nothing was destroyed."}
				fe.add("confirm", "Platform name", fmt.Sprintf("To delete the data too, type the platform's name, %s, exactly.", v.P.Name))
				s.render(w, r, http.StatusUnprocessableEntity, "job_confirm", &page{Title: v.Title(), Section: "platforms", Data: v, Errs: fe})
				return nil
			}
		}
		j, err := s.cfg.Jobs.StartJob(r.Context(), v.P.ID, req)
		if err != nil {
			code := myt.ErrorCode(err)
			if code != myt.EINVALID && code != myt.ECONFLICT {
				return err
			}
			status := http.StatusUnprocessableEntity
			if code == myt.ECONFLICT {
				status = http.StatusConflict
				// The job in the way, to link to.
				pid := v.P.ID
				if js, ferr := s.cfg.Jobs.FindJobs(r.Context(), myt.JobFilter{PlatformID: &pid, Limit: 1}); ferr == nil && len(js) > 0 && js[0].Active() {
					v.Active = js[0]
				}
			}
			fe := s.errorsFrom(r, err, func(path string) (string, string, bool) {
				return "confirm", "Platform name", path == "confirm" && kind == myt.JobDestroy
			})
			s.render(w, r, status, "job_confirm", &page{Title: v.Title(), Section: "platforms", Data: v, Errs: fe})
			return nil
		}
		s.log.Info("job started from the web", "user", myt.UserFromContext(r.Context()).Username, "platform", v.P.Name, "job", j.ID, "kind", kind)
		http.Redirect(w, r, "/jobs/"+strconv.FormatInt(j.ID, 10)+"?started=1", http.StatusSeeOther)
		return nil
	}
}

// jobView is the job page and its live regions.
type jobView struct {
	J    *myt.Job
	CSRF string
	// Errs are the approval form's problems; Confirm its value.
	Errs    *formErrors
	Confirm string
	// Log is the whole log so far and Seq its last chunk.
	Log string
	Seq int64
	// Regions are the parts of the page the live stream replaces.
	Regions map[string]*liveRegion
}

// liveRegion is one server-rendered part of the job page; Sum identifies
// its content, so the script replaces only what changed.
type liveRegion struct {
	Name string
	HTML template.HTML
	Sum  string
}

// jobRegions are the live parts of the job page, each a template of
// job.html named "job-NAME".
var jobRegions = []string{"head", "outcome", "steps", "plan"}

// renderRegions fills v.Regions.
func (s *server) renderRegions(v *jobView) error {
	t := s.tmpl.pages["job"]
	if v.Errs == nil {
		v.Errs = &formErrors{}
	}
	v.Regions = make(map[string]*liveRegion, len(jobRegions))
	for _, name := range jobRegions {
		var buf bytes.Buffer
		if err := t.ExecuteTemplate(&buf, "job-"+name, v); err != nil {
			return fmt.Errorf("render job region %s: %w", name, err)
		}
		sum := sha256.Sum256(buf.Bytes())
		v.Regions[name] = &liveRegion{Name: name, HTML: template.HTML(buf.String()), Sum: hex.EncodeToString(sum[:6])}
	}
	return nil
}

// jobFor loads the {id} job of the principal (404 otherwise).
func (s *server) jobFor(r *http.Request) (*myt.Job, error) {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	return s.cfg.Jobs.FindJobByID(r.Context(), id)
}

// readLog returns the job's log after seq after, all of it, and the last
// seq read.
func (s *server) readLog(r *http.Request, id, after int64) (string, int64, error) {
	var b strings.Builder
	for {
		chunks, _, err := s.cfg.Jobs.JobLog(r.Context(), id, after)
		if err != nil {
			return "", after, err
		}
		for _, c := range chunks {
			b.WriteString(c.Text)
			after = c.Seq
		}
		if len(chunks) < 1000 {
			return b.String(), after, nil
		}
	}
}

func (s *server) jobPage(w http.ResponseWriter, r *http.Request) error {
	return s.renderJob(w, r, http.StatusOK, nil, "", "")
}

// renderJob renders the job page with status, the approval form's errors
// and value, and a notice.
func (s *server) renderJob(w http.ResponseWriter, r *http.Request, status int, errs *formErrors, confirm, notice string) error {
	j, err := s.jobFor(r)
	if err != nil {
		return err
	}
	v := &jobView{J: j, CSRF: s.csrfToken(w, r), Errs: errs, Confirm: confirm}
	if v.Log, v.Seq, err = s.readLog(r, j.ID, 0); err != nil {
		return err
	}
	if err := s.renderRegions(v); err != nil {
		return err
	}
	pg := &page{Title: jobTitle(j), Section: "platforms", Data: v, Notice: notice}
	if notice == "" && r.URL.Query().Get("started") == "1" {
		pg.Notice = fmt.Sprintf("The %s job started.", j.Kind)
		if isCloud(j.Design) && j.Kind != myt.JobDestroy || isCloud(j.Design) && j.Active() {
			pg.Notice += " MyT plans first and waits for your approval before it changes anything."
		}
	}
	s.render(w, r, status, "job", pg)
	return nil
}

func isCloud(d *myt.Design) bool {
	if d == nil {
		return false
	}
	p := d.Spec.Target.Provider
	return p != myt.ProviderSSH && p != myt.ProviderLocal
}

func jobTitle(j *myt.Job) string {
	return fmt.Sprintf("%s job %d · %s", kindName(j.Kind), j.ID, j.Platform)
}

func kindName(kind string) string {
	switch kind {
	case myt.JobDeploy:
		return "Deploy"
	case myt.JobUpdate:
		return "Update"
	case myt.JobDestroy:
		return "Destroy"
	case myt.JobPublish:
		return "Publish"
	case myt.JobBackup:
		return "Backup"
	case myt.JobRestore:
		return "Restore"
	}
	return kind
}

func (s *server) jobApprove(w http.ResponseWriter, r *http.Request) error {
	j, err := s.jobFor(r)
	if err != nil {
		return err
	}
	confirm := strings.TrimSpace(r.PostForm.Get("confirm"))
	if _, err := s.cfg.Jobs.ApproveJob(r.Context(), j.ID, confirm); err != nil {
		code := myt.ErrorCode(err)
		if code != myt.EINVALID && code != myt.ECONFLICT {
			return err
		}
		fe := s.errorsFrom(r, err, func(path string) (string, string, bool) {
			return "confirm", "Platform name", path == "confirm"
		})
		status := http.StatusUnprocessableEntity
		if code == myt.ECONFLICT {
			status = http.StatusConflict
		}
		return s.renderJob(w, r, status, fe, confirm, "")
	}
	s.log.Info("job approved from the web", "user", myt.UserFromContext(r.Context()).Username, "job", j.ID, "platform", j.Platform)
	http.Redirect(w, r, "/jobs/"+strconv.FormatInt(j.ID, 10), http.StatusSeeOther)
	return nil
}

func (s *server) jobCancel(w http.ResponseWriter, r *http.Request) error {
	j, err := s.jobFor(r)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Jobs.CancelJob(r.Context(), j.ID); err != nil {
		if myt.ErrorCode(err) != myt.ECONFLICT {
			return err
		}
		return s.renderJob(w, r, http.StatusConflict, &formErrors{Message: myt.ErrorMessage(err)}, "", "")
	}
	s.log.Info("job cancelled from the web", "user", myt.UserFromContext(r.Context()).Username, "job", j.ID, "platform", j.Platform)
	http.Redirect(w, r, "/jobs/"+strconv.FormatInt(j.ID, 10), http.StatusSeeOther)
	return nil
}

func (s *server) jobLogDownload(w http.ResponseWriter, r *http.Request) error {
	j, err := s.jobFor(r)
	if err != nil {
		return err
	}
	text, _, err := s.readLog(r, j.ID, 0)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("%s-%s-%d.log", j.Platform, j.Kind, j.ID)))
	io.WriteString(w, text)
	return nil
}

// Live follow: the event stream of a job.
const (
	// jobPoll is how often the stream looks at the job when no
	// notification came (a missed one, or a job run by another process).
	jobPoll = 2 * time.Second
	// jobKeepAlive is the longest the stream stays silent.
	jobKeepAlive = 15 * time.Second
)

// jobEvent is the data of a "job" event: the state and the live regions.
type jobEvent struct {
	State   string                  `json:"state"`
	Active  bool                    `json:"active"`
	Regions map[string]regionUpdate `json:"regions"`
}

type regionUpdate struct {
	HTML string `json:"html"`
	Sum  string `json:"sum"`
}

// jobEvents streams a job as server-sent events: "log" events (id: the
// chunk's seq, data: {"seq","text"}), "job" events when the job changes
// (jobEvent), and a last "end" event when the job has finished, after
// which the stream closes. It starts after ?after=SEQ, or after the
// Last-Event-ID a reconnecting browser sends.
func (s *server) jobEvents(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	j, err := s.jobFor(r)
	if err != nil {
		return err
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		after, _ = strconv.ParseInt(id, 10, 64)
	}
	wake, stop, err := s.cfg.Jobs.WatchJob(ctx, j.ID)
	if err != nil {
		return err
	}
	defer stop()
	csrf := s.csrfToken(w, r)
	shutdown := s.shuttingDown(r)

	// A stream outlives the server's read and write timeouts.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, "retry: 2000\n\n")
	rc.Flush()

	log := s.log.With("job", j.ID)
	send := func(event, id string, data any) bool {
		b, err := json.Marshal(data)
		if err != nil {
			log.Error("encode job event", "err", err)
			return false
		}
		var buf bytes.Buffer
		buf.WriteString("event: " + event + "\n")
		if id != "" {
			buf.WriteString("id: " + id + "\n")
		}
		buf.WriteString("data: ")
		buf.Write(b)
		buf.WriteString("\n\n")
		_, err = w.Write(buf.Bytes())
		return err == nil
	}
	lastSums := ""
	lastWrite := time.Now()
	poll := time.NewTicker(jobPoll)
	defer poll.Stop()
	for {
		// The job first: once it is seen finished, its log is complete.
		j, err := s.cfg.Jobs.FindJobByID(ctx, j.ID)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("follow job", "err", err)
			}
			return nil
		}
		wrote := false
		for {
			chunks, _, err := s.cfg.Jobs.JobLog(ctx, j.ID, after)
			if err != nil {
				if ctx.Err() == nil {
					log.Error("follow job log", "err", err)
				}
				return nil
			}
			for _, c := range chunks {
				after = c.Seq
				if c.Text == "" {
					continue
				}
				if !send("log", strconv.FormatInt(c.Seq, 10), c) {
					return nil
				}
				wrote = true
			}
			if len(chunks) < 1000 {
				break
			}
		}
		v := &jobView{J: j, CSRF: csrf}
		if err := s.renderRegions(v); err != nil {
			log.Error("follow job", "err", err)
			return nil
		}
		ev := jobEvent{State: j.State, Active: j.Active(), Regions: map[string]regionUpdate{}}
		var sums strings.Builder
		for _, name := range jobRegions {
			reg := v.Regions[name]
			ev.Regions[name] = regionUpdate{HTML: string(reg.HTML), Sum: reg.Sum}
			sums.WriteString(reg.Sum)
		}
		if sums.String() != lastSums {
			if !send("job", "", ev) {
				return nil
			}
			lastSums, wrote = sums.String(), true
		}
		if !j.Active() {
			send("end", "", map[string]string{"state": j.State})
			rc.Flush()
			return nil
		}
		if !wrote && time.Since(lastWrite) >= jobKeepAlive {
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			wrote = true
		}
		if wrote {
			lastWrite = time.Now()
			if err := rc.Flush(); err != nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-shutdown:
			// The browser reconnects once the server is back.
			return nil
		case <-wake:
		case <-poll.C:
		}
	}
}

// shuttingDown returns a channel that is closed when the http.Server
// serving r shuts down (nil when r has none): a graceful shutdown waits
// for every response to end, and an event stream ends only when told.
func (s *server) shuttingDown(r *http.Request) <-chan struct{} {
	hs, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if hs == nil {
		return nil
	}
	s.shutMu.Lock()
	defer s.shutMu.Unlock()
	ch, ok := s.shutdown[hs]
	if !ok {
		ch = make(chan struct{})
		s.shutdown[hs] = ch
		hs.RegisterOnShutdown(func() { close(ch) })
	}
	return ch
}

// jobsView is a platform's job history.
type jobsView struct {
	P    *myt.Platform
	Jobs []*myt.Job
}

func (s *server) platformJobsPage(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	pid := p.ID
	jobs, err := s.cfg.Jobs.FindJobs(r.Context(), myt.JobFilter{PlatformID: &pid, Limit: 200})
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "jobs", &page{Title: "Jobs of " + p.Name, Section: "platforms", Data: &jobsView{P: p, Jobs: jobs}})
	return nil
}

// platformCA downloads the platform's CA certificate, for devices.
func (s *server) platformCA(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	pem, err := s.cfg.Connections.PlatformCA(r.Context(), p.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Header().Set("Content-Disposition", `attachment; filename="ca.crt"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Write(pem)
	return nil
}

// platformReveal shows the platform page once with the Grafana admin and
// device passwords filled in. They are never part of a GET.
func (s *server) platformReveal(w http.ResponseWriter, r *http.Request) error {
	p, err := s.platformFor(r)
	if err != nil {
		return err
	}
	rv := &revealed{}
	var errs []string
	for _, sec := range []struct {
		name string
		to   *string
	}{{myt.SecretGrafanaAdmin, &rv.Grafana}, {myt.SecretDevice, &rv.Device}} {
		v, err := s.cfg.Connections.PlatformSecret(r.Context(), p.ID, sec.name)
		switch myt.ErrorCode(err) {
		case "":
			*sec.to = v
		case myt.ENOTFOUND:
			errs = append(errs, myt.ErrorMessage(err))
		default:
			return err
		}
	}
	if len(errs) > 0 {
		rv.Missing = strings.Join(errs, " ")
	}
	return s.renderPlatform(w, r, p, rv)
}

// revealed are the secrets a reveal shows.
type revealed struct {
	Grafana, Device string
	// Missing says which could not be shown.
	Missing string
}
