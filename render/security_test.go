package render_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
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
			if public[render.ManagementPort] || public[render.WorkerAPIPort] {
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
		myt.DatabaseMySQL:       {"db_root_password", "grafana_db_password"},
		myt.DatabaseTimescaleDB: {"grafana_db_password"},
		myt.DatabaseMongoDB:     {"grafana_worker_token"},
		myt.DatabaseInfluxDB:    {"grafana_influxdb_token", "influxdb_token"},
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
			} else if !slices.Contains(cf.Services[kind].Secrets, n) {
				t.Errorf("%s: %s is not given to %s", c.name, n, kind)
			}
		}
	}
	if len(seen) != len(want) {
		t.Errorf("designs cover %v, want every kind in %v", seen, want)
	}
}
