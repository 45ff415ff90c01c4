package design_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
)

func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is not installed")
		}
		t.Skip("python3 is not installed")
	}
}

func withHandler(code string) []byte {
	return []byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: home}\nspec:\n  target: {provider: local}\n  database: {kind: influxdb}\n  processing:\n    handler: |\n" +
		"      " + strings.ReplaceAll(strings.TrimSuffix(code, "\n"), "\n", "\n      ") + "\n")
}

// TestParseChecksHandlerSyntax: a handler that is not valid Python is
// refused when the design is read, naming the line and column, as the
// worker would refuse it much later.
func TestParseChecksHandlerSyntax(t *testing.T) {
	needPython(t)
	for _, c := range []struct {
		name, code, want string
	}{
		{"missing colon", "def process(msg)\n    return msg\n", "line 1, column "},
		{"bad indent", "def process(msg):\n    x = 1\n      return x\n", "line 3, column "},
		{"unclosed", "def process(msg):\n    return {'a': msg\n", "line 2, column "},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := design.Parse(withHandler(c.code))
			fields := myt.ErrorFields(err)
			if len(fields) != 1 || fields[0].Field != "spec.processing.handler" || !strings.HasPrefix(fields[0].Message, c.want) {
				t.Fatalf("Parse = %v (fields %+v), want spec.processing.handler %q…", err, fields, c.want)
			}
		})
	}
	if _, err := design.Parse(withHandler("import json\n\ndef process(msg):\n    return json.dumps(msg)\n")); err != nil {
		t.Errorf("valid handler: %v", err)
	}
	// Compiling runs nothing: a handler whose import would fail is valid
	// syntax, and its top level is not executed.
	if err := design.CheckHandler(context.Background(), "import no_such_module_xyz\nopen('/tmp/myt-ran', 'w')\ndef process(msg):\n    return msg\n"); err != nil {
		t.Errorf("CheckHandler ran or refused valid syntax: %v", err)
	}
}

// TestCheckHandlerWithoutPython: a server without python3 says the check
// was skipped; the design is still accepted.
func TestCheckHandlerWithoutPython(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	bad := "def process(msg)\n    return msg\n"
	if err := design.CheckHandler(context.Background(), bad); !errors.Is(err, design.ErrNoPython) {
		t.Errorf("CheckHandler without python3 = %v, want ErrNoPython", err)
	}
	if _, err := design.Parse(withHandler(bad)); err != nil {
		t.Errorf("Parse without python3: %v", err)
	}
}
