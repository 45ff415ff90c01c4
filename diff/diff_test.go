package diff

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// apply rebuilds both texts from a script: the script must keep every
// line of a in order and give exactly b.
func apply(ls []Line) (a, b string) {
	var sa, sb strings.Builder
	for _, l := range ls {
		if l.Op != Insert {
			sa.WriteString(l.Text)
		}
		if l.Op != Delete {
			sb.WriteString(l.Text)
		}
	}
	return sa.String(), sb.String()
}

func norm(s string) string {
	if s == "" {
		return ""
	}
	return strings.TrimSuffix(s, "\n") + "\n"
}

func TestLinesRebuildsBothSides(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "c", "d", "return msg", "", "def process(msg):"}
	gen := func() string {
		n := r.IntN(30)
		var ls []string
		for range n {
			ls = append(ls, words[r.IntN(len(words))])
		}
		return strings.Join(ls, "\n")
	}
	for i := range 2000 {
		a, b := gen(), gen()
		ls := Lines(a, b)
		ga, gb := apply(ls)
		if ga != norm(a) || gb != norm(b) {
			t.Fatalf("case %d: script rebuilds %q / %q, want %q / %q", i, ga, gb, norm(a), norm(b))
		}
	}
}

func TestLinesIsShortest(t *testing.T) {
	// One line changed in the middle: one delete and one insert, the rest
	// equal (a replace-all script would be correct but 10 edits long).
	a := "1\n2\n3\n4\n5\n"
	b := "1\n2\nthree\n4\n5\n"
	add, del := Stat(a, b)
	if add != 1 || del != 1 {
		t.Errorf("Stat = +%d -%d, want +1 -1", add, del)
	}
	add, del = Stat("x\ny\n", "y\nx\n")
	if add+del != 2 {
		t.Errorf("swap: +%d -%d, want 2 edits", add, del)
	}
}

// TestUnifiedMatchesPatch checks the unified diff by applying it with
// patch(1), when it is installed.
func TestUnifiedMatchesPatch(t *testing.T) {
	patch, err := exec.LookPath("patch")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("patch is not installed")
		}
		t.Skip("SKIP: patch(1) is not installed")
	}
	r := rand.New(rand.NewPCG(3, 4))
	lines := func() string {
		var ls []string
		for i := range 60 {
			if r.IntN(6) == 0 {
				ls = append(ls, "changed "+string(rune('a'+r.IntN(5))))
			} else {
				ls = append(ls, "line "+string(rune('0'+i%10)))
			}
		}
		return strings.Join(ls, "\n") + "\n"
	}
	for i := range 50 {
		a, b := lines(), lines()
		dir := t.TempDir()
		f := filepath.Join(dir, "handler.py")
		os.WriteFile(f, []byte(a), 0o644)
		u := Unified("a/handler.py", "b/handler.py", a, b, 3)
		cmd := exec.Command(patch, "-s", f)
		cmd.Stdin = strings.NewReader(u)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("case %d: patch: %v %s\n%s", i, err, out, u)
		}
		got, _ := os.ReadFile(f)
		if string(got) != b {
			t.Fatalf("case %d: patched file differs\n%s", i, u)
		}
	}
	if Unified("a", "b", "same\n", "same\n", 3) != "" {
		t.Error("no difference should print nothing")
	}
}
