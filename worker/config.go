package worker

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
	"github.com/myt-iot/myt/worker/record"
)

// Database kinds accepted in database.kind.
const (
	KindMySQL       = "mysql"
	KindPostgres    = "postgres"
	KindTimescaleDB = "timescaledb"
	KindMongoDB     = "mongodb"
	KindInfluxDB    = "influxdb"
)

// Defaults applied by ParseConfig before the file is read.
const (
	DefaultQueue          = "myt.ingest"
	DefaultExchange       = "amq.topic"
	DefaultDeadQueue      = "myt.dead"
	DefaultTopicPrefix    = "myt"
	DefaultPrefetch       = 2000
	DefaultBatchSize      = 500
	DefaultBatchMaxWait   = 200 * time.Millisecond
	DefaultTable          = "measurements"
	DefaultHandlerTimeout = 10 * time.Second
	DefaultPython         = "python3"
	DefaultListen         = ":8080"
	DefaultBackoffMin     = 500 * time.Millisecond
	DefaultBackoffMax     = 30 * time.Second
	DefaultRetentionEvery = time.Hour
)

// Duration is a time.Duration written as a Go duration string ("200ms",
// "10s") in YAML and JSON. A value that does not parse is kept and reported
// by Validate under its key.
type Duration struct {
	d       time.Duration
	invalid string
}

// Dur makes a Duration.
func Dur(d time.Duration) Duration { return Duration{d: d} }

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return d.d }

// IsZero reports an unset duration (so that omitempty leaves it out).
func (d Duration) IsZero() bool { return d.d == 0 && d.invalid == "" }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		*d = Duration{invalid: string(b)}
		return nil
	}
	*d = Duration{d: v}
	return nil
}

func (d Duration) check(bad func(key, format string, a ...any), key string, lo, hi time.Duration) {
	switch {
	case d.invalid != "":
		bad(key, "invalid duration %q (use e.g. 200ms, 10s, 1m)", d.invalid)
	case d.d < lo || (hi > 0 && d.d > hi):
		if hi > 0 {
			bad(key, "must be between %s and %s (got %s)", lo, hi, d.d)
		} else {
			bad(key, "must be at least %s (got %s)", lo, d.d)
		}
	}
}

// Config is the whole configuration of `myt worker`, read from worker.yaml.
// Secrets are never inline: passwords, DSNs and tokens are read from files
// (0600) or, failing that, from environment variables named here.
type Config struct {
	// TopicPrefix is the first MQTT topic level (and AMQP routing-key word):
	// devices publish to <prefix>/<device>/<stream>.
	TopicPrefix string   `yaml:"topicPrefix" json:"topicPrefix"`
	AMQP        AMQP     `yaml:"amqp" json:"amqp"`
	Batch       Batch    `yaml:"batch" json:"batch"`
	Database    Database `yaml:"database" json:"database"`
	Handler     Handler  `yaml:"handler" json:"handler"`
	HTTP        HTTP     `yaml:"http" json:"http"`
	Retry       Retry    `yaml:"retry" json:"retry"`
}

// AMQP says where and how to consume.
type AMQP struct {
	// URLs are broker URLs (amqp:// or amqps://), tried in order. They must
	// not carry a password: give PasswordFile (or PasswordEnv) instead, or
	// URLFile for whole URLs kept in a secret file (one per line).
	URLs         []string `yaml:"urls" json:"urls,omitempty"`
	URLFile      string   `yaml:"urlFile" json:"urlFile,omitempty"`
	PasswordFile string   `yaml:"passwordFile" json:"passwordFile,omitempty"`
	PasswordEnv  string   `yaml:"passwordEnv" json:"passwordEnv,omitempty"`
	// CAFile is a PEM CA bundle to verify an amqps:// broker.
	CAFile    string `yaml:"caFile" json:"caFile,omitempty"`
	Queue     string `yaml:"queue" json:"queue"`
	Exchange  string `yaml:"exchange" json:"exchange"`
	DeadQueue string `yaml:"deadQueue" json:"deadQueue"`
	Prefetch  int    `yaml:"prefetch" json:"prefetch"`
	// Declare makes the worker declare the queues, exchanges and binding it
	// needs (idempotent). Default true.
	Declare *bool `yaml:"declare" json:"declare,omitempty"`
}

// Batch bounds how many records are written in one database transaction
// and how long a partial batch may wait.
type Batch struct {
	Size    int      `yaml:"size" json:"size"`
	MaxWait Duration `yaml:"maxWait" json:"maxWait"`
}

// Database is the sink.
type Database struct {
	Kind string `yaml:"kind" json:"kind"`
	// DSNFile is a file holding the DSN (preferred: a 0600 secret file);
	// DSNEnv names an environment variable holding it. Formats per kind are
	// in docs/worker.md.
	DSNFile string `yaml:"dsnFile" json:"dsnFile,omitempty"`
	DSNEnv  string `yaml:"dsnEnv" json:"dsnEnv,omitempty"`
	// Table is the table, collection or measurement name.
	Table string `yaml:"table" json:"table"`
	// Fields declares typed fields (name -> float|int|bool|string). Empty
	// means the whole JSON document is stored.
	Fields map[string]string `yaml:"fields" json:"fields,omitempty"`
	// RetentionDays deletes records whose ts is older than this many days,
	// checked at start and every RetentionEvery (zero: hourly); 0 keeps
	// everything. For InfluxDB the bucket's own retention applies instead.
	RetentionDays  int      `yaml:"retentionDays,omitempty" json:"retentionDays,omitempty"`
	RetentionEvery Duration `yaml:"retentionEvery,omitempty" json:"retentionEvery,omitzero"`
}

// Handler is the user's Python code.
type Handler struct {
	// Path to handler.py; empty means passthrough (no Python).
	Path    string   `yaml:"path" json:"path,omitempty"`
	Python  string   `yaml:"python" json:"python"`
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// HTTP is the worker's own HTTP server.
type HTTP struct {
	// Listen is host:port; "off" disables the server.
	Listen string `yaml:"listen" json:"listen"`
	// TokenFile holds the bearer token for /v1/export and /v1/import;
	// without it those endpoints answer 403.
	TokenFile string `yaml:"tokenFile" json:"tokenFile,omitempty"`
	TokenEnv  string `yaml:"tokenEnv" json:"tokenEnv,omitempty"`
	// ExportTokenFile holds a second bearer token that may only read
	// (GET /v1/export): what a dashboard needs, never import or the
	// handler. Optional.
	ExportTokenFile string `yaml:"exportTokenFile" json:"exportTokenFile,omitempty"`
}

// Retry bounds the backoff used when the broker or database is down.
type Retry struct {
	Min Duration `yaml:"min" json:"min"`
	Max Duration `yaml:"max" json:"max"`
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() *Config {
	t := true
	return &Config{
		TopicPrefix: DefaultTopicPrefix,
		AMQP: AMQP{
			Queue: DefaultQueue, Exchange: DefaultExchange, DeadQueue: DefaultDeadQueue,
			Prefetch: DefaultPrefetch, Declare: &t,
		},
		Batch:    Batch{Size: DefaultBatchSize, MaxWait: Dur(DefaultBatchMaxWait)},
		Database: Database{Table: DefaultTable},
		Handler:  Handler{Python: DefaultPython, Timeout: Dur(DefaultHandlerTimeout)},
		HTTP:     HTTP{Listen: DefaultListen},
		Retry:    Retry{Min: Dur(DefaultBackoffMin), Max: Dur(DefaultBackoffMax)},
	}
}

// LoadConfig reads, parses and validates the worker configuration at path.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read worker config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes YAML (or JSON, a subset) strictly over the defaults
// and validates the result. Unknown keys are errors; every error names the
// key.
func ParseConfig(b []byte) (*Config, error) {
	c := DefaultConfig()
	if len(bytes.TrimSpace(b)) > 0 {
		// The YAML library's cost is quadratic in nesting and entries.
		if err := design.CheckStructure(b); err != nil {
			return nil, fmt.Errorf("parse worker config: %s", myt.ErrorMessage(err))
		}
		dec := yaml.NewDecoder(bytes.NewReader(b), yaml.Strict(), yaml.DisallowUnknownField())
		if err := dec.Decode(c); err != nil {
			return nil, fmt.Errorf("parse worker config: %s", yaml.FormatError(err, false, true))
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// ConfigError is a validation error naming the key at fault.
type ConfigError struct {
	Key     string
	Message string
}

func (e *ConfigError) Error() string { return e.Key + ": " + e.Message }

var (
	identRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	prefixRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// Validate checks every key and returns all problems joined (each a
// *ConfigError naming its key).
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, &ConfigError{Key: key, Message: fmt.Sprintf(format, a...)})
	}
	if !prefixRe.MatchString(c.TopicPrefix) {
		bad("topicPrefix", "must be 1-64 letters, digits, '_' or '-' (got %q)", c.TopicPrefix)
	}
	// amqp
	if len(c.AMQP.URLs) == 0 && c.AMQP.URLFile == "" {
		bad("amqp.urls", "required (or amqp.urlFile)")
	}
	for i, s := range c.AMQP.URLs {
		key := fmt.Sprintf("amqp.urls[%d]", i)
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "amqp" && u.Scheme != "amqps") || u.Host == "" {
			bad(key, "must be an amqp:// or amqps:// URL with a host")
			continue
		}
		if _, has := u.User.Password(); has {
			bad(key, "must not contain a password; use amqp.passwordFile or amqp.urlFile")
		}
	}
	if c.AMQP.PasswordFile != "" && c.AMQP.PasswordEnv != "" {
		bad("amqp.passwordEnv", "give only one of amqp.passwordFile and amqp.passwordEnv")
	}
	if c.AMQP.Queue == "" {
		bad("amqp.queue", "required")
	}
	if c.AMQP.Exchange == "" {
		bad("amqp.exchange", "required")
	}
	if c.AMQP.DeadQueue == "" || c.AMQP.DeadQueue == c.AMQP.Queue {
		bad("amqp.deadQueue", "required and must differ from amqp.queue")
	}
	if c.AMQP.Prefetch < 1 || c.AMQP.Prefetch > 65535 {
		bad("amqp.prefetch", "must be 1..65535 (got %d)", c.AMQP.Prefetch)
	}
	// batch
	if c.Batch.Size < 1 || c.Batch.Size > 50000 {
		bad("batch.size", "must be 1..50000 (got %d)", c.Batch.Size)
	} else if c.AMQP.Prefetch < c.Batch.Size {
		bad("amqp.prefetch", "must be >= batch.size (%d), or batches never fill", c.Batch.Size)
	}
	c.Batch.MaxWait.check(bad, "batch.maxWait", time.Millisecond, time.Minute)
	// database
	switch c.Database.Kind {
	case KindMySQL, KindPostgres, KindTimescaleDB, KindMongoDB, KindInfluxDB:
	case "":
		bad("database.kind", "required: one of mysql, postgres, timescaledb, mongodb, influxdb")
	default:
		bad("database.kind", "must be one of mysql, postgres, timescaledb, mongodb, influxdb (got %q)", c.Database.Kind)
	}
	if c.Database.DSNFile == "" && c.Database.DSNEnv == "" {
		bad("database.dsnFile", "required (or database.dsnEnv)")
	}
	if !identRe.MatchString(c.Database.Table) {
		bad("database.table", "must be a letter or '_' then letters, digits or '_' (max 63; got %q)", c.Database.Table)
	}
	for _, n := range slices.Sorted(maps.Keys(c.Database.Fields)) {
		key := "database.fields." + n
		if !identRe.MatchString(n) {
			bad(key, "field name must be a letter or '_' then letters, digits or '_' (max 63)")
		}
		if reservedColumn(n) {
			bad(key, "name is reserved (id, device, topic, ts, doc)")
		}
		switch c.Database.Fields[n] {
		case record.Float, record.Int, record.Bool, record.String:
		default:
			bad(key, "type must be one of float, int, bool, string (got %q)", c.Database.Fields[n])
		}
	}
	if c.Database.RetentionDays < 0 || c.Database.RetentionDays > 36500 {
		bad("database.retentionDays", "must be 0 (keep everything) to 36500 (got %d)", c.Database.RetentionDays)
	}
	if !c.Database.RetentionEvery.IsZero() {
		c.Database.RetentionEvery.check(bad, "database.retentionEvery", time.Second, 0)
	}
	// handler
	c.Handler.Timeout.check(bad, "handler.timeout", 10*time.Millisecond, time.Hour)
	if c.Handler.Path != "" && c.Handler.Python == "" {
		bad("handler.python", "required when handler.path is set")
	}
	// http
	if c.HTTP.Listen != "off" {
		if _, port, ok := strings.Cut(c.HTTP.Listen, ":"); !ok || port == "" {
			bad("http.listen", "must be host:port, :port or off (got %q)", c.HTTP.Listen)
		}
	}
	if c.HTTP.TokenFile != "" && c.HTTP.TokenEnv != "" {
		bad("http.tokenEnv", "give only one of http.tokenFile and http.tokenEnv")
	}
	// retry
	c.Retry.Min.check(bad, "retry.min", time.Millisecond, 0)
	c.Retry.Max.check(bad, "retry.max", time.Millisecond, 0)
	if c.Retry.Max.D() < c.Retry.Min.D() {
		bad("retry.max", "must be >= retry.min")
	}
	return errors.Join(errs...)
}

func reservedColumn(n string) bool {
	switch strings.ToLower(n) {
	case "id", "device", "topic", "ts", "doc", "_id", "time":
		return true
	}
	return false
}

// RoutingPattern is the amq.topic binding key for this prefix: MQTT topic
// levels ('/') become routing-key words ('.').
func (c *Config) RoutingPattern() string { return c.TopicPrefix + ".#" }

// DeclareTopology reports whether the worker declares its queues.
func (c *Config) DeclareTopology() bool { return c.AMQP.Declare == nil || *c.AMQP.Declare }

// readSecret reads a secret from a file (trimmed of trailing newlines) or an
// environment variable.
func readSecret(file, env, key string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", key, err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", fmt.Errorf("%s: environment variable %s is not set", key, env)
		}
		return v, nil
	}
	return "", nil
}

// BrokerURLs returns the AMQP URLs with the password filled in from its
// secret source. The result is secret: never log it.
func (c *Config) BrokerURLs() ([]string, error) {
	if c.AMQP.URLFile != "" {
		s, err := readSecret(c.AMQP.URLFile, "", "amqp.urlFile")
		if err != nil {
			return nil, err
		}
		var out []string
		for _, line := range strings.Split(s, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				out = append(out, line)
			}
		}
		out = append(out, c.AMQP.URLs...)
		if len(out) == 0 {
			return nil, errors.New("amqp.urlFile: no URL in file")
		}
		return out, nil
	}
	pw, err := readSecret(c.AMQP.PasswordFile, c.AMQP.PasswordEnv, "amqp.passwordFile")
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(c.AMQP.URLs))
	for _, s := range c.AMQP.URLs {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("amqp.urls: %w", err)
		}
		if pw != "" {
			name := "guest"
			if u.User != nil {
				name = u.User.Username()
			}
			u.User = url.UserPassword(name, pw)
		}
		out = append(out, u.String())
	}
	return out, nil
}

// DSN returns the database DSN from its secret source. The result is
// secret: never log it.
func (c *Config) DSN() (string, error) {
	s, err := readSecret(c.Database.DSNFile, c.Database.DSNEnv, "database.dsnFile")
	if err != nil {
		return "", err
	}
	if s == "" {
		return "", errors.New("database.dsnFile: empty DSN")
	}
	return s, nil
}

// Token returns the HTTP API bearer token, or "" when none is configured.
func (c *Config) Token() (string, error) {
	return readSecret(c.HTTP.TokenFile, c.HTTP.TokenEnv, "http.tokenFile")
}

// ExportToken returns the read-only bearer token (GET /v1/export only),
// or "" when none is configured.
func (c *Config) ExportToken() (string, error) {
	return readSecret(c.HTTP.ExportTokenFile, "", "http.exportTokenFile")
}
