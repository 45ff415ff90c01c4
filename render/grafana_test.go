package render_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/render"
)

// TestGrafanaDashboardSchema decodes every starter dashboard strictly with
// the Grafana Foundation SDK's generated types (unknown keys and wrong
// types fail) and runs its Validate; panels must use the provisioned
// datasource.
func TestGrafanaDashboardSchema(t *testing.T) {
	plugins.RegisterDefaultPlugins()
	for _, c := range designs(t) {
		t.Run(c.name, func(t *testing.T) {
			b := mustRender(t, c.d)
			var dash dashboard.Dashboard
			if err := sdkErr(dash.UnmarshalJSONStrict(b.File("platform/grafana/dashboards/myt.json").Data)); err != nil {
				t.Fatalf("dashboard does not match the schema: %v", err)
			}
			if err := sdkErr(dash.Validate()); err != nil {
				t.Fatalf("dashboard Validate: %v", err)
			}
			if dash.Uid == nil || *dash.Uid != "myt-"+c.d.Metadata.Name || len(dash.Panels) != 2 {
				t.Fatalf("dashboard uid %v, %d panels", dash.Uid, len(dash.Panels))
			}
			var ds struct {
				APIVersion  int `yaml:"apiVersion"`
				Datasources []struct {
					UID            string            `yaml:"uid"`
					Type           string            `yaml:"type"`
					URL            string            `yaml:"url"`
					SecureJSONData map[string]string `yaml:"secureJsonData"`
				} `yaml:"datasources"`
			}
			if err := yaml.Unmarshal(b.File("platform/grafana/provisioning/datasources/myt.yaml").Data, &ds); err != nil {
				t.Fatal(err)
			}
			if ds.APIVersion != 1 || len(ds.Datasources) != 1 {
				t.Fatalf("datasources %+v", ds)
			}
			src := ds.Datasources[0]
			wantType := map[string]string{myt.DatabaseMySQL: "mysql", myt.DatabaseTimescaleDB: "grafana-postgresql-datasource", myt.DatabaseInfluxDB: "influxdb", myt.DatabaseMongoDB: "yesoreyeram-infinity-datasource"}[c.d.Spec.Database.Kind]
			if src.UID != render.DatasourceUID || src.Type != wantType {
				t.Errorf("datasource %+v, want type %s", src, wantType)
			}
			for k, v := range src.SecureJSONData {
				// A secret file, or (InfluxDB) the read token's file.
				if !strings.HasPrefix(v, "$__file{/run/secrets/") && v != "$__file{/var/lib/myt-grafana/influxdb_read_token}" {
					t.Errorf("secureJsonData.%s is not read from a secret file: %q", k, v)
				}
			}
			// The SDK keeps no Panel after a successful strict decode (its
			// typed-nil error), so the panels' queries are read raw.
			var raw struct {
				Panels []struct {
					Targets []struct {
						Datasource struct{ UID string } `json:"datasource"`
					} `json:"targets"`
				} `json:"panels"`
			}
			if err := json.Unmarshal(b.File("platform/grafana/dashboards/myt.json").Data, &raw); err != nil {
				t.Fatal(err)
			}
			for i, p := range raw.Panels {
				if len(p.Targets) == 0 {
					t.Errorf("panel %d has no query", i)
				}
				for _, q := range p.Targets {
					if q.Datasource.UID != render.DatasourceUID {
						t.Errorf("panel %d queries datasource %q", i, q.Datasource.UID)
					}
				}
			}
		})
	}
}

// sdkErr turns the SDK's typed-nil cog.BuildErrors (returned when there
// is no error) into nil.
func sdkErr(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}

// TestGrafanaPluginsPinned: every plugin Grafana installs at start names
// its version ("name version", as the image's GF_INSTALL_PLUGINS takes
// it), so a later start cannot install a different plugin.
func TestGrafanaPluginsPinned(t *testing.T) {
	seen := false
	for _, c := range designs(t) {
		plugins := loadCompose(t, mustRender(t, c.d)).Services["grafana"].Environment["GF_INSTALL_PLUGINS"]
		for _, p := range strings.Split(plugins, ",") {
			if p == "" {
				continue
			}
			seen = true
			if !regexp.MustCompile(`^[a-z0-9-]+ [0-9]+\.[0-9]+\.[0-9]+$`).MatchString(p) {
				t.Errorf("%s: plugin %q has no pinned version", c.name, p)
			}
		}
	}
	if !seen {
		t.Error("no design installs a plugin")
	}
}
