package deploy

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/pki"
	"github.com/myt-iot/myt/render"
)

// Names of the operational secrets a job keeps beside the render secrets.
const (
	secretCACert     = "tls/ca.crt"
	secretCAKey      = "tls/ca.key"
	secretServerCert = "tls/server.crt"
	secretServerKey  = "tls/server.key"
	secretKnownHosts = "ssh/known_hosts"
	secretAddress    = "host/address"
)

// vaultSecrets is a render.SecretSource over the platform's sealed
// secrets: a secret is generated once and kept, so every render of the
// platform uses the same passwords.
type vaultSecrets struct {
	store      SecretStore
	platformID int64
}

func (v vaultSecrets) Secret(ctx context.Context, name string) (string, error) {
	b, err := v.store.Get(ctx, v.platformID, name)
	if err == nil {
		return string(b), nil
	}
	if myt.ErrorCode(err) != myt.ENOTFOUND {
		return "", err
	}
	s, err := render.NewRandomSecrets().Secret(ctx, name)
	if err != nil {
		return "", err
	}
	return s, v.store.Put(ctx, v.platformID, name, []byte(s))
}

// secretValue returns a stored secret, or nil when there is none.
func (w *work) secretValue(name string) ([]byte, error) {
	b, err := w.r.cfg.Secrets.Get(w.ctx, w.p.ID, name)
	if myt.ErrorCode(err) == myt.ENOTFOUND {
		return nil, nil
	}
	return b, err
}

func (w *work) putSecret(name string, value []byte) error {
	return w.r.cfg.Secrets.Put(w.ctx, w.p.ID, name, value)
}

// render makes the bundle with the platform's kept secrets, CA and
// server certificate, writes it into the job directory and records the
// TLS material it used.
func (w *work) render(serverNames ...string) error {
	opts := render.Options{
		Secrets:     vaultSecrets{w.r.cfg.Secrets, w.p.ID},
		Now:         w.r.cfg.Now,
		ServerNames: serverNames,
		// A destroy's first plan lists the data volume, to keep or delete
		// it; a destroy that keeps it guards the module again before the
		// plan it applies (destroyCloud). Every other job's module refuses
		// to plan the volume's loss.
		DeleteData: w.job.Kind == myt.JobDestroy,
	}
	caCert, err := w.secretValue(secretCACert)
	if err != nil {
		return err
	}
	if caCert != nil {
		caKey, err := w.secretValue(secretCAKey)
		if err != nil {
			return err
		}
		if opts.CA, err = pki.LoadCA(caCert, caKey); err != nil {
			return fmt.Errorf("the platform's CA: %w", err)
		}
		cert, err := w.secretValue(secretServerCert)
		if err != nil {
			return err
		}
		key, err := w.secretValue(secretServerKey)
		if err != nil {
			return err
		}
		if cert != nil && key != nil {
			opts.Server = &pki.Server{CertPEM: cert, KeyPEM: key}
		}
	}
	if w.d.Spec.Target.Provider == myt.ProviderSSH {
		opts.SSH, err = w.sshTarget()
		if err != nil {
			return err
		}
	}
	b, err := render.Render(w.ctx, w.d, opts)
	if err != nil {
		return err
	}
	for _, f := range b.Files {
		if strings.HasPrefix(f.Path, "secrets.d/") || strings.HasSuffix(f.Path, ".key") || strings.HasSuffix(f.Path, "_tls_key") || f.Path == "ssh/id_ed25519" {
			w.log.mask(string(f.Data))
		}
	}
	if caCert == nil || string(caCert) != string(b.CA.CertPEM) {
		if err := w.putSecret(secretCACert, b.CA.CertPEM); err != nil {
			return err
		}
		if err := w.putSecret(secretCAKey, b.CA.KeyPEM); err != nil {
			return err
		}
	}
	if opts.Server == nil || string(opts.Server.CertPEM) != string(b.Server.CertPEM) {
		if err := w.putSecret(secretServerCert, b.Server.CertPEM); err != nil {
			return err
		}
		if err := w.putSecret(secretServerKey, b.Server.KeyPEM); err != nil {
			return err
		}
	}
	w.bundle = b
	w.bundleDir = filepath.Join(w.dir, "bundle")
	if err := b.WriteDir(w.bundleDir); err != nil {
		return err
	}
	w.log.Printf("Rendered %d files for revision %d.", len(b.Files), w.job.Revision)
	return nil
}

// sshTarget is the ssh credential's host.
func (w *work) sshTarget() (render.SSHTarget, error) {
	if w.cred == nil {
		return render.SSHTarget{}, errors.New("no credential")
	}
	t := render.SSHTarget{Host: w.cred.Public["host"], User: w.cred.Public["user"], Port: 22}
	if p := w.cred.Public["port"]; p != "" {
		if _, err := fmt.Sscan(p, &t.Port); err != nil {
			return t, fmt.Errorf("credential %s: port %q", w.cred.Name, p)
		}
	}
	return t, nil
}
