package web

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/worker/handler"
)

// The new-platform wizard is a sequence of server-rendered steps. The state
// of the steps not on screen travels in hidden inputs, so it works without
// JavaScript (the small script only makes the database recommendation and
// the provider-dependent inputs react at once).
const (
	stepTarget = iota + 1
	stepData
	stepBroker
	stepProcessing
	stepReview
)

var stepTitles = []string{"", "Target", "Data", "Broker", "Processing", "Review"}

// stepInputs lists the inputs each step shows; the others are carried.
var stepInputs = [][]string{
	stepTarget:     {"name", "description", "provider", "credentials", "region", "zone", "size", "admin_cidrs", "device_cidrs", "data_volume_gb", "data_device"},
	stepData:       {"structured", "time_series", "db_kind", "field_name", "field_type", "retention_days"},
	stepBroker:     {"mqtt", "amqp", "tls", "plaintext"},
	stepProcessing: {"handler", "timeout_seconds", "workers"},
	stepReview:     {},
}

// wizard is the state of the new-platform wizard.
type wizard struct {
	Step int
	url.Values
	// Built from the values.
	Design *myt.Design
	YAML   string
	// For the page.
	Credentials  []*myt.Credential
	RecKind      string
	RecWhy       string
	Recs         []recommendation
	FieldRows    [][2]string
	ParseErrors  []myt.FieldError
	StepsWithErr map[int]bool
}

type recommendation struct {
	Structured, TimeSeries bool
	Kind, Name, Why        string
}

// recommendations are myt.RecommendDatabase's answers to the four
// combinations of its two questions, built once: the wizard's script shows
// the one matching the answers, the platform page the reason for its kind.
var recommendations = func() []recommendation {
	var out []recommendation
	for _, st := range []bool{true, false} {
		for _, ts := range []bool{true, false} {
			k, why := myt.RecommendDatabase(st, ts)
			out = append(out, recommendation{st, ts, k, databaseName(k), why})
		}
	}
	return out
}()

// Steps returns the step numbers and titles for the progress bar.
func (wz *wizard) Steps() []struct {
	N     int
	Title string
} {
	var out []struct {
		N     int
		Title string
	}
	for i := stepTarget; i <= stepReview; i++ {
		out = append(out, struct {
			N     int
			Title string
		}{i, stepTitles[i]})
	}
	return out
}

// Hidden returns the values to carry as hidden inputs on the current step.
func (wz *wizard) Hidden() [][2]string {
	var out [][2]string
	show := stepInputs[wz.Step]
	for _, step := range stepInputs {
		for _, name := range step {
			if slices.Contains(show, name) {
				continue
			}
			for _, v := range wz.Values[name] {
				out = append(out, [2]string{name, v})
			}
		}
	}
	return out
}

// Is reports whether a boolean value is set.
func (wz *wizard) Is(name string) bool { return wz.Get(name) == "true" || wz.Get(name) == "yes" }

// Cloud reports whether the chosen provider creates a machine.
func (wz *wizard) Cloud() bool {
	p := wz.Get("provider")
	return p != myt.ProviderSSH && p != myt.ProviderLocal
}

// Providers lists the providers with their names for the picker.
func (wz *wizard) Providers() []Option {
	var out []Option
	for _, p := range myt.Providers {
		out = append(out, Option{Value: p, Label: providerName(p)})
	}
	return out
}

// CredentialOptions lists the principal's credentials as options, tagged
// with their kind so the script can filter them by provider.
func (wz *wizard) CredentialOptions() []Option {
	out := []Option{{Value: "", Label: "Choose a credential…"}}
	for _, c := range wz.Credentials {
		label := c.Name + " (" + providerName(c.Kind) + ")"
		if c.Locked {
			label += " — locked, enter it again"
		}
		attrs := `data-kind="` + attrSafe(c.Kind) + `"`
		if reg := c.Public["region"]; reg != "" {
			attrs += ` data-region="` + template.HTMLEscapeString(reg) + `"`
		}
		out = append(out, Option{Value: c.Name, Label: label, Attrs: template.HTMLAttr(attrs)})
	}
	return out
}

// providerHint is how one provider names regions and zones.
type providerHint struct {
	Provider, Region, Zone string
	ZoneRequired           bool
	ZoneHelp               string
}

// providerHints are the region and zone examples of each cloud, and
// whether it needs a zone (as myt.Design.Validate does).
var providerHints = []providerHint{
	{myt.ProviderAWS, "eu-west-1", "eu-west-1a", false, "Optional: the availability zone in the region. Empty lets AWS choose."},
	{myt.ProviderOpenStack, "RegionOne", "nova", false, "Optional: the availability zone of your cloud. Empty uses its default."},
	{myt.ProviderAzure, "westeurope", "1", false, "Optional: the availability zone number (1, 2 or 3). Empty lets Azure choose."},
	{myt.ProviderGCP, "europe-west1", "europe-west1-b", true, "Required on Google Cloud: a zone of the region."},
}

// ProviderHints lists every cloud's hint, for the script.
func (wz *wizard) ProviderHints() []providerHint { return providerHints }

// Hint returns the chosen provider's hint (the first cloud's for others).
func (wz *wizard) Hint() providerHint {
	for _, h := range providerHints {
		if h.Provider == wz.Get("provider") {
			return h
		}
	}
	return providerHints[0]
}

// SuggestedRegion is the default region of the chosen credential: the
// region the wizard fills in for it, and replaces when the credential or
// the provider changes (a region typed by hand is kept).
func (wz *wizard) SuggestedRegion() string {
	for _, c := range wz.Credentials {
		if c.Name == wz.Get("credentials") && c.Kind == wz.Get("provider") {
			return c.Public["region"]
		}
	}
	return ""
}

// HasCredentialFor reports whether a credential of the chosen provider exists.
func (wz *wizard) HasCredentialFor() bool {
	for _, c := range wz.Credentials {
		if c.Kind == wz.Get("provider") {
			return true
		}
	}
	return false
}

// SizeOptions are the instance sizes.
func (wz *wizard) SizeOptions() []Option {
	labels := map[string]string{"small": "Small — 2 vCPU, 4 GB (a few hundred devices)", "medium": "Medium — 4 vCPU, 8 GB", "large": "Large — 8 vCPU, 16 GB"}
	var out []Option
	for _, sz := range myt.Sizes {
		out = append(out, Option{Value: sz, Label: labels[sz]})
	}
	return out
}

// DatabaseOptions offer the recommendation first, then every kind.
func (wz *wizard) DatabaseOptions() []Option {
	out := []Option{{Value: "", Label: "Use the recommendation (" + databaseName(wz.RecKind) + ")"}}
	desc := map[string]string{
		myt.DatabaseMySQL:       "MySQL — relational",
		myt.DatabaseMongoDB:     "MongoDB — documents",
		myt.DatabaseTimescaleDB: "TimescaleDB — relational time series",
		myt.DatabaseInfluxDB:    "InfluxDB — time series",
	}
	for _, k := range myt.DatabaseKinds {
		out = append(out, Option{Value: k, Label: desc[k]})
	}
	return out
}

// FieldTypeOptions are the types a declared field may have.
func (wz *wizard) FieldTypeOptions() []Option {
	var out []Option
	for _, t := range myt.FieldTypes {
		out = append(out, Option{Value: t, Label: t})
	}
	return out
}

// HandlerIsTemplate reports whether the handler is still the template.
func (wz *wizard) HandlerIsTemplate() bool {
	return strings.TrimSpace(wz.Get("handler")) == strings.TrimSpace(string(handler.Template()))
}

func attrSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, s)
}

// newWizard returns the wizard with every default filled in.
func newWizard() *wizard {
	d := myt.NewDesign()
	v := url.Values{}
	v.Set("provider", myt.ProviderAWS)
	v.Set("size", d.Spec.Target.Size)
	v.Set("device_cidrs", strings.Join(d.Spec.Target.DeviceCIDRs, "\n"))
	v.Set("data_volume_gb", strconv.Itoa(d.Spec.Target.DataVolumeGB))
	v.Set("structured", "yes")
	v.Set("time_series", "yes")
	v.Set("mqtt", fmt.Sprint(d.Spec.Broker.MQTT))
	v.Set("amqp", fmt.Sprint(d.Spec.Broker.AMQP))
	v.Set("tls", fmt.Sprint(d.Spec.Broker.TLS))
	v.Set("plaintext", fmt.Sprint(d.Spec.Broker.Plaintext))
	v.Set("handler", string(handler.Template()))
	v.Set("timeout_seconds", strconv.Itoa(d.Spec.Processing.TimeoutSeconds))
	v.Set("workers", strconv.Itoa(d.Spec.Processing.Workers))
	v.Set("retention_days", "0")
	return &wizard{Step: stepTarget, Values: v}
}

// wizardFromForm reads the wizard state from a submitted form.
func wizardFromForm(form url.Values) *wizard {
	v := url.Values{}
	for _, step := range stepInputs {
		for _, name := range step {
			if vals, ok := form[name]; ok {
				v[name] = vals
			}
		}
	}
	// Unchecked boxes send nothing: on the broker step that means false.
	step, _ := strconv.Atoi(form.Get("step"))
	if step == stepBroker {
		for _, name := range stepInputs[stepBroker] {
			if v.Get(name) != "true" {
				v.Set(name, "false")
			}
		}
	}
	if step < stepTarget || step > stepReview {
		step = stepTarget
	}
	return &wizard{Step: step, Values: v}
}

var listSplit = regexp.MustCompile(`[\s,]+`)

func splitList(s string) []string {
	var out []string
	for _, f := range listSplit.Split(strings.TrimSpace(s), -1) {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// build turns the values into a design (unvalidated) and computes the
// recommendation and field rows for the page.
func (wz *wizard) build() {
	d := myt.NewDesign()
	wz.ParseErrors = nil
	num := func(name, path string, dst *int) {
		s := strings.TrimSpace(wz.Get(name))
		if s == "" {
			return
		}
		n, err := strconv.Atoi(s)
		if err != nil {
			wz.ParseErrors = append(wz.ParseErrors, myt.FieldError{Field: path, Message: fmt.Sprintf("%q given; must be a whole number", s)})
			return
		}
		*dst = n
	}
	d.Metadata.Name = strings.TrimSpace(wz.Get("name"))
	d.Metadata.Description = strings.TrimSpace(wz.Get("description"))
	t := &d.Spec.Target
	t.Provider = wz.Get("provider")
	t.Credentials = wz.Get("credentials")
	t.AdminCIDRs = splitList(wz.Get("admin_cidrs"))
	t.DeviceCIDRs = splitList(wz.Get("device_cidrs"))
	if wz.Cloud() {
		t.Region = strings.TrimSpace(wz.Get("region"))
		t.Zone = strings.TrimSpace(wz.Get("zone"))
		if sz := wz.Get("size"); sz != "" {
			t.Size = sz
		}
		num("data_volume_gb", "spec.target.dataVolumeGB", &t.DataVolumeGB)
	}
	if t.Provider == myt.ProviderSSH {
		t.DataDevice = strings.TrimSpace(wz.Get("data_device"))
	}
	if t.Provider == myt.ProviderLocal {
		t.Credentials = ""
		t.AdminCIDRs = nil
	}

	wz.RecKind, wz.RecWhy = myt.RecommendDatabase(wz.Is("structured"), wz.Is("time_series"))
	wz.Recs = recommendations
	d.Spec.Database.Kind = wz.RecKind
	if k := wz.Get("db_kind"); k != "" {
		d.Spec.Database.Kind = k
	}
	names, types := wz.Values["field_name"], wz.Values["field_type"]
	wz.FieldRows = nil
	for i, n := range names {
		n = strings.TrimSpace(n)
		typ := "float"
		if i < len(types) {
			typ = types[i]
		}
		if n == "" {
			continue
		}
		wz.FieldRows = append(wz.FieldRows, [2]string{n, typ})
		if d.Spec.Database.Fields == nil {
			d.Spec.Database.Fields = map[string]string{}
		}
		if _, dup := d.Spec.Database.Fields[n]; dup {
			wz.ParseErrors = append(wz.ParseErrors, myt.FieldError{Field: "spec.database.fields." + n, Message: fmt.Sprintf("%q is declared twice", n)})
		}
		d.Spec.Database.Fields[n] = typ
	}
	num("retention_days", "spec.database.retentionDays", &d.Spec.Database.RetentionDays)

	d.Spec.Broker = myt.Broker{MQTT: wz.Is("mqtt"), AMQP: wz.Is("amqp"), TLS: wz.Is("tls"), Plaintext: wz.Is("plaintext")}
	d.Spec.Processing.Handler = strings.ReplaceAll(wz.Get("handler"), "\r\n", "\n")
	num("timeout_seconds", "spec.processing.timeoutSeconds", &d.Spec.Processing.TimeoutSeconds)
	num("workers", "spec.processing.workers", &d.Spec.Processing.Workers)
	wz.Design = d
	if y, err := design.MarshalYAML(d); err == nil {
		wz.YAML = string(y)
	}
}

// fieldExamples are the placeholders of the typed-field rows, one each.
var fieldExamples = []string{"temperature", "humidity", "pressure", "battery", "co2", "rssi"}

// FieldRow is one typed-field row of the data step.
type FieldRow struct {
	Name, Type, Placeholder string
}

// Rows returns the field rows plus one blank row to fill in (more after
// "Add a field"), each with its own example name.
func (wz *wizard) Rows() []FieldRow {
	var rows []FieldRow
	for _, r := range wz.FieldRows {
		rows = append(rows, FieldRow{Name: r[0], Type: r[1]})
	}
	blank := 1
	if n, err := strconv.Atoi(wz.Get("more_fields")); err == nil && n >= 0 && n <= myt.MaxFields {
		blank = n
	}
	for range blank {
		rows = append(rows, FieldRow{Type: "float"})
	}
	for i := range rows {
		rows[i].Placeholder = fieldExamples[i%len(fieldExamples)]
	}
	return rows
}

// removeField drops the i-th row of Rows: a declared field, or a blank.
func (wz *wizard) removeField(i int) {
	blanks := wz.blankRows()
	if i >= 0 && i < len(wz.FieldRows) {
		var names, types []string
		for j, r := range wz.FieldRows {
			if j != i {
				names, types = append(names, r[0]), append(types, r[1])
			}
		}
		wz.Values["field_name"], wz.Values["field_type"] = names, types
		wz.build()
	} else if blanks > 0 {
		blanks--
	}
	wz.Set("more_fields", strconv.Itoa(blanks))
}

// blankRows counts the empty rows the page submitted.
func (wz *wizard) blankRows() int {
	n := 0
	for _, name := range wz.Values["field_name"] {
		if strings.TrimSpace(name) == "" {
			n++
		}
	}
	return n
}

// designInputs maps design paths to the wizard input that sets them. A
// path ending in "*" is a prefix. name is "" when no input shows the
// error (it goes to the summary); on names the input whose step the error
// belongs to when name is not one of stepInputs.
var designInputs = []struct {
	path, name, label, on string
}{
	{"metadata.name", "name", "Name", ""},
	{"metadata.description", "description", "Description", ""},
	{"spec.target.provider", "provider", "Where it runs", ""},
	{"spec.target.credentials", "credentials", "Credential", ""},
	{"spec.target.region", "region", "Region", ""},
	{"spec.target.zone", "zone", "Zone", ""},
	{"spec.target.size", "size", "Size", ""},
	{"spec.target.adminCIDRs", "admin_cidrs", "Admin networks", ""},
	{"spec.target.deviceCIDRs", "device_cidrs", "Device networks", ""},
	{"spec.target.dataVolumeGB", "data_volume_gb", "Data volume", ""},
	{"spec.target.dataDevice", "data_device", "Data disk", ""},
	{"spec.target.*", "", "", "provider"},
	{"spec.database.kind", "db_kind", "Database", ""},
	{"spec.database.fields*", "field_name", "Fields", ""},
	{"spec.database.retentionDays", "retention_days", "Retention", ""},
	{"spec.broker*", "broker", "Broker", "mqtt"}, // one message for the group
	{"spec.processing.handler", "handler", "Handler", ""},
	{"spec.processing.timeoutSeconds", "timeout_seconds", "Timeout", ""},
	{"spec.processing.workers", "workers", "Workers", ""},
}

// wizardInput maps a design path to the wizard's input, its label and
// step: the step whose stepInputs hold the input (review for a path the
// wizard has no input for).
func wizardInput(path string) (name, label string, step int) {
	base := path
	if i := strings.IndexByte(base, '['); i >= 0 {
		base = base[:i]
	}
	for _, in := range designInputs {
		p, prefix := strings.CutSuffix(in.path, "*")
		if base == p || prefix && strings.HasPrefix(base, p) {
			return in.name, in.label, stepOf(cmp.Or(in.on, in.name))
		}
	}
	return "", "", stepReview
}

// stepOf returns the step that shows input, stepReview when none does.
func stepOf(input string) int {
	for step, names := range stepInputs {
		if slices.Contains(names, input) {
			return step
		}
	}
	return stepReview
}

// errorsFor turns err (validation or service) into form errors for the
// inputs of one step; it records which steps have errors.
func (s *server) wizardErrors(r *http.Request, wz *wizard, err error, only int) *formErrors {
	wz.StepsWithErr = map[int]bool{}
	if fields := myt.ErrorFields(err); len(fields) > 0 {
		// The input is on screen next to the message: "(empty) given" adds
		// nothing there.
		nf := make([]myt.FieldError, len(fields))
		for i, f := range fields {
			nf[i] = myt.FieldError{Field: f.Field, Message: inlineMessage(f.Message)}
		}
		err = &myt.Error{Code: myt.ErrorCode(err), Message: myt.ErrorMessage(err), Fields: nf}
	}
	for _, f := range myt.ErrorFields(err) {
		_, _, st := wizardInput(f.Field)
		wz.StepsWithErr[st] = true
	}
	return s.errorsFrom(r, err, func(path string) (string, string, bool) {
		name, label, st := wizardInput(path)
		if only != 0 && st != only {
			return "", "", false
		}
		if name == "" {
			return "", "", false
		}
		return name, label, true
	})
}

// validate returns the problems of the design, parse errors first; the
// handler is compiled when the rest is valid.
func (wz *wizard) validate(ctx context.Context) error {
	var fields []myt.FieldError
	fields = append(fields, wz.ParseErrors...)
	if err := wz.Design.Validate(); err != nil {
		fields = append(fields, myt.ErrorFields(err)...)
	} else if err := design.CheckHandler(ctx, wz.Design.Spec.Processing.Handler); err != nil && !errors.Is(err, design.ErrNoPython) {
		if len(myt.ErrorFields(err)) == 0 {
			return err
		}
		fields = append(fields, myt.ErrorFields(err)...)
	}
	return myt.Invalid("Some answers need another look.", fields)
}

// errorsOfStep keeps only the field errors that belong to step.
func errorsOfStep(err error, step int) error {
	var keep []myt.FieldError
	for _, f := range myt.ErrorFields(err) {
		if _, _, st := wizardInput(f.Field); st == step {
			keep = append(keep, f)
		}
	}
	return myt.Invalid(myt.ErrorMessage(err), keep)
}

// loadWizardCredentials loads (and so decrypts) the user's credentials for
// the wizard, once per request: it does nothing when they are loaded.
func (s *server) loadWizardCredentials(r *http.Request, wz *wizard) error {
	if wz.Credentials != nil {
		return nil
	}
	cs, err := s.cfg.Credentials.FindCredentials(r.Context(), myt.CredentialFilter{})
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []*myt.Credential{} // loaded, and there are none
	}
	wz.Credentials = cs
	return nil
}

func (s *server) renderWizard(w http.ResponseWriter, r *http.Request, wz *wizard, status int, fe *formErrors) error {
	if err := s.loadWizardCredentials(r, wz); err != nil {
		return err
	}
	if wz.Design == nil {
		wz.build()
	}
	title := "New platform — " + stepTitles[wz.Step]
	s.render(w, r, status, "wizard", &page{Title: title, Section: "platforms", Data: wz, Errs: fe})
	return nil
}

func (s *server) wizardPage(w http.ResponseWriter, r *http.Request) error {
	wz := newWizard()
	if p := r.URL.Query().Get("provider"); slices.Contains(myt.Providers, p) {
		wz.Set("provider", p)
	}
	if c := r.URL.Query().Get("credentials"); c != "" {
		wz.Set("credentials", c)
	}
	// Suggest the first credential of the provider, so the common case is
	// one click less.
	if err := s.loadWizardCredentials(r, wz); err != nil {
		return err
	}
	if wz.Get("credentials") == "" {
		for _, c := range wz.Credentials {
			if c.Kind == wz.Get("provider") && !c.Locked {
				wz.Set("credentials", c.Name)
				if reg := c.Public["region"]; reg != "" {
					wz.Set("region", reg)
				}
				break
			}
		}
	}
	return s.renderWizard(w, r, wz, http.StatusOK, nil)
}

func (s *server) wizardSubmit(w http.ResponseWriter, r *http.Request) error {
	wz := wizardFromForm(r.PostForm)
	wz.build()
	action := r.PostForm.Get("action")
	switch {
	case action == "back":
		if wz.Step > stepTarget {
			wz.Step--
		}
		return s.renderWizard(w, r, wz, http.StatusOK, nil)
	case action == "more_fields":
		// One blank row more than the page had.
		wz.Set("more_fields", strconv.Itoa(wz.blankRows()+1))
		return s.renderWizard(w, r, wz, http.StatusOK, nil)
	case strings.HasPrefix(action, "remove_field:"):
		i, _ := strconv.Atoi(strings.TrimPrefix(action, "remove_field:"))
		wz.removeField(i)
		return s.renderWizard(w, r, wz, http.StatusOK, nil)
	case strings.HasPrefix(action, "goto:"):
		to, _ := strconv.Atoi(strings.TrimPrefix(action, "goto:"))
		if to < wz.Step && to >= stepTarget {
			wz.Step = to
			return s.renderWizard(w, r, wz, http.StatusOK, nil)
		}
		// Going forward validates like "next".
		fallthrough
	case action == "next":
		if err := errorsOfStep(wz.validate(r.Context()), wz.Step); err != nil {
			return s.renderWizard(w, r, wz, http.StatusUnprocessableEntity, s.wizardErrors(r, wz, err, wz.Step))
		}
		if wz.Step < stepReview {
			wz.Step++
		}
		return s.renderWizard(w, r, wz, http.StatusOK, nil)
	case action == "create":
		err := wz.validate(r.Context())
		if c, ok := s.cfg.Platforms.(myt.NewPlatformChecker); ok && myt.ErrorCode(err) == myt.EINVALID {
			err = myt.WithMoreFields(err, c.CheckNewPlatform(r.Context(), wz.Design))
		}
		var p *myt.Platform
		if err == nil {
			p, err = s.cfg.Platforms.CreatePlatform(r.Context(), wz.Design)
		}
		if err != nil {
			fe := s.wizardErrors(r, wz, err, 0)
			if myt.ErrorCode(err) == myt.ECONFLICT {
				fe = &formErrors{Message: "The form has a problem."}
				fe.add("name", "Name", "You already have a platform with this name.")
				wz.StepsWithErr = map[int]bool{stepTarget: true}
			}
			// Go to the first step that needs attention.
			for st := stepTarget; st <= stepReview; st++ {
				if wz.StepsWithErr[st] {
					wz.Step = st
					break
				}
			}
			if myt.ErrorCode(err) == myt.EINTERNAL {
				wz.Step = stepReview
			}
			return s.renderWizard(w, r, wz, http.StatusUnprocessableEntity, fe)
		}
		s.log.Info("platform designed", "user", myt.UserFromContext(r.Context()).Username, "platform", p.Name)
		http.Redirect(w, r, "/platforms/"+strconv.FormatInt(p.ID, 10)+"?created=1", http.StatusSeeOther)
		return nil
	}
	return s.renderWizard(w, r, wz, http.StatusOK, nil)
}

// inlineMessage drops the "what was given" prefix of a validation message
// when it says nothing (an empty value or list) and capitalises the rest.
func inlineMessage(msg string) string {
	for _, p := range []string{"(empty) given; ", `"[]" given; `, "[] given; "} {
		if rest, ok := strings.CutPrefix(msg, p); ok && rest != "" {
			return rest
		}
	}
	return msg
}
