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
	// secretUID owns the secret files the image's entrypoint reads (0600):
	// the user it reads them as. The mysql, postgres and influxdb images
	// read their *_FILE variables as root before they drop privileges; the
	// mongo image drops to its mongodb user (999) first.
	secretUID int
	// initUID owns the secret files that only the image's init scripts
	// (/docker-entrypoint-initdb.d) read: the user it runs them as. The
	// mysql image runs them as its mysql user (999), the postgres (Alpine)
	// image under timescale/timescaledb as postgres (70), the influxdb
	// image as root.
	initUID int
	// ownSecret is a secret only this kind uses (the MySQL root password,
	// the InfluxDB admin token), or "". The database's entrypoint reads it
	// from a secret file of the same name.
	ownSecret string
	// dsn is the worker's DSN; s holds every secret by name.
	dsn func(s map[string]string) string
	// grafanaCred is where Grafana reads its credential for the
	// datasource, and secureKey the datasource's secureJsonData key that
	// reads it. grafanaSecret is the secret it holds, in a file under
	// /run/secrets/ named by grafanaCred's base name; "" when the
	// database makes the credential itself (InfluxDB's read token).
	grafanaCred, grafanaSecret, secureKey string
	// grafanaInit is the init script that creates Grafana's read-only
	// account, at platform/db/init/<name> and in the image's
	// /docker-entrypoint-initdb.d; "" when there is none (MongoDB, whose
	// data Grafana reads through the worker).
	grafanaInit, grafanaInitText string
	// datasource is Grafana's provisioned datasource, without uid,
	// access, flags and credential (grafana sets those).
	datasource func() gfDatasource
}

// GrafanaDBUser is Grafana's read-only user in MySQL and TimescaleDB.
const GrafanaDBUser = "myt_grafana"

// grafanaDBFile is the database's copy of Grafana's password, read by
// its init script (the database image's user owns it, Grafana's user its
// own copy).
const grafanaDBFile = "db_grafana_password"

// grafanaTokenDir is where InfluxDB's init script leaves Grafana's read
// token: a data volume that Grafana mounts read-only.
const grafanaTokenDir = "/var/lib/myt-grafana"

// databases holds every database kind a design may choose. DSN formats
// are documented in docs/worker.md.
var databases = map[string]database{
	myt.DatabaseMySQL: {
		ownSecret: SecretDBRoot,
		dsn: func(s map[string]string) string {
			return "myt:" + s[SecretDB] + "@tcp(mysql:3306)/myt?parseTime=true"
		},
		secretUID: 0, initUID: 999,
		grafanaCred: "/run/secrets/" + SecretGrafanaDB, grafanaSecret: SecretGrafanaDB, secureKey: "password",
		grafanaInit: "020-myt-grafana.sh", grafanaInitText: mysqlGrafanaInit,
		datasource: func() gfDatasource {
			return gfDatasource{Name: "MyT MySQL", Type: "mysql", URL: "mysql:3306", User: GrafanaDBUser,
				JSONData: map[string]any{"database": "myt", "maxOpenConns": 10}}
		},
	},
	myt.DatabaseTimescaleDB: {
		dsn: func(s map[string]string) string {
			u := url.URL{Scheme: "postgres", User: url.UserPassword("myt", s[SecretDB]), Host: "timescaledb:5432", Path: "/myt", RawQuery: "sslmode=disable"}
			return u.String()
		},
		secretUID: 0, initUID: 70,
		grafanaCred: "/run/secrets/" + SecretGrafanaDB, grafanaSecret: SecretGrafanaDB, secureKey: "password",
		grafanaInit: "020-myt-grafana.sql", grafanaInitText: timescaleGrafanaInit,
		datasource: func() gfDatasource {
			return gfDatasource{Name: "MyT TimescaleDB", Type: "grafana-postgresql-datasource", URL: "timescaledb:5432", User: GrafanaDBUser,
				JSONData: map[string]any{"database": "myt", "sslmode": "disable", "timescaledb": true, "postgresVersion": 1600, "maxOpenConns": 10}}
		},
	},
	myt.DatabaseMongoDB: {
		secretUID: 999, initUID: 999,
		dsn: func(s map[string]string) string {
			u := url.URL{Scheme: "mongodb", User: url.UserPassword("myt", s[SecretDB]), Host: "mongodb:27017", Path: "/myt", RawQuery: "authSource=admin"}
			return u.String()
		},
		// Grafana OSS has no MongoDB datasource: it reads the worker's
		// export API with the worker's export token, which import and the
		// handler refuse.
		grafanaCred: "/run/secrets/grafana_worker_token", grafanaSecret: SecretWorkerExportToken, secureKey: "bearerToken",
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
		// InfluxDB makes its tokens itself: its init script asks for one
		// that reads the bucket myt only, where Grafana reads it.
		secretUID: 0, initUID: 0,
		grafanaCred: grafanaTokenDir + "/influxdb_read_token", secureKey: "token",
		grafanaInit: "020-myt-grafana-token.sh", grafanaInitText: influxGrafanaInit,
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

// mysqlGrafanaInit creates Grafana's read-only MySQL user. The mysql image
// sources *.sh init files that are not executable (the platform's files
// are 0644) as its mysql user, with docker_process_sql (its own function:
// the mysql client as root, on the init server's socket, in database myt).
// The password is read from a secret file and reaches the server on stdin,
// never on a command line.
const mysqlGrafanaInit = `# Rendered by myt: Grafana's read-only user ` + GrafanaDBUser + `: SELECT on the
# database myt (the tables the worker creates later included), nothing else.
myt_grafana_password=$(cat /run/secrets/` + grafanaDBFile + `)
case $myt_grafana_password in
'' | *[!A-Za-z0-9]*)
	echo "myt: ` + grafanaDBFile + ` must be letters and digits" >&2
	exit 1
	;;
esac
docker_process_sql <<EOSQL
CREATE USER '` + GrafanaDBUser + `'@'%' IDENTIFIED BY '${myt_grafana_password}';
GRANT SELECT ON myt.* TO '` + GrafanaDBUser + `'@'%';
EOSQL
unset myt_grafana_password
`

// timescaleGrafanaInit creates Grafana's read-only PostgreSQL role. The
// postgres image runs *.sql init files with psql as POSTGRES_USER (myt, a
// superuser), in database myt; psql reads the password from the secret
// file itself (a backquoted command), and the server logs no statement
// while it is in the session.
const timescaleGrafanaInit = `-- Rendered by myt: Grafana's read-only role ` + GrafanaDBUser + `. It may connect to myt
-- and read the tables in schema public, those the worker (role myt) creates
-- later included, and nothing else.
\set ON_ERROR_STOP on
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
\set myt_grafana_password ` + "`cat /run/secrets/" + grafanaDBFile + "`" + `
CREATE ROLE ` + GrafanaDBUser + ` LOGIN PASSWORD :'myt_grafana_password';
\unset myt_grafana_password
RESET log_min_error_statement;
RESET log_statement;
GRANT CONNECT ON DATABASE myt TO ` + GrafanaDBUser + `;
GRANT USAGE ON SCHEMA public TO ` + GrafanaDBUser + `;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO ` + GrafanaDBUser + `;
ALTER DEFAULT PRIVILEGES FOR ROLE myt IN SCHEMA public GRANT SELECT ON TABLES TO ` + GrafanaDBUser + `;
`

// influxGrafanaInit asks InfluxDB for a token that can only read the
// bucket myt. The influxdb image runs executable *.sh init files with
// run-parts, as root, once, right after its setup, with the influx CLI
// configured with the operator token and DOCKER_INFLUXDB_INIT_BUCKET_ID
// set. InfluxDB generates every token (its API takes none from the
// caller), so the token goes to a file that only Grafana's user may read,
// in a volume that Grafana mounts read-only. The compose file installs
// this script executable (see compose.yaml.tmpl).
const influxGrafanaInit = `#!/bin/bash
# Rendered by myt: Grafana's token, read-only on the bucket myt.
set -euo pipefail
out=` + grafanaTokenDir + `/influxdb_read_token
umask 077
influx auth create --org "$DOCKER_INFLUXDB_INIT_ORG" --read-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
	--description "myt: Grafana, read-only" --json |
	grep -o '"token":[[:space:]]*"[^"]*"' | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/' >"$out.new"
if [ ! -s "$out.new" ]; then
	echo "myt: influx auth create returned no token" >&2
	exit 1
fi
chown 472:0 "$out.new"
mv -f "$out.new" "$out"
`
