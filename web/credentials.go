package web

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/credential"
)

type credentialsView struct {
	Credentials []*myt.Credential
	Kinds       []credential.Kind
}

// Details lists a credential's public and masked fields with their labels,
// in the kind's order (the SSH public key is on the credential's own page).
func (v *credentialsView) Details(c *myt.Credential) []kv {
	return credentialFields(c)
}

// credentialFields lists c's public values and masked secrets with their
// labels, in the order of its kind's fields; Secret marks the masked ones.
func credentialFields(c *myt.Credential) []kv {
	k, _ := credential.Lookup(c.Kind)
	var out []kv
	for _, f := range k.Fields {
		if f.Secret {
			if m, ok := c.Masked[f.Name]; ok {
				out = append(out, kv{f.Name, f.Label, m, true})
			}
		} else if val, ok := c.Public[f.Name]; ok {
			out = append(out, kv{f.Name, f.Label, val, false})
		}
	}
	return out
}

func (s *server) credentialsPage(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.cfg.Credentials.FindCredentials(r.Context(), myt.CredentialFilter{})
	if err != nil {
		return err
	}
	p := &page{Title: "Credentials", Section: "credentials", Data: &credentialsView{Credentials: cs, Kinds: credential.Kinds}}
	switch r.URL.Query().Get("ok") {
	case "deleted":
		p.Notice = "The credential was deleted."
	}
	s.render(w, r, http.StatusOK, "credentials", p)
	return nil
}

// credentialForm is the new-credential form of one kind.
type credentialForm struct {
	Kinds    []credential.Kind
	Kind     credential.Kind
	Name     string
	Values   map[string]string // public values only: secrets are never sent back
	Generate bool              // ssh: generate a key pair
	Next     string            // where to go after saving (the wizard)
}

// Fields returns the kind's inputs as rendered fields.
func (f *credentialForm) Fields(errs *formErrors) []*Field {
	var out []*Field
	for _, kf := range f.Kind.Fields {
		fl := &Field{
			ID: fieldID(kf.Name), Name: kf.Name, Label: kf.Label, Type: "text", Help: kf.Help,
			Optional: kf.Optional, Required: !kf.Optional, Placeholder: kf.Default, Err: errs.For(kf.Name),
			Autocomplete: "off",
		}
		if kf.Secret {
			fl.Type = "password"
			fl.Autocomplete = "new-password"
			fl.Mono = true
			if errs.Any() {
				fl.Help = strings.TrimSpace(fl.Help + " Enter it again: secrets are never sent back to the browser.")
			}
		} else {
			fl.Value = f.Values[kf.Name]
		}
		if kf.Multiline {
			fl.Type = "textarea"
			fl.Rows = 6
			fl.Mono = true
			fl.Upload = true
		}
		if f.Kind.Name == "ssh" && kf.Name == "private_key" {
			// The radio choice above replaces "leave empty to generate".
			fl.Optional = false
			fl.Help = "Paste an unencrypted private key (OpenSSH or PEM). It is sealed and never shown again."
		}
		out = append(out, fl)
	}
	return out
}

func (s *server) credentialNewPage(w http.ResponseWriter, r *http.Request) error {
	kind := r.URL.Query().Get("kind")
	if kind == "" {
		kind = credential.Kinds[0].Name
	}
	k, ok := credential.Lookup(kind)
	if !ok {
		return myt.Errorf(myt.ENOTFOUND, "No such credential kind.")
	}
	f := &credentialForm{Kinds: credential.Kinds, Kind: k, Values: map[string]string{}, Generate: true,
		Next: safeNextOrEmpty(r.URL.Query().Get("next"))}
	s.render(w, r, http.StatusOK, "credential_new", &page{Title: "Add a credential", Section: "credentials", Data: f})
	return nil
}

func (s *server) credentialNewSubmit(w http.ResponseWriter, r *http.Request) error {
	k, ok := credential.Lookup(r.PostForm.Get("kind"))
	if !ok {
		return myt.Errorf(myt.EINVALID, "Choose a credential kind.")
	}
	f := &credentialForm{Kinds: credential.Kinds, Kind: k, Name: strings.TrimSpace(r.PostForm.Get("name")),
		Values: map[string]string{}, Generate: r.PostForm.Get("generate") == "1", Next: safeNextOrEmpty(r.PostForm.Get("next"))}
	c := &myt.Credential{Name: f.Name, Kind: k.Name, Public: map[string]string{}}
	secret := myt.Secret{}
	for _, kf := range k.Fields {
		v := r.PostForm.Get(kf.Name)
		if kf.Multiline {
			// Key files may be uploaded instead of pasted.
			up, err := uploadedFile(r, kf.Name+"_file", 64<<10)
			if err != nil {
				return err
			}
			if up != "" {
				v = up
				if k.Name == "ssh" && kf.Name == "private_key" {
					f.Generate = false
				}
			}
		}
		if kf.Secret {
			if k.Name == "ssh" && kf.Name == "private_key" && f.Generate {
				continue
			}
			if strings.TrimSpace(v) != "" {
				secret[kf.Name] = v
			}
			continue
		}
		f.Values[kf.Name] = v
		if strings.TrimSpace(v) != "" {
			c.Public[kf.Name] = v
		}
	}
	if k.Name == "ssh" && !f.Generate && secret["private_key"] == "" {
		fe := &formErrors{Message: "The credential is not valid."}
		fe.add("private_key", "Private key", "Paste a private key, or choose to have MyT generate one.")
		s.render(w, r, http.StatusUnprocessableEntity, "credential_new", &page{Title: "Add a credential", Section: "credentials", Data: f, Errs: fe})
		return nil
	}
	if err := s.cfg.Credentials.CreateCredential(r.Context(), c, secret); err != nil {
		fe := s.errorsFrom(r, err, func(path string) (string, string, bool) {
			if path == "name" {
				return "name", "Name", true
			}
			for _, kf := range k.Fields {
				if path == kf.Name {
					return kf.Name, kf.Label, true
				}
			}
			return "", "", false
		})
		if myt.ErrorCode(err) == myt.ECONFLICT {
			fe = &formErrors{Message: "The form has a problem."}
			fe.add("name", "Name", "You already have a credential with this name.")
		}
		s.render(w, r, http.StatusUnprocessableEntity, "credential_new", &page{Title: "Add a credential", Section: "credentials", Data: f, Errs: fe})
		return nil
	}
	s.log.Info("credential created", "user", myt.UserFromContext(r.Context()).Username, "kind", c.Kind, "credential", c.Name)
	if k.Name == "ssh" {
		// Show the public key to install on the server.
		http.Redirect(w, r, "/credentials/"+strconv.FormatInt(c.ID, 10)+"?created=1&next="+url.QueryEscape(f.Next), http.StatusSeeOther)
		return nil
	}
	if f.Next != "" {
		http.Redirect(w, r, f.Next, http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/credentials/"+strconv.FormatInt(c.ID, 10)+"?created=1", http.StatusSeeOther)
	return nil
}

type credentialView struct {
	C      *myt.Credential
	UsedBy []*myt.Platform
	Kind   credential.Kind
	Public []kv
	Secret []kv
	Next   string
}

type kv struct {
	Key, Label, Value string
	Secret            bool // Value is a masked secret
}

func (s *server) credentialPage(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	c, err := s.cfg.Credentials.FindCredentialByID(r.Context(), id)
	if err != nil {
		return err
	}
	v := &credentialView{C: c, Next: safeNextOrEmpty(r.URL.Query().Get("next"))}
	ps, err := s.cfg.Platforms.FindPlatforms(r.Context(), myt.PlatformFilter{})
	if err != nil {
		return err
	}
	for _, p := range ps {
		if usesCredential(p, c.Name) {
			v.UsedBy = append(v.UsedBy, p)
		}
	}
	v.Kind, _ = credential.Lookup(c.Kind)
	for _, f := range credentialFields(c) {
		if f.Secret {
			v.Secret = append(v.Secret, f)
		} else {
			v.Public = append(v.Public, f)
		}
	}
	p := &page{Title: c.Name, Section: "credentials", Data: v}
	if r.URL.Query().Get("created") == "1" {
		p.Notice = "The credential was saved. Its secret is sealed with your key and will only be shown masked from now on."
	}
	s.render(w, r, http.StatusOK, "credential", p)
	return nil
}

// usesCredential is the store's rule (sqlite DeleteCredential refuses to
// delete a credential while this holds): a platform that is not destroyed
// names the credential in its design, whatever its provider.
func usesCredential(p *myt.Platform, name string) bool {
	return p.Status != myt.StatusDestroyed && p.Design != nil && p.Design.Spec.Target.Credentials == name
}

func (s *server) credentialDelete(w http.ResponseWriter, r *http.Request) error {
	id, err := myt.ParseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := s.cfg.Credentials.DeleteCredential(r.Context(), id); err != nil {
		return err
	}
	http.Redirect(w, r, "/credentials?ok=deleted", http.StatusSeeOther)
	return nil
}

func safeNextOrEmpty(p string) string {
	if p == "" {
		return ""
	}
	return safeNext(p)
}

// uploadedFile returns the content of an uploaded file field, "" when none
// was sent; EINVALID when it is larger than max bytes.
func uploadedFile(r *http.Request, name string, max int64) (string, error) {
	if r.MultipartForm == nil || len(r.MultipartForm.File[name]) == 0 {
		return "", nil
	}
	fh := r.MultipartForm.File[name][0]
	if fh.Size == 0 {
		return "", nil
	}
	if fh.Size > max {
		return "", myt.Errorf(myt.EINVALID, "The uploaded file is larger than %d KB.", max>>10)
	}
	f, err := fh.Open()
	if err != nil {
		return "", fmt.Errorf("open upload %s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max))
	if err != nil {
		return "", fmt.Errorf("read upload %s: %w", name, err)
	}
	return string(b), nil
}
