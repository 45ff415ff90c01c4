package render_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/myt-iot/myt/render"
)

// TestMountsSayWhatToRecreate reads each rendered compose.yaml and checks
// which services a change recreates: a new handler only the worker, the
// TLS files every service that serves or trusts them, a secret the
// services that read it, and compose.yaml none (Compose compares each
// service's own configuration).
func TestMountsSayWhatToRecreate(t *testing.T) {
	for _, c := range designs(t) {
		t.Run(c.name, func(t *testing.T) {
			b := mustRender(t, c.d)
			m, err := render.ParseMounts(b.File("platform/compose.yaml").Data)
			if err != nil {
				t.Fatal(err)
			}
			db := c.d.Spec.Database.Kind
			if want := slices.Sorted(slices.Values([]string{"rabbitmq", db, "worker", "grafana"})); !slices.Equal(m.Services(), want) {
				t.Fatalf("services %v, want %v", m.Services(), want)
			}
			for _, tc := range []struct {
				paths []string
				want  []string
			}{
				{[]string{"worker/handler/handler.py"}, []string{"worker"}},
				{[]string{"worker"}, []string{"worker"}},
				{[]string{"rabbitmq/rabbitmq.conf"}, []string{"rabbitmq"}},
				{[]string{"tls/server.crt"}, []string{"grafana", "rabbitmq"}},
				{[]string{"tls"}, []string{"grafana", "rabbitmq", "worker"}},
				{[]string{"secrets/rabbitmq_definitions.json", "secrets/db_dsn"}, []string{"rabbitmq", "worker"}},
				{[]string{"secrets/db_password"}, []string{db}},
				{[]string{"compose.yaml"}, nil},
			} {
				if tc.paths[0] == "worker/handler/handler.py" && b.File("platform/"+tc.paths[0]) == nil {
					continue // no handler: the worker stores messages as they come
				}
				if got := m.Using(tc.paths...); !slices.Equal(got, tc.want) {
					t.Errorf("Using(%v) = %v, want %v", tc.paths, got, tc.want)
				}
			}
			// Every secret file is read by some service, so a changed
			// secret always recreates its reader.
			for _, f := range b.Files {
				if name, ok := strings.CutPrefix(f.Path, "platform/secrets/"); ok && len(m.Using("secrets/"+name)) == 0 {
					t.Errorf("no service reads secret %s", name)
				}
			}
		})
	}
}
