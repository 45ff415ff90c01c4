// Package sqlite implements MyT's control-plane services on an embedded
// SQLite database (modernc.org/sqlite: pure Go, no cgo) in WAL mode, with
// the schema migrations embedded in the binary. Secrets are sealed with the
// vault package before they reach the database.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/vault"
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrServerKeyMismatch is returned by Open when the server key is not the one
// the database's secrets are sealed with.
var ErrServerKeyMismatch = errors.New("wrong server key")

// DBFile is the database's file name in the data dir.
const DBFile = "myt.db"

// Options configure Open.
type Options struct {
	// ServerKey seals platform operational secrets (vault.LoadServerKey).
	ServerKey []byte
	Logger    *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Params are the argon2id costs for new hashes; vault.DefaultParams
	// when zero.
	Params vault.Params
}

// DB is an open MyT database.
type DB struct {
	db        *sql.DB
	path      string
	serverKey []byte
	log       *slog.Logger
	now       func() time.Time
	params    vault.Params
}

// Open opens (creating if needed) the database at path, applies pending
// migrations and checks that opts.ServerKey is the key this database was
// sealed with.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Params == (vault.Params{}) {
		opts.Params = vault.DefaultParams
	}
	if len(opts.ServerKey) != vault.KeySize {
		return nil, errors.New("sqlite: a server key is required")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// Create the file ourselves so it is private from the first byte.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	f.Close()
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	sdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db := &DB{db: sdb, path: path, serverKey: opts.ServerKey, log: opts.Logger, now: opts.Now, params: opts.Params}
	if err := db.migrate(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	if err := db.checkServerKey(ctx); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error { return db.db.Close() }

// Path returns the database file's path.
func (db *DB) Path() string { return db.path }

// Ping checks that the database answers (for /healthz).
func (db *DB) Ping(ctx context.Context) error { return db.db.PingContext(ctx) }

func (db *DB) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	var version int
	if err := db.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(names) {
		return fmt.Errorf("database %s has schema version %d, newer than this myt (%d): upgrade myt", db.path, version, len(names))
	}
	for i := version; i < len(names); i++ {
		script, err := migrations.ReadFile(names[i])
		if err != nil {
			return err
		}
		if err := db.migrateOne(ctx, string(script), i+1); err != nil {
			return fmt.Errorf("migrate %s: %w", names[i], err)
		}
		db.log.Info("applied database migration", "name", filepath.Base(names[i]))
	}
	return nil
}

// fkOffMarker opens a migration that rebuilds a table other tables
// refer to: it runs with foreign keys off (else dropping the old table
// would cascade), and the keys are checked before it commits.
const fkOffMarker = "-- myt:foreign-keys-off\n"

// migrateOne runs script and sets the schema version to version, in one
// transaction on one connection.
func (db *DB) migrateOne(ctx context.Context, script string, version int) error {
	conn, err := db.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	fkOff := strings.HasPrefix(script, fkOffMarker)
	if fkOff {
		// Outside a transaction: SQLite ignores it inside one.
		if _, err := conn.ExecContext(ctx, "PRAGMA foreign_keys = OFF"); err != nil {
			return err
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA foreign_keys = ON")
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, script); err != nil {
		return err
	}
	if fkOff {
		rows, err := tx.QueryContext(ctx, "PRAGMA foreign_key_check")
		if err != nil {
			return err
		}
		bad := rows.Next()
		rows.Close()
		if bad {
			return errors.New("the rebuilt tables break a foreign key (PRAGMA foreign_key_check)")
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version)); err != nil {
		return err
	}
	return tx.Commit()
}

const metaServerKey = "server_key_fingerprint"

func (db *DB) checkServerKey(ctx context.Context) error {
	fp := vault.Fingerprint(db.serverKey)
	return db.tx(ctx, func(tx *sql.Tx) error {
		var have string
		err := tx.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", metaServerKey).Scan(&have)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, "INSERT INTO meta(key, value) VALUES (?, ?)", metaServerKey, fp)
			return err
		case err != nil:
			return err
		case have != fp:
			return fmt.Errorf("%w: the server key (fingerprint %s) is not the one this database was sealed with (%s): restore the right %s or %s", ErrServerKeyMismatch, fp, have, vault.ServerKeyFile, vault.ServerKeyEnv)
		}
		return nil
	})
}

// tx runs fn in a transaction (BEGIN IMMEDIATE), committing when it
// returns nil.
func (db *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func (db *DB) nowMS() int64 { return db.now().UnixMilli() }

func fromMS(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func fromNullMS(ms sql.NullInt64) *time.Time {
	if !ms.Valid {
		return nil
	}
	t := fromMS(ms.Int64)
	return &t
}

func toNullMS(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// isUnique reports whether err is a UNIQUE constraint violation. The
// driver returns every SQLite failure as a *sqlite.Error with extended
// result codes, so the code says it; the message text is never parsed.
func isUnique(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// principal returns the request's principal or EUNAUTHORIZED.
func principal(ctx context.Context) (*myt.Auth, error) {
	a := myt.AuthFromContext(ctx)
	if a == nil || a.User == nil {
		return nil, myt.Errorf(myt.EUNAUTHORIZED, "Please sign in.")
	}
	return a, nil
}

// adminPrincipal returns the principal when it is an admin.
func adminPrincipal(ctx context.Context) (*myt.Auth, error) {
	a, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if !a.User.Admin {
		return nil, myt.Errorf(myt.EFORBIDDEN, "Only administrators can do this.")
	}
	return a, nil
}

// keyedPrincipal returns the principal when it carries its data key.
func keyedPrincipal(ctx context.Context) (*myt.Auth, error) {
	a, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if len(a.DataKey) != vault.KeySize {
		return nil, myt.Errorf(myt.EUNAUTHORIZED, "Your session cannot unlock credentials: sign in again.")
	}
	return a, nil
}
