package render_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt from the renderer's output")

// TestGolden renders every design in testdata/designs and compares the
// whole bundle with testdata/golden/<design>.txt. Regenerate with
// `go test ./render -update` and review the diff.
func TestGolden(t *testing.T) {
	for _, c := range designs(t) {
		t.Run(c.name, func(t *testing.T) {
			got := goldenText(t, mustRender(t, c.d))
			path := filepath.Join("testdata", "golden", c.name+".txt")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./render -update)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("bundle differs from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}
