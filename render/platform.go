package render

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strings"
	"text/template"

	"github.com/goccy/go-yaml"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/worker"
)

//go:embed platform/*.tmpl bundle/*.tmpl
var platformFS embed.FS

// templates are the embedded templates, parsed once, each named by its
// file's base name. A missing key is an error, not "<no value>".
var templates = template.Must(template.New("").Option("missingkey=error").ParseFS(platformFS, "platform/*.tmpl", "bundle/*.tmpl"))

// Images are the upstream images a platform runs, pinned by version. Each
// is overridable at `docker compose` time by the environment variable
// ImageEnv[service] (the test environment substitutes locally built ones).
var Images = map[string]string{
	"rabbitmq":    "rabbitmq:3.13.7-management",
	"mysql":       "mysql:8.4.3",
	"timescaledb": "timescale/timescaledb:2.17.2-pg16",
	"mongodb":     "mongo:7.0.15",
	"influxdb":    "influxdb:2.7.10",
	"grafana":     "grafana/grafana-oss:11.3.1",
	// The worker exists in no registry: the platform role builds it on
	// the host from the myt binary and the pinned Python image, tagged
	// with Options.WorkerImageTag (platform/worker/image/Dockerfile).
	"worker": "myt-worker",
	"python": "python:3.12.8-slim-bookworm",
}

// ImageEnv names the variable that overrides each service's image.
var ImageEnv = map[string]string{
	"rabbitmq":    "MYT_IMAGE_RABBITMQ",
	"mysql":       "MYT_IMAGE_MYSQL",
	"timescaledb": "MYT_IMAGE_TIMESCALEDB",
	"mongodb":     "MYT_IMAGE_MONGODB",
	"influxdb":    "MYT_IMAGE_INFLUXDB",
	"grafana":     "MYT_IMAGE_GRAFANA",
	"worker":      "MYT_IMAGE_WORKER",
	"python":      "MYT_IMAGE_PYTHON",
}

// UIDs are the numeric users the services run as; the platform role makes
// each service's secret files 0600 owned by its user. Database images
// start as root, read their secrets, then drop privileges themselves.
var UIDs = map[string]int{"rabbitmq": 999, "grafana": 472, "worker": 10001, "db": 0}

// GIDs are the services' primary groups (Grafana runs as 472:0, as its
// image does: Docker's copy-up on first mount gives the data directory that
// group, so the role must not set another).
var GIDs = map[string]int{"rabbitmq": 999, "grafana": 0, "worker": 10001, "db": 0}

// Platform paths inside containers and on the host.
const (
	// HostPlatformDir is where Ansible installs platform/ on the host.
	HostPlatformDir = "/srv/myt/platform"
	// HostDataDir is where the data volume is mounted.
	HostDataDir = "/srv/myt/data"
	// WorkerAPIPort is the worker's HTTP port inside its container.
	WorkerAPIPort = 8080
	// WorkerHostPort is where the host publishes the first worker's API,
	// on loopback only (the next workers take the ports after it). Not
	// WorkerAPIPort: `myt serve` listens on 127.0.0.1:8080 by default, and a
	// local platform on the same machine could not publish that port.
	WorkerHostPort = 18080
	// GrafanaPort is Grafana's HTTPS port (open to admin CIDRs).
	GrafanaPort = 3000
	// VHost is the RabbitMQ virtual host devices and the worker use.
	VHost = "myt"
	// DeviceUser is the broker account devices share.
	DeviceUser = "myt-device"
	// TopicPrefix is the first topic level of every device message
	// (MQTT "myt/<device>/...").
	TopicPrefix = worker.DefaultTopicPrefix
	// ManagementPort is RabbitMQ's management port (loopback only).
	ManagementPort = 15672
)

// dataVolume is a compose volume bind-mounted from the host's data
// directory, and the uid and gid that own its directory there.
type dataVolume struct {
	Name string
	UID  int
	GID  int
}

// secretFile is a file under platform/secrets/ and the service whose user
// owns it on the host.
type secretFile struct {
	name  string
	owner string // key of UIDs; "db" and "dbinit": the database image's entrypoint and init scripts
	data  []byte
}

func (r *renderer) platform() error {
	d := r.d
	db := d.Spec.Database.Kind
	get := func(names ...string) (map[string]string, error) {
		m := map[string]string{}
		for _, n := range names {
			v, err := r.secret(n)
			if err != nil {
				return nil, err
			}
			m[n] = v
		}
		return m, nil
	}
	s, err := get(SecretRabbitMQAdmin, SecretRabbitMQWorker, SecretRabbitMQDevice, SecretDB, SecretGrafanaAdmin, SecretWorkerToken)
	if err != nil {
		return err
	}
	kind, err := databaseOf(db)
	if err != nil {
		return err
	}
	for _, n := range []string{kind.ownSecret, kind.grafanaSecret} {
		if n == "" || s[n] != "" {
			continue
		}
		if s[n], err = r.secret(n); err != nil {
			return err
		}
	}

	wc, err := r.workerConfig(kind.grafanaSecret == SecretWorkerExportToken)
	if err != nil {
		return err
	}
	defs, err := json.MarshalIndent(definitions(s, wc), "", "  ")
	if err != nil {
		return fmt.Errorf("rabbitmq definitions: %w", err)
	}
	dsn := kind.dsn(s)
	files := []secretFile{
		{"rabbitmq_definitions.json", "rabbitmq", append(defs, '\n')},
		{"rabbitmq_tls_key", "rabbitmq", r.server.KeyPEM},
		{"rabbitmq_worker_password", "worker", []byte(s[SecretRabbitMQWorker] + "\n")},
		{"db_dsn", "worker", []byte(dsn + "\n")},
		{"worker_api_token", "worker", []byte(s[SecretWorkerToken] + "\n")},
		{"grafana_admin_password", "grafana", []byte(s[SecretGrafanaAdmin] + "\n")},
		{"grafana_tls_key", "grafana", r.server.KeyPEM},
		{"db_password", "db", []byte(s[SecretDB] + "\n")},
	}
	grafanaSecretFile := ""
	if n := kind.grafanaSecret; n != "" {
		grafanaSecretFile = path.Base(kind.grafanaCred)
		files = append(files, secretFile{grafanaSecretFile, "grafana", []byte(s[n] + "\n")})
	}
	if n := kind.ownSecret; n != "" {
		files = append(files, secretFile{n, "db", []byte(s[n] + "\n")})
	}
	switch kind.grafanaSecret {
	case SecretGrafanaDB:
		// Its init script's copy of Grafana's password.
		files = append(files, secretFile{grafanaDBFile, "dbinit", []byte(s[SecretGrafanaDB] + "\n")})
	case SecretWorkerExportToken:
		// The worker's copy of the token it accepts for exports only.
		files = append(files, secretFile{SecretWorkerExportToken, "worker", []byte(s[SecretWorkerExportToken] + "\n")})
	}
	var secretNames []string
	owners := map[string]int{}
	for _, f := range files {
		r.b.addSecret("platform/secrets/"+f.name, f.data)
		secretNames = append(secretNames, f.name)
		switch f.owner {
		case "db":
			owners[f.name] = kind.secretUID
		case "dbinit":
			owners[f.name] = kind.initUID
		default:
			owners[f.name] = UIDs[f.owner]
		}
	}
	slices.Sort(secretNames)
	r.secretOwners = owners
	// The compose volumes under the data directory, each with the uid
	// that owns its directory (database images chown their own).
	r.volumes = []dataVolume{
		{"rabbitmq-data", UIDs["rabbitmq"], GIDs["rabbitmq"]},
		{db + "-data", UIDs["db"], GIDs["db"]},
		{"grafana-data", UIDs["grafana"], GIDs["grafana"]},
	}
	if db == myt.DatabaseInfluxDB {
		// InfluxDB's init script (root) writes Grafana's read token here.
		r.volumes = append(r.volumes, dataVolume{"influxdb-grafana", UIDs["grafana"], GIDs["grafana"]})
	}
	mem, err := memory(d.Spec.Target, d.Spec.Processing.Workers)
	if err != nil {
		return err
	}

	// compose.yaml
	ports := d.Spec.Broker.Ports()
	workerPorts := fmt.Sprint(WorkerHostPort)
	if n := d.Spec.Processing.Workers; n > 1 {
		workerPorts = fmt.Sprintf("%d-%d", WorkerHostPort, WorkerHostPort+n-1)
	}
	images := maps.Clone(Images)
	images["worker"] = Images["worker"] + ":" + r.opts.WorkerImageTag
	// Each service's image reference, overridable by its variable.
	imageRefs := map[string]string{}
	for k, v := range images {
		imageRefs[k] = "${" + ImageEnv[k] + ":-" + v + "}"
	}
	plugins := ""
	if db == myt.DatabaseMongoDB {
		plugins = infinityPlugin + " " + infinityVersion
	}
	data := map[string]any{
		"Name":            d.Metadata.Name,
		"DB":              db,
		"Image":           imageRefs,
		"HostDataDir":     HostDataDir,
		"WorkerAPIPort":   WorkerAPIPort,
		"GrafanaPort":     GrafanaPort,
		"ManagementPort":  ManagementPort,
		"UIDs":            UIDs,
		"GIDs":            GIDs,
		"DevicePorts":     ports,
		"Workers":         d.Spec.Processing.Workers,
		"WorkerPorts":     workerPorts,
		"Handler":         d.Spec.Processing.Handler != "",
		"InfluxRetention": influxRetention(d.Spec.Database.RetentionDays),
		"GrafanaPlugins":  plugins,
		"GrafanaSecret":   grafanaSecretFile,
		"GrafanaInit":     kind.grafanaInit,
		"GrafanaTokenDir": grafanaTokenDir,
		"Memory":          mem,
		"Volumes":         r.volumes,
		"SecretFiles":     secretNames,
		"Local":           d.Spec.Target.Provider == myt.ProviderLocal,
	}
	compose, err := execTemplate("platform/compose.yaml.tmpl", data)
	if err != nil {
		return err
	}
	r.b.add("platform/compose.yaml", compose)
	r.b.add("platform/owners.txt", r.ownersFile(secretNames))

	// RabbitMQ
	conf, err := execTemplate("platform/rabbitmq.conf.tmpl", map[string]any{
		"Broker": d.Spec.Broker, "Exchange": wc.AMQP.Exchange, "ManagementPort": ManagementPort,
		"MemoryMiB": mem.RabbitMQ, "WatermarkBytes": mem.RabbitMQ << 20 / 2,
	})
	if err != nil {
		return err
	}
	r.b.add("platform/rabbitmq/rabbitmq.conf", conf)
	r.b.add("platform/rabbitmq/enabled_plugins", []byte("[rabbitmq_management,rabbitmq_mqtt,rabbitmq_prometheus].\n"))

	// TLS
	r.b.add("platform/tls/ca.crt", r.ca.CertPEM)
	r.b.add("platform/tls/server.crt", append(slices.Clone(r.server.CertPEM), r.ca.CertPEM...))

	// Worker
	wy, err := workerYAML(d.Metadata.Name, wc)
	if err != nil {
		return err
	}
	r.b.add("platform/worker/worker.yaml", wy)
	df, err := execTemplate("platform/Dockerfile.worker.tmpl", map[string]any{"Python": Images["python"], "UID": UIDs["worker"]})
	if err != nil {
		return err
	}
	r.b.add("platform/worker/image/Dockerfile", df)
	if h := d.Spec.Processing.Handler; h != "" {
		if !strings.HasSuffix(h, "\n") {
			h += "\n"
		}
		r.b.add("platform/worker/handler/handler.py", []byte(h))
	}

	// Grafana
	if err := r.grafana(); err != nil {
		return err
	}

	// Database init
	if db == myt.DatabaseTimescaleDB {
		r.b.add("platform/db/init/010-myt-timescaledb.sql", []byte(timescaleInit))
	}
	if kind.grafanaInit != "" {
		r.b.add("platform/db/init/"+kind.grafanaInit, []byte(kind.grafanaInitText))
	}
	return nil
}

// definitions is RabbitMQ's definitions.json: the vhost, users (with
// salted SHA-256 password hashes, never the passwords), permissions and
// the ingest topology. The worker does not declare topology (declare:
// false in worker.yaml): this file is its single source, and the queue,
// dead-letter queue, exchange and binding key are read from the worker's
// config c so the two cannot disagree.
func definitions(s map[string]string, c *worker.Config) map[string]any {
	user := func(name, pw string, tags ...string) map[string]any {
		if tags == nil {
			tags = []string{}
		}
		return map[string]any{"name": name, "password_hash": rabbitHash(name, pw), "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": tags, "limits": map[string]any{}}
	}
	perm := func(u, c, w, r string) map[string]any {
		return map[string]any{"user": u, "vhost": "myt", "configure": c, "write": w, "read": r}
	}
	// Devices may only use routing keys the ingest binding picks up.
	topics := "^" + regexp.QuoteMeta(c.TopicPrefix) + `\.`
	return map[string]any{
		"users": []any{
			user("myt-admin", s[SecretRabbitMQAdmin], "administrator"),
			user("myt-worker", s[SecretRabbitMQWorker]),
			user(DeviceUser, s[SecretRabbitMQDevice]),
		},
		"vhosts": []any{map[string]any{"name": "myt"}},
		"permissions": []any{
			perm("myt-admin", ".*", ".*", ".*"),
			perm("myt-worker", `^myt\.`, `^(amq\.default|myt\..*)$`, `^(amq\.topic|myt\..*)$`),
			// MQTT clients need their own subscription queues and amq.topic.
			perm("myt-device", `^mqtt-subscription-.*`, `^(amq\.topic|mqtt-subscription-.*)$`, `^(amq\.topic|mqtt-subscription-.*)$`),
		},
		"topic_permissions": []any{
			map[string]any{"user": "myt-device", "vhost": "myt", "exchange": c.AMQP.Exchange, "write": topics, "read": topics},
		},
		// The queue arguments are the ones the worker itself declares
		// with amqp.declare: true (worker/source, (*Source).declare);
		// keep both in step.
		"queues": []any{
			map[string]any{"name": c.AMQP.Queue, "vhost": "myt", "durable": true, "auto_delete": false, "arguments": map[string]any{
				"x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": c.AMQP.DeadQueue,
			}},
			map[string]any{"name": c.AMQP.DeadQueue, "vhost": "myt", "durable": true, "auto_delete": false, "arguments": map[string]any{"x-queue-type": "quorum"}},
		},
		"exchanges": []any{},
		"bindings": []any{
			map[string]any{"source": c.AMQP.Exchange, "vhost": "myt", "destination": c.AMQP.Queue, "destination_type": "queue", "routing_key": c.RoutingPattern(), "arguments": map[string]any{}},
		},
	}
}

// rabbitHash is RabbitMQ's rabbit_password_hashing_sha256: base64(salt ||
// sha256(salt || password)) with a 4-byte salt. The salt is derived from
// the user and password (which are long and random), so the same secrets
// give the same file.
func rabbitHash(user, pw string) string {
	s := sha256.Sum256([]byte("myt rabbitmq salt\x00" + user + "\x00" + pw))
	salt := s[:4]
	h := sha256.Sum256(append(slices.Clone(salt), pw...))
	return base64.StdEncoding.EncodeToString(append(slices.Clone(salt), h[:]...))
}

func influxRetention(days int) string {
	if days == 0 {
		return "0s"
	}
	return fmt.Sprintf("%dd", days)
}

// workerConfig is the platform worker's configuration, validated; with
// exportToken, the worker also takes a read-only token for its export API.
func (r *renderer) workerConfig(exportToken bool) (*worker.Config, error) {
	d := r.d
	c := worker.DefaultConfig()
	c.TopicPrefix = worker.DefaultTopicPrefix
	c.AMQP.URLs = []string{"amqp://myt-worker@rabbitmq:5672/myt"}
	c.AMQP.PasswordFile = "/run/secrets/rabbitmq_worker_password"
	declare := false
	c.AMQP.Declare = &declare
	c.Database.Kind = d.Spec.Database.Kind
	c.Database.DSNFile = "/run/secrets/db_dsn"
	if len(d.Spec.Database.Fields) > 0 {
		c.Database.Fields = d.Spec.Database.Fields
	}
	// The worker prunes databases whose sink can expire records; for the
	// others (InfluxDB) it leaves retention to the database, which the
	// compose file sets from the same value (bucket retention).
	c.Database.RetentionDays = d.Spec.Database.RetentionDays
	if d.Spec.Processing.Handler != "" {
		c.Handler.Path = "/etc/myt/handler/handler.py"
	}
	c.Handler.Timeout = worker.Dur(secondsDur(d.Spec.Processing.TimeoutSeconds))
	c.HTTP.Listen = fmt.Sprintf(":%d", WorkerAPIPort)
	c.HTTP.TokenFile = "/run/secrets/worker_api_token"
	if exportToken {
		c.HTTP.ExportTokenFile = "/run/secrets/" + SecretWorkerExportToken
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	return c, nil
}

// workerYAML is worker.yaml for config c of platform name.
func workerYAML(name string, c *worker.Config) ([]byte, error) {
	// Through JSON so that empty optional keys are left out (the JSON tags
	// carry omitempty), keeping the worker's key order.
	js, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	body, err := yaml.JSONToYAML(js)
	if err != nil {
		return nil, fmt.Errorf("worker config: %w", err)
	}
	// TestWorkerConfig reads the result back with worker.ParseConfig.
	head := "# Rendered by myt for platform " + name + "; keys are documented in docs/worker.md.\n"
	return append([]byte(head), body...), nil
}

// execTemplate executes the embedded template at path name.
func execTemplate(name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, path.Base(name), data); err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// timescaleInit runs once, when the database is created. The worker makes
// its (hyper)table; this only enables the extension, and does nothing on a
// plain PostgreSQL image (the test environment's).
const timescaleInit = `-- Rendered by myt: enable TimescaleDB where the image has it.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') THEN
    CREATE EXTENSION IF NOT EXISTS timescaledb;
  END IF;
END
$$;
`

// ownersFile lists who must own each secret file and volume directory on
// the host ("secret NAME UID" / "volume NAME UID GID"): the Ansible
// platform role applies the same from group_vars, a local deploy from this
// file.
func (r *renderer) ownersFile(secretNames []string) []byte {
	var b strings.Builder
	b.WriteString("# secret NAME UID: chown platform/secrets/NAME to UID:UID; volume NAME UID GID: chown $MYT_DATA_DIR/NAME to UID:GID (0: leave it to the image); before `docker compose up`.\n")
	for _, n := range secretNames {
		fmt.Fprintf(&b, "secret %s %d\n", n, r.secretOwners[n])
	}
	for _, v := range r.volumes {
		fmt.Fprintf(&b, "volume %s %d %d\n", v.Name, v.UID, v.GID)
	}
	return []byte(b.String())
}

func (r *renderer) readme() error {
	t := r.d.Spec.Target
	br := r.d.Spec.Broker
	b, err := execTemplate("bundle/README.md.tmpl", map[string]any{
		"Name": r.d.Metadata.Name, "Provider": t.Provider, "Cloud": cloud(t.Provider), "Ansible": t.Provider != myt.ProviderLocal,
		"MQTTS": br.MQTT && br.TLS, "AMQPS": br.AMQP && br.TLS, "Plaintext": br.Plaintext,
	})
	if err != nil {
		return err
	}
	r.b.add("README.md", b)
	return nil
}
