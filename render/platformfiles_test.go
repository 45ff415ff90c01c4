package render_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/myt-iot/myt/render"
)

// TestPlatformFilesSync runs the platform role's file sync (files.yml)
// with the real Ansible against a directory of this machine: the first
// run installs every file of platform/ (secrets 0600 owned by their
// readers, the rest root's 0644, owners.txt not at all); a second run
// changes nothing; after a new handler in the bundle, a secret loosened on
// the host and a file of the host's own, a third run changes exactly the
// handler and the secret, and leaves the host's file alone.
func TestPlatformFilesSync(t *testing.T) {
	playbook := needTool(t, "the platform role runs under the real Ansible", "ansible-playbook")
	need(t, "root", os.Geteuid() == 0, "the secrets are chowned to the services' users")
	d := designNamed(t, "ssh-mysql-plaintext")
	d.Spec.Processing.Handler = "def process(msg):\n    return msg['payload']\n"
	b := mustRender(t, d)
	bundle := writeBundle(t, b)
	work := t.TempDir()
	platformDir := filepath.Join(work, "platform")
	changedFile := filepath.Join(work, "changed.json")
	play := filepath.Join(work, "play.yml")
	if err := os.WriteFile(play, []byte(`---
- name: Platform files
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Sync
      ansible.builtin.import_role:
        name: platform
        tasks_from: files
    - name: Record what changed
      ansible.builtin.copy:
        content: "{{ {'changed': platform_changed, 'recreate': platform_recreate} | to_json }}"
        dest: `+changedFile+`
        mode: "0600"
      changed_when: false
`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"ANSIBLE_ROLES_PATH=" + filepath.Join(bundle, "ansible", "roles"),
		"ANSIBLE_LOCAL_TEMP=" + t.TempDir(), "ANSIBLE_HOME=" + t.TempDir(), "ANSIBLE_NOCOLOR=1",
	}
	recap := regexp.MustCompile(`localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=0\s+failed=0`)
	var recreate []string
	run := func(which string) (changed []string, tasksChanged string) {
		t.Helper()
		out, err := runTool(t, work, env, playbook, "-i", "localhost,", play,
			"-e", "@"+filepath.Join(bundle, "ansible", "group_vars", "all.yml"),
			"-e", "myt_bundle_dir="+bundle, "-e", "myt_platform_dir="+platformDir)
		if err != nil {
			t.Fatalf("%s run: ansible-playbook: %v\n%s", which, err, out)
		}
		m := recap.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("%s run: no recap:\n%s", which, out)
		}
		raw, err := os.ReadFile(changedFile)
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Changed, Recreate []string }
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("%s run: platform_changed %q: %v", which, raw, err)
		}
		changed, recreate = got.Changed, got.Recreate
		if _, err := os.Stat(filepath.Join(bundle, "platform-changes.tgz")); err == nil {
			t.Errorf("%s run left the archive of changed files in the bundle", which)
		}
		return changed, m[2]
	}

	var vars struct {
		Owners map[string]int `yaml:"myt_secret_owners"`
	}
	if err := yaml.Unmarshal(b.File("ansible/group_vars/all.yml").Data, &vars); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range b.Files {
		if rel, ok := strings.CutPrefix(f.Path, "platform/"); ok && rel != "owners.txt" {
			want = append(want, rel)
		}
	}
	slices.Sort(want)

	mounts, err := render.ParseMounts(b.File("platform/compose.yaml").Data)
	if err != nil {
		t.Fatal(err)
	}
	pending := filepath.Join(platformDir, ".recreate-pending")
	changed, _ := run("first")
	if !slices.Equal(changed, want) {
		t.Errorf("first run changed %v, want every file %v", changed, want)
	}
	if !slices.Equal(recreate, mounts.Services()) {
		t.Errorf("first run: recreate %v, want every service %v", recreate, mounts.Services())
	}
	if got, err := os.ReadFile(pending); err != nil || string(got) != strings.Join(mounts.Services(), "\n")+"\n" {
		t.Errorf("first run: %s = %q (%v), want every service", pending, got, err)
	}
	// main.yml removes it once the services were recreated.
	if err := os.Remove(pending); err != nil {
		t.Fatal(err)
	}
	for _, f := range b.Files {
		rel, ok := strings.CutPrefix(f.Path, "platform/")
		if !ok {
			continue
		}
		p := filepath.Join(platformDir, filepath.FromSlash(rel))
		fi, err := os.Stat(p)
		if rel == "owners.txt" {
			if err == nil {
				t.Errorf("owners.txt was installed")
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		got, _ := os.ReadFile(p)
		uid, mode := 0, os.FileMode(0o644)
		if name, ok := strings.CutPrefix(rel, "secrets/"); ok {
			uid, mode = vars.Owners[name], 0o600
		}
		st := fi.Sys().(*syscall.Stat_t)
		if string(got) != string(f.Data) || fi.Mode().Perm() != mode || int(st.Uid) != uid || int(st.Gid) != uid {
			t.Errorf("%s: %d bytes, mode %o, owner %d:%d; want %d bytes, mode %o, owner %d:%d",
				rel, len(got), fi.Mode().Perm(), st.Uid, st.Gid, len(f.Data), mode, uid, uid)
		}
	}
	if fi, err := os.Stat(filepath.Join(platformDir, "secrets")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("secrets directory: %v %v", fi, err)
	}

	if changed, n := run("second"); len(changed) != 0 || n != "0" {
		t.Errorf("second run changed %v (%s tasks), want nothing", changed, n)
	}

	handler := filepath.Join(bundle, "platform", "worker", "handler", "handler.py")
	if err := os.WriteFile(handler, []byte("def process(msg):\n    return None\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(platformDir, "secrets", "db_dsn")
	if err := os.Chmod(secret, 0o644); err != nil {
		t.Fatal(err)
	}
	override := filepath.Join(platformDir, "compose.override.yaml")
	if err := os.WriteFile(override, []byte("services: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, n := run("third")
	if want := []string{"secrets/db_dsn", "worker/handler/handler.py"}; !slices.Equal(changed, want) || n == "0" {
		t.Errorf("third run changed %v (%s tasks), want %v", changed, n, want)
	}
	if got, _ := os.ReadFile(filepath.Join(platformDir, "worker", "handler", "handler.py")); string(got) != "def process(msg):\n    return None\n" {
		t.Errorf("handler on the host: %q", got)
	}
	if fi, err := os.Stat(secret); err != nil || fi.Mode().Perm() != 0o600 || int(fi.Sys().(*syscall.Stat_t).Uid) != vars.Owners["db_dsn"] {
		t.Errorf("db_dsn after the third run: %v %v, want 0600 owned by %s", fi.Mode(), err, strconv.Itoa(vars.Owners["db_dsn"]))
	}
	if _, err := os.Stat(override); err != nil {
		t.Errorf("the host's own compose.override.yaml: %v", err)
	}

	// The services to recreate are written down before the files change
	// and stay so until main.yml has recreated them: a run stopped in
	// between (here: this play never recreates) leaves them to the next,
	// which finds no file to change but still recreates them.
	third := mounts.Using("secrets/db_dsn", "worker/handler/handler.py")
	if !slices.Equal(recreate, third) || !slices.Contains(third, "worker") || slices.Contains(third, "rabbitmq") {
		t.Errorf("third run: recreate %v, want %v (the worker, not the broker)", recreate, third)
	}
	if got, err := os.ReadFile(pending); err != nil || string(got) != strings.Join(third, "\n")+"\n" {
		t.Errorf("third run: %s = %q (%v), want the services to recreate", pending, got, err)
	}
	changed, _ = run("fourth")
	if len(changed) != 0 || !slices.Equal(recreate, third) {
		t.Errorf("fourth run after a stop before the recreate: changed %v, recreate %v; want nothing changed and %v still to recreate", changed, recreate, third)
	}
	if err := os.Remove(pending); err != nil {
		t.Fatal(err)
	}
	if changed, _ = run("fifth"); len(changed) != 0 || len(recreate) != 0 {
		t.Errorf("fifth run after the recreate: changed %v, recreate %v; want nothing", changed, recreate)
	}
}
