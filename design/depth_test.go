package design_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
)

func TestCheckStructureAccepts(t *testing.T) {
	docs := map[string]string{
		"brackets in a block scalar": "spec:\n  processing:\n    handler: |\n" + strings.Repeat("      x = "+strings.Repeat("[", 40)+"\n", 3) + "  next: 1\n",
		"brackets in quotes":         "a: \"" + strings.Repeat("[{", 40) + "\"\nb: '" + strings.Repeat("[", 40) + "''s'\n",
		"brackets in plain scalars":  "a: x" + strings.Repeat("[", 40) + "\nb: it's [fine]\n",
		"brackets in a comment":      "a: 1 # " + strings.Repeat("[", 40) + "\n",
		"flow collections":           "a: [1, {b: [2, 3]}, \"x]\"]\nc:\n  - - 1\n    - 2\n",
		"JSON":                       `{"a": {"b": [1, 2, {"c": "[[[[[["}]}}`,
	}
	for name, doc := range docs {
		if err := design.CheckStructure([]byte(doc)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata designs")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := design.CheckStructure(b); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestCheckStructureRefuses(t *testing.T) {
	var indented strings.Builder
	for i := range 40 {
		indented.WriteString(strings.Repeat(" ", i) + "k:\n")
	}
	docs := []struct{ name, doc, want string }{
		{"flow", "a: 1\nb: " + strings.Repeat("[", 40), "deeper than 32 levels at line 2"},
		{"JSON across lines", "{\n" + strings.Repeat("{\"a\":\n", 40), "deeper than 32 levels at line 32"},
		{"compact sequences", strings.Repeat("- ", 40) + "x", "deeper than 32 levels at line 1"},
		{"indentation", indented.String(), "deeper than 32 levels at line 33"},
		{"flow inside blocks", "a:\n  b:\n    c: " + strings.Repeat("{x: ", 30), "deeper than 32 levels at line 3"},
		{"many keys", strings.Repeat("k: v\n", design.MaxEntries+1), "more than 4000 entries (line 4001)"},
		{"many items", "[" + strings.Repeat("1,", design.MaxEntries) + "]", "more than 4000 entries (line 1)"},
	}
	for _, tc := range docs {
		err := design.CheckStructure([]byte(tc.doc))
		if myt.ErrorCode(err) != myt.EINVALID || !strings.Contains(myt.ErrorMessage(err), tc.want) {
			t.Errorf("%s: got %v, want EINVALID with %q", tc.name, err, tc.want)
		}
	}
}
