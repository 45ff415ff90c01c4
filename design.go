package myt

import (
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Design document constants.
const (
	DesignAPIVersion = "myt/v1"
	DesignKind       = "Platform"
)

// Providers a design may target.
const (
	ProviderAWS       = "aws"
	ProviderOpenStack = "openstack"
	ProviderAzure     = "azure"
	ProviderGCP       = "gcp"
	ProviderSSH       = "ssh"
	ProviderLocal     = "local"
)

// Providers lists every target provider, in the order the UI offers them.
var Providers = []string{ProviderAWS, ProviderOpenStack, ProviderAzure, ProviderGCP, ProviderSSH, ProviderLocal}

// Database kinds, following the seed's table: structured or not × time
// series or not.
const (
	DatabaseMySQL       = "mysql"       // structured, not time series
	DatabaseMongoDB     = "mongodb"     // unstructured, not time series
	DatabaseTimescaleDB = "timescaledb" // structured time series
	DatabaseInfluxDB    = "influxdb"    // unstructured time series
)

// DatabaseKinds lists every database kind.
var DatabaseKinds = []string{DatabaseMySQL, DatabaseMongoDB, DatabaseTimescaleDB, DatabaseInfluxDB}

// RecommendDatabase returns the database kind the seed's table recommends for
// data that is (or is not) structured and (or is not) a time series, and a
// sentence explaining why.
func RecommendDatabase(structured, timeSeries bool) (kind, why string) {
	switch {
	case structured && timeSeries:
		return DatabaseTimescaleDB, "Structured time series: TimescaleDB keeps typed columns in PostgreSQL and partitions them by time, so range queries and downsampling stay fast."
	case structured:
		return DatabaseMySQL, "Structured data that is not mainly about time: MySQL stores typed columns and answers relational queries; nothing to learn beyond SQL."
	case timeSeries:
		return DatabaseInfluxDB, "Time series whose fields vary or are not known yet: InfluxDB takes any field on any point and is built for time-range queries and retention."
	default:
		return DatabaseMongoDB, "Data whose shape varies and is not mainly about time: MongoDB stores each message as a document, so new fields need no migration."
	}
}

// Field types a design may declare for its data. Sinks map them to typed
// columns (SQL) or field types (InfluxDB).
var FieldTypes = []string{"float", "int", "bool", "string"}

// Instance sizes. Renderers map each to a provider's instance type.
var Sizes = []string{"small", "medium", "large"}

// Design is a platform design: the versioned document that the UI wizard and
// the CLI both produce and accept (YAML or JSON). Parse it with the design
// package, which rejects unknown fields and calls Validate.
type Design struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   DesignMetadata `json:"metadata"`
	Spec       DesignSpec     `json:"spec"`
}

// DesignMetadata names the platform.
type DesignMetadata struct {
	// Name is a DNS label: lower-case letters, digits and '-', 2–40 long.
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// DesignSpec is what the platform is made of and where it runs.
type DesignSpec struct {
	Target     Target     `json:"target"`
	Database   Database   `json:"database"`
	Broker     Broker     `json:"broker"`
	Processing Processing `json:"processing"`
}

// Target is where the platform runs.
type Target struct {
	Provider string `json:"provider"`
	// Credentials names the user's saved credential for the provider (and,
	// for ssh, the server to use). Empty for local.
	Credentials string `json:"credentials,omitempty"`
	Region      string `json:"region,omitempty"`
	// Zone is the availability zone (gcp requires one; others optional).
	Zone string `json:"zone,omitempty"`
	// Size is small, medium or large; InstanceType, when set, overrides it
	// with a provider-specific type (for example "t3.xlarge").
	Size         string `json:"size,omitempty"`
	InstanceType string `json:"instanceType,omitempty"`
	// Image overrides the provider's default Ubuntu LTS image.
	Image string `json:"image,omitempty"`
	// ExternalNetwork is the OpenStack network floating IPs come from.
	ExternalNetwork string `json:"externalNetwork,omitempty"`
	// Network (openstack only) is the network, by name or id, the
	// platform's machine is on. Required when the project sees more than
	// one network besides external ones.
	Network string `json:"network,omitempty"`
	// AdminCIDRs may reach SSH and the admin HTTPS ports (Grafana,
	// worker API). DeviceCIDRs may reach MQTT and AMQP.
	AdminCIDRs   []string `json:"adminCIDRs,omitempty"`
	DeviceCIDRs  []string `json:"deviceCIDRs,omitempty"`
	DataVolumeGB int      `json:"dataVolumeGB,omitempty"`
	// DataDevice (ssh only) is a block device of the server, such as
	// /dev/sdb or /dev/disk/by-id/…, that holds the platform's data: it
	// gets an ext4 filesystem if it holds nothing at all (a device with a
	// partition table and no filesystem is refused, one with data is never
	// reformatted) and is mounted at /srv/myt/data. Empty keeps the data on
	// the server's root filesystem.
	DataDevice string `json:"dataDevice,omitempty"`
	// DockerRepository (ssh and clouds) is the base URL of Docker's own
	// apt repository, for example for Debian 12, whose docker-compose
	// package is Compose v1: the docker role then installs docker-ce with
	// the Compose plugin from it, with the signing key at
	// DockerRepository/gpg. Empty uses the distribution's packages.
	DockerRepository string `json:"dockerRepository,omitempty"`
}

// Database is the database the worker writes to.
type Database struct {
	Kind string `json:"kind"`
	// Fields declares typed fields (name → float|int|bool|string). Without
	// fields, sinks store each message's JSON document.
	Fields map[string]string `json:"fields,omitempty"`
	// RetentionDays deletes data older than this many days; 0 keeps all.
	RetentionDays int `json:"retentionDays,omitempty"`
}

// Broker selects the protocols devices use and how they are secured. In a
// design document, turning one protocol on (`mqtt: true`) leaves the ones
// not named off; with none turned on, both are on (the design package's
// Parse applies this).
type Broker struct {
	MQTT bool `json:"mqtt"`
	AMQP bool `json:"amqp"`
	// TLS opens MQTTS 8883 / AMQPS 5671; Plaintext opens 1883 / 5672.
	TLS       bool `json:"tls"`
	Plaintext bool `json:"plaintext"`
}

// Processing is the user's code and how it runs.
type Processing struct {
	// Handler is Python source defining process(msg). Empty means
	// passthrough: messages are stored as they arrive.
	Handler string `json:"handler,omitempty"`
	// TimeoutSeconds bounds one batch in the handler (default 10).
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// Workers is the number of worker replicas (competing consumers).
	Workers int `json:"workers,omitempty"`
}

// NewDesign returns a design with every default set; decoders unmarshal into
// it so that omitted fields keep their defaults.
func NewDesign() *Design {
	return &Design{
		APIVersion: DesignAPIVersion,
		Kind:       DesignKind,
		Spec: DesignSpec{
			Target:     Target{Size: "small", DeviceCIDRs: []string{"0.0.0.0/0"}, DataVolumeGB: 20},
			Broker:     Broker{MQTT: true, AMQP: true, TLS: true},
			Processing: Processing{TimeoutSeconds: 10, Workers: 1},
		},
	}
}

// Limits on design values.
const (
	MaxHandlerBytes = 256 << 10
	MaxFields       = 200
	MaxDataVolumeGB = 16384
	MaxWorkers      = 32
)

var (
	nameRE      = regexp.MustCompile(`^[a-z][a-z0-9-]{0,38}[a-z0-9]$`)
	fieldNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	regionRE    = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9 _.-]{0,62}$`)
	tokenRE     = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_./:-]{0,254}$`)
	deviceRE    = regexp.MustCompile(`^/dev/[a-zA-Z0-9_][a-zA-Z0-9_./:@+-]{0,250}$`)
)

// ReservedFieldNames are record attributes a declared field may not shadow.
var ReservedFieldNames = []string{"id", "device", "topic", "ts", "time", "fields", "received_at"}

// Validate checks every field and returns an EINVALID *Error listing each
// problem (path, what was given, what is allowed), or nil.
func (d *Design) Validate() error {
	var v validator
	if d.APIVersion != DesignAPIVersion {
		v.add("apiVersion", d.APIVersion, "must be %q", DesignAPIVersion)
	}
	if d.Kind != DesignKind {
		v.add("kind", d.Kind, "must be %q", DesignKind)
	}
	if !nameRE.MatchString(d.Metadata.Name) {
		v.add("metadata.name", d.Metadata.Name, "must be 2-40 characters of a-z, 0-9 and '-', starting with a letter and not ending with '-'")
	}
	if len(d.Metadata.Description) > 500 {
		v.add("metadata.description", fmt.Sprintf("%d characters", len(d.Metadata.Description)), "must be at most 500 characters")
	}
	d.Spec.Target.validate(&v)
	d.Spec.Database.validate(&v)
	b := d.Spec.Broker
	if !b.MQTT && !b.AMQP {
		v.add("spec.broker", "mqtt: false, amqp: false", "enable at least one of mqtt and amqp")
	}
	if !b.TLS && !b.Plaintext {
		v.add("spec.broker", "tls: false, plaintext: false", "enable tls (recommended), plaintext, or both")
	}
	p := d.Spec.Processing
	if len(p.Handler) > MaxHandlerBytes {
		v.add("spec.processing.handler", fmt.Sprintf("%d bytes", len(p.Handler)), "must be at most %d bytes", MaxHandlerBytes)
	} else if p.Handler != "" && !strings.Contains(p.Handler, "def process(") {
		v.add("spec.processing.handler", "Python code without process()", "must define `def process(msg):` (see `myt code template`)")
	}
	if p.TimeoutSeconds < 1 || p.TimeoutSeconds > 600 {
		v.add("spec.processing.timeoutSeconds", fmt.Sprint(p.TimeoutSeconds), "must be 1-600")
	}
	if p.Workers < 1 || p.Workers > MaxWorkers {
		v.add("spec.processing.workers", fmt.Sprint(p.Workers), "must be 1-%d", MaxWorkers)
	}
	return Invalid("The platform design is not valid.", v.errs)
}

func (t *Target) validate(v *validator) {
	const p = "spec.target."
	if !slices.Contains(Providers, t.Provider) {
		v.add(p+"provider", t.Provider, "allowed: %s", strings.Join(Providers, ", "))
		return
	}
	cloud := t.Provider != ProviderSSH && t.Provider != ProviderLocal
	switch {
	case t.Provider == ProviderLocal && t.Credentials != "":
		v.add(p+"credentials", t.Credentials, "must be empty for the local provider")
	case t.Provider != ProviderLocal && t.Credentials == "":
		v.add(p+"credentials", "", "name a saved %s credential (see `myt creds list`)", t.Provider)
	case t.Credentials != "" && !ValidCredentialName(t.Credentials):
		v.add(p+"credentials", t.Credentials, CredentialNameRule)
	}
	if cloud {
		if t.Region == "" {
			v.add(p+"region", "", "required for %s (for example %s)", t.Provider, exampleRegion[t.Provider])
		} else if !regionRE.MatchString(t.Region) {
			v.add(p+"region", t.Region, "must be a region name such as %s", exampleRegion[t.Provider])
		}
		if t.Provider == ProviderGCP && t.Zone == "" {
			v.add(p+"zone", "", "required for gcp (for example europe-west1-b)")
		}
		if t.Provider == ProviderAzure && t.Zone != "" && !slices.Contains([]string{"1", "2", "3"}, t.Zone) {
			v.add(p+"zone", t.Zone, "an azure availability zone is 1, 2 or 3")
		}
		if !slices.Contains(Sizes, t.Size) {
			v.add(p+"size", t.Size, "allowed: %s", strings.Join(Sizes, ", "))
		}
		if t.DataVolumeGB < 1 || t.DataVolumeGB > MaxDataVolumeGB {
			v.add(p+"dataVolumeGB", fmt.Sprint(t.DataVolumeGB), "must be 1-%d", MaxDataVolumeGB)
		}
		if len(t.AdminCIDRs) == 0 {
			v.add(p+"adminCIDRs", "[]", "list the networks allowed to reach SSH and admin ports, for example [\"203.0.113.7/32\"]")
		}
	} else {
		for _, f := range []struct{ name, val string }{{"region", t.Region}, {"zone", t.Zone}, {"instanceType", t.InstanceType}, {"image", t.Image}, {"externalNetwork", t.ExternalNetwork}, {"network", t.Network}} {
			if f.val != "" {
				v.add(p+f.name, f.val, "must be empty for the %s provider (it creates no machine)", t.Provider)
			}
		}
	}
	// Slices, not maps: the errors come out in field order, the same every time.
	for _, f := range []struct{ name, val string }{{"zone", t.Zone}, {"instanceType", t.InstanceType}, {"image", t.Image}, {"externalNetwork", t.ExternalNetwork}, {"network", t.Network}} {
		if cloud && f.val != "" && !tokenRE.MatchString(f.val) {
			v.add(p+f.name, f.val, "must be 1-255 characters of letters, digits and _./:-")
		}
	}
	if t.ExternalNetwork != "" && t.Provider != ProviderOpenStack {
		v.add(p+"externalNetwork", t.ExternalNetwork, "only applies to openstack")
	}
	if t.Network != "" && t.Provider != ProviderOpenStack {
		v.add(p+"network", t.Network, "only applies to openstack")
	}
	switch {
	case t.DataDevice == "":
	case t.Provider != ProviderSSH:
		v.add(p+"dataDevice", t.DataDevice, "only applies to ssh (clouds get a data volume of dataVolumeGB)")
	case !deviceRE.MatchString(t.DataDevice) || slices.Contains(strings.Split(t.DataDevice, "/"), ".."):
		v.add(p+"dataDevice", t.DataDevice, "must be a block device path such as /dev/sdb or /dev/disk/by-id/…")
	}
	if t.DockerRepository != "" {
		if t.Provider == ProviderLocal {
			v.add(p+"dockerRepository", t.DockerRepository, "only applies to machines MyT sets up (ssh and clouds), not to local")
		} else if u, err := url.Parse(t.DockerRepository); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(t.DockerRepository, " \t\n\"'") {
			v.add(p+"dockerRepository", t.DockerRepository, "must be an https:// URL of an apt repository, without credentials, query or quotes (Docker's is given in its install guide for your distribution)")
		}
	}
	if t.Provider != ProviderLocal {
		checkCIDRs(v, p+"adminCIDRs", t.AdminCIDRs, true)
	}
	checkCIDRs(v, p+"deviceCIDRs", t.DeviceCIDRs, false)
	if len(t.DeviceCIDRs) == 0 {
		v.add(p+"deviceCIDRs", "[]", "list the networks devices connect from, for example [\"0.0.0.0/0\"] for anywhere")
	}
}

var exampleRegion = map[string]string{
	ProviderAWS: "eu-west-1", ProviderOpenStack: "RegionOne", ProviderAzure: "westeurope", ProviderGCP: "europe-west1",
}

func checkCIDRs(v *validator, path string, cidrs []string, admin bool) {
	if len(cidrs) > 50 {
		v.add(path, fmt.Sprintf("%d entries", len(cidrs)), "must have at most 50 entries")
		return
	}
	for i, c := range cidrs {
		f := fmt.Sprintf("%s[%d]", path, i)
		pfx, err := netip.ParsePrefix(c)
		switch {
		case err != nil:
			v.add(f, c, "must be a CIDR such as 203.0.113.7/32 or 2001:db8::/48")
		case pfx.Masked() != pfx:
			v.add(f, c, "has host bits set; did you mean %s?", pfx.Masked())
		case admin && pfx.Bits() == 0:
			v.add(f, c, "must not be the whole Internet: SSH and admin ports are opened only to your own networks")
		}
	}
}

func (db *Database) validate(v *validator) {
	const p = "spec.database."
	if !slices.Contains(DatabaseKinds, db.Kind) {
		v.add(p+"kind", db.Kind, "allowed: %s", strings.Join(DatabaseKinds, ", "))
	}
	if len(db.Fields) > MaxFields {
		v.add(p+"fields", fmt.Sprintf("%d fields", len(db.Fields)), "must have at most %d fields", MaxFields)
	}
	names := make([]string, 0, len(db.Fields))
	for n := range db.Fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		typ := db.Fields[n]
		switch {
		case !fieldNameRE.MatchString(n):
			v.add(p+"fields."+n, n, "field names must be 1-63 characters of a-z, 0-9 and '_', not starting with a digit")
		case slices.Contains(ReservedFieldNames, n):
			v.add(p+"fields."+n, n, "is reserved (%s)", strings.Join(ReservedFieldNames, ", "))
		}
		if !slices.Contains(FieldTypes, typ) {
			v.add(p+"fields."+n, typ, "allowed types: %s", strings.Join(FieldTypes, ", "))
		}
	}
	if db.RetentionDays < 0 || db.RetentionDays > 36500 {
		v.add(p+"retentionDays", fmt.Sprint(db.RetentionDays), "must be 0 (keep everything) to 36500")
	}
}

// validator collects field errors in order.
type validator struct{ errs []FieldError }

func (v *validator) add(field, given, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if given == "" {
		given = "(empty)"
	} else {
		given = fmt.Sprintf("%q", given)
	}
	v.errs = append(v.errs, FieldError{Field: field, Message: fmt.Sprintf("%s given; %s", given, msg)})
}

// Ports returns the TCP ports that devices may reach for this broker
// configuration, in ascending order.
func (b Broker) Ports() []int {
	var ports []int
	if b.MQTT && b.Plaintext {
		ports = append(ports, 1883)
	}
	if b.AMQP && b.Plaintext {
		ports = append(ports, 5672)
	}
	if b.AMQP && b.TLS {
		ports = append(ports, 5671)
	}
	if b.MQTT && b.TLS {
		ports = append(ports, 8883)
	}
	sort.Ints(ports)
	return ports
}
