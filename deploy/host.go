package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/pki"
	"github.com/myt-iot/myt/render"
)

// Pipelines of hosts reached over SSH: an existing server (ssh) and a
// cloud machine once it exists.

func (w *work) deploySSH() error {
	if err := w.step(stepRender, func() (string, error) { return "", w.render() }); err != nil {
		return err
	}
	t, err := w.sshTarget()
	if err != nil {
		return err
	}
	w.address, w.sshUser = t.Host, t.User
	w.sshKey = []byte(w.secret["private_key"])
	if len(w.sshKey) == 0 {
		return myt.Errorf(myt.EINVALID, "Credential %s has no private key: add one (or let MyT generate one) and install its public key on the server.", w.cred.Name)
	}
	return w.install(t.Port)
}

// install runs connect, ansible, health and endpoints against the host.
func (w *work) install(port int) error {
	var client *ssh.Client
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	host, err := w.host(port)
	if err != nil {
		return err
	}
	err = w.step(stepConnect, func() (string, error) {
		var err error
		client, err = w.connect(host)
		if err != nil {
			return "", err
		}
		if err := w.installMonitorKey(client, host); err != nil {
			return "", err
		}
		return "connected to " + host.addr(), nil
	})
	if err != nil {
		return err
	}
	if err := w.step(stepAnsible, func() (string, error) { return w.ansible(host) }); err != nil {
		w.diagnose(client, host)
		return err
	}
	if err := w.step(stepHealth, func() (string, error) { return w.healthSSH(client, host) }); err != nil {
		return err
	}
	return w.step(stepEndpoint, w.endpoints)
}

// host is the runner's own SSH view of the platform's host, with the
// host keys recorded at first contact.
func (w *work) host(port int) (sshHost, error) {
	known := filepath.Join(w.dir, "known_hosts")
	kh, err := w.secretValue(secretKnownHosts)
	if err != nil {
		return sshHost{}, err
	}
	if err := os.WriteFile(known, kh, 0o600); err != nil {
		return sshHost{}, err
	}
	return sshHost{Host: w.address, Port: port, User: w.sshUser, Key: w.sshKey, KnownHosts: known}, nil
}

// connect waits until the host answers SSH, records its host key, and on
// clouds waits for cloud-init to finish.
func (w *work) connect(h sshHost) (*ssh.Client, error) {
	timeout := w.r.cfg.SSHTimeout
	if !w.cloud() {
		timeout = min(timeout, 2*time.Minute)
	}
	tries := 0
	c, err := h.wait(w.ctx, timeout, func(err error) {
		tries++
		if tries == 1 || tries%10 == 0 {
			w.log.Printf("waiting for SSH on %s: %v", h.addr(), err)
		}
	})
	if err != nil {
		return nil, err
	}
	kh, err := os.ReadFile(h.KnownHosts)
	if err != nil {
		return nil, err
	}
	if err := w.putSecret(secretKnownHosts, kh); err != nil {
		return nil, err
	}
	if w.cloud() {
		w.log.Line("waiting for cloud-init to finish")
		out, err := runSSH(w.ctx, c, "if command -v cloud-init >/dev/null; then cloud-init status --wait; fi")
		if err != nil {
			w.log.Printf("cloud-init: %v %s", err, strings.TrimSpace(out))
		}
	}
	return c, nil
}

// ansible runs site.yml with the rendered inventory over SSH.
func (w *work) ansible(h sshHost) (string, error) {
	path, err := lookPath(w.r.cfg.Tools.Ansible, "ansible-playbook")
	if err != nil {
		return "", err
	}
	keyFile := filepath.Join(w.dir, "ssh_key")
	if err := os.WriteFile(keyFile, w.sshKey, 0o600); err != nil {
		return "", err
	}
	archives, err := w.imageArchives()
	if err != nil {
		return "", err
	}
	binaries := map[string]string{}
	for goarch, p := range w.r.cfg.Tools.WorkerBinaries {
		if a, ok := unameArch[goarch]; ok {
			binaries[a] = p
		}
	}
	vars := map[string]any{}
	for k, v := range w.r.cfg.Tools.AnsibleVars {
		vars[k] = v
	}
	maps.Copy(vars, map[string]any{
		"ansible_ssh_private_key_file": keyFile,
		"ansible_ssh_common_args":      "-o UserKnownHostsFile=" + h.KnownHosts + " -o StrictHostKeyChecking=yes",
		"ansible_user":                 h.User,
		"myt_compose_env":              composeEnv(w.r.cfg.Tools.ComposeEnv),
		"myt_worker_binaries":          binaries,
		"myt_image_archives":           archives,
	})
	if h.User != "root" {
		vars["ansible_become"] = true
	}
	b, err := json.Marshal(vars)
	if err != nil {
		return "", err
	}
	varsFile := filepath.Join(w.dir, "vars.json")
	if err := os.WriteFile(varsFile, b, 0o600); err != nil {
		return "", err
	}
	cb, err := installCallback(filepath.Join(w.dir, "callback"))
	if err != nil {
		return "", err
	}
	cb["ANSIBLE_LOCAL_TEMP"] = filepath.Join(w.dir, "tmp")
	cb["ANSIBLE_HOME"] = filepath.Join(w.dir, "home", ".ansible")
	a := &ansible{path: path, dir: filepath.Join(w.bundleDir, "ansible"), env: w.environ(cb), log: w.log}
	args := []string{"site.yml", "--diff", "-e", "@" + varsFile}
	total, err := a.CountTasks(w.ctx, args...)
	if err != nil {
		return "", fmt.Errorf("list the playbook's tasks: %w", err)
	}
	w.progress(stepAnsible, 0, total, fmt.Sprintf("task 0/%d", total))
	res, err := a.Playbook(w.ctx, func(n int, name string) {
		w.progress(stepAnsible, n, max(total, n), fmt.Sprintf("task %d/%d: %s", n, max(total, n), name))
	}, args...)
	if res != nil && res.Changed > 0 {
		w.changed = true
	}
	if res != nil && len(res.Slowest) > 0 {
		var b strings.Builder
		for i, t := range res.Slowest {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s %v", t.Name, t.Took.Round(100*time.Millisecond))
		}
		w.log.Printf("slowest tasks: %s", b.String())
	}
	if err != nil {
		if w.ctx.Err() != nil {
			return "", w.ctx.Err()
		}
		if res != nil && len(res.Failed) > 0 {
			return "", fmt.Errorf("ansible failed at %s", strings.Join(res.Failed, "; "))
		}
		return "", err
	}
	if res.Changed == 0 {
		w.job.Summary = "Nothing changed: the platform already matched revision " + fmt.Sprint(w.job.Revision) + "."
		return fmt.Sprintf("%d tasks, nothing changed", res.Tasks), nil
	}
	w.job.Summary = fmt.Sprintf("Revision %d applied: %d tasks changed something.", w.job.Revision, res.Changed)
	return fmt.Sprintf("%d tasks, %d changed", res.Tasks, res.Changed), nil
}

// unameArch maps GOARCH to `uname -m`.
var unameArch = map[string]string{"amd64": "x86_64", "arm64": "aarch64"}

// composeEnv is never nil, so the role's lookups work.
func composeEnv(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// imageArchives saves every image named in the compose environment to an
// archive (once per image id, kept in the data dir) when images are
// shipped, and returns their paths.
func (w *work) imageArchives() ([]string, error) {
	if !w.r.cfg.Tools.ShipImages {
		return []string{}, nil
	}
	docker, err := lookPath(w.r.cfg.Tools.Docker, "docker")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(w.r.cfg.DataDir, "images")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	env := composeEnv(w.r.cfg.Tools.ComposeEnv)
	// Only the images this platform runs (and the Python image its
	// worker is built from).
	var keys []string
	for _, svc := range append(platformServices(w.d), "python") {
		if k := render.ImageEnv[svc]; env[k] != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	out := []string{}
	for _, k := range keys {
		ref := env[k]
		var id strings.Builder
		err := run(w.ctx, command{Path: docker, Args: []string{"image", "inspect", "--format", "{{.Id}}", ref}, Env: w.environ(nil),
			Line: func(stream, line string) {
				if stream == "out" {
					id.WriteString(strings.TrimSpace(line))
				} else {
					w.log.Line(line)
				}
			}})
		if err != nil {
			return nil, fmt.Errorf("image %s (%s) is not on this machine: %w", ref, k, err)
		}
		sum := sha256.Sum256([]byte(ref + "\x00" + id.String()))
		file := filepath.Join(dir, hex.EncodeToString(sum[:8])+".tar")
		if _, err := os.Stat(file); err != nil {
			w.log.Printf("saving image %s to an archive", ref)
			tmp := fmt.Sprintf("%s.%d.tmp", file, w.job.ID) // jobs may save the same image at once
			if err := run(w.ctx, command{Path: docker, Args: []string{"save", "--output", tmp, ref}, Env: w.environ(nil), Line: func(_, l string) { w.log.Line(l) }}); err != nil {
				os.Remove(tmp)
				return nil, fmt.Errorf("docker save %s: %w", ref, err)
			}
			if err := os.Rename(tmp, file); err != nil {
				return nil, err
			}
		}
		out = append(out, file)
	}
	return out, nil
}

// composeCmd runs docker compose in the platform directory on the host.
func (w *work) composeCmd(h sshHost, args string) string {
	return h.sudo("sh -c " + shellQuote("cd "+render.HostPlatformDir+" && docker compose "+args))
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// platformServices are the compose services every platform runs.
func platformServices(d *myt.Design) []string {
	return []string{"rabbitmq", d.Spec.Database.Kind, "worker", "grafana"}
}

// healthSSH waits until every service on the host runs healthy.
func (w *work) healthSSH(c *ssh.Client, h sshHost) (string, error) {
	return w.waitHealthy(func(ctx context.Context) (string, error) {
		return runSSH(ctx, c, w.composeCmd(h, "ps --all --format json"))
	}, func(ctx context.Context, svc string) (string, error) {
		return runSSH(ctx, c, w.composeCmd(h, "logs --no-color --tail 40 "+svc))
	})
}

// waitHealthy polls ps until every platform service is healthy or the
// health timeout passes; then it logs the status and the last lines of
// each unhealthy service's own log, and says which.
func (w *work) waitHealthy(ps func(context.Context) (string, error), logs func(context.Context, string) (string, error)) (string, error) {
	want := platformServices(w.d)
	deadline := time.Now().Add(w.r.cfg.HealthTimeout)
	var bad, badSvc []string
	var all []service
	for {
		out, err := ps(w.ctx)
		if err == nil {
			all, err = parsePS(out)
		}
		if err == nil {
			bad, badSvc = unhealthy(all, want)
			if len(bad) == 0 {
				for _, s := range all {
					w.log.Printf("  %s", s)
				}
				return fmt.Sprintf("%d services healthy", len(all)), nil
			}
		} else {
			bad, badSvc = []string{err.Error()}, nil
		}
		if w.ctx.Err() != nil {
			return "", w.ctx.Err()
		}
		if time.Now().After(deadline) {
			break
		}
		select {
		case <-w.ctx.Done():
			return "", w.ctx.Err()
		case <-time.After(3 * time.Second):
		}
	}
	w.log.Line("The platform is not healthy:")
	for _, s := range all {
		w.log.Printf("  %s", s)
	}
	for _, svc := range badSvc {
		out, err := logs(w.ctx, svc)
		w.log.Printf("--- last lines of %s's log ---", svc)
		if err != nil {
			w.log.Printf("(could not read it: %v)", err)
		}
		for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			w.log.Line(l)
		}
	}
	return "", fmt.Errorf("not healthy after %s: %s", w.r.cfg.HealthTimeout, strings.Join(bad, "; "))
}

// diagnose logs the containers' state after a failed install, when the
// host can be reached (the platform role says the same when its own
// health wait fails).
func (w *work) diagnose(c *ssh.Client, h sshHost) {
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(w.ctx), 30*time.Second)
	defer cancel()
	out, err := runSSH(ctx, c, w.composeCmd(h, "ps --all --format json"))
	if err != nil {
		return
	}
	all, err := parsePS(out)
	if err != nil || len(all) == 0 {
		return
	}
	w.log.Line("Containers on the host:")
	for _, s := range all {
		w.log.Printf("  %s", s)
	}
}

// endpoints records where the platform is reached.
func (w *work) endpoints() (string, error) {
	ep := endpointsOf(w.d, w.address)
	ep.CertificateExpires = w.bundle.Server.NotAfter()
	w.log.Printf("The server certificate is valid until %s; an update within %d days of that renews it.",
		ep.CertificateExpires.UTC().Format("2006-01-02"), int(pki.RenewBefore.Hours()/24))
	if err := w.putSecret(secretAddress, []byte(w.address)); err != nil {
		return "", err
	}
	err := w.r.cfg.Jobs.SetPlatformDeployment(w.ctx, w.p.ID, myt.PlatformDeployment{Status: myt.StatusDeploying, Endpoints: ep, SetEndpoints: true})
	if err != nil {
		return "", err
	}
	for _, u := range []string{ep.MQTTS, ep.MQTT, ep.AMQPS, ep.AMQP, ep.Grafana} {
		if u != "" {
			w.log.Printf("  %s", u)
		}
	}
	return ep.Address, nil
}

// endpointsOf computes a platform's endpoints at address.
func endpointsOf(d *myt.Design, address string) *myt.Endpoints {
	host := address
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	b := d.Spec.Broker
	ep := &myt.Endpoints{Address: address, Grafana: fmt.Sprintf("https://%s:%d", host, render.GrafanaPort), DeviceUser: render.DeviceUser, TopicPrefix: render.TopicPrefix}
	if b.MQTT && b.TLS {
		ep.MQTTS = fmt.Sprintf("mqtts://%s:8883", host)
	}
	if b.MQTT && b.Plaintext {
		ep.MQTT = fmt.Sprintf("mqtt://%s:1883", host)
	}
	if b.AMQP && b.TLS {
		ep.AMQPS = fmt.Sprintf("amqps://%s:5671/%s", host, render.VHost)
	}
	if b.AMQP && b.Plaintext {
		ep.AMQP = fmt.Sprintf("amqp://%s:5672/%s", host, render.VHost)
	}
	return ep
}

func (w *work) destroySSH() error {
	if err := w.backupHook(); err != nil {
		return err
	}
	t, err := w.sshTarget()
	if err != nil {
		return err
	}
	w.address, w.sshUser, w.sshKey = t.Host, t.User, []byte(w.secret["private_key"])
	h, err := w.host(t.Port)
	if err != nil {
		return err
	}
	var c *ssh.Client
	err = w.step(stepConnect, func() (string, error) {
		var err error
		c, err = w.connect(h)
		return "connected to " + h.addr(), err
	})
	if err != nil {
		return err
	}
	defer c.Close()
	return w.step(stepRemove, func() (string, error) {
		w.changed = true
		// --volumes removes the volume objects, not the data: they are
		// bind mounts of the data directory, which stays.
		script := fmt.Sprintf(`set -e
if [ -f %[1]s/compose.yaml ]; then
  cd %[1]s && docker compose down --volumes --remove-orphans 2>&1
fi
rm -rf %[1]s
`, render.HostPlatformDir)
		if w.job.DeleteData {
			script += fmt.Sprintf("if [ -d %[1]s ]; then find %[1]s -mindepth 1 -delete; fi\n", render.HostDataDir)
		}
		out, err := runSSH(w.ctx, c, h.sudo("sh -c "+shellQuote(script)))
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l != "" {
				w.log.Line(l)
			}
		}
		if err != nil {
			return "", fmt.Errorf("remove the platform: %w", err)
		}
		if err := w.removeMonitorKey(c, h); err != nil {
			return "", err
		}
		return w.destroyedSummary(render.HostDataDir + " on " + t.Host), nil
	})
}

func (w *work) destroyedSummary(where string) string {
	if w.job.DeleteData {
		w.job.Summary = "Destroyed, with its data (" + where + " emptied)."
	} else {
		w.job.Summary = "Destroyed. The data is kept in " + where + "; a new deploy of this platform uses it again."
	}
	return w.job.Summary
}

// copyFile copies src to dst with mode.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
