// Command myt-influx2 lets the local InfluxDB 1.x test image stand in for
// influxdb:2.x in the platform's compose file. It runs influxd 1.x on
// 127.0.0.1:8087 as a child and serves, on :8086, the part of the 2.x HTTP
// API that MyT uses, translated to 1.x:
//
//   - DOCKER_INFLUXDB_INIT_MODE=setup with _BUCKET, _RETENTION and
//     _ADMIN_TOKEN (or _ADMIN_TOKEN_FILE): at first start the bucket is
//     created as a 1.x database of the same name (with that retention);
//   - POST /api/v2/write?org=&bucket=&precision= with "Authorization: Token
//     T" writes line protocol into that database;
//   - /query and /write (the 1.x compatibility API that 2.x also serves,
//     bucket = database) with the token;
//   - /ping and /health;
//   - read tokens: `influx auth create --read-bucket ID` (run by an init
//     script before the server starts) makes a token that /query accepts
//     for SELECT and SHOW only, and every write refuses.
//
// Everything else (Flux, /api/v2/query, orgs, users, tasks) answers 404.
// Invoked as "influx" (a symlink in the image), `influx ping` checks /health
// for the compose healthcheck and `influx auth create` makes a read token;
// it is no other CLI. See docs/testing.md.
package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	listenAddr = ":8086"
	innerAddr  = "127.0.0.1:8087"
	dataDir    = "/var/lib/influxdb2"
)

func main() {
	if filepath.Base(os.Args[0]) == "influx" {
		os.Exit(cli(os.Args[1:]))
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := configFromEnv(os.Getenv, os.ReadFile)
	if err != nil {
		log.Error("configuration", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, log, cfg); err != nil {
		log.Error("myt-influx2", "err", err)
		os.Exit(1)
	}
}

// config is what the upstream image's DOCKER_INFLUXDB_INIT_* variables say.
type config struct {
	setup     bool
	org       string
	bucket    string
	retention string
	token     string
	// readTokens may only read (influx auth create --read-bucket).
	readTokens []string
}

// readTokensFile, in dataDir, holds the read tokens, one a line.
const readTokensFile = "read-tokens"

func configFromEnv(getenv func(string) string, readFile func(string) ([]byte, error)) (config, error) {
	fromFile := func(name string) (string, error) {
		if v := getenv(name); v != "" {
			return v, nil
		}
		if f := getenv(name + "_FILE"); f != "" {
			b, err := readFile(f)
			if err != nil {
				return "", fmt.Errorf("%s_FILE: %w", name, err)
			}
			return strings.TrimRight(string(b), "\r\n"), nil
		}
		return "", nil
	}
	c := config{
		setup:     getenv("DOCKER_INFLUXDB_INIT_MODE") == "setup",
		org:       getenv("DOCKER_INFLUXDB_INIT_ORG"),
		bucket:    getenv("DOCKER_INFLUXDB_INIT_BUCKET"),
		retention: getenv("DOCKER_INFLUXDB_INIT_RETENTION"),
	}
	var err error
	if c.token, err = fromFile("DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"); err != nil {
		return c, err
	}
	if c.token == "" {
		return c, errors.New("DOCKER_INFLUXDB_INIT_ADMIN_TOKEN (or _FILE) is required")
	}
	if c.setup && c.bucket == "" {
		return c, errors.New("DOCKER_INFLUXDB_INIT_MODE=setup needs DOCKER_INFLUXDB_INIT_BUCKET")
	}
	return c, nil
}

// run starts influxd, sets the bucket up once, and serves until ctx ends
// or influxd exits.
func run(ctx context.Context, log *slog.Logger, cfg config) error {
	for _, d := range []string{"meta", "data", "wal"} {
		if err := os.MkdirAll(filepath.Join(dataDir, d), 0o750); err != nil {
			return err
		}
	}
	cmd := exec.Command("influxd")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		"INFLUXDB_HTTP_BIND_ADDRESS="+innerAddr, "INFLUXDB_BIND_ADDRESS=127.0.0.1:8088",
		"INFLUXDB_HTTP_AUTH_ENABLED=false", "INFLUXDB_REPORTING_DISABLED=true",
		"INFLUXDB_META_DIR="+dataDir+"/meta", "INFLUXDB_DATA_DIR="+dataDir+"/data", "INFLUXDB_DATA_WAL_DIR="+dataDir+"/wal")
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("influxdb"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			_ = filepath.Walk(dataDir, func(p string, _ os.FileInfo, err error) error {
				if err == nil {
					_ = os.Lchown(p, uid, gid)
				}
				return nil
			})
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start influxd: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopChild := func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
		}
	}

	inner := &url.URL{Scheme: "http", Host: innerAddr}
	if err := waitReady(ctx, inner, exited); err != nil {
		stopChild()
		return err
	}
	marker := filepath.Join(dataDir, ".myt-setup-done")
	if _, err := os.Stat(marker); cfg.setup && err != nil {
		if err := createBucket(ctx, inner, cfg); err != nil {
			stopChild()
			return err
		}
		if err := os.WriteFile(marker, nil, 0o600); err != nil {
			stopChild()
			return err
		}
		log.Info("bucket created", "bucket", cfg.bucket, "retention", cfg.retention)
	}

	if b, err := os.ReadFile(filepath.Join(dataDir, readTokensFile)); err == nil {
		cfg.readTokens = strings.Fields(string(b))
	}
	srv := &http.Server{Addr: listenAddr, Handler: handler(cfg, inner), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	log.Info("serving the InfluxDB 2.x API subset", "addr", listenAddr, "influxd", innerAddr)
	select {
	case <-ctx.Done():
	case err := <-exited:
		_ = srv.Close()
		return fmt.Errorf("influxd exited: %v", err)
	case err := <-served:
		stopChild()
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	stopChild()
	return nil
}

func waitReady(ctx context.Context, inner *url.URL, exited <-chan error) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(inner.String() + "/ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusNoContent {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("influxd exited during start: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("influxd did not answer /ping within 2 minutes")
		}
	}
}

// createBucket makes the bucket a 1.x database; retention "0" or "" keeps
// data forever, as in 2.x.
func createBucket(ctx context.Context, inner *url.URL, cfg config) error {
	q := "CREATE DATABASE " + quoteIdent(cfg.bucket)
	if r := strings.TrimSpace(cfg.retention); r != "" && r != "0" && r != "0s" {
		q += " WITH DURATION " + r
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, inner.String()+"/query", strings.NewReader(url.Values{"q": {q}}.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("create bucket: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"error"`) {
		return fmt.Errorf("create bucket %q: %s %s", cfg.bucket, resp.Status, body)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }

// handler serves the 2.x API subset in front of influxd at inner.
func handler(cfg config, inner *url.URL) http.Handler {
	proxy := httputil.NewSingleHostReverseProxy(inner)
	token := func(r *http.Request) string {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Token ")
		if !ok {
			// 1.x-style credentials, which 2.x accepts as user + token
			if _, p, basic := r.BasicAuth(); basic {
				tok = p
			} else {
				tok = r.URL.Query().Get("p")
			}
		}
		return tok
	}
	authorized := func(r *http.Request) bool {
		return subtle.ConstantTimeCompare([]byte(token(r)), []byte(cfg.token)) == 1
	}
	// reader: a read token, and a statement that only reads.
	reader := func(r *http.Request) bool {
		tok := token(r)
		ok := false
		for _, rt := range cfg.readTokens {
			ok = ok || subtle.ConstantTimeCompare([]byte(tok), []byte(rt)) == 1
		}
		if !ok || r.URL.Path != "/query" {
			return false
		}
		q := r.URL.Query().Get("q")
		if r.Body != nil && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			if v, err := url.ParseQuery(string(body)); err == nil && v.Get("q") != "" {
				q = v.Get("q")
			}
		}
		for _, stmt := range strings.Split(q, ";") {
			f := strings.Fields(strings.ToUpper(stmt))
			if len(f) > 0 && f[0] != "SELECT" && f[0] != "SHOW" || strings.Contains(strings.ToUpper(stmt), " INTO ") {
				return false
			}
		}
		return true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ping", func(w http.ResponseWriter, r *http.Request) { proxy.ServeHTTP(w, r) })
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"name": "influxdb", "message": "ready for queries and writes", "status": "pass", "version": "v2-subset (influxdb 1.x)"})
	})
	compat := func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r) && !reader(r) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"code": "unauthorized", "message": "unauthorized access"})
			return
		}
		r.Header.Del("Authorization")
		q := r.URL.Query()
		q.Del("u")
		q.Del("p")
		r.URL.RawQuery = q.Encode()
		proxy.ServeHTTP(w, r)
	}
	mux.HandleFunc("/query", compat)
	mux.HandleFunc("/write", compat)
	mux.HandleFunc("POST /api/v2/write", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(r) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"code": "unauthorized", "message": "unauthorized access"})
			return
		}
		q := r.URL.Query()
		if cfg.org != "" && q.Get("org") != cfg.org && q.Get("orgID") == "" {
			writeJSON(w, http.StatusNotFound, map[string]string{"code": "not found", "message": fmt.Sprintf("organization name %q not found", q.Get("org"))})
			return
		}
		bucket := q.Get("bucket")
		if bucket == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"code": "invalid", "message": "bucket is required"})
			return
		}
		precision := map[string]string{"": "n", "ns": "n", "us": "u", "ms": "ms", "s": "s"}[q.Get("precision")]
		if precision == "" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"code": "invalid", "message": "invalid precision"})
			return
		}
		r.Header.Del("Authorization")
		r.URL.Path = "/write"
		r.URL.RawQuery = url.Values{"db": {bucket}, "precision": {precision}}.Encode()
		proxy.ServeHTTP(w, r)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"code": "not found", "message": r.URL.Path + " is not part of the MyT test stand-in's InfluxDB 2.x API subset"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// cli is the "influx" stand-in: `influx ping` and `influx auth create`.
func cli(args []string) int {
	if len(args) >= 2 && args[0] == "auth" && args[1] == "create" {
		return authCreate(args[2:], filepath.Join(dataDir, readTokensFile), os.Stdout)
	}
	if len(args) == 0 || args[0] != "ping" {
		fmt.Fprintln(os.Stderr, "influx: this image's influx only supports `influx ping` and `influx auth create --read-bucket`")
		return 2
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://127.0.0.1:8086/health")
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "Error: health:", resp.Status)
		return 1
	}
	fmt.Println("OK")
	return 0
}

// authCreate is `influx auth create --read-bucket ID [--org O]
// [--description D] [--json]`: a new read token, appended to file (read by
// the server when it starts) and printed as influx --json prints it. Any
// other permission is refused.
func authCreate(args []string, file string, out io.Writer) int {
	desc, read := "", false
	for i := 0; i < len(args); i++ {
		switch a := args[i]; a {
		case "--json":
		case "--read-bucket", "--org", "-o", "--description", "-d":
			if i+1 >= len(args) {
				fmt.Fprintln(os.Stderr, "influx auth create:", a, "needs a value")
				return 2
			}
			i++
			read = read || a == "--read-bucket"
			if a == "--description" || a == "-d" {
				desc = args[i]
			}
		default:
			fmt.Fprintln(os.Stderr, "influx auth create: the stand-in makes read tokens only, not", a)
			return 2
		}
	}
	if !read {
		fmt.Fprintln(os.Stderr, "influx auth create: --read-bucket is required")
		return 2
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err == nil {
		_, err = fmt.Fprintln(f, tok)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		return 1
	}
	enc := json.NewEncoder(out)
	enc.SetIndent("", "\t")
	_ = enc.Encode(map[string]string{"id": tok[:16], "description": desc, "token": tok, "status": "active"})
	return 0
}
