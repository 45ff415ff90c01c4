package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/myt-iot/myt/internal/hostile"
)

// TestHostileRender: `myt render` of a hostile design file fails quickly,
// in bounded memory, with an error.
func TestHostileRender(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "design.yaml")
	hostile.Run(t, "CLI myt render", func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := runMyt(t, "render", file, "-o", filepath.Join(dir, "bundle")); err == nil {
			t.Errorf("render accepted it:\n%s", out)
		}
	})
}
