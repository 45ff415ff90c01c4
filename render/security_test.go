package render_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/render"
	"github.com/myt-iot/myt/worker"
)

// isSecretPath says where secrets may live in a bundle.
func isSecretPath(p string) bool {
	return strings.HasPrefix(p, "platform/secrets/") || strings.HasPrefix(p, "secrets.d/") ||
		p == "pki/ca.key" || p == "ssh/id_ed25519"
}

// TestSecretsStayInSecretFiles: every secret file is marked secret and
// written 0600 in a 0700 directory; no secret value (passwords, tokens,
// private keys, the DSN) appears in any other file.
func TestSecretsStayInSecretFiles(t *testing.T) {
	for _, c := range designs(t) {
		t.Run(c.name, func(t *testing.T) {
			b := mustRender(t, c.d)
			dir := writeBundle(t, b)
			var values [][]byte
			for _, f := range b.Files {
				if f.Secret != isSecretPath(f.Path) {
					t.Errorf("%s: Secret=%v", f.Path, f.Secret)
				}
				if !f.Secret {
					continue
				}
				if strings.HasPrefix(f.Path, "secrets.d/") {
					values = append(values, bytes.TrimSpace(f.Data))
				}
				if bytes.Contains(f.Data, []byte("PRIVATE KEY")) {
					// The base64 body of the key, line by line.
					for _, line := range bytes.Split(f.Data, []byte("\n")) {
						if len(line) > 20 && !bytes.HasPrefix(line, []byte("-----")) {
							values = append(values, line)
						}
					}
				}
			}
			if len(values) < 5 {
				t.Fatalf("only %d secret values found", len(values))
			}
			err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(dir, p)
				rel = filepath.ToSlash(rel)
				info, err := e.Info()
				if err != nil {
					return err
				}
				if e.IsDir() {
					if (rel == "platform/secrets" || rel == "secrets.d" || rel == "ssh" || rel == "pki") && info.Mode().Perm() != 0o700 {
						t.Errorf("directory %s has mode %o, want 0700", rel, info.Mode().Perm())
					}
					return nil
				}
				if isSecretPath(rel) {
					if info.Mode().Perm() != 0o600 {
						t.Errorf("secret %s has mode %o, want 0600", rel, info.Mode().Perm())
					}
					return nil
				}
				if info.Mode().Perm() != 0o644 {
					t.Errorf("%s has mode %o", rel, info.Mode().Perm())
				}
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				for _, v := range values {
					if bytes.Contains(data, v) {
						t.Errorf("%s contains a secret value", rel)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		User        string            `yaml:"user"`
		MemLimit    string            `yaml:"mem_limit"`
		Ports       []string          `yaml:"ports"`
		Environment map[string]string `yaml:"environment"`
		Secrets     []string          `yaml:"secrets"`
		Volumes     []string          `yaml:"volumes"`
		Healthcheck *struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		Restart string `yaml:"restart"`
	} `yaml:"services"`
	Volumes map[string]struct {
		DriverOpts map[string]string `yaml:"driver_opts"`
	} `yaml:"volumes"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

func loadCompose(t *testing.T, b *render.Bundle) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal(b.File("platform/compose.yaml").Data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPlatformSecureByDefault checks the platform the way an auditor
// would: published ports, listeners, users, TLS, healthchecks, images.
func TestPlatformSecureByDefault(t *testing.T) {
	for _, c := range designs(t) {
		t.Run(c.name, func(t *testing.T) {
			d := c.d
			b := mustRender(t, d)
			cf := loadCompose(t, b)
			wantServices := []string{"grafana", "rabbitmq", "worker", d.Spec.Database.Kind}
			var got []string
			for name := range cf.Services {
				got = append(got, name)
			}
			slices.Sort(got)
			slices.Sort(wantServices)
			if !slices.Equal(got, wantServices) {
				t.Errorf("services %v, want %v", got, wantServices)
			}
			public := map[int]bool{}
			for name, s := range cf.Services {
				if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
					t.Errorf("%s has no healthcheck", name)
				}
				if s.Restart != "unless-stopped" {
					t.Errorf("%s restart %q", name, s.Restart)
				}
				env := render.ImageEnv[name]
				if !strings.HasPrefix(s.Image, "${"+env+":-") {
					t.Errorf("%s image %q is not overridable by %s", name, s.Image, env)
				}
				for _, p := range s.Ports {
					parts := strings.Split(p, ":")
					if len(parts) == 3 {
						if parts[0] != "127.0.0.1" {
							t.Errorf("%s publishes %s on %s", name, p, parts[0])
						}
						continue
					}
					host, err := strconv.Atoi(parts[0])
					if err != nil {
						t.Fatalf("%s port %q", name, p)
					}
					public[host] = true
				}
			}
			want := map[int]bool{}
			if d.Spec.Target.Provider != myt.ProviderLocal {
				want[render.GrafanaPort] = true // to admin CIDRs; local keeps it on loopback
			}
			for _, p := range d.Spec.Broker.Ports() {
				want[p] = true
			}
			for p := range public {
				if !want[p] {
					t.Errorf("port %d is published to the network", p)
				}
			}
			for p := range want {
				if !public[p] {
					t.Errorf("port %d is not published", p)
				}
			}
			if public[render.ManagementPort] || public[render.WorkerAPIPort] || public[render.WorkerHostPort] {
				t.Error("management or worker API published to the network")
			}
			if !slices.Contains(cf.Services["rabbitmq"].Ports, "127.0.0.1:15672:15672") {
				t.Errorf("management port not on loopback: %v", cf.Services["rabbitmq"].Ports)
			}
			if (public[1883] || public[5672]) && !d.Spec.Broker.Plaintext {
				t.Error("plaintext port published without plaintext: true")
			}
			for name, v := range cf.Volumes {
				if dev := v.DriverOpts["device"]; dev != "${MYT_DATA_DIR:-/srv/myt/data}/"+name {
					t.Errorf("volume %s is at %q, not under the data directory", name, dev)
				}
			}
			for name, s := range cf.Secrets {
				if s.File != "./secrets/"+name || b.File("platform/secrets/"+name) == nil {
					t.Errorf("compose secret %s -> %s has no file in the bundle", name, s.File)
				}
			}
			g := cf.Services["grafana"].Environment
			if g["GF_SERVER_PROTOCOL"] != "https" || g["GF_AUTH_ANONYMOUS_ENABLED"] != "false" || g["GF_USERS_ALLOW_SIGN_UP"] != "false" || g["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "" {
				t.Errorf("grafana environment: %v", g)
			}

			conf := string(b.File("platform/rabbitmq/rabbitmq.conf").Data)
			for _, line := range []string{"mqtt.allow_anonymous = false", "loopback_users.guest = true", "ssl_options.keyfile = /run/secrets/rabbitmq_tls_key"} {
				if !strings.Contains(conf, line+"\n") {
					t.Errorf("rabbitmq.conf lacks %q", line)
				}
			}
			if d.Spec.Broker.MQTT && !d.Spec.Broker.Plaintext && !strings.Contains(conf, "mqtt.listeners.tcp = none\n") {
				t.Error("MQTT plaintext listener not disabled")
			}
			if d.Spec.Broker.MQTT && d.Spec.Broker.TLS != strings.Contains(conf, "mqtt.listeners.ssl.default = 8883") {
				t.Error("MQTTS listener does not follow broker.tls")
			}

			var defs struct {
				Users  []map[string]any `json:"users"`
				Queues []struct {
					Name      string         `json:"name"`
					Durable   bool           `json:"durable"`
					Arguments map[string]any `json:"arguments"`
				} `json:"queues"`
			}
			if err := json.Unmarshal(b.File("platform/secrets/rabbitmq_definitions.json").Data, &defs); err != nil {
				t.Fatal(err)
			}
			for _, u := range defs.Users {
				if u["name"] == "guest" || u["password"] != nil || u["password_hash"] == nil {
					t.Errorf("user %v", u)
				}
			}
			if len(defs.Queues) != 2 || defs.Queues[0].Name != "myt.ingest" || !defs.Queues[0].Durable ||
				defs.Queues[0].Arguments["x-queue-type"] != "quorum" || defs.Queues[0].Arguments["x-dead-letter-routing-key"] != "myt.dead" {
				t.Errorf("queues %+v", defs.Queues)
			}
		})
	}
}

// TestWorkerConfig reads the rendered worker.yaml with the worker's own
// loader, as `myt worker --config` will.
func TestWorkerConfig(t *testing.T) {
	for _, c := range designs(t) {
		t.Run(c.name, func(t *testing.T) {
			b := mustRender(t, c.d)
			cfg, err := worker.ParseConfig(b.File("platform/worker/worker.yaml").Data)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Database.Kind != c.d.Spec.Database.Kind || cfg.DeclareTopology() || cfg.HTTP.TokenFile == "" {
				t.Errorf("config %+v", cfg)
			}
			if len(c.d.Spec.Database.Fields) != len(cfg.Database.Fields) {
				t.Errorf("fields %v, want %v", cfg.Database.Fields, c.d.Spec.Database.Fields)
			}
			hasHandler := b.File("platform/worker/handler/handler.py") != nil
			if hasHandler != (c.d.Spec.Processing.Handler != "") || hasHandler != (cfg.Handler.Path != "") {
				t.Errorf("handler file %v, path %q", hasHandler, cfg.Handler.Path)
			}
			if cfg.Handler.Timeout.D().Seconds() != float64(c.d.Spec.Processing.TimeoutSeconds) {
				t.Errorf("timeout %v", cfg.Handler.Timeout.D())
			}
			if cfg.Database.RetentionDays != c.d.Spec.Database.RetentionDays {
				t.Errorf("retentionDays %d, want %d", cfg.Database.RetentionDays, c.d.Spec.Database.RetentionDays)
			}
			// The broker topology the worker consumes from is the one
			// definitions.json declares.
			var defs struct {
				Queues []struct {
					Name      string         `json:"name"`
					Arguments map[string]any `json:"arguments"`
				} `json:"queues"`
				Bindings []struct {
					Source, Destination string
					RoutingKey          string `json:"routing_key"`
				} `json:"bindings"`
			}
			if err := json.Unmarshal(b.File("platform/secrets/rabbitmq_definitions.json").Data, &defs); err != nil {
				t.Fatal(err)
			}
			if len(defs.Queues) != 2 || defs.Queues[0].Name != cfg.AMQP.Queue || defs.Queues[1].Name != cfg.AMQP.DeadQueue ||
				defs.Queues[0].Arguments["x-dead-letter-routing-key"] != cfg.AMQP.DeadQueue {
				t.Errorf("queues %+v, worker consumes %s dead-letters to %s", defs.Queues, cfg.AMQP.Queue, cfg.AMQP.DeadQueue)
			}
			if len(defs.Bindings) != 1 || defs.Bindings[0].Source != cfg.AMQP.Exchange || defs.Bindings[0].Destination != cfg.AMQP.Queue ||
				defs.Bindings[0].RoutingKey != cfg.RoutingPattern() {
				t.Errorf("bindings %+v, worker wants %s -> %s with %s", defs.Bindings, cfg.AMQP.Exchange, cfg.AMQP.Queue, cfg.RoutingPattern())
			}
			// Every secret file the worker reads is mounted into it.
			cf := loadCompose(t, b)
			for _, path := range []string{cfg.AMQP.PasswordFile, cfg.Database.DSNFile, cfg.HTTP.TokenFile} {
				name := strings.TrimPrefix(path, "/run/secrets/")
				if !slices.Contains(cf.Services["worker"].Secrets, name) {
					t.Errorf("worker reads %s but compose does not give it", path)
				}
			}
		})
	}
}

// TestProviderParts: clouds get infra/ and ansible/, ssh only ansible/,
// local neither.
func TestProviderParts(t *testing.T) {
	for _, c := range designs(t) {
		b := mustRender(t, c.d)
		p := c.d.Spec.Target.Provider
		hasInfra := b.File("infra/main.tf") != nil
		hasAnsible := b.File("ansible/site.yml") != nil
		cloud := p != myt.ProviderSSH && p != myt.ProviderLocal
		if hasInfra != cloud || hasAnsible != (p != myt.ProviderLocal) {
			t.Errorf("%s: infra %v ansible %v", c.name, hasInfra, hasAnsible)
		}
	}
}

// TestOwners: owners.txt names every compose volume and secret file once,
// a volume mounted by a service that runs as a fixed user is owned by that
// user, and Ansible's group_vars carry the same owners.
func TestOwners(t *testing.T) {
	for _, c := range designs(t) {
		t.Run(c.name, func(t *testing.T) {
			b := mustRender(t, c.d)
			cf := loadCompose(t, b)
			secrets, volumes, groups := map[string]int{}, map[string]int{}, map[string]int{}
			for _, line := range strings.Split(string(b.File("platform/owners.txt").Data), "\n") {
				f := strings.Fields(line)
				if len(f) == 0 || strings.HasPrefix(line, "#") {
					continue
				}
				uid, err := strconv.Atoi(f[2])
				if len(f) != map[string]int{"secret": 3, "volume": 4}[f[0]] || err != nil {
					t.Fatalf("owners.txt line %q", line)
				}
				if f[0] == "volume" {
					if groups[f[1]], err = strconv.Atoi(f[3]); err != nil {
						t.Fatalf("owners.txt line %q", line)
					}
				}
				m := map[string]map[string]int{"secret": secrets, "volume": volumes}[f[0]]
				if m == nil {
					t.Fatalf("owners.txt line %q", line)
				}
				if _, dup := m[f[1]]; dup {
					t.Errorf("owners.txt names %s twice", f[1])
				}
				m[f[1]] = uid
			}
			for name := range cf.Volumes {
				if _, ok := volumes[name]; !ok {
					t.Errorf("volume %s has no owner", name)
				}
			}
			for name := range cf.Secrets {
				if _, ok := secrets[name]; !ok {
					t.Errorf("secret %s has no owner", name)
				}
			}
			if len(volumes) != len(cf.Volumes) || len(secrets) != len(cf.Secrets) {
				t.Errorf("owners.txt: %d volumes, %d secrets; compose: %d, %d", len(volumes), len(secrets), len(cf.Volumes), len(cf.Secrets))
			}
			for svc, sv := range cf.Services {
				if sv.User == "" {
					continue // a database image takes its directory over
				}
				u, g, _ := strings.Cut(sv.User, ":")
				uid, err := strconv.Atoi(u)
				if err != nil {
					t.Fatalf("%s user %q", svc, sv.User)
				}
				gid, err := strconv.Atoi(g)
				if err != nil {
					t.Fatalf("%s group %q", svc, sv.User)
				}
				for _, m := range sv.Volumes {
					if name, _, _ := strings.Cut(m, ":"); !strings.HasPrefix(name, ".") && (volumes[name] != uid || groups[name] != gid) {
						t.Errorf("volume %s of %s (%d:%d) is owned by %d:%d", name, svc, uid, gid, volumes[name], groups[name])
					}
				}
				for _, name := range sv.Secrets {
					if secrets[name] != uid {
						t.Errorf("secret %s of %s (uid %d) is owned by %d", name, svc, uid, secrets[name])
					}
				}
			}
			gv := b.File("ansible/group_vars/all.yml")
			if gv == nil {
				return
			}
			var vars struct {
				Secrets map[string]int `yaml:"myt_secret_owners"`
				Volumes map[string]int `yaml:"myt_data_volumes"`
			}
			if err := yaml.Unmarshal(gv.Data, &vars); err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(vars.Secrets, secrets) || !maps.Equal(vars.Volumes, volumes) {
				t.Errorf("group_vars owners %v %v, owners.txt %v %v", vars.Secrets, vars.Volumes, secrets, volumes)
			}
		})
	}
}

// TestWriteDirTightensSecretDirs: rendering over an earlier bundle whose
// secret directories are 0755 makes each directory holding a secret 0700.
func TestWriteDirTightensSecretDirs(t *testing.T) {
	b := mustRender(t, designNamed(t, "aws-timescaledb"))
	dir := t.TempDir()
	dirs := map[string]bool{}
	for _, f := range b.Files {
		if f.Secret {
			dirs[filepath.Dir(filepath.Join(dir, filepath.FromSlash(f.Path)))] = true
		}
	}
	if len(dirs) < 4 {
		t.Fatalf("only %d directories hold secrets: %v", len(dirs), dirs)
	}
	for d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	for d := range dirs {
		info, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o700 {
			t.Errorf("%s has mode %o, want 0700", d, info.Mode().Perm())
		}
	}
}

// TestDatabaseSecrets: each database kind gets exactly its secret files,
// and Grafana's datasource reads the file compose gives it.
func TestDatabaseSecrets(t *testing.T) {
	want := map[string][]string{
		myt.DatabaseMySQL:       {"db_grafana_password", "db_root_password", "grafana_db_password"},
		myt.DatabaseTimescaleDB: {"db_grafana_password", "grafana_db_password"},
		myt.DatabaseMongoDB:     {"grafana_worker_token", "worker_export_token"},
		myt.DatabaseInfluxDB:    {"influxdb_token"},
	}
	common := []string{"db_dsn", "db_password", "grafana_admin_password", "grafana_tls_key", "rabbitmq_definitions.json", "rabbitmq_tls_key", "rabbitmq_worker_password", "worker_api_token"}
	seen := map[string]bool{}
	for _, c := range designs(t) {
		kind := c.d.Spec.Database.Kind
		seen[kind] = true
		b := mustRender(t, c.d)
		var got []string
		for _, f := range b.Files {
			if n, ok := strings.CutPrefix(f.Path, "platform/secrets/"); ok {
				got = append(got, n)
			}
		}
		exp := slices.Sorted(slices.Values(append(slices.Clone(common), want[kind]...)))
		if !slices.Equal(got, exp) {
			t.Errorf("%s: secret files %v, want %v", c.name, got, exp)
		}
		cf := loadCompose(t, b)
		ds := string(b.File("platform/grafana/provisioning/datasources/myt.yaml").Data)
		for _, n := range want[kind] {
			if strings.HasPrefix(n, "grafana_") {
				if !slices.Contains(cf.Services["grafana"].Secrets, n) || !strings.Contains(ds, "$__file{/run/secrets/"+n+"}") {
					t.Errorf("%s: Grafana's datasource does not read %s through compose", c.name, n)
				}
			} else if svc := map[bool]string{true: "worker", false: kind}[strings.HasPrefix(n, "worker_")]; !slices.Contains(cf.Services[svc].Secrets, n) {
				t.Errorf("%s: %s is not given to %s", c.name, n, svc)
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("designs cover %v, want every kind in %v", seen, want)
	}
}

// secretReader is the uid that a service's image reads secret file name
// as, from the images' own entrypoints rather than from the renderer: the
// compose user where the service sets one; mysql (mysql:8.4) and postgres
// (timescale/timescaledb, on postgres Alpine) read their *_FILE variables
// as root, then run their init scripts as their own user (999, 70); the
// mongo image drops to 999 first; influxdb:2 does everything as root.
func secretReader(service, user, name string) (int, bool) {
	if user != "" {
		uid, err := strconv.Atoi(strings.Split(user, ":")[0])
		return uid, err == nil
	}
	uid, ok := map[string]map[string]int{
		"mysql":       {"db_password": 0, "db_root_password": 0, "db_grafana_password": 999},
		"timescaledb": {"db_password": 0, "db_grafana_password": 70},
		"mongodb":     {"db_password": 999},
		"influxdb":    {"db_password": 0, "influxdb_token": 0},
	}[service][name]
	return uid, ok
}

// TestSecretOwnersPerImage: every secret file a service mounts is owned
// (owners.txt, group_vars) by the uid that service's image reads it as
// (secretReader: the compose user, or the image's documented entrypoint).
func TestSecretOwnersPerImage(t *testing.T) {
	for _, c := range designs(t) {
		t.Run(c.name, func(t *testing.T) {
			b := mustRender(t, c.d)
			cf := loadCompose(t, b)
			owners := map[string]int{}
			for _, line := range strings.Split(string(b.File("platform/owners.txt").Data), "\n") {
				if f := strings.Fields(line); len(f) == 3 && f[0] == "secret" {
					owners[f[1]], _ = strconv.Atoi(f[2])
				}
			}
			for svc, sv := range cf.Services {
				for _, name := range sv.Secrets {
					want, ok := secretReader(svc, sv.User, name)
					if !ok {
						t.Errorf("%s mounts %s, which no known reader reads", svc, name)
						continue
					}
					if got, ok := owners[name]; !ok || got != want {
						t.Errorf("secret %s of %s is owned by %d, but the image reads it as %d", name, svc, got, want)
					}
				}
			}
		})
	}
}

// TestGrafanaLeastPrivilege: Grafana's datasource never holds an owner's
// or the operator's credential. MySQL and TimescaleDB: it signs in as the
// read-only user that the database's init script (mounted where the image
// runs it, reading its own copy of the password) creates with SELECT
// only; TestPlatformEndToEnd proves the grants on real databases.
// InfluxDB: it reads a token that the init script asks InfluxDB for, read
// on the bucket only; the script runs here against a stand-in influx CLI
// that records its arguments and answers as influx auth create --json.
func TestGrafanaLeastPrivilege(t *testing.T) {
	for _, c := range designs(t) {
		t.Run(c.name, func(t *testing.T) {
			kind := c.d.Spec.Database.Kind
			b := mustRender(t, c.d)
			cf := loadCompose(t, b)
			var doc struct {
				Datasources []struct {
					User           string            `yaml:"user"`
					SecureJSONData map[string]string `yaml:"secureJsonData"`
				} `yaml:"datasources"`
			}
			if err := yaml.Unmarshal(b.File("platform/grafana/provisioning/datasources/myt.yaml").Data, &doc); err != nil || len(doc.Datasources) != 1 {
				t.Fatalf("datasource: %v", err)
			}
			ds := doc.Datasources[0]
			secret := func(name string) string {
				f := b.File("secrets.d/" + name)
				if f == nil {
					return ""
				}
				return string(bytes.TrimSpace(f.Data))
			}
			owners := []string{secret(render.SecretDB), secret(render.SecretDBRoot), secret(render.SecretInfluxToken), secret(render.SecretWorkerToken)}
			for _, n := range cf.Services["grafana"].Secrets {
				v := string(bytes.TrimSpace(b.File("platform/secrets/" + n).Data))
				if slices.Contains(owners, v) {
					t.Errorf("Grafana's secret %s holds an owner's or the operator's credential", n)
				}
			}
			switch kind {
			case myt.DatabaseMySQL, myt.DatabaseTimescaleDB:
				if ds.User != render.GrafanaDBUser || ds.SecureJSONData["password"] != "$__file{/run/secrets/"+render.SecretGrafanaDB+"}" {
					t.Errorf("datasource user %q, password %q", ds.User, ds.SecureJSONData["password"])
				}
				init := map[string]string{myt.DatabaseMySQL: "020-myt-grafana.sh", myt.DatabaseTimescaleDB: "020-myt-grafana.sql"}[kind]
				f := b.File("platform/db/init/" + init)
				if f == nil {
					t.Fatalf("no init script %s", init)
				}
				if !slices.Contains(cf.Services[kind].Volumes, "./db/init/"+init+":/docker-entrypoint-initdb.d/"+init+":ro") {
					t.Errorf("%s does not mount %s into /docker-entrypoint-initdb.d", kind, init)
				}
				if !strings.Contains(string(f.Data), "/run/secrets/db_grafana_password") || !slices.Contains(cf.Services[kind].Secrets, "db_grafana_password") ||
					secret(render.SecretGrafanaDB) != string(bytes.TrimSpace(b.File("platform/secrets/db_grafana_password").Data)) {
					t.Errorf("%s's init script does not read Grafana's password from its own secret file", kind)
				}
				for _, grant := range regexp.MustCompile(`(?i)GRANT\s+(\w+)`).FindAllStringSubmatch(string(f.Data), -1) {
					if g := strings.ToUpper(grant[1]); g != "SELECT" && g != "CONNECT" && g != "USAGE" {
						t.Errorf("%s grants %s", init, g)
					}
				}
			case myt.DatabaseMongoDB:
				// The worker's export token, which it accepts for
				// GET /v1/export only (worker's TestExportTokenOnlyExports).
				wc, err := worker.ParseConfig(b.File("platform/worker/worker.yaml").Data)
				if err != nil {
					t.Fatal(err)
				}
				if ds.SecureJSONData["bearerToken"] != "$__file{/run/secrets/grafana_worker_token}" ||
					string(bytes.TrimSpace(b.File("platform/secrets/grafana_worker_token").Data)) != secret(render.SecretWorkerExportToken) ||
					wc.HTTP.ExportTokenFile != "/run/secrets/worker_export_token" || !slices.Contains(cf.Services["worker"].Secrets, "worker_export_token") {
					t.Errorf("Grafana does not read the worker with its export token: %q, worker http %+v", ds.SecureJSONData["bearerToken"], wc.HTTP)
				}
			case myt.DatabaseInfluxDB:
				cred := ds.SecureJSONData["token"]
				if strings.Contains(cred, "/run/secrets/") || slices.Contains(cf.Services["grafana"].Secrets, "influxdb_token") {
					t.Errorf("Grafana reads InfluxDB with %q, secrets %v", cred, cf.Services["grafana"].Secrets)
				}
				path := strings.TrimSuffix(strings.TrimPrefix(cred, "$__file{"), "}")
				if !slices.Contains(cf.Services["grafana"].Volumes, "influxdb-grafana:"+filepath.Dir(path)+":ro") ||
					!slices.Contains(cf.Services["influxdb"].Volumes, "influxdb-grafana:"+filepath.Dir(path)) {
					t.Errorf("the token's directory %s is not shared (influxdb: %v, grafana: %v)", filepath.Dir(path), cf.Services["influxdb"].Volumes, cf.Services["grafana"].Volumes)
				}
				script := b.File("platform/db/init/020-myt-grafana-token.sh")
				if script == nil {
					t.Fatal("no token script")
				}
				for _, answer := range []string{"{\n\t\"id\": \"0a1b\",\n\t\"token\": \"R3ad-only==\",\n\t\"status\": \"active\"\n}\n", `[{"id":"0a1b","token":"R3ad-only==","status":"active"}]`} {
					args, owner, token := runInfluxInit(t, string(script.Data), path, answer)
					if token != "R3ad-only==" || owner != "472:0 " {
						t.Errorf("token file %q, chown %q", token, owner)
					}
					if !strings.Contains(args, "--read-bucket bucket-id-1") || strings.Contains(args, "--write") || strings.Contains(args, "--all-access") || strings.Contains(args, "--operator") {
						t.Errorf("influx %s", args)
					}
				}
			}
		})
	}
}

// runInfluxInit runs InfluxDB's init script as the image would (bash,
// its init variables set) with influx and chown replaced by recorders,
// and the token file moved from path into a temporary directory. It
// returns influx's arguments, chown's, and the token file's content.
func runInfluxInit(t *testing.T, script, path, answer string) (args, owner, token string) {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	out := filepath.Join(dir, "token")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	stub := func(name, body string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stub("influx", "echo \"$@\" >"+filepath.Join(dir, "args")+"\ncat <<'EOF'\n"+answer+"\nEOF\n")
	stub("chown", "echo \"$1 \" >"+filepath.Join(dir, "owner")+"\n")
	cmd := exec.Command(bash, "-c", strings.ReplaceAll(script, path, out))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "DOCKER_INFLUXDB_INIT_ORG=myt", "DOCKER_INFLUXDB_INIT_BUCKET_ID=bucket-id-1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("init script: %v\n%s", err, b)
	}
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimRight(string(b), "\n")
	}
	if info, err := os.Stat(out); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("token file: %v %v", info, err)
	}
	return read(filepath.Join(dir, "args")), read(filepath.Join(dir, "owner")), read(out)
}
