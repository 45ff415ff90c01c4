package render

import (
	"fmt"
	"net/url"

	"github.com/myt-iot/myt"
)

// database is what the platform needs to know about one database kind:
// the secrets only it uses, how the worker reaches it and how Grafana
// reads it.
type database struct {
	// secretUID owns the database's secret files (0600): the user its
	// image's entrypoint reads them as. The mysql, postgres and influxdb
	// images read them as root before they drop privileges; the mongo
	// image drops to its mongodb user (999) first.
	secretUID int
	// ownSecret is a secret only this kind uses (the MySQL root password,
	// the InfluxDB admin token), or "". The database's entrypoint reads it
	// from a secret file of the same name.
	ownSecret string
	// dsn is the worker's DSN; s holds every secret by name.
	dsn func(s map[string]string) string
	// grafanaFile is the secret file holding Grafana's credential for
	// the datasource, grafanaSecret the secret it holds, and secureKey
	// the datasource's secureJsonData key that reads it.
	grafanaFile, grafanaSecret, secureKey string
	// datasource is Grafana's provisioned datasource, without uid,
	// access, flags and credential (grafana sets those).
	datasource func() gfDatasource
}

// databases holds every database kind a design may choose. DSN formats
// are documented in docs/worker.md.
var databases = map[string]database{
	myt.DatabaseMySQL: {
		ownSecret: SecretDBRoot,
		dsn: func(s map[string]string) string {
			return "myt:" + s[SecretDB] + "@tcp(mysql:3306)/myt?parseTime=true"
		},
		grafanaFile: "grafana_db_password", grafanaSecret: SecretDB, secureKey: "password",
		datasource: func() gfDatasource {
			return gfDatasource{Name: "MyT MySQL", Type: "mysql", URL: "mysql:3306", User: "myt",
				JSONData: map[string]any{"database": "myt", "maxOpenConns": 10}}
		},
	},
	myt.DatabaseTimescaleDB: {
		dsn: func(s map[string]string) string {
			u := url.URL{Scheme: "postgres", User: url.UserPassword("myt", s[SecretDB]), Host: "timescaledb:5432", Path: "/myt", RawQuery: "sslmode=disable"}
			return u.String()
		},
		grafanaFile: "grafana_db_password", grafanaSecret: SecretDB, secureKey: "password",
		datasource: func() gfDatasource {
			return gfDatasource{Name: "MyT TimescaleDB", Type: "grafana-postgresql-datasource", URL: "timescaledb:5432", User: "myt",
				JSONData: map[string]any{"database": "myt", "sslmode": "disable", "timescaledb": true, "postgresVersion": 1600, "maxOpenConns": 10}}
		},
	},
	myt.DatabaseMongoDB: {
		secretUID: 999,
		dsn: func(s map[string]string) string {
			u := url.URL{Scheme: "mongodb", User: url.UserPassword("myt", s[SecretDB]), Host: "mongodb:27017", Path: "/myt", RawQuery: "authSource=admin"}
			return u.String()
		},
		// Grafana OSS has no MongoDB datasource: it reads the worker's
		// export API with the worker's token.
		grafanaFile: "grafana_worker_token", grafanaSecret: SecretWorkerToken, secureKey: "bearerToken",
		datasource: func() gfDatasource {
			u := fmt.Sprintf("http://worker:%d", WorkerAPIPort)
			return gfDatasource{Name: "MyT worker export", Type: infinityPlugin, URL: u,
				JSONData: map[string]any{"auth_method": "bearerToken", "allowedHosts": []string{u}}}
		},
	},
	myt.DatabaseInfluxDB: {
		ownSecret: SecretInfluxToken,
		dsn: func(s map[string]string) string {
			q := url.Values{"org": {"myt"}, "bucket": {"myt"}, "token": {s[SecretInfluxToken]}}
			return "http://influxdb:8086/?" + q.Encode()
		},
		grafanaFile: "grafana_influxdb_token", grafanaSecret: SecretInfluxToken, secureKey: "token",
		datasource: func() gfDatasource {
			return gfDatasource{Name: "MyT InfluxDB", Type: "influxdb", URL: "http://influxdb:8086",
				JSONData: map[string]any{"version": "Flux", "organization": "myt", "defaultBucket": "myt"}}
		},
	},
}

// databaseOf returns the table entry for kind.
func databaseOf(kind string) (database, error) {
	db, ok := databases[kind]
	if !ok {
		return database{}, fmt.Errorf("database kind %q: not supported by the renderer", kind)
	}
	return db, nil
}
