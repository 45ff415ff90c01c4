package render

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/internal/atomicfile"
	"github.com/myt-iot/myt/pki"
)

// Options are the inputs of Render beyond the design.
type Options struct {
	// Secrets returns the platform's generated secrets by name; nil means
	// a fresh NewRandomSecrets. The server passes one backed by its vault
	// so that a re-render keeps every password.
	Secrets SecretSource
	// Now is the clock used for certificate validity; nil means time.Now.
	Now func() time.Time
	// SSH is how Ansible reaches an existing server (provider ssh). For
	// clouds only User may be set, to override the image's default user;
	// the address comes from the OpenTofu outputs.
	SSH SSHTarget
	// SSHPublicKey is the authorized key (OpenSSH format) put on cloud
	// machines. Empty means a key pair is generated from the secret
	// "ssh_key_seed" and written to ssh/ in the bundle.
	SSHPublicKey string
	// ServerNames are extra DNS names or IP addresses for the server
	// certificate, such as the platform's public address once known.
	ServerNames []string
	// CA is the platform's existing CA; nil makes a new one. Pass the
	// previous CA on re-render so devices keep trusting the broker.
	CA *pki.CA
	// Server is the previous server certificate. It is kept when CA
	// signed it, it names every name the new one would, and it is valid
	// for another 30 days; otherwise a new one is issued. Keeping it
	// keeps a re-render byte for byte the same, so a re-deploy restarts
	// nothing.
	Server *pki.Server
	// WorkerImageTag is the tag of the default worker image; empty means
	// myt.Version.
	WorkerImageTag string
	// DeleteData renders the cloud module without lifecycle
	// prevent_destroy on the data volume, so that a plan may destroy or
	// replace it. Only a destroy that the user asked to delete the data
	// with sets it; every other bundle refuses to plan the volume's loss.
	DeleteData bool
}

// SSHTarget is an SSH endpoint.
type SSHTarget struct {
	Host string
	Port int
	User string
}

// SecretSource supplies named secrets. Secret returns the same value for
// the same name every time it is called on one source; it generates a value
// the first time. Implementations must be safe for concurrent use. The
// returned value is secret: never log it.
type SecretSource interface {
	Secret(ctx context.Context, name string) (string, error)
}

// Secret names a bundle may ask a SecretSource for.
const (
	SecretRabbitMQAdmin  = "rabbitmq_admin_password"
	SecretRabbitMQWorker = "rabbitmq_worker_password"
	SecretRabbitMQDevice = "rabbitmq_device_password"
	SecretDBRoot         = "db_root_password"
	SecretDB             = "db_password"
	SecretInfluxToken    = "influxdb_token"
	SecretGrafanaAdmin   = "grafana_admin_password"
	SecretGrafanaDB      = "grafana_db_password" // Grafana's read-only database user
	SecretWorkerToken    = "worker_api_token"
	// SecretWorkerExportToken may only read the worker's export API
	// (http.exportTokenFile): Grafana's credential on MongoDB platforms.
	SecretWorkerExportToken = "worker_export_token"
	SecretSSHKeySeed        = "ssh_key_seed"
)

// randomSecrets is the default SecretSource.
type randomSecrets struct {
	mu sync.Mutex
	m  map[string]string
}

// NewRandomSecrets returns a SecretSource that generates each secret once
// from crypto/rand (32 characters of [A-Za-z0-9], about 190 bits) and then
// remembers it.
func NewRandomSecrets() SecretSource { return &randomSecrets{m: map[string]string{}} }

func (r *randomSecrets) Secret(_ context.Context, name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.m[name]; ok {
		return v, nil
	}
	v := randomPassword(32)
	r.m[name] = v
	return v, nil
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomPassword returns n characters of [A-Za-z0-9] from crypto/rand,
// without modulo bias. The alphabet needs no quoting in URLs, shells,
// YAML or SQL. crypto/rand.Read never returns an error (Go 1.24+: it
// crashes the program instead), so there is none to return.
func randomPassword(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, 64)
	for len(out) < n {
		rand.Read(buf)
		for _, b := range buf {
			if int(b) < 256-256%len(alphabet) && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}

// DirSecrets returns a SecretSource that first reads each secret from an
// earlier bundle's secrets.d/<name> under dir (Render writes every secret
// it used there), and
// otherwise falls back to next. It lets `myt render -o DIR` run again over
// the same DIR without changing passwords that a deployed database already
// uses.
func DirSecrets(dir string, next SecretSource) SecretSource {
	return &dirSecrets{dir: dir, next: next}
}

type dirSecrets struct {
	dir  string
	next SecretSource
}

func (d *dirSecrets) Secret(ctx context.Context, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(d.dir, "secrets.d", name))
	if err == nil {
		if v := strings.TrimRight(string(b), "\r\n"); v != "" {
			return v, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read earlier secret %s: %w", name, err)
	}
	return d.next.Secret(ctx, name)
}

// File is one file of a bundle.
type File struct {
	// Path is slash-separated and relative to the bundle root.
	Path string
	Data []byte
	// Mode is 0600 for secrets, 0644 otherwise.
	Mode fs.FileMode
	// Secret marks files holding secret values; they are written 0600 and
	// the server seals them at rest.
	Secret bool
}

// Bundle is a rendered deployment.
type Bundle struct {
	// Files are sorted by Path.
	Files []File
	// CA and Server are the TLS material the bundle was made with (also
	// in Files), for the caller to keep and pass back on re-render.
	CA     *pki.CA
	Server *pki.Server
}

// File returns the file at path p, or nil.
func (b *Bundle) File(p string) *File {
	for i := range b.Files {
		if b.Files[i].Path == p {
			return &b.Files[i]
		}
	}
	return nil
}

// add adds a file that is not secret (0644).
func (b *Bundle) add(p string, data []byte) {
	b.Files = append(b.Files, File{Path: p, Data: data, Mode: 0o644})
}

func (b *Bundle) addSecret(p string, data []byte) {
	b.Files = append(b.Files, File{Path: p, Data: data, Mode: 0o600, Secret: true})
}

// WriteDir writes the bundle under dir, creating directories 0755 (0700
// for directories that hold secrets) and files with their modes. Existing
// files are replaced atomically; files the bundle does not have are left
// alone.
func (b *Bundle) WriteDir(dir string) error {
	for _, f := range b.Files {
		if !fs.ValidPath(f.Path) {
			return fmt.Errorf("bundle path %q is not valid", f.Path)
		}
		full := filepath.Join(dir, filepath.FromSlash(f.Path))
		dmode := fs.FileMode(0o755)
		if f.Secret {
			dmode = 0o700
		}
		if err := os.MkdirAll(filepath.Dir(full), dmode); err != nil {
			return fmt.Errorf("write bundle: %w", err)
		}
		if f.Secret {
			// MkdirAll does not tighten an existing directory.
			if err := os.Chmod(filepath.Dir(full), 0o700); err != nil {
				return fmt.Errorf("write bundle: %w", err)
			}
		}
		if err := atomicfile.Write(full, f.Data, f.Mode); err != nil {
			return fmt.Errorf("write bundle %s: %w", f.Path, err)
		}
	}
	return nil
}

// Render makes the bundle for design d. The design must be valid (it is
// validated again here); the error is a *myt.Error for an invalid design or
// options, and a wrapped error for a failing secret source.
func Render(ctx context.Context, d *myt.Design, opts Options) (*Bundle, error) {
	if d == nil {
		return nil, myt.Errorf(myt.EINVALID, "No design to render.")
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	if opts.Secrets == nil {
		opts.Secrets = NewRandomSecrets()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.WorkerImageTag == "" {
		opts.WorkerImageTag = myt.Version
	}
	t := d.Spec.Target
	if t.Provider == myt.ProviderSSH && opts.SSH.Host == "" {
		return nil, myt.Errorf(myt.EINVALID, "The ssh target needs a host: give --ssh-host or save an ssh credential with one.")
	}
	if opts.SSH.Port == 0 {
		opts.SSH.Port = 22
	}
	if opts.SSH.Port < 1 || opts.SSH.Port > 65535 {
		return nil, myt.Errorf(myt.EINVALID, "The SSH port %d is not valid (1-65535).", opts.SSH.Port)
	}
	if opts.SSH.User != "" && !userRE(opts.SSH.User) {
		return nil, myt.Errorf(myt.EINVALID, "The SSH user %q is not valid.", opts.SSH.User)
	}
	r := &renderer{ctx: ctx, d: d, opts: opts, secrets: map[string]string{}, b: &Bundle{}}
	steps := []func() error{r.pki, r.platform}
	if cloud(t.Provider) {
		steps = append(steps, r.sshKey, r.infra)
	}
	if t.Provider != myt.ProviderLocal {
		steps = append(steps, r.ansible)
	}
	steps = append(steps, r.readme, r.secretsDir)
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(r.b.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return r.b, nil
}

func userRE(s string) bool {
	if len(s) > 32 {
		return false
	}
	for i, c := range s {
		ok := c >= 'a' && c <= 'z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '.')
		if !ok {
			return false
		}
	}
	return s != ""
}

func cloud(p string) bool {
	return p == myt.ProviderAWS || p == myt.ProviderOpenStack || p == myt.ProviderAzure || p == myt.ProviderGCP
}

// renderer carries one Render call.
type renderer struct {
	ctx     context.Context
	d       *myt.Design
	opts    Options
	b       *Bundle
	secrets map[string]string // name -> value, every secret used
	ca      *pki.CA
	server  *pki.Server
	sshPub  string
	// secretOwners maps platform/secrets/ file names to the uid that owns
	// them on the host; volumes are the compose volumes under the data
	// directory with their owners. Both are set once, by platform.
	secretOwners map[string]int
	volumes      []dataVolume
}

// secret fetches a named secret and remembers it for secrets.d/.
func (r *renderer) secret(name string) (string, error) {
	if v, ok := r.secrets[name]; ok {
		return v, nil
	}
	v, err := r.opts.Secrets.Secret(r.ctx, name)
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	if v == "" {
		return "", fmt.Errorf("secret %s: source returned an empty value", name)
	}
	r.secrets[name] = v
	return v, nil
}

// secretsDir writes every secret used under secrets.d/<name>, so the
// bundle records what it was made with (and DirSecrets can reuse it).
func (r *renderer) secretsDir() error {
	for name, v := range r.secrets {
		r.b.addSecret("secrets.d/"+name, []byte(v+"\n"))
	}
	return nil
}

func (r *renderer) pki() error {
	now := r.opts.Now()
	ca := r.opts.CA
	if ca == nil {
		var err error
		if ca, err = pki.NewCA(r.d.Metadata.Name, pki.Options{Now: now}); err != nil {
			return fmt.Errorf("platform CA: %w", err)
		}
	}
	names := []string{r.d.Metadata.Name, "localhost", "rabbitmq", "grafana", "127.0.0.1"}
	if r.opts.SSH.Host != "" {
		names = append(names, r.opts.SSH.Host)
	}
	extra := ServerNames(r.opts.ServerNames)
	names = append(names, extra...)
	srv := r.opts.Server
	if srv == nil || !ca.Covers(srv, names, now.Add(pki.RenewBefore)) {
		var err error
		if srv, err = ca.IssueServer(names, pki.Options{Now: now}); err != nil {
			return fmt.Errorf("server certificate: %w", err)
		}
	}
	r.ca, r.server = ca, srv
	r.b.CA, r.b.Server = ca, srv
	r.b.add("pki/ca.crt", ca.CertPEM)
	r.b.addSecret("pki/ca.key", ca.KeyPEM)
	if len(extra) > 0 {
		r.b.add(ServerNamesFile, []byte(strings.Join(extra, "\n")+"\n"))
	}
	return nil
}

// ServerNamesFile is where a bundle records the extra names its server
// certificate was made for (Options.ServerNames, one per line), so that
// rendering the bundle again keeps them: a device that connects by the
// public address must not lose it on the next render.
const ServerNamesFile = "pki/server-names"

// ServerNames returns names without blanks and repeats, in order.
func ServerNames(names []string) []string {
	var out []string
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// ReadServerNames returns the names a bundle's ServerNamesFile holds.
func ReadServerNames(data []byte) []string {
	return ServerNames(strings.Split(string(data), "\n"))
}

// sshKey sets the authorized key for cloud machines, generating an
// ed25519 pair from the ssh_key_seed secret when none was given.
func (r *renderer) sshKey() error {
	if k := strings.TrimSpace(r.opts.SSHPublicKey); k != "" {
		pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(k))
		if err != nil || len(bytes.TrimSpace(rest)) > 0 {
			return myt.Errorf(myt.EINVALID, "The SSH public key is not one OpenSSH public key line (for example the contents of ~/.ssh/id_ed25519.pub).")
		}
		r.sshPub = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
		return nil
	}
	seed, err := r.secret(SecretSSHKeySeed)
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte("myt ssh key\x00" + seed))
	priv := ed25519.NewKeyFromSeed(sum[:])
	block, err := ssh.MarshalPrivateKey(priv, "myt "+r.d.Metadata.Name)
	if err != nil {
		return fmt.Errorf("ssh key: %w", err)
	}
	pub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		return fmt.Errorf("ssh key: %w", err)
	}
	r.sshPub = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub))) + " myt-" + r.d.Metadata.Name
	r.b.addSecret("ssh/id_ed25519", pem.EncodeToMemory(block))
	r.b.add("ssh/id_ed25519.pub", []byte(r.sshPub+"\n"))
	return nil
}

func secondsDur(s int) time.Duration { return time.Duration(s) * time.Second }
