package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/alert"
	"github.com/myt-iot/myt/deploy"
	"github.com/myt-iot/myt/device"
	"github.com/myt-iot/myt/httpapi"
	"github.com/myt-iot/myt/monitor"
	"github.com/myt-iot/myt/sqlite"
	"github.com/myt-iot/myt/throttle"
	"github.com/myt-iot/myt/vault"
	"github.com/myt-iot/myt/web"
	"github.com/myt-iot/myt/workerapi"
)

// serveConfig is the configuration of `myt serve`: defaults, then MYT_*
// environment, then flags; validated once in run.
type serveConfig struct {
	Addr          string
	Data          string
	TLSCert       string
	TLSKey        string
	SecureCookies bool
	LogFormat     string
	LogLevel      string
	DeployConfig  string
	// TokenTTL is how long a token issued by login lasts unused.
	TokenTTL time.Duration
	// MetricsToken, when set, is the bearer token /metrics requires
	// (MYT_METRICS_TOKEN, or the first line of --metrics-token-file: a
	// secret never goes on the command line).
	MetricsToken     string
	MetricsTokenFile string
	// MonitorInterval is how often each running platform is polled
	// (monitor.DefaultInterval when zero).
	MonitorInterval time.Duration
	// SMTP is the relay of email alert channels; no host, no email.
	// Its password comes from MYT_SMTP_PASSWORD or the first line of
	// SMTPPasswordFile (--smtp-password-file), never argv.
	SMTP             alert.SMTP
	SMTPPasswordFile string
}

// defaultAddr is where `myt serve` listens unless told otherwise. A local
// platform runs on the same machine, so none of its published ports may
// be this one (TestLocalPlatformLeavesTheServerPortFree).
const defaultAddr = "127.0.0.1:8080"

func newServeCmd() *cobra.Command {
	cfg := serveConfig{
		Addr:      envOr("MYT_ADDR", defaultAddr),
		Data:      defaultDataDir(),
		LogFormat: envOr("MYT_LOG_FORMAT", "text"),
		LogLevel:  envOr("MYT_LOG_LEVEL", "info"),
		TokenTTL:  httpapi.DefaultTokenTTL,
		// A secret comes from the environment or a file, never argv.
		MetricsToken: os.Getenv("MYT_METRICS_TOKEN"),
		SMTP:         alert.SMTP{Password: os.Getenv("MYT_SMTP_PASSWORD")},
	}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the MyT server: web UI, JSON API, /healthz and /metrics",
		Long: `Run the MyT control plane. Data (the SQLite database and the server key)
lives in --data: $MYT_DATA, else $XDG_DATA_HOME/myt, else ~/.local/share/myt.
On first start, open the web UI to create the administrator account.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	if v := os.Getenv("MYT_TOKEN_TTL"); v != "" {
		// A bad value is reported when the flag set parses it.
		cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("token-ttl") {
				return nil
			}
			return cmd.Flags().Set("token-ttl", v)
		}
	}
	if v := os.Getenv("MYT_MONITOR_INTERVAL"); v != "" {
		prev := cmd.PreRunE
		cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
			if prev != nil {
				if err := prev(cmd, args); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("monitor-interval") {
				return nil
			}
			return cmd.Flags().Set("monitor-interval", v)
		}
	}
	if v := os.Getenv("MYT_SMTP_PORT"); v != "" {
		prev := cmd.PreRunE
		cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
			if prev != nil {
				if err := prev(cmd, args); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("smtp-port") {
				return nil
			}
			return cmd.Flags().Set("smtp-port", v)
		}
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address (env MYT_ADDR)")
	f.StringVar(&cfg.Data, "data", cfg.Data, "data directory (env MYT_DATA)")
	f.StringVar(&cfg.TLSCert, "tls-cert", os.Getenv("MYT_TLS_CERT"), "serve HTTPS with this certificate (PEM)")
	f.StringVar(&cfg.TLSKey, "tls-key", os.Getenv("MYT_TLS_KEY"), "private key of --tls-cert (PEM)")
	f.BoolVar(&cfg.SecureCookies, "secure-cookies", os.Getenv("MYT_SECURE_COOKIES") == "true", "mark cookies Secure (set when a proxy terminates TLS; implied by --tls-cert)")
	f.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "text or json (env MYT_LOG_FORMAT)")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error (env MYT_LOG_LEVEL)")
	f.DurationVar(&cfg.TokenTTL, "token-ttl", cfg.TokenTTL, "a token issued by myt login expires this long after its last use (env MYT_TOKEN_TTL)")
	f.StringVar(&cfg.MetricsTokenFile, "metrics-token-file", os.Getenv("MYT_METRICS_TOKEN_FILE"), "require this file's token (Authorization: Bearer) on /metrics; or set MYT_METRICS_TOKEN")
	f.DurationVar(&cfg.MonitorInterval, "monitor-interval", monitor.DefaultInterval, "how often each running platform is polled for its health and metrics (env MYT_MONITOR_INTERVAL)")
	f.StringVar(&cfg.SMTP.Host, "smtp-host", os.Getenv("MYT_SMTP_HOST"), "SMTP relay for email alert channels (env MYT_SMTP_HOST); none: email channels fail, saying so")
	f.IntVar(&cfg.SMTP.Port, "smtp-port", 0, "SMTP relay port (env MYT_SMTP_PORT; default 587 for starttls, 465 for tls, 25 for none)")
	f.StringVar(&cfg.SMTP.Mode, "smtp-mode", envOr("MYT_SMTP_MODE", alert.SMTPStartTLS), "starttls, tls (implicit, port 465) or none (a relay on this machine) (env MYT_SMTP_MODE)")
	f.StringVar(&cfg.SMTP.User, "smtp-user", os.Getenv("MYT_SMTP_USER"), "SMTP user for AUTH PLAIN (env MYT_SMTP_USER)")
	f.StringVar(&cfg.SMTPPasswordFile, "smtp-password-file", os.Getenv("MYT_SMTP_PASSWORD_FILE"), "file whose first line is the SMTP password; or set MYT_SMTP_PASSWORD")
	f.StringVar(&cfg.SMTP.From, "smtp-from", os.Getenv("MYT_SMTP_FROM"), "sender address of alert emails, such as MyT <myt@example.com> (env MYT_SMTP_FROM)")
	f.StringVar(&cfg.DeployConfig, "deploy-config", os.Getenv("MYT_DEPLOY_CONFIG"), "how deploy jobs run their tools: a YAML file (see docs/deploy.md)")
	return cmd
}

// hsts tells browsers to come back over HTTPS only, for a year: sent when
// MyT serves TLS itself (a proxy that terminates TLS sends its own).
func hsts(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=31536000")
		h.ServeHTTP(w, r)
	})
}

// metricsAuth requires "Authorization: Bearer token" when token is set.
func metricsAuth(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="myt metrics"`)
			http.Error(w, "/metrics needs the metrics token: Authorization: Bearer <token>", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// defaultDataDir follows the XDG base directory spec.
func defaultDataDir() string {
	if v := os.Getenv("MYT_DATA"); v != "" {
		return v
	}
	if v := os.Getenv("XDG_DATA_HOME"); v != "" {
		return filepath.Join(v, "myt")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "myt")
	}
	return "myt-data"
}

func newLogger(w interface{ Write([]byte) (int, error) }, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// openStore opens the data dir: the server key and the database.
func openStore(ctx context.Context, dataDir string, log *slog.Logger) (*sqlite.DB, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// The data dir holds the server key and every sealed secret: an
	// existing one that others may read or enter is tightened first.
	fi, err := os.Stat(dataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("the data dir %s is open to other users (mode %04o) and MyT could not make it 0700 (%w): run `chmod 700 %s` as its owner", dataDir, perm, err, dataDir)
		}
		log.Warn("data dir was open to other users: made it 0700", "dir", dataDir, "was", fmt.Sprintf("%04o", perm))
	}
	key, fromEnv, err := vault.LoadServerKey(dataDir)
	if err != nil {
		return nil, err
	}
	if fromEnv {
		log.Info("server key from environment", "env", vault.ServerKeyEnv)
	}
	dbPath := filepath.Join(dataDir, sqlite.DBFile)
	db, err := sqlite.Open(ctx, dbPath, sqlite.Options{ServerKey: key, Logger: log})
	if errors.Is(err, sqlite.ErrServerKeyMismatch) && !fromEnv {
		// A rotation that committed but crashed before replacing the key
		// file leaves the new key beside it: finish the rotation.
		pending := filepath.Join(dataDir, vault.ServerKeyFile+".new")
		if newKey, rerr := vault.ReadKeyFile(pending); rerr == nil {
			if db, err = sqlite.Open(ctx, dbPath, sqlite.Options{ServerKey: newKey, Logger: log}); err == nil {
				log.Warn("finishing an interrupted server key rotation", "file", pending)
				if err := os.Rename(pending, filepath.Join(dataDir, vault.ServerKeyFile)); err != nil {
					db.Close()
					return nil, err
				}
			}
		}
	}
	return db, err
}

func runServe(ctx context.Context, cfg serveConfig, logOut interface{ Write([]byte) (int, error) }) error {
	log, err := newLogger(logOut, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if cfg.TokenTTL < time.Minute {
		return fmt.Errorf("--token-ttl %s: give at least a minute, such as 720h", cfg.TokenTTL)
	}
	if cfg.MetricsTokenFile != "" {
		b, err := os.ReadFile(cfg.MetricsTokenFile)
		if err != nil {
			return fmt.Errorf("--metrics-token-file: %w", err)
		}
		cfg.MetricsToken, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
		if cfg.MetricsToken == "" {
			return fmt.Errorf("--metrics-token-file %s is empty", cfg.MetricsTokenFile)
		}
	}
	if cfg.MonitorInterval == 0 {
		cfg.MonitorInterval = monitor.DefaultInterval
	}
	var smtpRelay *alert.SMTP
	if cfg.SMTPPasswordFile != "" {
		b, err := os.ReadFile(cfg.SMTPPasswordFile)
		if err != nil {
			return fmt.Errorf("--smtp-password-file: %w", err)
		}
		// The first line, as written: a password may have spaces.
		line, _, _ := strings.Cut(string(b), "\n")
		cfg.SMTP.Password = strings.TrimSuffix(line, "\r")
		if cfg.SMTP.Password == "" {
			return fmt.Errorf("--smtp-password-file %s is empty", cfg.SMTPPasswordFile)
		}
	}
	if cfg.SMTP.Host != "" {
		if err := cfg.SMTP.Check(); err != nil {
			return fmt.Errorf("--%s", strings.Replace(err.Error(), "smtp ", "smtp-", 1))
		}
		smtpRelay = &cfg.SMTP
	} else if cfg.SMTP.From != "" || cfg.SMTP.User != "" || cfg.SMTPPasswordFile != "" {
		return errors.New("--smtp-host: the SMTP settings need the relay's host")
	}
	poller := &monitor.Poller{Interval: cfg.MonitorInterval, Log: log.With("component", "monitor")}
	if cfg.MonitorInterval < time.Second {
		return fmt.Errorf("--monitor-interval %s: give at least 1s (the default is %s)", cfg.MonitorInterval, monitor.DefaultInterval)
	}
	release, err := lockDataDir(cfg.Data)
	if err != nil {
		return err
	}
	defer release()
	db, err := openStore(ctx, cfg.Data, log)
	if err != nil {
		return err
	}
	defer db.Close()
	svc := sqlite.NewServices(db)
	tools, sshTimeout, healthTimeout, err := loadDeployConfig(cfg.DeployConfig)
	if err != nil {
		return err
	}
	backupStore := sqlite.NewBackupStore(db)
	// Devices: their broker users are re-applied after every deploy and
	// update; the broker is reached as the monitor reaches it (Dialer,
	// set below).
	devices := &device.Service{Platforms: svc.Platforms, Store: sqlite.NewDeviceStore(db), Secrets: svc.Secrets, Log: log.With("component", "device")}
	runner, err := deploy.New(ctx, deploy.Config{
		Jobs: sqlite.NewJobStore(db), States: sqlite.NewStateStore(db), Secrets: svc.Secrets,
		Platforms: svc.Platforms, Credentials: svc.Credentials, Code: sqlite.NewCodeStore(db), Backups: backupStore, Tools: tools, DataDir: cfg.Data,
		Logger: log.With("component", "deploy"), SSHTimeout: sshTimeout, HealthTimeout: healthTimeout, Devices: devices,
	})
	if err != nil {
		return err
	}
	// Deferred after db.Close, so it runs first: jobs end before the
	// database closes.
	defer runner.Close()

	// The monitor polls the running platforms and keeps their history;
	// it stops (every poll ended) before the database closes.
	monitorStore := sqlite.NewMonitorStore(db)
	poller.Store = monitorStore
	targets := &monitor.Targets{Client: monitor.NewClient(), Secrets: svc.Secrets, DataDir: cfg.Data}
	poller.Targets = targets.For
	devices.Dialer = targets
	// The shortest chart range (1 h) reads raw points whatever the poll
	// interval: at the default 30 s that is 120, at 2 s 1,800 (with the
	// default cap of 1,000 it would jump to 5-minute points, and a new
	// platform's charts would show one reading for five minutes).
	history := &monitor.History{Store: monitorStore, RawStep: poller.Interval, Log: log.With("component", "monitor"),
		MaxPoints: max(1000, int(time.Hour/poller.Interval)+1)}
	// Alert rules are evaluated on every poll, off the poll loops.
	alertStore := sqlite.NewAlertStore(db)
	alerts := &alert.Engine{Store: alertStore, SMTP: smtpRelay, Log: log.With("component", "alert")}
	if smtpRelay != nil {
		log.Info("email alerts through SMTP", "smtp", *smtpRelay)
	}
	alertService := &alert.Service{Store: alertStore, Platforms: svc.Platforms, Engine: alerts}
	poller.OnPoll = alerts.Enqueue
	monitorCtx, stopMonitor := context.WithCancel(ctx)
	var monitoring sync.WaitGroup
	monitoring.Go(func() { alerts.Run(monitorCtx) })
	monitoring.Go(func() { poller.Run(monitorCtx, monitorStore.RunningPlatforms) })
	monitoring.Go(func() { history.Run(monitorCtx, 5*time.Minute) })
	// Scheduled backups (local platforms: see deploy.RunBackupSchedules).
	monitoring.Go(func() { runner.RunBackupSchedules(monitorCtx, backupStore, backupStore.PlatformOwner) })
	defer func() { stopMonitor(); monitoring.Wait() }()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	guard := throttle.NewGuard() // shared by the UI and the API
	// The poller's Status and the history's Range: health and charts.
	monitorView := struct {
		*monitor.Poller
		*monitor.History
	}{poller, history}
	// Trying code and dead letters reach a platform's worker as the
	// monitor reaches it: directly, or through the monitor key's tunnel.
	workers := &workerapi.Service{Platforms: svc.Platforms, Secrets: svc.Secrets, Dialer: platformDialer{targets}}
	api := httpapi.New(httpapi.Config{
		Users: svc.Users, Sessions: svc.Sessions, Credentials: svc.Credentials, Platforms: svc.Platforms, Admin: svc.Admin,
		Jobs: runner, Connections: runner, Code: runner, Workers: workers, Alerts: alertService, Monitor: monitorView, Backups: runner,
		Devices: devices, Logger: log.With("component", "api"), Login: guard, TokenTTL: cfg.TokenTTL, Registerer: reg,
	})
	ui, err := web.New(web.Config{
		Users: svc.Users, Sessions: svc.Sessions, Credentials: svc.Credentials, Platforms: svc.Platforms, Admin: svc.Admin,
		Jobs: runner, Connections: runner, Code: runner, Workers: workers, Alerts: alertService,
		Logger: log.With("component", "web"), SecureCookies: cfg.SecureCookies || cfg.TLSCert != "", Login: guard,
		Monitor: monitorView, Backups: runner, Devices: devices,
	})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	mux.Handle("GET /metrics", metricsAuth(cfg.MetricsToken, promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := db.Ping(ctx); err != nil {
			log.Error("health check failed", "err", err)
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("/", ui)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	var handler http.Handler = mux
	if cfg.TLSCert != "" {
		handler = hsts(mux)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	n, err := svc.Users.CountUsers(ctx)
	if err != nil {
		return err
	}
	log.Info("myt serving", "version", myt.Version, "url", scheme+"://"+ln.Addr().String(), "data", cfg.Data, "setup_pending", n == 0)

	errc := make(chan error, 1)
	go func() {
		if cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing requests in flight")
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// platformDialer is monitor.Targets as a workerapi.Dialer.
type platformDialer struct{ ts *monitor.Targets }

func (d platformDialer) DialPlatform(ctx context.Context, p *myt.Platform) (workerapi.DialFunc, func(), error) {
	dial, release, err := d.ts.DialPlatform(ctx, p)
	return dial, release, err
}
