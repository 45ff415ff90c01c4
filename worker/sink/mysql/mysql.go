// Package mysql is the MySQL / MariaDB sink (go-sql-driver/mysql). It
// creates the table on start and writes each batch in one transaction of
// multi-row INSERT ... ON DUPLICATE KEY UPDATE id = id statements, so a
// redelivered record never becomes a second row.
package mysql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/myt-iot/myt/worker/record"
	"github.com/myt-iot/myt/worker/sink"
)

// Sink writes to one MySQL table.
type Sink struct {
	opts  sink.Options
	log   *slog.Logger
	names []string
	db    *sql.DB
	cols  string // column list of the insert
	doc   string // doc or extra
	// insert is "INSERT INTO table (cols) VALUES "; row is one row's
	// placeholders.
	insert, row string
}

var (
	_ sink.Sink     = (*Sink)(nil)
	_ sink.Pinger   = (*Sink)(nil)
	_ sink.Exporter = (*Sink)(nil)
	_ sink.Expirer  = (*Sink)(nil)
)

// rowsPerStatement bounds one INSERT (max_allowed_packet).
const rowsPerStatement = 1000

// New returns an unconnected sink. The DSN is in go-sql-driver format,
// user:password@tcp(host:3306)/dbname.
func New(o sink.Options) *Sink {
	return &Sink{opts: o, log: o.Logger().With("sink", "mysql"), names: o.FieldNames()}
}

func ident(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

var sqlType = map[string]string{
	record.Float: "DOUBLE", record.Int: "BIGINT", record.Bool: "BOOLEAN", record.String: "TEXT",
}

// Connect connects and creates the table and missing typed columns.
func (s *Sink) Connect(ctx context.Context) error {
	cfg, err := mysql.ParseDSN(s.opts.DSN)
	if err != nil {
		return errors.New("mysql dsn: cannot parse (value not shown)")
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.InterpolateParams = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.Params["sql_mode"] = "'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'"
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("mysql connect: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return fmt.Errorf("mysql connect: %w", err)
	}
	s.db = db
	if err := s.schema(ctx); err != nil {
		db.Close()
		s.db = nil
		return err
	}
	return nil
}

func (s *Sink) schema(ctx context.Context) error {
	t := ident(s.opts.Table)
	s.doc = "doc"
	if len(s.names) > 0 {
		s.doc = "extra"
	}
	cols := []string{
		"id VARCHAR(128) NOT NULL", "device VARCHAR(255) NOT NULL", "topic VARCHAR(1024) NOT NULL", "ts DATETIME(6) NOT NULL",
	}
	var typed []string
	for _, n := range s.names {
		typed = append(typed, ident(n)+" "+sqlType[s.opts.Fields[n]]+" NULL")
	}
	typed = append(typed, s.doc+" JSON NULL")
	q := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s, %s, PRIMARY KEY (id), KEY %s (device, ts), KEY %s (ts)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
		t, strings.Join(cols, ", "), strings.Join(typed, ", "), ident(s.opts.Table+"_device_ts"), ident(s.opts.Table+"_ts"))
	if _, err := s.db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("mysql: create table %s: %w", s.opts.Table, err)
	}
	have := map[string]bool{}
	rows, err := s.db.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`, s.opts.Table)
	if err != nil {
		return fmt.Errorf("mysql: list columns: %w", err)
	}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return fmt.Errorf("mysql: list columns: %w", err)
		}
		have[strings.ToLower(c)] = true
	}
	rows.Close()
	names := append(append([]string(nil), s.names...), s.doc)
	for i, n := range names {
		if !have[strings.ToLower(n)] {
			if _, err := s.db.ExecContext(ctx, "ALTER TABLE "+t+" ADD COLUMN "+typed[i]); err != nil {
				return fmt.Errorf("mysql: add column %s: %w", n, err)
			}
			s.log.Info("mysql: added column", "table", s.opts.Table, "column", n)
		}
	}
	all := []string{"id", "device", "topic", "ts"}
	for _, n := range s.names {
		all = append(all, ident(n))
	}
	all = append(all, s.doc)
	s.cols = strings.Join(all, ", ")
	s.insert = "INSERT INTO " + t + " (" + s.cols + ") VALUES "
	s.row = "(" + strings.TrimSuffix(strings.Repeat("?,", len(all)), ",") + ")"
	s.log.Info("mysql sink ready", "table", s.opts.Table, "typedFields", len(s.names))
	return nil
}

// Write stores the batch in one transaction.
func (s *Sink) Write(ctx context.Context, batch []record.Record) error {
	if len(batch) == 0 {
		return nil
	}
	width := len(s.names) + 5
	args := make([]any, 0, width*min(len(batch), rowsPerStatement))
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("mysql write: %w", err)
	}
	defer tx.Rollback()
	var sb strings.Builder
	for start := 0; start < len(batch); start += rowsPerStatement {
		chunk := batch[start:min(start+rowsPerStatement, len(batch))]
		args = args[:0]
		sb.Reset()
		sb.WriteString(s.insert)
		for i, r := range chunk {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(s.row)
			args = append(args, r.ID, r.Device, r.Topic, r.TS.UTC())
			fields := r.Fields
			if len(s.names) > 0 {
				vals, extra, err := record.Split(r.Fields, s.opts.Fields, s.names)
				if err != nil {
					return &record.InvalidError{ID: r.ID, Err: err}
				}
				args = append(args, vals...)
				fields = extra
			}
			if fields == nil && len(s.names) > 0 {
				args = append(args, nil)
			} else {
				if fields == nil {
					fields = map[string]any{}
				}
				b, err := json.Marshal(fields)
				if err != nil {
					return &record.InvalidError{ID: r.ID, Err: err}
				}
				args = append(args, string(b))
			}
		}
		sb.WriteString(" ON DUPLICATE KEY UPDATE id = id")
		if _, err := tx.ExecContext(ctx, sb.String(), args...); err != nil {
			return classify(err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("mysql commit: %w", err)
	}
	return nil
}

// Server error numbers that mean "this data cannot be stored".
var dataErrors = map[uint16]bool{
	1048: true, // column cannot be null
	1264: true, // out of range
	1265: true, // data truncated
	1292: true, // incorrect value
	1366: true, // incorrect string/integer value
	1406: true, // data too long
	3140: true, // invalid JSON (MySQL)
	4025: true, // CHECK constraint failed (MariaDB JSON_VALID)
	1300: true, // invalid character string
	1367: true, // illegal value
}

func classify(err error) error {
	var me *mysql.MySQLError
	if errors.As(err, &me) && dataErrors[me.Number] {
		return sink.Reject(fmt.Errorf("mysql: %w", err))
	}
	return fmt.Errorf("mysql write: %w", err)
}

// Ping checks the database answers.
func (s *Sink) Ping(ctx context.Context) error {
	if s.db == nil {
		return errors.New("mysql: not connected")
	}
	return s.db.PingContext(ctx)
}

// Export streams records in time order.
func (s *Sink) Export(ctx context.Context, q sink.Query, fn func(record.Record) error) error {
	var where []string
	var args []any
	if !q.From.IsZero() {
		where, args = append(where, "ts >= ?"), append(args, q.From.UTC())
	}
	if !q.To.IsZero() {
		where, args = append(where, "ts < ?"), append(args, q.To.UTC())
	}
	if q.Device != "" {
		where, args = append(where, "device = ?"), append(args, q.Device)
	}
	sqlq := "SELECT " + s.cols + " FROM " + ident(s.opts.Table)
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	sqlq += " ORDER BY ts, id"
	rows, err := s.db.QueryContext(ctx, sqlq, args...)
	if err != nil {
		return fmt.Errorf("mysql export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r record.Record
		vals := make([]any, len(s.names))
		dest := []any{&r.ID, &r.Device, &r.Topic, &r.TS}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		var doc sql.NullString
		dest = append(dest, &doc)
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("mysql export: %w", err)
		}
		r.Fields = map[string]any{}
		if doc.Valid {
			if r.Fields, err = record.DecodeFields([]byte(doc.String)); err != nil {
				return fmt.Errorf("mysql export: doc of %s: %w", r.ID, err)
			}
		}
		for i, n := range s.names {
			if v := fromSQL(vals[i], s.opts.Fields[n]); v != nil {
				r.Fields[n] = v
			}
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// fromSQL converts a scanned column (often []byte) to its field type.
func fromSQL(v any, typ string) any {
	if b, ok := v.([]byte); ok {
		v = string(b)
	}
	if v == nil {
		return nil
	}
	c, err := record.Coerce(v, typ)
	if err != nil {
		return v
	}
	return c
}

// Expire deletes records older than cutoff, ExpireChunk rows per
// statement (oldest first, through the ts index).
func (s *Sink) Expire(ctx context.Context, cutoff time.Time) (int64, error) {
	q := "DELETE FROM " + ident(s.opts.Table) + " WHERE ts < ? ORDER BY ts LIMIT " + fmt.Sprint(sink.ExpireChunk)
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, q, cutoff.UTC())
		if err != nil {
			return total, fmt.Errorf("mysql expire: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("mysql expire: %w", err)
		}
		total += n
		if n < sink.ExpireChunk {
			return total, nil
		}
	}
}

// Close closes the database handle.
func (s *Sink) Close() error {
	if s.db != nil {
		return s.db.Close()
	}
	return nil
}
