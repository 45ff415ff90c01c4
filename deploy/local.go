package deploy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/render"
)

// The local target: the platform runs on the MyT server's own Docker
// engine, from DataDir/platforms/<id>/ (platform/ and data/).

func (w *work) localDirs() (platform, data string) {
	root := filepath.Join(w.r.cfg.DataDir, "platforms", strconv.FormatInt(w.p.ID, 10))
	return filepath.Join(root, "platform"), filepath.Join(root, "data")
}

// docker runs the docker CLI, logging its output; out (if not nil)
// receives stdout instead.
func (w *work) docker(ctx context.Context, dir string, env map[string]string, out io.Writer, args ...string) error {
	path, err := lookPath(w.r.cfg.Tools.Docker, "docker")
	if err != nil {
		return err
	}
	return run(ctx, command{Path: path, Args: args, Dir: dir, Env: w.environ(env), Line: func(stream, line string) {
		if out != nil && stream == "out" {
			fmt.Fprintln(out, line)
			return
		}
		w.log.Line(line)
	}})
}

func (w *work) deployLocal() error {
	if os.Geteuid() != 0 {
		return myt.Errorf(myt.EINVALID, "A local platform needs MyT to run as root: its secret files must belong to the users its services run as. Run `myt serve` as root, or deploy to this machine through an ssh credential.")
	}
	if err := w.step(stepRender, func() (string, error) { return "", w.render() }); err != nil {
		return err
	}
	rebuilt := false
	if err := w.step(stepImage, func() (string, error) {
		var err error
		rebuilt, err = w.localWorkerImage()
		if err != nil || !rebuilt {
			return "up to date", err
		}
		return "built", nil
	}); err != nil {
		return err
	}
	platformDir, dataDir := w.localDirs()
	env := w.localComposeEnv(dataDir)
	if err := w.step(stepCompose, func() (string, error) {
		// As the platform role does: only the services whose files (or,
		// for the worker, image) changed are recreated, and they are
		// written down before anything changes, until they were (see
		// pendingFile).
		compose := w.bundle.File("platform/compose.yaml")
		if compose == nil {
			return "", errors.New("the bundle has no platform/compose.yaml")
		}
		mounts, err := render.ParseMounts(compose.Data)
		if err != nil {
			return "", err
		}
		// A rebuilt worker image was noted before the build.
		pending := filepath.Join(platformDir, pendingFile)
		changedFiles, err := w.installLocal(platformDir, dataDir, func(changed []string) error {
			return notePending(pending, mounts.Using(changed...))
		})
		if err != nil {
			return "", err
		}
		recreate, err := readPending(pending)
		if err != nil {
			return "", err
		}
		changed := len(changedFiles) > 0
		all := len(recreate) == len(mounts.Services())
		wait := strconv.Itoa(int(w.r.cfg.HealthTimeout.Seconds()))
		args := []string{"compose", "up", "--detach", "--wait", "--wait-timeout", wait, "--remove-orphans"}
		if all {
			args = append(args, "--force-recreate")
		}
		if err := w.compose(platformDir, env, args...); err != nil {
			return "", err
		}
		if len(recreate) > 0 && !all {
			w.log.Printf("recreating the services whose files changed: %s", strings.Join(recreate, ", "))
			args := append([]string{"compose", "up", "--detach", "--wait", "--wait-timeout", wait, "--force-recreate", "--no-deps"}, recreate...)
			if err := w.compose(platformDir, env, args...); err != nil {
				return "", err
			}
		}
		if err := os.Remove(pending); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if !changed && !rebuilt && !w.changed {
			w.job.Summary = fmt.Sprintf("Nothing changed: the platform already matched revision %d.", w.job.Revision)
			return "nothing changed", nil
		}
		w.changed = true
		w.job.Summary = fmt.Sprintf("Revision %d applied.", w.job.Revision)
		return "started", nil
	}); err != nil {
		w.localDiagnose(platformDir, env)
		return err
	}
	if err := w.step(stepHealth, func() (string, error) {
		return w.waitHealthy(func(ctx context.Context) (string, error) {
			var out bytes.Buffer
			err := w.docker(ctx, platformDir, env, &out, "compose", "ps", "--all", "--format", "json")
			return out.String(), err
		}, func(ctx context.Context, svc string) (string, error) {
			var out bytes.Buffer
			err := w.docker(ctx, platformDir, env, &out, "compose", "logs", "--no-color", "--tail", "40", svc)
			return out.String(), err
		})
	}); err != nil {
		return err
	}
	w.address = "127.0.0.1"
	return w.step(stepEndpoint, w.endpoints)
}

// composeActed matches what Compose says when it created, started or
// removed a container.
var composeActed = regexp.MustCompile(`\b(Created|Recreated|Started|Removed)$`)

// compose runs a docker compose command in the platform directory and
// logs what it says (Compose reports on stderr what it did). A container
// created, started or removed counts as a change.
func (w *work) compose(platformDir string, env map[string]string, args ...string) error {
	path, err := lookPath(w.r.cfg.Tools.Docker, "docker")
	if err != nil {
		return err
	}
	err = run(w.ctx, command{Path: path, Args: args, Dir: platformDir, Env: w.environ(env), Line: func(_, line string) {
		w.log.Line(line)
		if composeActed.MatchString(strings.TrimSpace(line)) {
			w.changed = true
		}
	}})
	if err != nil {
		return fmt.Errorf("docker compose up: %w", err)
	}
	return nil
}

func (w *work) localComposeEnv(dataDir string) map[string]string {
	env := map[string]string{"MYT_DATA_DIR": dataDir}
	for k, v := range w.r.cfg.Tools.ComposeEnv {
		env[k] = v
	}
	return env
}

// localDiagnose logs the containers' states after a failed start.
func (w *work) localDiagnose(platformDir string, env map[string]string) {
	ctx := context.WithoutCancel(w.ctx)
	var out bytes.Buffer
	if w.docker(ctx, platformDir, env, &out, "compose", "ps", "--all", "--format", "json") != nil {
		return
	}
	all, err := parsePS(out.String())
	if err != nil {
		return
	}
	_, bad := unhealthy(all, platformServices(w.d))
	for _, s := range all {
		w.log.Printf("  %s", s)
	}
	for _, svc := range bad {
		var logs bytes.Buffer
		_ = w.docker(ctx, platformDir, env, &logs, "compose", "logs", "--no-color", "--tail", "40", svc)
		w.log.Printf("--- last lines of %s's log ---", svc)
		for _, l := range strings.Split(strings.TrimRight(logs.String(), "\n"), "\n") {
			w.log.Line(l)
		}
	}
}

// binaryLabel records which myt binary a worker image was built from.
const binaryLabel = "io.myt.binary-sha256"

// localWorkerImage builds myt-worker:<version> on the local engine unless
// an image built from the same binary is there (or MYT_IMAGE_WORKER
// replaces it). It reports whether it built.
func (w *work) localWorkerImage() (bool, error) {
	if _, ok := w.r.cfg.Tools.ComposeEnv[render.ImageEnv["worker"]]; ok {
		return false, nil
	}
	bin := w.r.cfg.Tools.WorkerBinaries[runtime.GOARCH]
	if bin == "" {
		return false, myt.Errorf(myt.EINVALID, "No myt binary for linux/%s to build the worker image from: set the worker binaries in the server configuration.", runtime.GOARCH)
	}
	sum, err := fileSHA256(bin)
	if err != nil {
		return false, fmt.Errorf("worker binary: %w", err)
	}
	tag := render.Images["worker"] + ":" + myt.Version
	var label bytes.Buffer
	err = w.docker(w.ctx, "", nil, &label, "image", "inspect", "--format", `{{index .Config.Labels "`+binaryLabel+`"}}`, tag)
	if err == nil && strings.TrimSpace(label.String()) == sum {
		w.log.Printf("%s is up to date", tag)
		return false, nil
	}
	dir := filepath.Join(w.dir, "worker-image")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, err
	}
	df := w.bundle.File("platform/worker/image/Dockerfile")
	if df == nil {
		return false, errors.New("the bundle has no worker Dockerfile")
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), df.Data, 0o644); err != nil {
		return false, err
	}
	if err := copyFile(bin, filepath.Join(dir, "myt"), 0o755); err != nil {
		return false, err
	}
	python := render.Images["python"]
	if v, ok := w.r.cfg.Tools.ComposeEnv[render.ImageEnv["python"]]; ok {
		python = v
	}
	// The running worker is on the old image until it is recreated:
	// written down now, so a job stopped after the build still does it.
	platformDir, _ := w.localDirs()
	if err := os.MkdirAll(platformDir, 0o755); err != nil {
		return false, err
	}
	if err := notePending(filepath.Join(platformDir, pendingFile), []string{"worker"}); err != nil {
		return false, err
	}
	w.log.Printf("building %s from %s", tag, python)
	if err := w.docker(w.ctx, dir, nil, nil, "build", "--tag", tag, "--label", binaryLabel+"="+sum, "--build-arg", "PYTHON_IMAGE="+python, "."); err != nil {
		return false, fmt.Errorf("build the worker image: %w", err)
	}
	w.changed = true
	return true, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

var ownerLine = regexp.MustCompile(`^(secret|volume) (\S+) (\d+)(?: (\d+))?$`)

// pendingFile, in the platform directory, lists the services to
// recreate, one per line, from before their files change until they were
// recreated: a job stopped in between (killed, a failed start) leaves
// containers on the old files, which the next job, finding the files in
// place, would otherwise leave running. The platform role keeps the same
// file on hosts.
const pendingFile = ".recreate-pending"

// notePending adds services to the pending file (written whole, then
// renamed into place).
func notePending(path string, services []string) error {
	have, err := readPending(path)
	if err != nil {
		return err
	}
	all := slices.Clone(have)
	for _, s := range services {
		if !slices.Contains(all, s) {
			all = append(all, s)
		}
	}
	if len(all) == len(have) {
		return nil
	}
	slices.Sort(all)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(all, "\n")+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readPending returns the services the pending file lists, sorted.
func readPending(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s := strings.Fields(string(b))
	slices.Sort(s)
	return slices.Compact(s), nil
}

// installLocal writes the bundle's platform/ into platformDir (each
// secret 0600 owned by its reader) and makes the data directories, as
// the platform role does on a host. before is called with the files that
// are about to change (relative to platformDir) before any is written.
// It returns the files that changed.
func (w *work) installLocal(platformDir, dataDir string, before func(changed []string) error) ([]string, error) {
	owners := w.bundle.File("platform/owners.txt")
	if owners == nil {
		return nil, errors.New("the bundle has no owners.txt")
	}
	secretUID := map[string]int{}
	volumeUID := map[string][2]int{}
	sc := bufio.NewScanner(bytes.NewReader(owners.Data))
	for sc.Scan() {
		m := ownerLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		uid, _ := strconv.Atoi(m[3])
		gid := uid
		if m[4] != "" {
			gid, _ = strconv.Atoi(m[4])
		}
		if m[1] == "secret" {
			secretUID[m[2]] = uid
		} else {
			volumeUID[m[2]] = [2]int{uid, gid}
		}
	}
	for _, d := range []string{platformDir, filepath.Join(platformDir, "secrets")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(platformDir, 0o755); err != nil {
		return nil, err
	}
	type install struct {
		rel  string
		data []byte
		uid  int
		mode os.FileMode
	}
	var todo []install
	var changed []string
	for _, f := range w.bundle.Files {
		rel, ok := strings.CutPrefix(f.Path, "platform/")
		if !ok || rel == "owners.txt" {
			continue
		}
		dst := filepath.Join(platformDir, filepath.FromSlash(rel))
		old, err := os.ReadFile(dst)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		uid := 0
		mode := os.FileMode(0o644)
		if name, ok := strings.CutPrefix(rel, "secrets/"); ok {
			uid, mode = secretUID[name], 0o600
		}
		if err == nil && bytes.Equal(old, f.Data) {
			continue
		}
		changed = append(changed, rel)
		todo = append(todo, install{rel, f.Data, uid, mode})
	}
	if err := before(changed); err != nil {
		return nil, err
	}
	for _, f := range todo {
		dst := filepath.Join(platformDir, filepath.FromSlash(f.rel))
		uid, mode := f.uid, f.mode
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		tmp := dst + ".tmp"
		if err := os.WriteFile(tmp, f.data, mode); err != nil {
			return nil, err
		}
		if err := os.Chown(tmp, uid, uid); err != nil {
			os.Remove(tmp)
			return nil, err
		}
		if err := os.Rename(tmp, dst); err != nil {
			return nil, err
		}
	}
	for name, owner := range volumeUID {
		dir := filepath.Join(dataDir, name)
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, err
		}
		if owner[0] != 0 {
			if err := os.Chown(dir, owner[0], owner[1]); err != nil {
				return nil, err
			}
		}
	}
	return changed, nil
}

func (w *work) destroyLocal() error {
	if err := w.backupHook(); err != nil {
		return err
	}
	platformDir, dataDir := w.localDirs()
	return w.step(stepRemove, func() (string, error) {
		w.changed = true
		if _, err := os.Stat(filepath.Join(platformDir, "compose.yaml")); err == nil {
			// --volumes removes the volume objects, not the data: they
			// are bind mounts of dataDir, which stays.
			if err := w.docker(w.ctx, platformDir, w.localComposeEnv(dataDir), nil, "compose", "down", "--volumes", "--remove-orphans"); err != nil {
				return "", fmt.Errorf("docker compose down: %w", err)
			}
		}
		if err := os.RemoveAll(platformDir); err != nil {
			return "", err
		}
		if w.job.DeleteData {
			if err := os.RemoveAll(dataDir); err != nil {
				return "", err
			}
		}
		return w.destroyedSummary(dataDir), nil
	})
}
