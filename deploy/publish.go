package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/render"
)

// Handler publish: a publish job swaps the design's new handler into
// every worker of a running platform through the worker API (PUT
// /v1/handler, which loads it beside the running one and swaps it in
// between batches, losing and repeating nothing), then writes it to the
// host's handler file so that a restarted worker runs it too. Nothing
// else is touched: no Ansible, no container recreated.

// CodeStore keeps the versions of platforms' handlers (sqlite.CodeStore).
type CodeStore interface {
	// RecordCode adds v as the newest version unless the newest has the
	// same code.
	RecordCode(ctx context.Context, v *myt.CodeVersion) (bool, error)
	CodeVersions(ctx context.Context, platformID int64) ([]*myt.CodeVersion, error)
	CodeVersion(ctx context.Context, platformID int64, version int) (*myt.CodeVersion, error)
}

var _ myt.CodeService = (*Runner)(nil)

// secretSSHUser is a cloud machine's SSH user, from the infrastructure's
// outputs: jobs that do not run OpenTofu (publish) need it.
const secretSSHUser = "host/ssh_user"

// PublishCode implements myt.CodeService.
func (r *Runner) PublishCode(ctx context.Context, platformID int64, code string) (*myt.Job, error) {
	if strings.TrimSpace(code) == "" {
		return nil, &myt.Error{Code: myt.EINVALID, Message: "Nothing to publish.", Fields: []myt.FieldError{{Field: "code", Message: "empty: a handler defines process(msg)"}}}
	}
	p, err := r.cfg.Platforms.FindPlatformByID(ctx, platformID)
	if err != nil {
		return nil, err
	}
	d, err := cloneDesign(p.Design)
	if err != nil {
		return nil, err
	}
	d.Spec.Processing.Handler = code
	// Checked before the design is saved: a refused publish leaves it as
	// it was.
	if err := r.checkPublish(ctx, p, d); err != nil {
		return nil, err
	}
	if p.Design.Spec.Processing.Handler != code {
		if p, err = r.cfg.Platforms.UpdatePlatform(ctx, p.ID, d); err != nil {
			return nil, err
		}
	}
	return r.StartJob(ctx, p.ID, myt.JobRequest{Kind: myt.JobPublish})
}

// RollbackCode implements myt.CodeService.
func (r *Runner) RollbackCode(ctx context.Context, platformID int64, version int) (*myt.Job, error) {
	v, err := r.FindCodeVersion(ctx, platformID, version)
	if err != nil {
		return nil, err
	}
	if v.Code == "" {
		return nil, myt.Errorf(myt.EINVALID, "Version %d ran without a handler (passthrough): remove the handler from the design and run an update to go back to it.", version)
	}
	return r.PublishCode(ctx, platformID, v.Code)
}

// FindCodeVersions implements myt.CodeService.
func (r *Runner) FindCodeVersions(ctx context.Context, platformID int64) ([]*myt.CodeVersion, error) {
	if _, err := r.cfg.Platforms.FindPlatformByID(ctx, platformID); err != nil {
		return nil, err
	}
	if r.cfg.Code == nil {
		return nil, nil
	}
	return r.cfg.Code.CodeVersions(ctx, platformID)
}

// FindCodeVersion implements myt.CodeService.
func (r *Runner) FindCodeVersion(ctx context.Context, platformID int64, version int) (*myt.CodeVersion, error) {
	if _, err := r.cfg.Platforms.FindPlatformByID(ctx, platformID); err != nil {
		return nil, err
	}
	if r.cfg.Code == nil {
		return nil, myt.Errorf(myt.ENOTFOUND, "The platform has no code version %d.", version)
	}
	return r.cfg.Code.CodeVersion(ctx, platformID, version)
}

// publishBase checks that p can take a publish and returns the design it
// runs.
func (r *Runner) publishBase(ctx context.Context, p *myt.Platform) (*myt.Design, error) {
	if p.Status != myt.StatusRunning || p.DeployedRevision == 0 {
		return nil, myt.Errorf(myt.EINVALID, "Platform %s is %s: code is published to a running platform (deploy it first).", p.Name, p.Status)
	}
	deployed, err := r.cfg.Jobs.DeployedDesign(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	if deployed.Spec.Processing.Handler == "" {
		return nil, myt.Errorf(myt.EINVALID, "Platform %s runs without a handler (passthrough): its workers have no handler to swap. Add the handler to the design and run an update; publish works from then on.", p.Name)
	}
	return deployed, nil
}

// checkPublish says whether design d can be published to p: it differs
// from the design p runs in the handler, and only there.
func (r *Runner) checkPublish(ctx context.Context, p *myt.Platform, d *myt.Design) error {
	deployed, err := r.publishBase(ctx, p)
	if err != nil {
		return err
	}
	if d.Spec.Processing.Handler == "" {
		return myt.Errorf(myt.EINVALID, "The design of %s has no handler: going back to passthrough needs an update.", p.Name)
	}
	same, err := sameButHandler(deployed, d)
	if err != nil {
		return err
	}
	if !same {
		return myt.Errorf(myt.EINVALID, "The design of %s has changes besides the handler that are not deployed yet (revision %d, running %d): run an update, which deploys the handler too.", p.Name, p.Revision, p.DeployedRevision)
	}
	if deployed.Spec.Processing.Handler == d.Spec.Processing.Handler {
		return myt.Errorf(myt.EINVALID, "Platform %s already runs this handler.", p.Name)
	}
	return nil
}

func cloneDesign(d *myt.Design) (*myt.Design, error) {
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	c := myt.NewDesign()
	return c, json.Unmarshal(b, c)
}

// sameButHandler reports whether a and b are the same design apart from
// the handler.
func sameButHandler(a, b *myt.Design) (bool, error) {
	var enc [2][]byte
	for i, d := range []*myt.Design{a, b} {
		c, err := cloneDesign(d)
		if err != nil {
			return false, err
		}
		c.Spec.Processing.Handler = ""
		if enc[i], err = json.Marshal(c); err != nil {
			return false, err
		}
	}
	return bytes.Equal(enc[0], enc[1]), nil
}

// handlerFile is the handler as the bundle installs it.
func handlerFile(code string) []byte {
	if !strings.HasSuffix(code, "\n") {
		code += "\n"
	}
	return []byte(code)
}

// platformHost is how a publish reaches the platform's host: its
// loopback ports and its handler file.
type platformHost struct {
	dial  func(ctx context.Context, network, addr string) (net.Conn, error)
	read  func() ([]byte, error)
	write func(code []byte) error
}

// publish is the publish job's pipeline.
func (w *work) publish() error {
	var h platformHost
	switch w.d.Spec.Target.Provider {
	case myt.ProviderLocal:
		platformDir, _ := w.localDirs()
		h = localPlatformHost(filepath.Join(platformDir, "worker", "handler", "handler.py"))
	default:
		c, sh, err := w.reconnect(true)
		if err != nil {
			return err
		}
		defer c.Close()
		h = w.sshPlatformHost(c, sh)
	}
	token, err := w.secretValue(render.SecretWorkerToken)
	if err != nil {
		return err
	}
	if len(token) == 0 {
		return errors.New("the platform has no worker API token: run an update")
	}
	api := &workerAPI{token: strings.TrimSpace(string(token)), client: &http.Client{
		Transport: &http.Transport{Proxy: nil, DialContext: h.dial, DisableKeepAlives: true},
		Timeout:   2 * time.Minute,
	}}
	workers := max(w.d.Spec.Processing.Workers, 1)
	code := handlerFile(w.d.Spec.Processing.Handler)
	err = w.step(stepPublish, func() (string, error) {
		old, err := h.read()
		if err != nil {
			return "", fmt.Errorf("read the handler on the host: %w", err)
		}
		for i := range workers {
			if err := api.put(w.ctx, i, code); err != nil {
				if i > 0 {
					// The first workers run the new code: put the old
					// one back, so that all run the same.
					w.changed = true
					for j := range i {
						if rerr := api.put(w.ctx, j, old); rerr != nil {
							w.log.Printf("worker %d: the old handler could not be put back: %v", j+1, rerr)
						}
					}
				}
				return "", fmt.Errorf("worker %d: %w", i+1, err)
			}
			w.changed = true
			w.log.Printf("worker %d: handler swapped", i+1)
		}
		if err := h.write(code); err != nil {
			return "", fmt.Errorf("the workers run the new handler, but it could not be written to the host, so a restarted worker would run the old one; publish again: %w", err)
		}
		w.log.Printf("handler written to the host (%d bytes)", len(code))
		return fmt.Sprintf("%d worker(s)", workers), nil
	})
	if err != nil {
		return err
	}
	return w.step(stepHealth, func() (string, error) {
		for i := range workers {
			if err := api.ready(w.ctx, i); err != nil {
				return "", fmt.Errorf("worker %d: %w", i+1, err)
			}
		}
		w.job.Summary = fmt.Sprintf("Handler published to %d worker(s); nothing else changed.", workers)
		return "every worker ready", nil
	})
}

// reconnect connects again to the host of an ssh or cloud platform that
// a deploy reached before, for jobs that run no OpenTofu (publish,
// backup, restore, a destroy's final backup): an ssh platform's host from
// its credential, a cloud machine's address and SSH user from what the
// deploy recorded and its key from the bundle. asSteps runs the render and
// connect as the job's steps (which the job's step list must have);
// otherwise they run within the caller's step.
func (w *work) reconnect(asSteps bool) (*ssh.Client, sshHost, error) {
	step := func(name string, fn func() (string, error)) error {
		if asSteps {
			return w.step(name, fn)
		}
		_, err := fn()
		return err
	}
	port := 22
	if w.d.Spec.Target.Provider == myt.ProviderSSH {
		t, err := w.sshTarget()
		if err != nil {
			return nil, sshHost{}, err
		}
		w.address, w.sshUser, port = t.Host, t.User, t.Port
		w.sshKey = []byte(w.secret["private_key"])
	} else {
		if w.bundle == nil || asSteps {
			if err := step(stepRender, func() (string, error) { return "", w.render() }); err != nil {
				return nil, sshHost{}, err
			}
		}
		addr, err := w.secretValue(secretAddress)
		if err != nil {
			return nil, sshHost{}, err
		}
		user, err := w.secretValue(secretSSHUser)
		if err != nil {
			return nil, sshHost{}, err
		}
		if len(addr) == 0 || len(user) == 0 {
			return nil, sshHost{}, myt.Errorf(myt.EINVALID, "MyT has not recorded how to reach this machine over SSH (an older MyT deployed it): run an update once first.")
		}
		w.address, w.sshUser = string(addr), string(user)
		if key := w.bundle.File("ssh/id_ed25519"); key != nil {
			w.sshKey = key.Data
		}
	}
	if len(w.sshKey) == 0 {
		return nil, sshHost{}, myt.Errorf(myt.EINVALID, "No SSH private key for %s.", w.address)
	}
	h, err := w.host(port)
	if err != nil {
		return nil, sshHost{}, err
	}
	var c *ssh.Client
	err = step(stepConnect, func() (string, error) {
		var err error
		c, err = w.connect(h)
		return "connected to " + h.addr(), err
	})
	return c, h, err
}

func localPlatformHost(path string) platformHost {
	return platformHost{
		dial: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		read: func() ([]byte, error) { return os.ReadFile(path) },
		write: func(code []byte) error {
			tmp := path + ".tmp"
			if err := os.WriteFile(tmp, code, 0o644); err != nil {
				return err
			}
			if err := os.Chmod(tmp, 0o644); err != nil {
				return err
			}
			if f, err := os.Open(tmp); err == nil {
				f.Sync()
				f.Close()
			}
			return os.Rename(tmp, path)
		},
	}
}

func (w *work) sshPlatformHost(c *ssh.Client, h sshHost) platformHost {
	path := render.HostPlatformDir + "/worker/handler/handler.py"
	return platformHost{
		dial: c.DialContext,
		read: func() ([]byte, error) {
			out, err := runSSH(w.ctx, c, h.sudo("cat "+shellQuote(path)))
			return []byte(out), err
		},
		write: func(code []byte) error {
			// Written in full and synced, then renamed: the worker's mount
			// of the directory sees the old file or the new one.
			script := fmt.Sprintf("set -e; umask 022; cat > %[1]s.tmp; chown root:root %[1]s.tmp; chmod 0644 %[1]s.tmp; sync %[1]s.tmp; mv -f %[1]s.tmp %[1]s", shellQuote(path))
			_, err := runSSHInput(w.ctx, c, h.sudo("sh -c "+shellQuote(script)), code)
			return err
		},
	}
}

// workerAPI talks to a platform's workers on the host's loopback ports
// (render.WorkerHostPort and up), through the platform host's dialer.
type workerAPI struct {
	token  string
	client *http.Client
}

func (a *workerAPI) url(i int, path string) string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(render.WorkerHostPort+i)) + path
}

// put swaps code into worker i. The worker answers 422 with the reason
// when the code does not load, and keeps running the old code.
func (a *workerAPI) put(ctx context.Context, i int, code []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, a.url(i, "/v1/handler"), bytes.NewReader(code))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "text/x-python")
	resp, err := a.client.Do(req)
	if err != nil {
		return fmt.Errorf("worker API: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(body))
	switch {
	case resp.StatusCode == http.StatusUnprocessableEntity:
		return myt.Errorf(myt.EINVALID, "The worker refused the handler and keeps running the old one: %s", strings.TrimPrefix(msg, "handler rejected: "))
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("worker API: HTTP %d: %s", resp.StatusCode, msg)
	case strings.Contains(msg, "not persisted"):
		// Expected: the handler directory is mounted read-only; the
		// host's file is written next.
	}
	return nil
}

// ready waits up to a minute for worker i's /readyz.
func (a *workerAPI) ready(ctx context.Context, i int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url(i, "/readyz"), nil)
		if err != nil {
			return err
		}
		resp, err := a.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("/readyz: HTTP %d", resp.StatusCode)
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w", last)
		case <-time.After(time.Second):
		}
	}
}
