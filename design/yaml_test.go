package design_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/myt-iot/myt"
	"github.com/myt-iot/myt/design"
)

// TestYAMLSyntaxErrorShowsLines: a YAML syntax error names its line and
// column and shows the source around it as lines, not squashed into one.
func TestYAMLSyntaxErrorShowsLines(t *testing.T) {
	_, err := design.Parse([]byte("apiVersion: myt/v1\nkind: Platform\nmetadata:\n  name: x: y\nspec: {}\n"))
	msg := myt.ErrorMessage(err)
	for _, want := range []string{"not valid YAML: line 4, column 9: mapping value is not allowed", "\n   3 | metadata:\n>  4 |   name: x: y\n", "\n               ^"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}

// TestMarshalYAMLWritesTheHandlerAsABlock: the handler written back out
// (wizard review, show -o yaml, downloads) reads like the code it is, as
// a literal block, and reads back as the same design; a handler YAML
// cannot write as a block still round-trips.
func TestMarshalYAMLWritesTheHandlerAsABlock(t *testing.T) {
	d := myt.NewDesign()
	d.Metadata.Name = "shed"
	d.Spec.Target.Provider = myt.ProviderLocal
	d.Spec.Database.Kind = myt.DatabaseMySQL
	d.Spec.Processing.Handler = "def process(msg):\n    p = msg['payload']\n    return {'t': p['raw'] / 10}\n"
	out, err := design.MarshalYAML(d)
	if err != nil {
		t.Fatal(err)
	}
	if want := "    handler: |\n      def process(msg):\n          p = msg['payload']\n          return {'t': p['raw'] / 10}\n"; !strings.Contains(string(out), want) {
		t.Errorf("handler not a literal block:\n%s", out)
	}
	for _, h := range []string{
		d.Spec.Processing.Handler,
		"def process(msg):\n    return msg",                              // no final newline
		"  # indented first line\ndef process(msg):\n\treturn msg\n\n\n", // leading spaces, tab, trailing blank lines
		"def process(msg):  \n    return msg  \n",                        // trailing spaces
	} {
		d.Spec.Processing.Handler = h
		out, err := design.MarshalYAML(d)
		if err != nil {
			t.Fatal(err)
		}
		back, err := design.Parse(out)
		if err != nil {
			t.Fatalf("%q: %v\n%s", h, err, out)
		}
		if diff := cmp.Diff(d, back); diff != "" {
			t.Errorf("%q did not round-trip (-want +got):\n%s\n%s", h, diff, out)
		}
	}
}

// TestParseReportsShapeAndValueErrorsTogether: an unknown field or a
// value of the wrong type does not hide the invalid values elsewhere; one
// answer lists them all.
func TestParseReportsShapeAndValueErrorsTogether(t *testing.T) {
	_, err := design.Parse([]byte("apiVersion: myt/v1\nkind: Platform\nmetadata: {name: Greenhouse}\nspec:\n  target: {provider: aws, credentials: my-aws, region: eu-west-1, adminCIDRs: 203.0.113.7/32, colour: red}\n  database: {kind: oracle}\n"))
	var got []string
	for _, f := range myt.ErrorFields(err) {
		got = append(got, f.Field)
	}
	want := []string{"spec.target.adminCIDRs", "spec.target.colour", "metadata.name", "spec.database.kind"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields (-want +got):\n%s\n%v", diff, err)
	}
}

// TestParseBrokerProtocolsAsWritten: `broker: {mqtt: true}` is MQTT
// alone; AMQP is on only when asked for, or when no protocol was turned on.
func TestParseBrokerProtocolsAsWritten(t *testing.T) {
	for _, c := range []struct {
		broker     string
		mqtt, amqp bool
	}{
		{"", true, true},
		{"broker: {}", true, true},
		{"broker: {mqtt: true}", true, false},
		{"broker: {amqp: true}", false, true},
		{"broker: {mqtt: true, amqp: true}", true, true},
		{"broker: {amqp: false}", true, false},
		{"broker: {mqtt: false}", false, true},
		{"broker: {tls: true, plaintext: true}", true, true},
	} {
		doc := "apiVersion: myt/v1\nkind: Platform\nmetadata: {name: home}\nspec:\n  target: {provider: local}\n  database: {kind: influxdb}\n"
		if c.broker != "" {
			doc += "  " + c.broker + "\n"
		}
		d, err := design.Parse([]byte(doc))
		if err != nil {
			t.Errorf("%s: %v", c.broker, err)
			continue
		}
		if b := d.Spec.Broker; b.MQTT != c.mqtt || b.AMQP != c.amqp {
			t.Errorf("%q: mqtt %v amqp %v, want %v %v", c.broker, b.MQTT, b.AMQP, c.mqtt, c.amqp)
		}
		// Written back out, it says what it means.
		out, err := design.MarshalYAML(d)
		if err != nil {
			t.Fatal(err)
		}
		if again, err := design.Parse(out); err != nil || again.Spec.Broker != d.Spec.Broker {
			t.Errorf("%q round trip: %v %+v", c.broker, err, again)
		}
	}
}
