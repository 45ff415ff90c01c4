package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/myt-iot/myt/worker"
	"github.com/myt-iot/myt/worker/handler"
	"github.com/myt-iot/myt/worker/sink"
)

func newWorkerCmd() *cobra.Command {
	var configPath, logLevel, logFormat string
	var check bool
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run the platform worker: RabbitMQ -> your Python handler -> the database",
		Long: `Run the platform worker. It consumes the durable quorum queue (myt.ingest), runs the
Python handler (handler.path) on each message, writes batches to the database and
acknowledges messages only after the database committed them. Bad messages go to
myt.dead with the reason in the x-myt-reason header. SIGTERM drains the batch in
hand; SIGHUP reloads handler.path. Configuration: docs/worker.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), logFormat, logLevel)
			if err != nil {
				return err
			}
			log = log.With("component", "worker")
			cfg, err := worker.LoadConfig(configPath)
			if err != nil {
				return err
			}
			if check {
				return checkWorker(cmd, cfg)
			}
			return runWorker(cmd.Context(), cfg, log)
		},
	}
	def := os.Getenv("MYT_WORKER_CONFIG")
	if def == "" {
		def = "/etc/myt/worker.yaml"
	}
	cmd.Flags().StringVar(&configPath, "config", def, "worker configuration file (env MYT_WORKER_CONFIG)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&logFormat, "log-format", "json", "json or text")
	cmd.Flags().BoolVar(&check, "check", false, "validate the configuration, read its secret files and load the handler, then exit")
	return cmd
}

// checkWorker validates what can be checked without the broker and the
// database: the config, its secrets, the database kind and the handler.
func checkWorker(cmd *cobra.Command, cfg *worker.Config) error {
	if _, err := cfg.BrokerURLs(); err != nil {
		return err
	}
	if _, err := cfg.DSN(); err != nil {
		return err
	}
	if _, err := cfg.Token(); err != nil {
		return err
	}
	if _, err := cfg.ExportToken(); err != nil {
		return err
	}
	if _, err := worker.NewSink(cfg.Database.Kind, sink.Options{Table: cfg.Database.Table, Fields: cfg.Database.Fields}); err != nil {
		return err
	}
	if cfg.Handler.Path != "" {
		r, err := handler.New(cmd.Context(), handler.Options{Path: cfg.Handler.Path, Python: cfg.Handler.Python, Timeout: cfg.Handler.Timeout.D()})
		if err != nil {
			return fmt.Errorf("handler.path: %w", err)
		}
		r.Close()
	}
	_, err := fmt.Fprintln(cmd.OutOrStdout(), "worker config OK")
	return err
}

func runWorker(ctx context.Context, cfg *worker.Config, log *slog.Logger) error {
	dsn, err := cfg.DSN()
	if err != nil {
		return err
	}
	token, err := cfg.Token()
	if err != nil {
		return err
	}
	s, err := worker.NewSink(cfg.Database.Kind, sink.Options{DSN: dsn, Table: cfg.Database.Table, Fields: cfg.Database.Fields, Log: log})
	if err != nil {
		return err
	}
	w := worker.New(cfg, s, log)

	var srv *http.Server
	if cfg.HTTP.Listen != "off" {
		ln, err := net.Listen("tcp", cfg.HTTP.Listen)
		if err != nil {
			return fmt.Errorf("http.listen: %w", err)
		}
		srv = &http.Server{Handler: w.HTTPHandler(token), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server", "err", err)
			}
		}()
		log.Info("http listening", "addr", ln.Addr().String(), "api", token != "")
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if cfg.Handler.Path == "" {
					log.Warn("SIGHUP ignored: no handler configured")
					continue
				}
				if err := w.SwapHandler(ctx, cfg.Handler.Path); err != nil {
					log.Error("handler reload failed; the old handler keeps running", "err", err)
				}
			}
		}
	}()

	runErr := w.Run(ctx)
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		srv.Shutdown(sctx)
		cancel()
	}
	return runErr
}
