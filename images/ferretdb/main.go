// Command myt-mongodb is the MongoDB wire-protocol server of the local
// "mongodb" test image: FerretDB, embedded, on its SQLite backend (or on
// PostgreSQL when FERRETDB_POSTGRESQL_URL is set).
//
// Embedding it (rather than building FerretDB's own cmd/ferretdb) is what
// makes a build from the Go module proxy work: that main refuses to start
// without the version.txt its release process generates.
//
// Invoked as "mongosh" (a symlink in the image) it only pings the local
// server and prints 1, so the platform's compose healthcheck
// `mongosh --quiet --eval "db.adminCommand('ping').ok"` works; it is no
// shell. See docs/testing.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

func main() {
	if filepath.Base(os.Args[0]) == "mongosh" {
		os.Exit(ping())
	}
	listen := flag.String("listen", ":27017", "TCP address to listen on")
	sqliteURL := flag.String("sqlite-url", "file:/data/db/", "SQLite directory URI")
	flag.Parse()

	level := slog.LevelWarn
	if os.Getenv("FERRETDB_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := &ferretdb.Config{Listener: ferretdb.ListenerConfig{TCP: *listen}, Logger: log, Handler: "sqlite", SQLiteURL: *sqliteURL}
	if u := os.Getenv("FERRETDB_POSTGRESQL_URL"); u != "" {
		cfg.Handler, cfg.PostgreSQLURL = "postgresql", u
	}
	if os.Getenv("MONGO_INITDB_ROOT_USERNAME") != "" && cfg.Handler == "sqlite" {
		log.Warn("MONGO_INITDB_ROOT_USERNAME is ignored: the SQLite backend has no authentication; every client is accepted")
	}
	f, err := ferretdb.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "myt-mongodb:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	fmt.Fprintf(os.Stderr, "myt-mongodb: FerretDB (%s) listening on %s\n", cfg.Handler, *listen)
	if err := f.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "myt-mongodb:", err)
		os.Exit(1)
	}
}

// ping is the "mongosh" healthcheck stand-in.
func ping() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := mongo.Connect(ctx, options.Client().ApplyURI("mongodb://127.0.0.1:27017/").SetServerSelectionTimeout(4*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer c.Disconnect(context.Background())
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "ping", Value: 1}}).Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(1)
	return 0
}
