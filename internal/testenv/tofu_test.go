package testenv_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/myt-iot/myt/internal/testenv"
)

// tf runs an OpenTofu/Terraform command in dir with a clean environment:
// its own CLI config (a filesystem mirror only), no checkpoint calls. As
// root it runs in a network namespace of its own with no interfaces, so
// any attempt to reach a registry fails the test.
func tf(t *testing.T, bin, cli, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	name, argv := bin, args
	if unshare, err := exec.LookPath("unshare"); err == nil && os.Geteuid() == 0 {
		name, argv = unshare, append([]string{"--net", bin}, args...)
	}
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "TF_CLI_CONFIG_FILE=" + cli,
		"CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", filepath.Base(bin), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// TestTofu: the OpenTofu that `up` built reports its version and runs
// init, apply and destroy offline on a module of terraform_data resources
// (built into tofu: no provider to install).
func TestTofu(t *testing.T) {
	t.Parallel()
	e := testenv.Require(t)
	tofu := e.Tofu(t)
	if want := "OpenTofu v" + e.Tool("tofu").Version + "\n"; !strings.HasPrefix(tf(t, tofu, os.DevNull, t.TempDir(), "version"), want) {
		t.Errorf("tofu version does not start with %q", want)
	}
	dir := t.TempDir()
	module := `resource "terraform_data" "a" {
  input = "hello"
}

resource "terraform_data" "b" {
  input            = "${terraform_data.a.output} world"
  triggers_replace = [terraform_data.a.id]
}

output "b" {
  value = terraform_data.b.output
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(module), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := testenv.ProviderMirror(t) // an empty mirror: nothing to install
	tf(t, tofu, cli, dir, "init", "-input=false", "-no-color")
	tf(t, tofu, cli, dir, "apply", "-auto-approve", "-input=false", "-no-color")
	if out := tf(t, tofu, cli, dir, "output", "-raw", "b"); out != "hello world" {
		t.Errorf("output b = %q, want %q", out, "hello world")
	}
	if out := tf(t, tofu, cli, dir, "state", "list"); out != "terraform_data.a\nterraform_data.b\n" {
		t.Errorf("state list after apply = %q", out)
	}
	tf(t, tofu, cli, dir, "destroy", "-auto-approve", "-input=false", "-no-color")
	if out := tf(t, tofu, cli, dir, "state", "list"); out != "" {
		t.Errorf("state list after destroy = %q, want nothing", out)
	}
}

// TestProviderMirror: tofu and terraform both install hashicorp/aws from
// the mirror, each under its own registry host name, offline.
func TestProviderMirror(t *testing.T) {
	t.Parallel()
	bins := map[string]string{}
	if p, err := exec.LookPath("terraform"); err == nil {
		bins["terraform"] = p
	}
	if e, err := testenv.Load(); err == nil && e.Tool("tofu").Path != "" {
		bins["tofu"] = e.Tool("tofu").Path
	}
	testenv.Need(t, "tofu or terraform", len(bins) > 0, "run `scripts/testenv up` (builds tofu)")
	cli := testenv.ProviderMirror(t, "aws")
	module := `terraform {
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "5.100.0"
    }
  }
}
`
	for name, bin := range bins {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(module), 0o644); err != nil {
				t.Fatal(err)
			}
			tf(t, bin, cli, dir, "init", "-input=false", "-backend=false", "-no-color")
			lock, err := os.ReadFile(filepath.Join(dir, ".terraform.lock.hcl"))
			if err != nil {
				t.Fatal(err)
			}
			host := map[string]string{"terraform": "registry.terraform.io", "tofu": "registry.opentofu.org"}[name]
			if want := `provider "` + host + `/hashicorp/aws"`; !strings.Contains(string(lock), want) || !strings.Contains(string(lock), `version     = "5.100.0"`) {
				t.Errorf("lock file lacks %s 5.100.0:\n%s", want, lock)
			}
		})
	}
}
