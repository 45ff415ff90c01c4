package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeExportServer plays MyT's API for `myt data export`: the platform
// "home" (id 7), whose export sends rows lines and then, when cut, dies
// mid-stream as MyT does when the worker's stream breaks.
func fakeExportServer(t *testing.T, rows int, cut bool) (*httptest.Server, *string) {
	t.Helper()
	query := new(string)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"error":{"code":"unauthorized","message":"no"}}`, 401)
			return
		}
		switch r.URL.Path {
		case "/api/v1/platforms":
			fmt.Fprint(w, `[{"id":7,"name":"home","status":"running"}]`)
		case "/api/v1/platforms/7/export":
			*query = r.URL.RawQuery
			w.Header().Set("Content-Type", "application/x-ndjson")
			for i := range rows {
				fmt.Fprintf(w, `{"id":"r-%d","device":"d","ts":"2026-01-01T00:00:00Z","fields":{"v":%d}}`+"\n", i, i)
			}
			if cut {
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	t.Setenv("MYT_SERVER", srv.URL)
	t.Setenv("MYT_TOKEN", "tok")
	t.Setenv("HOME", t.TempDir())
	return srv, query
}

// TestDataExportWritesCompleteFilesOnly: a complete export lands in -o
// FILE, byte for byte; one cut mid-stream exits non-zero and leaves
// neither FILE nor a temporary file (an old FILE stays as it was).
func TestDataExportWritesCompleteFilesOnly(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "out.ndjson")

	_, query := fakeExportServer(t, 20000, false)
	if out, err := runMyt(t, "data", "export", "home", "--from", "2026-01-01", "--to", "2026-01-31T12:00:00+01:00", "--device", "kitchen", "-o", file); err != nil {
		t.Fatalf("complete export: %v\n%s", err, out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 20000 || !strings.HasSuffix(string(b), "{\"v\":19999}}\n") {
		t.Errorf("complete export: %d lines in the file", n)
	}
	if want := "device=kitchen&format=ndjson&from=2026-01-01T00%3A00%3A00Z&to=2026-01-31T11%3A00%3A00Z"; *query != want {
		t.Errorf("query %q, want %q", *query, want)
	}

	fakeExportServer(t, 5000, true)
	out, err := runMyt(t, "data", "export", "home", "-o", file)
	if err == nil {
		t.Fatalf("a cut export succeeded: %s", out)
	}
	if got, _ := os.ReadFile(file); string(got) != string(b) {
		t.Errorf("a cut export changed the earlier complete file (%d bytes)", len(got))
	}
	fresh := filepath.Join(dir, "fresh.ndjson")
	if _, err := runMyt(t, "data", "export", "home", "-o", fresh); err == nil {
		t.Fatal("a cut export succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("files after cut exports: %v, want only the complete out.ndjson", names)
	}
}

// TestDataFlagsAreChecked: bad times and formats are refused before any
// request, naming the flag.
func TestDataFlagsAreChecked(t *testing.T) {
	t.Setenv("MYT_SERVER", "http://127.0.0.1:1") // nothing answers there
	t.Setenv("MYT_TOKEN", "tok")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"data", "export", "home", "--from", "yesterday"}, "--from: must be an RFC 3339 time"},
		{[]string{"data", "export", "home", "--to", "2026-13-01"}, "--to: must be an RFC 3339 time"},
		{[]string{"data", "export", "home", "--from", "2026-02-01", "--to", "2026-01-01"}, "--to: must be after --from"},
		{[]string{"data", "export", "home", "--format", "xml"}, `--format "xml": want csv or ndjson`},
		{[]string{"data", "move", "a", "b", "--from", "12:00"}, "--from: must be"},
	} {
		_, err := runMyt(t, tc.args...)
		if err == nil || !strings.Contains(errorText(err), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
