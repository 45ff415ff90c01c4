package design_test

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
)

func TestParseIssueExample(t *testing.T) {
	data, err := os.ReadFile("testdata/greenhouse.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d, err := design.Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &myt.Design{
		APIVersion: "myt/v1", Kind: "Platform",
		Metadata: myt.DesignMetadata{Name: "greenhouse"},
		Spec: myt.DesignSpec{
			Target: myt.Target{Provider: "aws", Credentials: "my-aws", Region: "eu-west-1", Size: "small",
				AdminCIDRs: []string{"203.0.113.7/32"}, DeviceCIDRs: []string{"0.0.0.0/0"}, DataVolumeGB: 20},
			Database:   myt.Database{Kind: "timescaledb", Fields: map[string]string{"temperature": "float", "humidity": "float"}},
			Broker:     myt.Broker{MQTT: true, AMQP: true, TLS: true},
			Processing: myt.Processing{Handler: "def process(msg):\n    return msg\n", TimeoutSeconds: 10, Workers: 1},
		},
	}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("design mismatch (-want +got):\n%s", diff)
	}

	// YAML → JSON → Parse and YAML → YAML → Parse give the same design.
	for name, marshal := range map[string]func(*myt.Design) ([]byte, error){"json": design.MarshalJSON, "yaml": design.MarshalYAML} {
		out, err := marshal(d)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		again, err := design.Parse(out)
		if err != nil {
			t.Fatalf("%s round trip: %v\n%s", name, err, out)
		}
		if diff := cmp.Diff(d, again); diff != "" {
			t.Errorf("%s round trip changed the design (-first +again):\n%s", name, diff)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	d, err := design.Parse([]byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: home}\nspec:\n  target: {provider: local}\n  database: {kind: influxdb}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !d.Spec.Broker.MQTT || !d.Spec.Broker.AMQP || !d.Spec.Broker.TLS || d.Spec.Broker.Plaintext {
		t.Errorf("broker defaults = %+v, want mqtt, amqp, tls and no plaintext", d.Spec.Broker)
	}
	if got := d.Spec.Broker.Ports(); !cmp.Equal(got, []int{5671, 8883}) {
		t.Errorf("ports = %v", got)
	}
}

// Each bad document must produce an error naming the field (and, where
// there is one, the value given).
func TestParseErrorsNameTheField(t *testing.T) {
	base := "apiVersion: myt/v1\nkind: Platform\nmetadata: {name: greenhouse}\n"
	tests := []struct {
		name, doc string
		want      []string // substrings of the error, each must appear
	}{
		{"unknown top field", base + "spec: {target: {provider: local}, database: {kind: mysql}}\nextra: 1\n", []string{"extra: unknown field"}},
		{"unknown nested field", base + "spec: {target: {provider: local, colour: red}, database: {kind: mysql}}\n", []string{"spec.target.colour: unknown field", "allowed here: provider"}},
		{"bad provider", base + "spec: {target: {provider: awz}, database: {kind: mysql}}\n", []string{"spec.target.provider", `"awz"`, "aws, openstack, azure, gcp, ssh, local"}},
		{"bad database", base + "spec: {target: {provider: local}, database: {kind: oracle}}\n", []string{"spec.database.kind", `"oracle"`, "mysql, mongodb, timescaledb, influxdb"}},
		{"bad field type", base + "spec: {target: {provider: local}, database: {kind: mysql, fields: {temp: double}}}\n", []string{"spec.database.fields.temp", `"double"`, "float, int, bool, string"}},
		{"reserved field", base + "spec: {target: {provider: local}, database: {kind: mysql, fields: {device: string}}}\n", []string{"spec.database.fields.device", "reserved"}},
		{"wrong type", base + "spec: {target: {provider: aws, credentials: a, region: eu-west-1, adminCIDRs: [10.0.0.0/8], dataVolumeGB: big}, database: {kind: mysql}}\n", []string{"spec.target.dataVolumeGB", `"big"`, "whole number"}},
		{"bool as string", base + "spec: {target: {provider: local}, database: {kind: mysql}, broker: {tls: \"yes\"}}\n", []string{"spec.broker.tls", "true or false"}},
		{"admin cidr world", base + "spec: {target: {provider: aws, credentials: a, region: eu-west-1, adminCIDRs: [0.0.0.0/0]}, database: {kind: mysql}}\n", []string{"spec.target.adminCIDRs[0]", "whole Internet"}},
		{"admin cidr missing", base + "spec: {target: {provider: gcp, credentials: g, region: europe-west1, zone: europe-west1-b}, database: {kind: mysql}}\n", []string{"spec.target.adminCIDRs"}},
		{"bad cidr", base + "spec: {target: {provider: local, deviceCIDRs: [10.0.0.1/8]}, database: {kind: mysql}}\n", []string{"spec.target.deviceCIDRs[0]", "10.0.0.0/8"}},
		{"no credentials", base + "spec: {target: {provider: openstack, region: RegionOne, adminCIDRs: [10.0.0.0/8]}, database: {kind: mysql}}\n", []string{"spec.target.credentials"}},
		{"local with region", base + "spec: {target: {provider: local, region: x}, database: {kind: mysql}}\n", []string{"spec.target.region", "must be empty"}},
		{"data device on a cloud", base + "spec: {target: {provider: aws, credentials: a, region: eu-west-1, adminCIDRs: [10.0.0.0/8], dataDevice: /dev/sdb}, database: {kind: mysql}}\n", []string{"spec.target.dataDevice", "only applies to ssh"}},
		{"data device not a device", base + "spec: {target: {provider: ssh, credentials: s, adminCIDRs: [10.0.0.0/8], dataDevice: /srv/data}, database: {kind: mysql}}\n", []string{"spec.target.dataDevice", `"/srv/data"`, "block device"}},
		{"data device escapes /dev", base + "spec: {target: {provider: ssh, credentials: s, adminCIDRs: [10.0.0.0/8], dataDevice: /dev/../etc/passwd}, database: {kind: mysql}}\n", []string{"spec.target.dataDevice", "block device"}},
		{"docker repository on local", base + "spec: {target: {provider: local, dockerRepository: \"https://apt.example.org/linux/debian\"}, database: {kind: mysql}}\n", []string{"spec.target.dockerRepository", "not to local"}},
		{"docker repository over http", base + "spec: {target: {provider: ssh, credentials: s, adminCIDRs: [10.0.0.0/8], dockerRepository: \"http://apt.example.org/linux/debian\"}, database: {kind: mysql}}\n", []string{"spec.target.dockerRepository", "https://"}},
		{"docker repository with credentials", base + "spec: {target: {provider: ssh, credentials: s, adminCIDRs: [10.0.0.0/8], dockerRepository: \"https://me:pw@apt.example.org/debian\"}, database: {kind: mysql}}\n", []string{"spec.target.dockerRepository", "without credentials"}},
		{"no protocol", base + "spec: {target: {provider: local}, database: {kind: mysql}, broker: {mqtt: false, amqp: false}}\n", []string{"spec.broker", "at least one"}},
		{"handler without process", base + "spec: {target: {provider: local}, database: {kind: mysql}, processing: {handler: 'print(1)'}}\n", []string{"spec.processing.handler", "def process"}},
		{"bad name", "apiVersion: myt/v1\nkind: Platform\nmetadata: {name: Green_House}\nspec: {target: {provider: local}, database: {kind: mysql}}\n", []string{"metadata.name", `"Green_House"`}},
		{"bad version", "apiVersion: myt/v2\nkind: Platform\nmetadata: {name: gh}\nspec: {target: {provider: local}, database: {kind: mysql}}\n", []string{"apiVersion", `"myt/v2"`}},
		{"json unknown", `{"apiVersion":"myt/v1","kind":"Platform","metadata":{"name":"gh","nick":"x"},"spec":{"target":{"provider":"local"},"database":{"kind":"mysql"}}}`, []string{"metadata.nick: unknown field"}},
		{"json syntax", "{\"apiVersion\": \"myt/v1\",\n\"kind\": }", []string{"not valid JSON", "line 2"}},
		{"yaml syntax", "apiVersion: myt/v1\nkind: [Platform\n", []string{"not valid YAML"}},
		{"not a mapping", "- a\n- b\n", []string{"must be a mapping"}},
		{"empty", "  \n", []string{"empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := design.Parse([]byte(tt.doc))
			if err == nil {
				t.Fatal("Parse accepted an invalid design")
			}
			if myt.ErrorCode(err) != myt.EINVALID {
				t.Errorf("code = %q, want invalid (%v)", myt.ErrorCode(err), err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestParseReportsAllErrorsAtOnce(t *testing.T) {
	_, err := design.Parse([]byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: gh}\nspec: {target: {provider: aws}, database: {kind: x}}\n"))
	fields := myt.ErrorFields(err)
	got := map[string]bool{}
	for _, f := range fields {
		got[f.Field] = true
	}
	for _, want := range []string{"spec.target.credentials", "spec.target.region", "spec.target.adminCIDRs", "spec.database.kind"} {
		if !got[want] {
			t.Errorf("missing error for %s in %v", want, fields)
		}
	}
}

// The same invalid design gives the same errors in the same order (field
// order), every time: a user re-running a command sees a stable list.
func TestParseErrorOrderIsStable(t *testing.T) {
	for _, tc := range []struct {
		name, target string
		want         []string
	}{
		{"local", "{provider: local, region: r1, zone: z1, instanceType: t1, image: i1, externalNetwork: n1, network: n2}",
			[]string{"region", "zone", "instanceType", "image", "externalNetwork", "network", "externalNetwork", "network"}},
		{"aws", "{provider: aws, credentials: c, region: eu-west-1, adminCIDRs: [203.0.113.7/32], zone: 'z 1', instanceType: 't 1', image: 'i 1', externalNetwork: 'n 1', network: 'n 2'}",
			[]string{"zone", "instanceType", "image", "externalNetwork", "network", "externalNetwork", "network"}},
		{"openstack", "{provider: openstack, credentials: c, region: RegionOne, adminCIDRs: [203.0.113.7/32], network: 'campus net'}",
			[]string{"network"}},
		{"azure", "{provider: azure, credentials: c, region: westeurope, adminCIDRs: [203.0.113.7/32], zone: westeurope-1}",
			[]string{"zone"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := "apiVersion: myt/v1\nkind: Platform\nmetadata: {name: gh}\nspec:\n  target: " + tc.target + "\n  database: {kind: influxdb}\n"
			for i := range tc.want {
				tc.want[i] = "spec.target." + tc.want[i]
			}
			// Map iteration order is random: several runs catch it.
			for range 20 {
				_, err := design.Parse([]byte(doc))
				var got []string
				for _, fe := range myt.ErrorFields(err) {
					got = append(got, fe.Field)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Fatalf("error fields (-want +got):\n%s\n%v", diff, err)
				}
			}
		})
	}
}

// FuzzParse checks that no input panics the parser, that only validation
// errors are returned, and that an accepted design survives a round trip
// (MarshalYAML, then Parse again, which validates it) unchanged.
func FuzzParse(f *testing.F) {
	seed, _ := os.ReadFile("testdata/greenhouse.yaml")
	f.Add(seed)
	f.Add([]byte(`{"apiVersion":"myt/v1","kind":"Platform","metadata":{"name":"gh"},"spec":{"target":{"provider":"local"},"database":{"kind":"mysql"}}}`))
	f.Add([]byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: gh}\nspec: {target: {provider: local}, database: {kind: mongodb, fields: {a: int}}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := design.Parse(data)
		if err != nil {
			if myt.ErrorCode(err) != myt.EINVALID {
				t.Fatalf("non-validation error %v", err)
			}
			return
		}
		out, err := design.MarshalYAML(d)
		if err != nil {
			t.Fatal(err)
		}
		again, err := design.Parse(out)
		if err != nil {
			t.Fatalf("round trip rejected: %v\n%s", err, out)
		}
		if diff := cmp.Diff(d, again); diff != "" {
			t.Fatalf("round trip changed design:\n%s", diff)
		}
	})
}
