// Command myt-grafana stands in for grafana/grafana-oss in the local test
// image "grafana" (no Grafana can be obtained here: it is neither in Debian
// nor reachable from a registry). It is not Grafana: it serves no UI, runs
// no queries and installs no plugins. It reads the upstream image's
// settings that the platform's compose file uses and proves that the
// service is wired the way Grafana would need it:
//
//   - GF_SERVER_PROTOCOL (http or https), GF_SERVER_HTTP_ADDR,
//     GF_SERVER_HTTP_PORT (3000), GF_SERVER_CERT_FILE, GF_SERVER_CERT_KEY:
//     with https it serves TLS with that certificate and key;
//   - GF_SECURITY_ADMIN_USER (admin) and GF_SECURITY_ADMIN_PASSWORD
//     (admin): HTTP basic auth on /api/* except /api/health;
//   - every GF_* variable also as GF_*__FILE (Grafana's convention, the
//     file's trailing newlines dropped);
//   - GF_PATHS_PROVISIONING (/etc/grafana/provisioning): datasources/*.yaml
//     and dashboards/*.yaml are parsed at start; $__file{PATH} and
//     $__env{NAME} in them are expanded;
//   - GF_PATHS_DATA (/var/lib/grafana) must be writable.
//
// It refuses to start, with one log line naming the variable and the file,
// when the certificate, key, password file, data directory or a
// provisioned datasource's $__file{} secret is missing, as Grafana fails
// to start then too.
//
// API: GET /api/health {"database":"ok","version":"standin"} without
// authentication; with it, GET /api/datasources, /api/datasources/uid/UID
// (secureJsonData never shown, only secureJsonFields), /api/search (the
// provisioned dashboards) and /api/dashboards/uid/UID. See docs/testing.md.
package main

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"
)

// version is what /api/health reports: this is no Grafana release.
const version = "standin"

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("logger", "myt-grafana")
	cfg, err := configFromEnv(os.Getenv, os.ReadFile)
	if err == nil {
		err = cfg.check()
	}
	var prov *provisioned
	if err == nil {
		prov, err = provision(cfg.provisioning, os.Getenv, os.ReadFile, log)
	}
	if err != nil {
		log.Error("refusing to start: " + err.Error())
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := serve(ctx, log, cfg, prov); err != nil {
		log.Error("server stopped", "err", err)
		os.Exit(1)
	}
}

// config is what the GF_* variables say.
type config struct {
	protocol          string // http or https
	addr              string // host:port
	certFile, keyFile string
	user, password    string
	provisioning      string
	dataDir           string
	plugins           string // GF_INSTALL_PLUGINS, reported and ignored
}

// configFromEnv reads the GF_* variables (and their __FILE forms) with
// Grafana's defaults.
func configFromEnv(getenv func(string) string, readFile func(string) ([]byte, error)) (config, error) {
	var firstErr error
	get := func(name, def string) string {
		if f := getenv(name + "__FILE"); f != "" {
			b, err := readFile(f)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("%s__FILE=%s: %w", name, f, unwrapPath(err))
				}
				return ""
			}
			return strings.TrimRight(string(b), "\n")
		}
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	c := config{
		protocol:     get("GF_SERVER_PROTOCOL", "http"),
		addr:         net.JoinHostPort(get("GF_SERVER_HTTP_ADDR", ""), get("GF_SERVER_HTTP_PORT", "3000")),
		certFile:     get("GF_SERVER_CERT_FILE", ""),
		keyFile:      get("GF_SERVER_CERT_KEY", ""),
		user:         get("GF_SECURITY_ADMIN_USER", "admin"),
		password:     get("GF_SECURITY_ADMIN_PASSWORD", "admin"),
		provisioning: get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning"),
		dataDir:      get("GF_PATHS_DATA", "/var/lib/grafana"),
		plugins:      get("GF_INSTALL_PLUGINS", ""),
	}
	if firstErr != nil {
		return c, firstErr
	}
	switch c.protocol {
	case "http":
	case "https":
		if c.certFile == "" || c.keyFile == "" {
			return c, errors.New("GF_SERVER_PROTOCOL=https needs GF_SERVER_CERT_FILE and GF_SERVER_CERT_KEY")
		}
	default:
		return c, fmt.Errorf("GF_SERVER_PROTOCOL=%s: the stand-in serves http or https only", c.protocol)
	}
	if c.password == "" {
		return c, errors.New("GF_SECURITY_ADMIN_PASSWORD is empty")
	}
	return c, nil
}

// check reads the files config names: certificate and key, and a probe
// file in the data directory.
func (c config) check() error {
	if c.protocol == "https" {
		for _, f := range []struct{ name, path string }{{"GF_SERVER_CERT_FILE", c.certFile}, {"GF_SERVER_CERT_KEY", c.keyFile}} {
			if _, err := os.Stat(f.path); err != nil {
				return fmt.Errorf("%s=%s: %w", f.name, f.path, unwrapPath(err))
			}
		}
		if _, err := tls.LoadX509KeyPair(c.certFile, c.keyFile); err != nil {
			return fmt.Errorf("GF_SERVER_CERT_FILE=%s, GF_SERVER_CERT_KEY=%s: %w", c.certFile, c.keyFile, err)
		}
	}
	probe := filepath.Join(c.dataDir, "myt-grafana-standin")
	if err := os.WriteFile(probe, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o640); err != nil {
		return fmt.Errorf("GF_PATHS_DATA=%s is not writable (uid %d): %w", c.dataDir, os.Getuid(), unwrapPath(err))
	}
	return nil
}

// unwrapPath drops *fs.PathError's repetition of the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// datasource is one provisioned datasource, as /api/datasources shows it.
type datasource struct {
	ID               int               `json:"id"`
	UID              string            `json:"uid" yaml:"uid"`
	OrgID            int               `json:"orgId" yaml:"orgId"`
	Name             string            `json:"name" yaml:"name"`
	Type             string            `json:"type" yaml:"type"`
	Access           string            `json:"access" yaml:"access"`
	URL              string            `json:"url" yaml:"url"`
	User             string            `json:"user" yaml:"user"`
	Database         string            `json:"database" yaml:"database"`
	BasicAuth        bool              `json:"basicAuth" yaml:"basicAuth"`
	IsDefault        bool              `json:"isDefault" yaml:"isDefault"`
	Editable         bool              `json:"-" yaml:"editable"`
	ReadOnly         bool              `json:"readOnly"`
	JSONData         map[string]any    `json:"jsonData" yaml:"jsonData"`
	SecureJSONData   map[string]string `json:"-" yaml:"secureJsonData"`
	SecureJSONFields map[string]bool   `json:"secureJsonFields"`
	File             string            `json:"-" yaml:"-"` // provisioning file it came from
}

// dashboard is one dashboard found through a file provider.
type dashboard struct {
	UID, Title, Folder, File string
	JSON                     map[string]any
}

// provisioned is what the provisioning directory held at start.
type provisioned struct {
	datasources []datasource
	dashboards  []dashboard
}

var fileRef = regexp.MustCompile(`\$__(file|env)\{([^}]*)\}`)

// provision reads dir/datasources/*.y*ml and dir/dashboards/*.y*ml, and
// the dashboards the file providers point at. A datasource file that does
// not parse, a datasource without a name, two default datasources or a
// $__file{} secret that cannot be read is an error; a dashboard that does
// not parse is logged and skipped (both as in Grafana).
func provision(dir string, getenv func(string) string, readFile func(string) ([]byte, error), log *slog.Logger) (*provisioned, error) {
	p := &provisioned{}
	expand := func(s string) (string, error) {
		var err error
		out := fileRef.ReplaceAllStringFunc(s, func(m string) string {
			sub := fileRef.FindStringSubmatch(m)
			if sub[1] == "env" {
				return getenv(sub[2])
			}
			b, rerr := readFile(sub[2])
			if rerr != nil && err == nil {
				err = fmt.Errorf("$__file{%s}: %w", sub[2], unwrapPath(rerr))
			}
			return strings.TrimRight(string(b), "\n")
		})
		return out, err
	}
	files, err := yamlFiles(filepath.Join(dir, "datasources"))
	if err != nil {
		return nil, err
	}
	defaults := map[int]string{}
	for _, f := range files {
		b, err := readFile(f)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Datasources []datasource `yaml:"datasources"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("datasource provisioning file %s: %w", f, err)
		}
		for _, ds := range doc.Datasources {
			if ds.Name == "" {
				return nil, fmt.Errorf("datasource provisioning file %s: a datasource has no name", f)
			}
			if ds.OrgID == 0 {
				ds.OrgID = 1
			}
			if ds.Access == "" {
				ds.Access = "proxy"
			}
			if ds.IsDefault {
				if other, ok := defaults[ds.OrgID]; ok {
					return nil, fmt.Errorf("datasource provisioning file %s: %q and %q are both default: only one datasource per organization can be", f, other, ds.Name)
				}
				defaults[ds.OrgID] = ds.Name
			}
			ds.ID, ds.File, ds.ReadOnly = len(p.datasources)+1, f, !ds.Editable
			ds.SecureJSONFields = map[string]bool{}
			for k, v := range ds.SecureJSONData {
				if _, err := expand(v); err != nil {
					return nil, fmt.Errorf("datasource %q (%s) secureJsonData.%s: %w", ds.Name, f, k, err)
				}
				ds.SecureJSONFields[k] = true
			}
			if ds.URL, err = expand(ds.URL); err != nil {
				return nil, fmt.Errorf("datasource %q (%s) url: %w", ds.Name, f, err)
			}
			if ds.JSONData == nil {
				ds.JSONData = map[string]any{}
			}
			p.datasources = append(p.datasources, ds)
			log.Info("provisioned datasource", "name", ds.Name, "uid", ds.UID, "type", ds.Type, "file", f)
		}
	}

	if files, err = yamlFiles(filepath.Join(dir, "dashboards")); err != nil {
		return nil, err
	}
	for _, f := range files {
		b, err := readFile(f)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Providers []struct {
				Name    string `yaml:"name"`
				Folder  string `yaml:"folder"`
				Type    string `yaml:"type"`
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("dashboard provisioning file %s: %w", f, err)
		}
		for _, pr := range doc.Providers {
			if pr.Type != "" && pr.Type != "file" {
				log.Warn("dashboard provider type not supported by the stand-in", "provider", pr.Name, "type", pr.Type)
				continue
			}
			err := filepath.WalkDir(pr.Options.Path, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				if d.IsDir() || filepath.Ext(path) != ".json" {
					return nil
				}
				raw, err := readFile(path)
				if err != nil {
					return err
				}
				var j map[string]any
				if err := json.Unmarshal(raw, &j); err != nil {
					log.Error("dashboard does not parse: skipped", "file", path, "err", err)
					return nil
				}
				db := dashboard{File: path, Folder: pr.Folder, JSON: j}
				db.UID, _ = j["uid"].(string)
				db.Title, _ = j["title"].(string)
				p.dashboards = append(p.dashboards, db)
				log.Info("provisioned dashboard", "title", db.Title, "uid", db.UID, "file", path)
				return nil
			})
			if err != nil {
				log.Error("dashboard provider: cannot read its path", "provider", pr.Name, "path", pr.Options.Path, "err", err)
			}
		}
	}
	return p, nil
}

// yamlFiles lists dir's *.yaml and *.yml files, sorted; a missing dir is
// empty.
func yamlFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); !e.IsDir() && (ext == ".yaml" || ext == ".yml") {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// serve listens until ctx ends.
func serve(ctx context.Context, log *slog.Logger, cfg config, prov *provisioned) error {
	if cfg.plugins != "" {
		log.Warn("GF_INSTALL_PLUGINS ignored: the stand-in installs no plugins", "plugins", cfg.plugins)
	}
	srv := &http.Server{Addr: cfg.addr, Handler: handler(cfg, prov), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	served := make(chan error, 1)
	go func() {
		if cfg.protocol == "https" {
			served <- srv.ListenAndServeTLS(cfg.certFile, cfg.keyFile)
		} else {
			served <- srv.ListenAndServe()
		}
	}()
	log.Info("HTTP Server Listen", "address", cfg.addr, "protocol", cfg.protocol, "datasources", len(prov.datasources), "dashboards", len(prov.dashboards))
	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// handler serves the API subset; every /api/* path but /api/health needs
// the admin's basic auth.
func handler(cfg config, prov *provisioned) http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /api/datasources", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, prov.datasources)
	})
	api.HandleFunc("GET /api/datasources/uid/{uid}", func(w http.ResponseWriter, r *http.Request) {
		for _, ds := range prov.datasources {
			if ds.UID == r.PathValue("uid") {
				writeJSON(w, http.StatusOK, ds)
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Data source not found"})
	})
	api.HandleFunc("GET /api/search", func(w http.ResponseWriter, r *http.Request) {
		out := []map[string]any{}
		for i, d := range prov.dashboards {
			out = append(out, map[string]any{"id": i + 1, "uid": d.UID, "title": d.Title, "type": "dash-db",
				"url": "/d/" + d.UID, "folderTitle": d.Folder})
		}
		writeJSON(w, http.StatusOK, out)
	})
	api.HandleFunc("GET /api/dashboards/uid/{uid}", func(w http.ResponseWriter, r *http.Request) {
		for _, d := range prov.dashboards {
			if d.UID == r.PathValue("uid") {
				writeJSON(w, http.StatusOK, map[string]any{"dashboard": d.JSON,
					"meta": map[string]any{"provisioned": true, "provisionedExternalId": filepath.Base(d.File), "folderTitle": d.Folder}})
				return
			}
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Dashboard not found"})
	})
	api.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": r.URL.Path + " is not served by the MyT Grafana stand-in"})
	})

	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"database": "ok", "version": version})
	})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(cfg.user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(cfg.password)) != 1 {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"message": "Unauthorized"})
			return
		}
		api.ServeHTTP(w, r)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "MyT Grafana stand-in (test image; not Grafana): see /api/health")
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
