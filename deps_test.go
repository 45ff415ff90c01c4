package myt_test

import (
	"os/exec"
	"strings"
	"testing"
)

// goList returns the import closure of pkgs within this module.
func goListDeps(t *testing.T, pkgs ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}"}, pkgs...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	return strings.Fields(string(out))
}

// The layout is the architecture (STYLE.md): these rules keep it so.
func TestDependencyRules(t *testing.T) {
	const mod = "github.com/myt-iot/myt"
	rules := []struct {
		pkg       string
		forbidden []string
		why       string
	}{
		{mod, []string{""}, "the domain package imports only the standard library"},
		{mod + "/worker/...", []string{mod + "/web", mod + "/vault", mod + "/httpapi", mod + "/sqlite", mod + "/deploy", mod + "/render"},
			"the worker runs on the platform: it must not carry the control plane"},
		{mod + "/design", []string{mod + "/sqlite", mod + "/web", mod + "/httpapi"}, "design parsing is pure"},
		{mod + "/vault", []string{mod + "/sqlite", mod + "/web", mod + "/httpapi"}, "the vault is cryptography only"},
	}
	for _, r := range rules {
		deps := goListDeps(t, r.pkg)
		if len(deps) == 0 {
			t.Fatalf("%s: go list found nothing", r.pkg)
		}
		for _, d := range deps {
			if strings.HasPrefix(r.pkg, d) && !strings.Contains(r.pkg, "...") {
				continue // the package itself
			}
			for _, f := range r.forbidden {
				if (f == "" && d != r.pkg) || (f != "" && (d == f || strings.HasPrefix(d, f+"/"))) {
					t.Errorf("%s imports %s: %s", r.pkg, d, r.why)
				}
			}
		}
	}
}
