package render

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/myt-iot/myt"
)

// infinityPlugin is the Grafana plugin used to chart MongoDB platforms:
// Grafana OSS has no MongoDB datasource, so the dashboard reads the
// worker's export API instead. Grafana installs it on first start.
const infinityPlugin = "yesoreyeram-infinity-datasource"

// infinityVersion pins the Infinity plugin (a release of the Grafana 11.3
// era): GF_INSTALL_PLUGINS takes "name version", so a platform started
// later installs the same plugin, not whatever is newest then.
const infinityVersion = "2.11.2"

// DatasourceUID is the uid of the provisioned datasource that the starter
// dashboard's panels use.
const DatasourceUID = "myt-db"

type gfDatasource struct {
	Name           string            `yaml:"name"`
	UID            string            `yaml:"uid"`
	Type           string            `yaml:"type"`
	Access         string            `yaml:"access"`
	URL            string            `yaml:"url"`
	User           string            `yaml:"user,omitempty"`
	IsDefault      bool              `yaml:"isDefault"`
	Editable       bool              `yaml:"editable"`
	JSONData       map[string]any    `yaml:"jsonData"`
	SecureJSONData map[string]string `yaml:"secureJsonData"`
}

func (r *renderer) grafana() error {
	db, err := databaseOf(r.d.Spec.Database.Kind)
	if err != nil {
		return err
	}
	ds := db.datasource()
	ds.UID, ds.Access, ds.IsDefault, ds.Editable = DatasourceUID, "proxy", true, false
	// Grafana reads its credential from the file ($__file{...}).
	ds.SecureJSONData = map[string]string{db.secureKey: "$__file{" + db.grafanaCred + "}"}
	dsDoc := map[string]any{"apiVersion": 1, "datasources": []gfDatasource{ds}}
	b, err := yaml.MarshalWithOptions(dsDoc, yaml.IndentSequence(true))
	if err != nil {
		return fmt.Errorf("grafana datasource: %w", err)
	}
	r.b.add("platform/grafana/provisioning/datasources/myt.yaml", append([]byte("# Rendered by myt: the platform's database, read-only in the UI.\n"), b...))

	prov := map[string]any{"apiVersion": 1, "providers": []any{map[string]any{
		"name": "myt", "orgId": 1, "folder": "MyT", "type": "file", "disableDeletion": true,
		"allowUiUpdates": false, "options": map[string]any{"path": "/var/lib/grafana-dashboards"},
	}}}
	if b, err = yaml.MarshalWithOptions(prov, yaml.IndentSequence(true)); err != nil {
		return fmt.Errorf("grafana dashboards provider: %w", err)
	}
	r.b.add("platform/grafana/provisioning/dashboards/myt.yaml", b)

	dash, err := json.MarshalIndent(r.dashboard(ds.Type), "", "  ")
	if err != nil {
		return fmt.Errorf("grafana dashboard: %w", err)
	}
	r.b.add("platform/grafana/dashboards/myt.json", append(dash, '\n'))
	return nil
}

func (r *renderer) fieldNames() []string {
	var names []string
	for n := range r.d.Spec.Database.Fields {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// dashboard is the starter dashboard: messages per device over time, and
// the latest values per device.
func (r *renderer) dashboard(dsType string) map[string]any {
	kind := r.d.Spec.Database.Kind
	fields := r.fieldNames()
	ds := map[string]any{"type": dsType, "uid": DatasourceUID}
	var rate, latest map[string]any
	rateType := "timeseries"
	switch kind {
	case myt.DatabaseMySQL, myt.DatabaseTimescaleDB:
		cols := "m.doc"
		if len(fields) > 0 {
			cols = "m." + strings.Join(fields, ", m.")
		}
		rateSQL := "SELECT $__timeGroupAlias(ts, $__interval), device AS metric, COUNT(*) AS value\nFROM measurements\nWHERE $__timeFilter(ts)\nGROUP BY 1, 2\nORDER BY 1"
		latestSQL := "SELECT m.device, m.ts, " + cols + "\nFROM measurements m\nJOIN (SELECT device, MAX(ts) AS ts FROM measurements GROUP BY device) l\n  ON l.device = m.device AND l.ts = m.ts\nORDER BY m.device"
		if kind == myt.DatabaseTimescaleDB {
			rateSQL = "SELECT time_bucket($__interval, ts) AS time, device AS metric, COUNT(*) AS value\nFROM measurements\nWHERE $__timeFilter(ts)\nGROUP BY 1, 2\nORDER BY 1"
			latestSQL = "SELECT DISTINCT ON (device) device, ts, " + strings.ReplaceAll(cols, "m.", "") + "\nFROM measurements\nORDER BY device, ts DESC"
		}
		rate = map[string]any{"refId": "A", "datasource": ds, "editorMode": "code", "format": "time_series", "rawQuery": true, "rawSql": rateSQL}
		latest = map[string]any{"refId": "A", "datasource": ds, "editorMode": "code", "format": "table", "rawQuery": true, "rawSql": latestSQL}
	case myt.DatabaseInfluxDB:
		one := ""
		if len(fields) > 0 {
			one = "\n  |> filter(fn: (r) => r._field == \"" + fields[0] + "\")"
		}
		rate = map[string]any{"refId": "A", "datasource": ds, "query": "from(bucket: \"myt\")\n  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)\n  |> filter(fn: (r) => r._measurement == \"measurements\")" + one + "\n  |> group(columns: [\"device\"])\n  |> aggregateWindow(every: v.windowPeriod, fn: count, createEmpty: false)"}
		latest = map[string]any{"refId": "A", "datasource": ds, "query": "from(bucket: \"myt\")\n  |> range(start: -30d)\n  |> filter(fn: (r) => r._measurement == \"measurements\")\n  |> last()\n  |> group()\n  |> pivot(rowKey: [\"device\", \"_time\"], columnKey: [\"_field\"], valueColumn: \"_value\")"}
	default: // mongodb via Infinity on the worker's CSV export
		url := fmt.Sprintf("http://worker:%d/v1/export?format=csv&from=${__from:date:iso}&to=${__to:date:iso}", WorkerAPIPort)
		rateType = "barchart"
		rate = map[string]any{"refId": "A", "datasource": ds, "type": "csv", "source": "url", "parser": "uql", "url": url,
			"uql": "parse-csv\n| summarize \"messages\"=count() by \"device\""}
		latest = map[string]any{"refId": "A", "datasource": ds, "type": "csv", "source": "url", "parser": "backend", "url": url}
	}
	legend := map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true, "calcs": []string{}}
	tooltip := map[string]any{"mode": "multi", "sort": "desc"}
	options := map[string]map[string]any{
		"timeseries": {"legend": legend, "tooltip": tooltip},
		"barchart": {"legend": legend, "tooltip": tooltip, "orientation": "horizontal", "xTickLabelRotation": 0, "xTickLabelMaxLength": 0,
			"stacking": "none", "showValue": "auto", "barWidth": 0.8, "groupWidth": 0.7, "fullHighlight": false},
		"table": {"frameIndex": 0, "showHeader": true, "cellHeight": "sm"},
	}
	panel := func(id int, typ, title string, y int, target map[string]any) map[string]any {
		return map[string]any{
			"id": id, "type": typ, "title": title, "datasource": ds,
			"gridPos": map[string]any{"h": 10, "w": 24, "x": 0, "y": y},
			"targets": []any{target},
			"options": options[typ], "fieldConfig": map[string]any{"defaults": map[string]any{}, "overrides": []any{}},
		}
	}
	return map[string]any{
		"uid":           "myt-" + r.d.Metadata.Name,
		"title":         "MyT " + r.d.Metadata.Name,
		"tags":          []string{"myt"},
		"timezone":      "browser",
		"editable":      true,
		"schemaVersion": 39,
		"version":       1,
		"refresh":       "30s",
		"time":          map[string]any{"from": "now-6h", "to": "now"},
		"templating":    map[string]any{"list": []any{}},
		"annotations":   map[string]any{"list": []any{}},
		"panels": []any{
			panel(1, rateType, "Messages per device", 0, rate),
			panel(2, "table", "Latest values per device", 10, latest),
		},
	}
}
