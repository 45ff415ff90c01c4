package release_test

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/myt-iot/myt/deploy"
	"github.com/myt-iot/myt/internal/testenv"
)

// The release under test and the one it upgrades from. Both are built
// once per test process (scripts/release), into one directory.
const (
	version     = "1.0.0-test.1"
	debVersion  = "1.0.0~test.1" // Debian's and RPM's spelling: a pre-release sorts before 1.0.0
	prevVersion = "0.9.0"
	commit      = "0123456789abcdef0123456789abcdef01234567"
	epoch       = "1780000000" // 2026-05-28T20:26:40Z
	date        = "2026-05-28T20:26:40Z"
)

// targets are scripts/release's.
var targets = []struct{ os, arch string }{
	{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"}, {"darwin", "arm64"}, {"windows", "amd64"},
}

// TestMain removes the releases the tests built (some 400 MB).
func TestMain(m *testing.M) {
	code := m.Run()
	os.RemoveAll(filepath.Join(os.TempDir(), fmt.Sprintf("myt-release-test-%d", os.Getpid())))
	os.Exit(code)
}

type build struct {
	dir string
	err error
	dur time.Duration
}

var (
	builds   = map[string]*build{}
	buildsMu sync.Mutex
)

// release runs scripts/release VERSION once per process (later calls
// wait for the first and share its output) and returns its directory.
// env narrows what it builds (TARGETS, PACKAGES).
func release(t *testing.T, v string, env ...string) string {
	t.Helper()
	_, err := exec.LookPath("go")
	testenv.Need(t, "go", err == nil, "scripts/release builds with the Go toolchain")
	buildsMu.Lock()
	b, ok := builds[v]
	if !ok {
		b = &build{}
		builds[v] = b
		defer buildsMu.Unlock()
		root, err := filepath.Abs("..")
		if err != nil {
			t.Fatal(err)
		}
		b.dir = filepath.Join(os.TempDir(), fmt.Sprintf("myt-release-test-%d", os.Getpid()), v)
		cmd := exec.Command(filepath.Join(root, "scripts", "release"), v, b.dir)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), append([]string{"COMMIT=" + commit, "SOURCE_DATE_EPOCH=" + epoch}, env...)...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		b.dur = time.Since(start)
		if err != nil {
			b.err = fmt.Errorf("scripts/release %s: %v\n%s", v, err, out)
		} else {
			t.Logf("scripts/release %s (%s) took %s:\n%s", v, strings.Join(env, " "), b.dur.Round(time.Second), out)
		}
	} else {
		buildsMu.Unlock()
	}
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.dir
}

func run(t *testing.T, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

type versionJSON struct {
	Version, Commit, Date, OS, Arch string
}

// checkVersion runs `myt version --output json` (through prefix, e.g. an
// emulator) and `myt worker --help`.
func checkRuns(t *testing.T, os_, arch string, prefix ...string) {
	t.Helper()
	out := run(t, "", prefix[0], append(prefix[1:], "version", "--output", "json")...)
	var v versionJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("myt version --output json: %v\n%s", err, out)
	}
	if want := (versionJSON{version, commit, date, os_, arch}); v != want {
		t.Errorf("myt version --output json = %+v, want %+v", v, want)
	}
	text := run(t, "", prefix[0], append(prefix[1:], "version")...)
	if !strings.HasPrefix(text, "myt "+version+"\ncommit "+commit+"\nbuilt "+date+" ") {
		t.Errorf("myt version:\n%s", text)
	}
	help := run(t, "", prefix[0], append(prefix[1:], "worker", "--help")...)
	if !strings.Contains(help, "Usage:\n  myt worker") {
		t.Errorf("myt worker --help:\n%s", help)
	}
}

// checkStamp reads what can be read of a binary that cannot run here: the
// executable format and CPU, and the build settings Go records in it
// (go version -m), and the stamped strings in its data.
func checkStamp(t *testing.T, path, goos, goarch string) {
	t.Helper()
	switch goos {
	case "darwin":
		f, err := macho.Open(path)
		if err != nil {
			t.Fatalf("%s: not a Mach-O binary: %v", path, err)
		}
		want := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]
		if f.Cpu != want {
			t.Errorf("%s: CPU %v, want %v", path, f.Cpu, want)
		}
		f.Close()
	case "windows":
		f, err := pe.Open(path)
		if err != nil {
			t.Fatalf("%s: not a PE binary: %v", path, err)
		}
		if f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 {
			t.Errorf("%s: machine %#x, want amd64", path, f.Machine)
		}
		f.Close()
	}
	info := run(t, "", "go", "version", "-m", path)
	for _, want := range []string{
		"\tbuild\tGOOS=" + goos + "\n", "\tbuild\tGOARCH=" + goarch + "\n", "\tbuild\tCGO_ENABLED=0\n",
		"\tbuild\t-trimpath=true\n", "\tdep\tmodernc.org/sqlite\t",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("go version -m %s lacks %q:\n%s", path, want, info)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// -trimpath keeps -ldflags out of the build information: the -X
	// strings themselves are in the binary's data.
	for _, s := range []string{version, commit, date} {
		if !bytes.Contains(b, []byte(s)) {
			t.Errorf("%s does not hold the stamped %q", path, s)
		}
	}
}

// extract unpacks a release archive into a new directory.
func extract(t *testing.T, archive string) string {
	t.Helper()
	dir := t.TempDir()
	if strings.HasSuffix(archive, ".zip") {
		z, err := zip.OpenReader(archive)
		if err != nil {
			t.Fatal(err)
		}
		defer z.Close()
		for _, f := range z.File {
			p := filepath.Join(dir, filepath.FromSlash(f.Name))
			if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
				t.Fatalf("%s: entry %q leaves the directory", archive, f.Name)
			}
			if f.FileInfo().IsDir() {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			r, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			_, err = buf.ReadFrom(r)
			r.Close()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, buf.Bytes(), f.Mode().Perm()); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	run(t, "", "tar", "-xzf", archive, "-C", dir)
	return dir
}

func elfMachine(t *testing.T, path string) elf.Machine {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatalf("worker binary %s: not an ELF binary: %v", path, err)
	}
	defer f.Close()
	return f.Machine
}

// TestBinaries checks every archive of a release: the binary of each
// target reports the stamped version (run here for linux/amd64, and for
// linux/arm64 under qemu-user; read from the binary for macOS and
// Windows, which cannot run here), the linux ones run `myt worker
// --help`, and each archive carries linux worker binaries where a deploy
// looks for them. Also the checksums and the SBOMs.
func TestBinaries(t *testing.T) {
	dir := release(t, version)
	for _, tg := range targets {
		t.Run(tg.os+"-"+tg.arch, func(t *testing.T) {
			name := fmt.Sprintf("myt_%s_%s_%s", version, tg.os, tg.arch)
			archive := filepath.Join(dir, name+".tar.gz")
			exe := "myt"
			if tg.os == "windows" {
				archive, exe = filepath.Join(dir, name+".zip"), "myt.exe"
			}
			root := filepath.Join(extract(t, archive), name)
			bin := filepath.Join(root, "bin", exe)
			checkStamp(t, bin, tg.os, tg.arch)
			switch {
			case tg.os == runtime.GOOS && tg.arch == runtime.GOARCH:
				checkRuns(t, tg.os, tg.arch, bin)
			case tg.os == "linux" && tg.arch == "arm64":
				qemu, err := exec.LookPath("qemu-aarch64")
				testenv.Need(t, "qemu-aarch64", err == nil, "apt-get install qemu-user (runs the linux/arm64 binary)")
				checkRuns(t, tg.os, tg.arch, qemu, bin)
			}
			// The worker binaries a deploy from this machine would ship.
			got := deploy.InstalledWorkerBinaries(bin, tg.os, tg.arch)
			for arch, m := range map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64} {
				p, ok := got[arch]
				if !ok {
					t.Errorf("no worker binary for linux/%s in %s (found %v)", arch, archive, got)
					continue
				}
				if mm := elfMachine(t, p); mm != m {
					t.Errorf("worker binary for %s is a %v binary", arch, mm)
				}
			}
			for _, f := range []string{"share/man/man1/myt.1.gz", "share/man/man1/myt-serve.1.gz", "share/completions/myt.bash", "README.md"} {
				if _, err := os.Stat(filepath.Join(root, f)); err != nil {
					t.Errorf("archive lacks %s", f)
				}
			}
			// SBOM of the modules in this binary.
			var bom struct {
				BOMFormat string `json:"bomFormat"`
				Metadata  struct {
					Component struct{ Name, Version string }
				}
				Components []struct{ Name, Version string }
			}
			b, err := os.ReadFile(filepath.Join(dir, name+".cdx.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &bom); err != nil {
				t.Fatal(err)
			}
			if bom.BOMFormat != "CycloneDX" || bom.Metadata.Component.Version != version {
				t.Errorf("SBOM: format %q, main component %+v", bom.BOMFormat, bom.Metadata.Component)
			}
			var names []string
			for _, c := range bom.Components {
				names = append(names, c.Name)
			}
			for _, want := range []string{"modernc.org/sqlite", "github.com/spf13/cobra"} {
				if !strings.Contains(strings.Join(names, "\n")+"\n", want+"\n") {
					t.Errorf("SBOM lacks %s: %v", want, names)
				}
			}
		})
	}
	t.Run("SHA256SUMS", func(t *testing.T) {
		out := run(t, dir, "sha256sum", "--strict", "-c", "SHA256SUMS")
		for _, want := range []string{"myt_" + debVersion + "_amd64.deb: OK", "myt_" + debVersion + "_arm64.deb: OK", "myt_" + version + "_darwin_arm64.tar.gz: OK", "x86_64.rpm: OK", "aarch64.rpm: OK"} {
			if !strings.Contains(out, want) {
				t.Errorf("SHA256SUMS does not cover %q:\n%s", want, out)
			}
		}
	})
	sizes := &strings.Builder{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() {
			fmt.Fprintf(sizes, "  %-44s %6.1f MB\n", e.Name(), float64(fi.Size())/1e6)
		}
	}
	t.Logf("artifacts:\n%s", sizes)
}
