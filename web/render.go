package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os/exec"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/credential"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// staticVersion is a content hash appended to asset URLs so that browsers
// may cache them for long and still see a new release at once.
var staticVersion = func() string {
	h := sha256.New()
	fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := staticFS.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:10]
}()

func staticURL(name string) string { return "/static/" + name + "?v=" + staticVersion }

func staticHandler() http.Handler {
	fsrv := http.FileServerFS(staticFS)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("v") == staticVersion {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		fsrv.ServeHTTP(w, r)
	})
}

// templates holds one parsed set per page: the layouts and partials, plus
// that page's "content".
type templates struct {
	pages map[string]*template.Template
}

var funcs = template.FuncMap{
	"static": staticURL,
	"field":  newField,
	// json is a value as compact JSON (a record a handler made).
	"json": func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	},
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, errors.New("dict: odd number of arguments")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
	"date": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.Local().Format("2 Jan 2006 15:04")
	},
	"datep": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "never"
		}
		return t.Local().Format("2 Jan 2006 15:04")
	},
	"ago": ago,
	// firstLine and moreLines split a message whose first line is prose
	// and whose rest (a YAML source excerpt) is shown pre-formatted.
	"firstLine": func(s string) string { first, _, _ := strings.Cut(s, "\n"); return first },
	"moreLines": func(s string) string { _, rest, _ := strings.Cut(s, "\n"); return rest },
	// handlerHelp is the help under a handler editor: what to write, and
	// whether this server checks its syntax.
	"samplesHelp": func() string {
		return `One message per line: a payload such as {"temperature": 21.5}, or {"topic": "myt/dev1/env", "payload": {...}}.`
	},
	"handlerHelp": func() string {
		h := "Define process(msg): return a dict (one row), a list of dicts, or None to drop the message; raise to send it to the dead-letter queue. Test it on your machine first with: myt code test handler.py samples.ndjson"
		if _, err := exec.LookPath("python3"); err != nil {
			h += " This server has no python3, so the syntax is not checked when you save: the worker reports errors when it loads the code."
		}
		return h
	},
	"providerName": providerName,
	"databaseName": databaseName,
	"join":         strings.Join,
	"statusHelp":   statusHelp,
	"sortedKeys": func(m map[string]string) []string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return keys
	},
	"inc":          func(i int) int { return i + 1 },
	"lower":        strings.ToLower,
	"kindName":     kindName,
	"cidrs":        cidrList,
	"words":        func(s string) string { return strings.ReplaceAll(s, "-", " ") },
	"jobStateHelp": jobStateHelp,
	"stepLabel":    stepLabel,
	"duration":     duration,
	"percent": func(done, total int) int {
		if total <= 0 {
			return 0
		}
		return done * 100 / total
	},
}

func parseTemplates() (*templates, error) {
	base, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/_*.html")
	if err != nil {
		return nil, fmt.Errorf("parse layouts: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	t := &templates{pages: map[string]*template.Template{}}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if strings.HasPrefix(name, "_") {
			continue
		}
		c, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if _, err := c.ParseFS(templateFS, n); err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		t.pages[name] = c
	}
	return t, nil
}

// page is what every template receives.
type page struct {
	Title   string
	Section string // the nav entry to highlight
	Bare    bool   // the centred card layout of setup, login and sign-up
	User    *myt.User
	CSRF    string
	Notice  string // a success message at the top of the page
	Errs    *formErrors
	Data    any
}

// render writes the named page with status.
func (s *server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t, ok := s.tmpl.pages[name]
	if !ok {
		s.log.Error("no such template", "template", name)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	st := stateFrom(r.Context())
	if st.auth != nil {
		p.User = st.auth.User
	}
	p.CSRF = s.csrfToken(w, r)
	if p.Errs == nil {
		p.Errs = &formErrors{}
	}
	layout := "layout"
	if p.Bare || p.User == nil {
		layout = "bare"
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, layout, p); err != nil {
		s.log.Error("render page", "template", name, "err", err)
		http.Error(w, "Internal error.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// renderError turns err into the page a person should see, with the status
// myt.HTTPStatus maps its code to: 404, 403, 429, a form-less 400 or 409,
// or a generic 500 whose detail goes only to the log.
func (s *server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	code := myt.ErrorCode(err)
	status, title := myt.HTTPStatus(code), "Something went wrong"
	msg := myt.ErrorMessage(err)
	switch code {
	case myt.ENOTFOUND:
		title = "Not found"
		msg = "There is nothing here, or it is not yours. Check the address, or go back to your platforms."
	case myt.EFORBIDDEN:
		title = "Not allowed"
	case myt.EUNAUTHORIZED:
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	case myt.ETOOMANY:
		title = "Too many attempts"
	case myt.ETOOLARGE:
		title = "Too large"
	case myt.EINVALID, myt.ECONFLICT:
		title = "That did not work"
	default:
		status = http.StatusInternalServerError
		s.log.Error("web request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "MyT could not do that because of an internal error. It has been logged; try again, and if it keeps failing ask your administrator to look at the server log."
	}
	s.render(w, r, status, "error", &page{Title: title, Data: map[string]any{"Status": status, "Message": msg}})
}

// formErrors are the problems of a submitted form, placed next to inputs.
type formErrors struct {
	Message string
	Fields  map[string]string // input name → message
	// Summary lists every problem in order, with the input it links to
	// (none for a field error that matches no input of the form).
	Summary []summaryItem
}

type summaryItem struct {
	Target  string // element id, "" when none
	Label   string
	Message string
}

// For returns the error message of an input, or "".
func (e *formErrors) For(name string) string {
	if e == nil {
		return ""
	}
	return e.Fields[name]
}

// Any reports whether there is anything to show.
func (e *formErrors) Any() bool {
	return e != nil && (e.Message != "" || len(e.Fields) > 0 || len(e.Summary) > 0)
}

// add records a problem with input name.
func (e *formErrors) add(name, label, msg string) {
	if e.Fields == nil {
		e.Fields = map[string]string{}
	}
	inline := sentence(msg)
	if prev, ok := e.Fields[name]; ok {
		e.Fields[name] = prev + " " + inline
	} else {
		e.Fields[name] = inline
	}
	e.Summary = append(e.Summary, summaryItem{Target: fieldID(name), Label: label, Message: msg})
}

// errorsFrom builds formErrors from a service error. inputOf maps a field
// path of the error to the form's input name and label (ok false when the
// form has no such input). Internal errors are logged and shown generically.
func (s *server) errorsFrom(r *http.Request, err error, inputOf func(path string) (name, label string, ok bool)) *formErrors {
	fe := &formErrors{Message: myt.ErrorMessage(err)}
	if myt.ErrorCode(err) == myt.EINTERNAL {
		s.log.Error("web form failed", "method", r.Method, "path", r.URL.Path, "err", err)
		fe.Message = "MyT could not save this because of an internal error. It has been logged; please try again."
		return fe
	}
	for _, f := range myt.ErrorFields(err) {
		if inputOf != nil {
			if name, label, ok := inputOf(f.Field); ok {
				fe.add(name, label, f.Message)
				continue
			}
		}
		fe.Summary = append(fe.Summary, summaryItem{Label: f.Field, Message: f.Message})
	}
	return fe
}

// Field is one form input rendered by the "field" partial.
type Field struct {
	ID, Name, Label, Type, Value, Help, Err string
	Placeholder, Autocomplete, Pattern      string
	Required, Optional, Autofocus, Mono     bool
	Upload                                  bool // offer a file input named NAME_file
	Rows                                    int
	Min, Max                                string
	Options                                 []Option
	List                                    string // id of a <datalist>
	Describe                                string // extra aria-describedby ids
}

// Option is a <select> choice.
type Option struct {
	Value, Label string
	Attrs        template.HTMLAttr
}

var idUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

func fieldID(name string) string { return "f-" + idUnsafe.ReplaceAllString(name, "-") }

// newField is the template function `field NAME LABEL [key value]...`.
func newField(name, label string, kv ...any) (*Field, error) {
	f := &Field{ID: fieldID(name), Name: name, Label: label, Type: "text"}
	if len(kv)%2 != 0 {
		return nil, errors.New("field: odd number of arguments")
	}
	for i := 0; i < len(kv); i += 2 {
		k, _ := kv[i].(string)
		v := kv[i+1]
		str := func() string {
			switch x := v.(type) {
			case string:
				return x
			case nil:
				return ""
			default:
				return fmt.Sprint(x)
			}
		}
		b, _ := v.(bool)
		switch k {
		case "type":
			f.Type = str()
		case "value":
			f.Value = str()
		case "help":
			f.Help = str()
		case "err":
			f.Err = str()
		case "placeholder":
			f.Placeholder = str()
		case "autocomplete":
			f.Autocomplete = str()
		case "pattern":
			f.Pattern = str()
		case "required":
			f.Required = b
		case "optional":
			f.Optional = b
		case "autofocus":
			f.Autofocus = b
		case "mono":
			f.Mono = b
		case "rows":
			f.Rows, _ = v.(int)
		case "min":
			f.Min = str()
		case "max":
			f.Max = str()
		case "options":
			f.Options, _ = v.([]Option)
		case "list":
			f.List = str()
		case "describe":
			f.Describe = str()
		case "id":
			f.ID = str()
		default:
			return nil, fmt.Errorf("field: unknown key %q", k)
		}
	}
	return f, nil
}

func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case t.IsZero():
		return "—"
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	case d < 60*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	default:
		return t.Local().Format("2 Jan 2006")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// providerName labels a target provider: the credential kind's label,
// so the UI names a provider the same way everywhere.
func providerName(p string) string {
	if p == myt.ProviderLocal {
		return "This machine"
	}
	if k, ok := credential.Lookup(p); ok {
		return k.Label
	}
	return p
}

var databaseNames = map[string]string{
	myt.DatabaseMySQL:       "MySQL",
	myt.DatabaseMongoDB:     "MongoDB",
	myt.DatabaseTimescaleDB: "TimescaleDB",
	myt.DatabaseInfluxDB:    "InfluxDB",
}

func databaseName(k string) string {
	if n, ok := databaseNames[k]; ok {
		return n
	}
	return k
}

func statusHelp(st string) string {
	switch st {
	case myt.StatusDesigned:
		return "Designed, not deployed yet"
	case myt.StatusDeploying:
		return "Being deployed"
	case myt.StatusRunning:
		return "Running"
	case myt.StatusFailed:
		return "The last job failed"
	case myt.StatusDestroying:
		return "Being destroyed"
	case myt.StatusDestroyed:
		return "Destroyed; the design is kept"
	}
	return st
}

// cidrList lists networks for people: 0.0.0.0/0 is "anywhere".
func cidrList(cidrs []string) string {
	out := make([]string, len(cidrs))
	for i, c := range cidrs {
		if c == "0.0.0.0/0" || c == "::/0" {
			c = "anywhere (" + c + ")"
		}
		out[i] = c
	}
	return strings.Join(out, ", ")
}

func jobStateHelp(st string) string {
	switch st {
	case myt.JobQueued:
		return "Waiting to start"
	case myt.JobPlanning:
		return "Working out what to change"
	case myt.JobAwaitingApproval:
		return "The plan waits for your approval"
	case myt.JobRunning:
		return "Changing the platform"
	case myt.JobSucceeded:
		return "Finished without errors"
	case myt.JobFailed:
		return "Stopped on an error"
	case myt.JobCancelled:
		return "Cancelled by a user"
	case myt.JobInterrupted:
		return "MyT stopped while the job ran"
	}
	return st
}

var stepLabels = map[string]string{
	"render":       "Render the bundle",
	"init":         "Initialise OpenTofu",
	"plan":         "Plan the infrastructure",
	"approval":     "Approval",
	"apply":        "Apply the plan",
	"outputs":      "Read the outputs",
	"connect":      "Connect over SSH",
	"ansible":      "Install with Ansible",
	"worker image": "Build the worker image",
	"compose":      "Start the containers",
	"health":       "Check every service",
	"endpoints":    "Publish the endpoints",
	"backup":       "Back up the data",
	"restore":      "Restore the backup",
	"remove":       "Remove the platform",
	"publish":      "Swap the handler into the workers",
}

// stepLabel names a job step for people.
func stepLabel(name string) string {
	if l, ok := stepLabels[name]; ok {
		return l
	}
	return name
}

// duration says how long from start to end took ("" until both are set).
func duration(start, end *time.Time) string {
	if start == nil || end == nil {
		return ""
	}
	d := end.Sub(*start).Round(time.Second)
	switch {
	case d < time.Second:
		return "under 1 s"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min %d s", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
}

// sentence capitalises msg and ends it with a full stop, for a message that
// stands on its own under an input.
func sentence(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return msg
	}
	if r, size := utf8.DecodeRuneInString(msg); unicode.IsLower(r) {
		msg = string(unicode.ToUpper(r)) + msg[size:]
	}
	if !strings.HasSuffix(msg, ".") && !strings.HasSuffix(msg, "?") && !strings.HasSuffix(msg, "!") {
		msg += "."
	}
	return msg
}
