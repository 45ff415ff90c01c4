// Command myt-mongodb starts the MongoDB wire-protocol server of the local
// "mongodb" test image: FerretDB (/usr/local/bin/ferretdb, built by
// scripts/testenv from the version pinned in this module's go.mod) on its
// SQLite backend, configured from the upstream mongo image's variables:
//
//   - without MONGO_INITDB_ROOT_USERNAME: no authentication, as upstream;
//   - with MONGO_INITDB_ROOT_USERNAME and MONGO_INITDB_ROOT_PASSWORD (or
//     MONGO_INITDB_ROOT_PASSWORD_FILE): FerretDB's SCRAM authentication,
//     that user created in database "admin" at first start, as upstream;
//   - FERRETDB_POSTGRESQL_URL switches to the PostgreSQL backend;
//   - any other FERRETDB_* variable is passed through to FerretDB.
//
// Secrets reach FerretDB through its environment, never its argv.
//
// Started as root, it does what the upstream entrypoint does before
// anything else: it gives /data/db to the image's mongodb user (uid and
// gid 999) and drops to that user (upstream: gosu), and only then reads
// MONGO_INITDB_ROOT_PASSWORD_FILE, so a password file only root can read
// fails here as it fails there.
//
// Invoked as "mongosh" (a symlink in the image) it only pings the local
// server and prints 1, so the platform's compose healthcheck
// `mongosh --quiet --eval "db.adminCommand('ping').ok"` works; it is no
// shell. See docs/testing.md.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/bson"
	"go.mongodb.org/mongo-driver/mongo"
	"go.mongodb.org/mongo-driver/mongo/options"
)

const ferretdb = "/usr/local/bin/ferretdb"

func main() {
	if filepath.Base(os.Args[0]) == "mongosh" {
		os.Exit(ping())
	}
	if os.Geteuid() == 0 {
		if err := dropToMongoDB(); err != nil {
			fmt.Fprintln(os.Stderr, "myt-mongodb:", err)
			os.Exit(1)
		}
	}
	env, err := environ(os.Environ(), os.ReadFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "myt-mongodb:", err)
		os.Exit(1)
	}
	if err := syscall.Exec(ferretdb, append([]string{ferretdb}, os.Args[1:]...), env); err != nil {
		fmt.Fprintln(os.Stderr, "myt-mongodb: exec", ferretdb+":", err)
		os.Exit(1)
	}
}

// mongodbID is the uid and gid of the upstream image's mongodb user.
const mongodbID = 999

// dropToMongoDB gives the data directory to the mongodb user, lets it
// write temporary files, and becomes that user.
func dropToMongoDB() error {
	err := filepath.WalkDir("/data/db", func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, mongodbID, mongodbID)
	})
	if err != nil {
		return fmt.Errorf("chown /data/db: %w", err)
	}
	if err := os.Chmod("/tmp", 0o777|os.ModeSticky); err != nil {
		return err
	}
	if err := syscall.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(mongodbID); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	if err := syscall.Setuid(mongodbID); err != nil {
		return fmt.Errorf("setuid: %w", err)
	}
	return nil
}

// environ turns the mongo image's variables into FerretDB's.
func environ(in []string, readFile func(string) ([]byte, error)) ([]string, error) {
	get := map[string]string{}
	var out []string
	for _, kv := range in {
		k, v, _ := strings.Cut(kv, "=")
		get[k] = v
		if !strings.HasPrefix(k, "MONGO_INITDB_") {
			out = append(out, kv)
		}
	}
	def := func(k, v string) {
		if _, ok := get[k]; !ok {
			out = append(out, k+"="+v)
		}
	}
	def("FERRETDB_LISTEN_ADDR", ":27017")
	def("FERRETDB_STATE_DIR", "/data/db")
	def("FERRETDB_SQLITE_URL", "file:/data/db/")
	def("FERRETDB_LOG_LEVEL", "warn")
	def("FERRETDB_DEBUG_ADDR", "-")
	out = append(out, "FERRETDB_TELEMETRY=disable")
	if get["FERRETDB_POSTGRESQL_URL"] != "" {
		def("FERRETDB_HANDLER", "postgresql")
	} else {
		def("FERRETDB_HANDLER", "sqlite")
	}
	if user := get["MONGO_INITDB_ROOT_USERNAME"]; user != "" {
		pw := get["MONGO_INITDB_ROOT_PASSWORD"]
		if f := get["MONGO_INITDB_ROOT_PASSWORD_FILE"]; pw == "" && f != "" {
			b, err := readFile(f)
			if err != nil {
				return nil, fmt.Errorf("MONGO_INITDB_ROOT_PASSWORD_FILE: %w", err)
			}
			pw = strings.TrimRight(string(b), "\r\n")
		}
		if pw == "" {
			return nil, fmt.Errorf("MONGO_INITDB_ROOT_USERNAME is set but no password is")
		}
		out = append(out, "FERRETDB_TEST_ENABLE_NEW_AUTH=true", "FERRETDB_SETUP_DATABASE=admin",
			"FERRETDB_SETUP_USERNAME="+user, "FERRETDB_SETUP_PASSWORD="+pw)
	}
	return out, nil
}

// ping is the "mongosh" healthcheck stand-in (ping needs no credentials).
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
