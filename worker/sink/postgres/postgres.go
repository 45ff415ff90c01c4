// Package postgres is the PostgreSQL / TimescaleDB sink. It creates the
// table on start (a hypertable when the timescaledb extension is present)
// and writes each batch with one INSERT ... SELECT FROM unnest(...) ON
// CONFLICT DO NOTHING, so a redelivered record never becomes a second row.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/myt-iot/myt/worker/record"
	"github.com/myt-iot/myt/worker/sink"
)

// Sink writes to one PostgreSQL table.
type Sink struct {
	opts       sink.Options
	log        *slog.Logger
	names      []string
	pool       *pgxpool.Pool
	hypertable bool
	insert     string // plain insert
	guarded    string // insert that also skips ids already present (hypertables)
	export     string // SELECT ... FROM table, for Export
}

var (
	_ sink.Sink     = (*Sink)(nil)
	_ sink.Pinger   = (*Sink)(nil)
	_ sink.Exporter = (*Sink)(nil)
	_ sink.Expirer  = (*Sink)(nil)
)

// New returns an unconnected sink. The DSN is a postgres:// URL or a
// key=value connection string.
func New(o sink.Options) *Sink {
	return &Sink{opts: o, log: o.Logger().With("sink", "postgres"), names: o.FieldNames()}
}

// Hypertable reports whether the table is a TimescaleDB hypertable.
func (s *Sink) Hypertable() bool { return s.hypertable }

func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

var pgType = map[string]string{
	record.Float: "double precision", record.Int: "bigint", record.Bool: "boolean", record.String: "text",
}

var arrType = map[string]string{
	record.Float: "float8[]", record.Int: "int8[]", record.Bool: "bool[]", record.String: "text[]",
}

// Connect connects, then creates the extension (when available), the table,
// missing typed columns and the indexes, all idempotently.
func (s *Sink) Connect(ctx context.Context) error {
	cfg, err := pgxpool.ParseConfig(s.opts.DSN)
	if err != nil {
		return fmt.Errorf("postgres dsn: %w", errors.New("cannot parse (value not shown)"))
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return fmt.Errorf("postgres connect: %w", err)
	}
	s.pool = pool
	if err := s.schema(ctx); err != nil {
		pool.Close()
		s.pool = nil
		return err
	}
	return nil
}

func (s *Sink) schema(ctx context.Context) error {
	t := ident(s.opts.Table)
	var available bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')`).Scan(&available); err != nil {
		return fmt.Errorf("postgres: check extensions: %w", err)
	}
	ts := false
	if available {
		if _, err := s.pool.Exec(ctx, `CREATE EXTENSION IF NOT EXISTS timescaledb`); err != nil {
			s.log.Warn("timescaledb extension available but cannot be created; using a plain table", "err", err)
		} else {
			ts = true
		}
	} else if s.opts.Timescale {
		s.log.Warn("database.kind is timescaledb but the server has no timescaledb extension; using a plain table")
	}
	// Does the table exist already (and is it a hypertable)?
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: check table: %w", err)
	}
	var cols []string
	cols = append(cols, "id text NOT NULL", "device text NOT NULL", "topic text NOT NULL", "ts timestamptz NOT NULL")
	for _, n := range s.names {
		cols = append(cols, ident(n)+" "+pgType[s.opts.Fields[n]])
	}
	docCol := "doc"
	if len(s.names) > 0 {
		docCol = "extra"
	}
	cols = append(cols, docCol+" jsonb")
	pk := "PRIMARY KEY (id)"
	if ts {
		pk = "PRIMARY KEY (id, ts)"
	}
	if !exists {
		q := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s, %s)", t, strings.Join(cols, ", "), pk)
		if _, err := s.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("postgres: create table %s: %w", s.opts.Table, err)
		}
		if ts {
			if _, err := s.pool.Exec(ctx, `SELECT create_hypertable($1::regclass, 'ts', if_not_exists => TRUE)`, t); err != nil {
				return fmt.Errorf("postgres: create hypertable %s: %w", s.opts.Table, err)
			}
		}
	} else {
		for _, c := range cols[4:] {
			if _, err := s.pool.Exec(ctx, "ALTER TABLE "+t+" ADD COLUMN IF NOT EXISTS "+c); err != nil {
				return fmt.Errorf("postgres: add column %s: %w", c, err)
			}
		}
	}
	if ts {
		var hyper bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = $1)`, s.opts.Table).Scan(&hyper); err != nil {
			return fmt.Errorf("postgres: check hypertable: %w", err)
		}
		s.hypertable = hyper
	}
	idx := []string{
		fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (device, ts DESC)", ident(s.opts.Table+"_device_ts"), t),
	}
	if s.hypertable {
		idx = append(idx, fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (id)", ident(s.opts.Table+"_id"), t))
	} else {
		idx = append(idx, fmt.Sprintf("CREATE INDEX IF NOT EXISTS %s ON %s (ts)", ident(s.opts.Table+"_ts"), t))
	}
	for _, q := range idx {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("postgres: create index: %w", err)
		}
	}
	if s.hypertable {
		s.log.Info("postgres sink ready: TimescaleDB hypertable", "table", s.opts.Table)
	} else {
		s.log.Info("postgres sink ready: plain table (no TimescaleDB)", "table", s.opts.Table)
	}
	// The insert statements.
	names := []string{"id", "device", "topic", "ts"}
	sel := []string{"u.c0", "u.c1", "u.c2", "u.c3"}
	args := []string{"$1::text[]", "$2::text[]", "$3::text[]", "$4::timestamptz[]"}
	for i, n := range s.names {
		names = append(names, ident(n))
		sel = append(sel, fmt.Sprintf("u.c%d", i+4))
		args = append(args, fmt.Sprintf("$%d::%s", i+5, arrType[s.opts.Fields[n]]))
	}
	k := len(s.names) + 4
	names = append(names, docCol)
	sel = append(sel, fmt.Sprintf("u.c%d::jsonb", k))
	args = append(args, fmt.Sprintf("$%d::text[]", k+1))
	alias := make([]string, k+1)
	for i := range alias {
		alias[i] = fmt.Sprintf("c%d", i)
	}
	base := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM unnest(%s) AS u(%s)",
		t, strings.Join(names, ", "), strings.Join(sel, ", "), strings.Join(args, ", "), strings.Join(alias, ", "))
	s.insert = base + " ON CONFLICT DO NOTHING"
	s.guarded = base + fmt.Sprintf(" WHERE NOT EXISTS (SELECT 1 FROM %s x WHERE x.id = u.c0) ON CONFLICT DO NOTHING", t)
	// The export query: the same columns, the JSON one as text.
	s.export = "SELECT " + strings.Join(append(names[:k:k], docCol+"::text"), ", ") + " FROM " + t
	return nil
}

// Write inserts the batch in one statement (one transaction).
func (s *Sink) Write(ctx context.Context, batch []record.Record) error {
	if len(batch) == 0 {
		return nil
	}
	n := len(batch)
	ids, devs, topics := make([]string, n), make([]string, n), make([]string, n)
	tss := make([]time.Time, n)
	docs := make([]*string, n)
	typed := make([][]any, len(s.names))
	for j := range typed {
		typed[j] = make([]any, n)
	}
	redelivered := false
	for i, r := range batch {
		ids[i], devs[i], topics[i], tss[i] = r.ID, r.Device, r.Topic, r.TS
		redelivered = redelivered || r.Redelivered
		fields := r.Fields
		if len(s.names) > 0 {
			vals, extra, err := record.Split(r.Fields, s.opts.Fields, s.names)
			if err != nil {
				return &record.InvalidError{ID: r.ID, Err: err}
			}
			for j, v := range vals {
				typed[j][i] = v
			}
			fields = extra
		}
		if fields != nil || len(s.names) == 0 {
			if fields == nil {
				fields = map[string]any{}
			}
			b, err := json.Marshal(fields)
			if err != nil {
				return &record.InvalidError{ID: r.ID, Err: err}
			}
			d := string(b)
			docs[i] = &d
		}
	}
	args := []any{ids, devs, topics, tss}
	for j, n := range s.names {
		args = append(args, typedArray(s.opts.Fields[n], typed[j]))
	}
	args = append(args, docs)
	q := s.insert
	if s.hypertable && redelivered {
		q = s.guarded
	}
	if _, err := s.pool.Exec(ctx, q, args...); err != nil {
		return classify(err)
	}
	return nil
}

func typedArray(typ string, vals []any) any {
	switch typ {
	case record.Float:
		out := make([]*float64, len(vals))
		for i, v := range vals {
			if f, ok := v.(float64); ok {
				out[i] = &f
			}
		}
		return out
	case record.Int:
		out := make([]*int64, len(vals))
		for i, v := range vals {
			if f, ok := v.(int64); ok {
				out[i] = &f
			}
		}
		return out
	case record.Bool:
		out := make([]*bool, len(vals))
		for i, v := range vals {
			if f, ok := v.(bool); ok {
				out[i] = &f
			}
		}
		return out
	default:
		out := make([]*string, len(vals))
		for i, v := range vals {
			if f, ok := v.(string); ok {
				out[i] = &f
			}
		}
		return out
	}
}

// classify marks content errors (SQLSTATE classes 22 data exception and 23
// integrity violation) as rejections; everything else is transient.
func classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23")) {
		return sink.Reject(fmt.Errorf("postgres: %w", err))
	}
	return fmt.Errorf("postgres write: %w", err)
}

// Ping checks the database answers.
func (s *Sink) Ping(ctx context.Context) error {
	if s.pool == nil {
		return errors.New("postgres: not connected")
	}
	return s.pool.Ping(ctx)
}

// Export streams records in time order.
func (s *Sink) Export(ctx context.Context, q sink.Query, fn func(record.Record) error) error {
	var where []string
	var args []any
	if !q.From.IsZero() {
		args = append(args, q.From)
		where = append(where, fmt.Sprintf("ts >= $%d", len(args)))
	}
	if !q.To.IsZero() {
		args = append(args, q.To)
		where = append(where, fmt.Sprintf("ts < $%d", len(args)))
	}
	if q.Device != "" {
		args = append(args, q.Device)
		where = append(where, fmt.Sprintf("device = $%d", len(args)))
	}
	sqlq := s.export
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	sqlq += " ORDER BY ts, id"
	rows, err := s.pool.Query(ctx, sqlq, args...)
	if err != nil {
		return fmt.Errorf("postgres export: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r record.Record
		vals := make([]any, len(s.names))
		dest := []any{&r.ID, &r.Device, &r.Topic, &r.TS}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		var doc *string
		dest = append(dest, &doc)
		if err := rows.Scan(dest...); err != nil {
			return fmt.Errorf("postgres export: %w", err)
		}
		r.TS = r.TS.UTC()
		r.Fields = map[string]any{}
		if doc != nil {
			if r.Fields, err = record.DecodeFields([]byte(*doc)); err != nil {
				return fmt.Errorf("postgres export: doc of %s: %w", r.ID, err)
			}
		}
		for i, n := range s.names {
			if vals[i] != nil {
				r.Fields[n] = vals[i]
			}
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Expire deletes records older than cutoff, ExpireChunk rows per
// statement (oldest first, through the ts index). The same statement works
// on a plain table and on a hypertable.
func (s *Sink) Expire(ctx context.Context, cutoff time.Time) (int64, error) {
	t := ident(s.opts.Table)
	q := fmt.Sprintf(`DELETE FROM %[1]s WHERE (id, ts) IN (SELECT id, ts FROM %[1]s WHERE ts < $1 ORDER BY ts LIMIT %[2]d)`, t, sink.ExpireChunk)
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, q, cutoff)
		if err != nil {
			return total, fmt.Errorf("postgres expire: %w", err)
		}
		total += tag.RowsAffected()
		if tag.RowsAffected() < sink.ExpireChunk {
			return total, nil
		}
	}
}

// Close closes the pool.
func (s *Sink) Close() error {
	if s.pool != nil {
		s.pool.Close()
	}
	return nil
}
