package deploy_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/myt-iot/myt/deploy"
)

// TestInstalledWorkerBinaries lays out a release as the .deb and the
// archives do (bin/myt, lib/myt/worker/linux-ARCH/myt) and checks which
// worker binary a deploy would ship for each host architecture.
func TestInstalledWorkerBinaries(t *testing.T) {
	file := func(t *testing.T, p string) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("binary"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("macOS archive: both from the release", func(t *testing.T) {
		root := t.TempDir()
		exe := file(t, filepath.Join(root, "bin", "myt"))
		amd := file(t, filepath.Join(root, "lib", "myt", "worker", "linux-amd64", "myt"))
		arm := file(t, filepath.Join(root, "lib", "myt", "worker", "linux-arm64", "myt"))
		got := deploy.InstalledWorkerBinaries(exe, "darwin", "arm64")
		if diff := cmp.Diff(map[string]string{"amd64": amd, "arm64": arm}, got); diff != "" {
			t.Errorf("worker binaries (-want +got):\n%s", diff)
		}
	})
	t.Run("linux amd64 package: itself and the arm64 one", func(t *testing.T) {
		root := t.TempDir()
		exe := file(t, filepath.Join(root, "usr", "bin", "myt"))
		arm := file(t, filepath.Join(root, "usr", "lib", "myt", "worker", "linux-arm64", "myt"))
		got := deploy.InstalledWorkerBinaries(exe, "linux", "amd64")
		if diff := cmp.Diff(map[string]string{"amd64": exe, "arm64": arm}, got); diff != "" {
			t.Errorf("worker binaries (-want +got):\n%s", diff)
		}
	})
	t.Run("a symbolic link to the binary finds the release beside its target", func(t *testing.T) {
		root := t.TempDir()
		exe := file(t, filepath.Join(root, "opt", "myt", "bin", "myt"))
		amd := file(t, filepath.Join(root, "opt", "myt", "lib", "myt", "worker", "linux-amd64", "myt"))
		link := filepath.Join(root, "usr", "local", "bin", "myt")
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(exe, link); err != nil {
			t.Fatal(err)
		}
		got := deploy.InstalledWorkerBinaries(link, "windows", "amd64")
		if diff := cmp.Diff(map[string]string{"amd64": amd}, got); diff != "" {
			t.Errorf("worker binaries (-want +got):\n%s", diff)
		}
	})
	t.Run("go install: nothing beside a macOS binary", func(t *testing.T) {
		root := t.TempDir()
		exe := file(t, filepath.Join(root, "go", "bin", "myt"))
		if err := os.MkdirAll(filepath.Join(root, "go", "lib", "myt", "worker", "linux-amd64", "myt"), 0o755); err != nil {
			t.Fatal(err) // a directory where the binary would be is not one
		}
		if got := deploy.InstalledWorkerBinaries(exe, "darwin", "amd64"); len(got) != 0 {
			t.Errorf("worker binaries = %v, want none", got)
		}
	})
}
