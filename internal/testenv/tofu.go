package testenv

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Tool is a command-line tool that `scripts/testenv up` built and
// installed at a fixed path (state.json "tools").
type Tool struct {
	Path    string `json:"path"`
	Version string `json:"version"`
}

// Tool returns the tool built by `up` under name ("tofu"), or a zero Tool
// when this environment has none (an older state file).
func (e *Env) Tool(name string) Tool { return e.st.Tools[name] }

// Tofu returns the path of the OpenTofu binary `up` built (see
// docs/testing.md; $MYT_TOFU in `scripts/testenv env`), or skips t (fails
// it under CI=true) when there is none. Run it with CHECKPOINT_DISABLE=1
// and a TF_CLI_CONFIG_FILE of the test's own (ProviderMirror): nothing may
// reach a registry.
func (e *Env) Tofu(t testing.TB) string {
	t.Helper()
	p := e.Tool("tofu").Path
	_, err := os.Stat(p)
	Need(t, "OpenTofu", p != "" && err == nil, fmt.Sprintf("state has tofu %q (%v); run `scripts/testenv up`", p, err))
	return p
}

// OpenStackProviderVersion is the terraform-provider-openstack that
// ProviderMirror builds from the Go module proxy.
const OpenStackProviderVersion = "3.4.0"

// ProviderMirror lays out a filesystem mirror holding the given providers,
// "aws" (hashicorp/aws as preinstalled under /opt/tf-plugins, or
// $MYT_TF_PLUGINS) and/or "openstack" (terraform-provider-openstack
// OpenStackProviderVersion, built from the Go module proxy once and cached
// in $MYT_TF_CACHE or the user cache dir), under both registry host names,
// registry.terraform.io for terraform and registry.opentofu.org for tofu.
// It returns a CLI configuration file (for TF_CLI_CONFIG_FILE) that
// installs providers from that mirror only, so `init` works offline with
// either tool. A provider that cannot be had skips t (fails it under
// CI=true). The mirror is removed at the end of t.
func ProviderMirror(t testing.TB, providers ...string) (cliConfig string) {
	t.Helper()
	root := t.TempDir()
	mirror := filepath.Join(root, "mirror")
	// The mirror is scanned without following directory symlinks, so
	// directories are made and only files are linked.
	link := func(ns, typ, src string) {
		for _, host := range []string{"registry.terraform.io", "registry.opentofu.org"} {
			dst := filepath.Join(mirror, host, ns, typ)
			err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(src, p)
				if e.IsDir() {
					return os.MkdirAll(filepath.Join(dst, rel), 0o755)
				}
				return os.Symlink(p, filepath.Join(dst, rel))
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range providers {
		switch p {
		case "aws":
			plugins := os.Getenv("MYT_TF_PLUGINS")
			if plugins == "" {
				plugins = "/opt/tf-plugins"
			}
			src := filepath.Join(plugins, "registry.terraform.io", "hashicorp", "aws")
			_, err := os.Stat(src)
			Need(t, "the AWS provider in "+plugins, err == nil, "hashicorp/aws must be preinstalled as a filesystem mirror there (or set MYT_TF_PLUGINS)")
			link("hashicorp", "aws", src)
		case "openstack":
			link("terraform-provider-openstack", "openstack", openstackProvider(t))
		default:
			t.Fatalf("ProviderMirror: no provider %q (have aws, openstack)", p)
		}
	}
	if err := os.MkdirAll(mirror, 0o755); err != nil {
		t.Fatal(err)
	}
	cli := filepath.Join(root, "tf.rc")
	body := fmt.Sprintf("provider_installation {\n  filesystem_mirror {\n    path = %q\n  }\n}\n", mirror)
	if err := os.WriteFile(cli, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return cli
}

// openstackMu serializes the provider's one-time build within a process.
var openstackMu sync.Mutex

// openstackProvider returns a directory laid out as
// <version>/<os>_<arch>/terraform-provider-openstack_v<version>, building
// the provider with `go install` into a cache the first time.
func openstackProvider(t testing.TB) string {
	t.Helper()
	openstackMu.Lock()
	defer openstackMu.Unlock()
	cache := os.Getenv("MYT_TF_CACHE")
	if cache == "" {
		uc, err := os.UserCacheDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(uc, "myt", "tf-providers")
	}
	dir := filepath.Join(cache, "openstack")
	plat := runtime.GOOS + "_" + runtime.GOARCH
	bin := filepath.Join(dir, OpenStackProviderVersion, plat, "terraform-provider-openstack_v"+OpenStackProviderVersion)
	if _, err := os.Stat(bin); err == nil {
		return dir
	}
	gobin := t.TempDir()
	t.Logf("building terraform-provider-openstack v%s from the Go module proxy into %s (once)", OpenStackProviderVersion, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/terraform-provider-openstack/terraform-provider-openstack/v3@v"+OpenStackProviderVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	cmd.Dir = gobin
	out, err := cmd.CombinedOutput()
	Need(t, "terraform-provider-openstack", err == nil, fmt.Sprintf("go install failed (is the Go module proxy reachable?): %v\n%s", err, out))
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(gobin, "terraform-provider-openstack"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid()) // another test process may build it too
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, bin); err != nil {
		t.Fatal(err)
	}
	return dir
}
