// Package influxdb is the InfluxDB sink: line protocol over HTTP, to the
// v1 /write endpoint (database, optional user/password) or the v2
// /api/v2/write endpoint (org, bucket, token). A record becomes one point
// in measurement <table> with tags device and topic, its fields, a string
// field myt_id, and its time in nanoseconds; rewriting a record rewrites
// the same point, so redelivery never duplicates.
package influxdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/myt-iot/myt/worker/record"
	"github.com/myt-iot/myt/worker/sink"
)

// IDField is the string field holding the record id.
const IDField = "myt_id"

// Sink writes to one measurement.
type Sink struct {
	opts   sink.Options
	log    *slog.Logger
	client *http.Client
	base   *url.URL
	v2     bool
	db     string // v1 database or v2 bucket
	org    string
	user   string
	pass   string
	token  string
	buf    bytes.Buffer
}

var (
	_ sink.Sink     = (*Sink)(nil)
	_ sink.Pinger   = (*Sink)(nil)
	_ sink.Exporter = (*Sink)(nil)
)

// New returns an unconnected sink. DSN forms:
//
//	http://[user:password@]host:8086/?db=NAME            (v1)
//	http://host:8086/?org=ORG&bucket=BUCKET&token=TOKEN  (v2)
func New(o sink.Options) *Sink {
	return &Sink{opts: o, log: o.Logger().With("sink", "influxdb"), client: &http.Client{Timeout: 30 * time.Second}}
}

func (s *Sink) parseDSN() error {
	u, err := url.Parse(s.opts.DSN)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("influxdb dsn: want http(s)://host:port/?db=NAME or ?org=&bucket=&token= (value not shown)")
	}
	q := u.Query()
	if u.User != nil {
		s.user = u.User.Username()
		s.pass, _ = u.User.Password()
	}
	if b := q.Get("bucket"); b != "" {
		s.v2, s.db, s.org, s.token = true, b, q.Get("org"), q.Get("token")
	} else {
		s.db = q.Get("db")
		if s.db == "" {
			return errors.New("influxdb dsn: missing db= (v1) or bucket= (v2)")
		}
	}
	s.base = &url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(u.Path, "/")}
	return nil
}

func (s *Sink) auth(req *http.Request) {
	switch {
	case s.token != "":
		req.Header.Set("Authorization", "Token "+s.token)
	case s.user != "":
		req.SetBasicAuth(s.user, s.pass)
	}
}

func (s *Sink) endpoint(path string, q url.Values) string {
	u := *s.base
	u.Path += path
	u.RawQuery = q.Encode()
	return u.String()
}

// Connect checks the server and, for v1, creates the database.
func (s *Sink) Connect(ctx context.Context) error {
	if err := s.parseDSN(); err != nil {
		return err
	}
	if err := s.Ping(ctx); err != nil {
		return err
	}
	if !s.v2 {
		status, body, err := s.do(ctx, http.MethodPost, "/query", url.Values{"q": {fmt.Sprintf("CREATE DATABASE %q", s.db)}}, nil)
		if err != nil {
			return fmt.Errorf("influxdb: create database: %w", err)
		}
		if status/100 != 2 {
			s.log.Warn("influxdb: cannot create database (it must exist)", "status", status, "body", string(body))
		}
	}
	s.log.Info("influxdb sink ready", "api", map[bool]string{true: "v2", false: "v1"}[s.v2], "measurement", s.opts.Table)
	return nil
}

func (s *Sink) do(ctx context.Context, method, path string, q url.Values, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.endpoint(path, q), bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	s.auth(req)
	if body != nil {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, b, nil
}

// Ping checks the server answers /ping.
func (s *Sink) Ping(ctx context.Context) error {
	if s.base == nil {
		return errors.New("influxdb: not connected")
	}
	status, _, err := s.do(ctx, http.MethodGet, "/ping", nil, nil)
	if err != nil {
		return fmt.Errorf("influxdb ping: %w", err)
	}
	if status/100 != 2 {
		return fmt.Errorf("influxdb ping: status %d", status)
	}
	return nil
}

var (
	measEsc = strings.NewReplacer(",", `\,`, " ", `\ `, "\n", `\n`)
	tagEsc  = strings.NewReplacer(",", `\,`, "=", `\=`, " ", `\ `, "\n", `\n`)
	strEsc  = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
)

// appendValue writes one field value; ok is false for nil (skipped).
func appendValue(b *bytes.Buffer, v any, typ string) (bool, error) {
	if typ != "" {
		c, err := record.Coerce(v, typ)
		if err != nil {
			return false, err
		}
		v = c
	}
	switch x := v.(type) {
	case nil:
		return false, nil
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
		b.WriteByte('i')
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false, nil
		}
		b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) {
			return false, fmt.Errorf("number %s out of range", x)
		}
		b.WriteString(strconv.FormatFloat(f, 'g', -1, 64))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case string:
		b.WriteByte('"')
		strEsc.WriteString(b, x)
		b.WriteByte('"')
	default:
		j, err := json.Marshal(x)
		if err != nil {
			return false, err
		}
		b.WriteByte('"')
		strEsc.WriteString(b, string(j))
		b.WriteByte('"')
	}
	return true, nil
}

// Line appends r as one line of line protocol.
func (s *Sink) line(b *bytes.Buffer, r record.Record) error {
	measEsc.WriteString(b, s.opts.Table)
	if r.Device != "" {
		b.WriteString(",device=")
		tagEsc.WriteString(b, r.Device)
	}
	if r.Topic != "" {
		b.WriteString(",topic=")
		tagEsc.WriteString(b, r.Topic)
	}
	b.WriteByte(' ')
	b.WriteString(IDField + `="`)
	strEsc.WriteString(b, r.ID)
	b.WriteByte('"')
	keys := make([]string, 0, len(r.Fields))
	for k := range r.Fields {
		if k != IDField && k != "time" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		mark := b.Len()
		b.WriteByte(',')
		tagEsc.WriteString(b, k)
		b.WriteByte('=')
		ok, err := appendValue(b, r.Fields[k], s.opts.Fields[k])
		if err != nil {
			return &record.InvalidError{ID: r.ID, Err: fmt.Errorf("field %s: %w", k, err)}
		}
		if !ok {
			b.Truncate(mark)
		}
	}
	b.WriteByte(' ')
	b.WriteString(strconv.FormatInt(r.TS.UnixNano(), 10))
	b.WriteByte('\n')
	return nil
}

// Write posts the batch as one request.
func (s *Sink) Write(ctx context.Context, batch []record.Record) error {
	if len(batch) == 0 {
		return nil
	}
	s.buf.Reset()
	for _, r := range batch {
		if err := s.line(&s.buf, r); err != nil {
			return err
		}
	}
	var status int
	var body []byte
	var err error
	if s.v2 {
		status, body, err = s.do(ctx, http.MethodPost, "/api/v2/write", url.Values{"org": {s.org}, "bucket": {s.db}, "precision": {"ns"}}, s.buf.Bytes())
	} else {
		status, body, err = s.do(ctx, http.MethodPost, "/write", url.Values{"db": {s.db}, "precision": {"ns"}}, s.buf.Bytes())
	}
	if err != nil {
		return fmt.Errorf("influxdb write: %w", err)
	}
	switch {
	case status/100 == 2:
		return nil
	case status == http.StatusBadRequest || status == http.StatusRequestEntityTooLarge || status == http.StatusUnprocessableEntity:
		return sink.Reject(fmt.Errorf("influxdb write: status %d: %s", status, bytes.TrimSpace(body)))
	}
	return fmt.Errorf("influxdb write: status %d: %s", status, bytes.TrimSpace(body))
}

// Export streams points in time order through the InfluxQL /query
// endpoint (chunked), which v2 also serves for a bucket mapped to a
// database of the same name.
func (s *Sink) Export(ctx context.Context, q sink.Query, fn func(record.Record) error) error {
	var where []string
	if !q.From.IsZero() {
		where = append(where, fmt.Sprintf("time >= %d", q.From.UnixNano()))
	}
	if !q.To.IsZero() {
		where = append(where, fmt.Sprintf("time < %d", q.To.UnixNano()))
	}
	if q.Device != "" {
		where = append(where, `"device" = '`+strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(q.Device)+`'`)
	}
	iq := `SELECT * FROM "` + strings.ReplaceAll(s.opts.Table, `"`, `\"`) + `"`
	if len(where) > 0 {
		iq += " WHERE " + strings.Join(where, " AND ")
	}
	iq += " ORDER BY time ASC"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.endpoint("/query", url.Values{
		"db": {s.db}, "q": {iq}, "epoch": {"ns"}, "chunked": {"true"}, "chunk_size": {"1000"},
	}), nil)
	if err != nil {
		return err
	}
	s.auth(req)
	client := &http.Client{} // no overall timeout: exports stream for long
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("influxdb export: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("influxdb export: status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	for {
		var chunk struct {
			Results []struct {
				Error  string `json:"error"`
				Series []struct {
					Columns []string `json:"columns"`
					Values  [][]any  `json:"values"`
				} `json:"series"`
			} `json:"results"`
			Error string `json:"error"`
		}
		if err := dec.Decode(&chunk); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("influxdb export: %w", err)
		}
		if chunk.Error != "" {
			return fmt.Errorf("influxdb export: %s", chunk.Error)
		}
		for _, res := range chunk.Results {
			if res.Error != "" {
				return fmt.Errorf("influxdb export: %s", res.Error)
			}
			for _, ser := range res.Series {
				for _, row := range ser.Values {
					r := record.Record{Fields: map[string]any{}}
					for i, col := range ser.Columns {
						if i >= len(row) || row[i] == nil {
							continue
						}
						v := row[i]
						switch col {
						case "time":
							n, _ := v.(json.Number).Int64()
							r.TS = time.Unix(0, n).UTC()
						case "device":
							r.Device, _ = v.(string)
						case "topic":
							r.Topic, _ = v.(string)
						case IDField:
							r.ID, _ = v.(string)
						default:
							if typ, ok := s.opts.Fields[col]; ok {
								if c, err := record.Coerce(v, typ); err == nil {
									v = c
								}
							}
							r.Fields[col] = v
						}
					}
					if err := fn(r); err != nil {
						return err
					}
				}
			}
		}
	}
}

// Close releases idle connections.
func (s *Sink) Close() error {
	s.client.CloseIdleConnections()
	return nil
}
