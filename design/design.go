// Package design reads and writes platform design documents (YAML or JSON)
// strictly: unknown fields, wrong types and invalid values are all reported
// with the path of the field, what was given and what is allowed.
package design

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/goccy/go-yaml"

	"github.com/myt-iot/myt"
)

// MaxDocumentBytes bounds a design document.
const MaxDocumentBytes = 1 << 20

// Parse decodes a design from YAML or JSON (JSON is YAML, but is detected
// to give JSON-flavoured errors), applies defaults and validates it,
// compiling the handler with python3 when it is installed (CheckHandler).
// Every problem found is returned at once as an EINVALID *myt.Error.
func Parse(data []byte) (*myt.Design, error) {
	d, err := ParsePartial(data)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// ParsePartial is Parse that, when the document is well-formed but not
// valid, also returns the design it describes as far as it could be read
// (values of the wrong shape left at their defaults), so that a caller
// can check it further (is the name free? does the credential exist?) and
// report every problem in one answer. The design is nil only when the
// document could not be read at all.
func ParsePartial(data []byte) (*myt.Design, error) {
	if len(data) > MaxDocumentBytes {
		return nil, myt.Errorf(myt.ETOOLARGE, "The design document is larger than %d bytes.", MaxDocumentBytes)
	}
	var doc any
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, myt.Errorf(myt.EINVALID, "The design document is empty.")
	}
	if err := CheckStructure(trimmed); err != nil {
		return nil, err
	}
	if trimmed[0] == '{' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			return nil, myt.Errorf(myt.EINVALID, "The design is not valid JSON: %s.", jsonSyntaxMessage(trimmed, err))
		}
		if dec.More() {
			return nil, myt.Errorf(myt.EINVALID, "The design has data after the JSON document.")
		}
	} else {
		if err := yaml.Unmarshal(trimmed, &doc); err != nil {
			return nil, myt.Errorf(myt.EINVALID, "The design is not valid YAML: %s", yamlSyntaxMessage(err))
		}
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, myt.Errorf(myt.EINVALID, "The design must be a mapping with apiVersion, kind, metadata and spec.")
	}
	var fields []myt.FieldError
	checkShape("", top, reflect.TypeOf(myt.Design{}), &fields)
	// Values of the wrong shape are dropped (they keep their defaults), so
	// that what the rest of the document gets wrong is reported in the
	// same answer.
	for _, f := range fields {
		prune(top, f.Field)
	}
	raw, err := json.Marshal(top)
	if err != nil {
		return nil, fmt.Errorf("re-encode design: %w", err)
	}
	d := myt.NewDesign()
	if err := json.Unmarshal(raw, d); err != nil {
		if len(fields) > 0 {
			return nil, &myt.Error{Code: myt.EINVALID, Message: "The platform design is not valid.", Fields: fields}
		}
		return nil, fmt.Errorf("decode design: %w", err)
	}
	canonical(d)
	protocolsAsWritten(top, d)
	shape := fields
	for _, f := range myt.ErrorFields(d.Validate()) {
		if !overlaps(f.Field, shape) {
			fields = append(fields, f)
		}
	}
	// Without python3 here the worker reports it, as it always did.
	if !overlaps("spec.processing.handler", fields) {
		err := CheckHandler(context.Background(), d.Spec.Processing.Handler)
		if fe := myt.ErrorFields(err); len(fe) > 0 {
			fields = append(fields, fe...)
		} else if err != nil && !errors.Is(err, ErrNoPython) {
			return nil, err
		}
	}
	if len(fields) > 0 {
		return d, &myt.Error{Code: myt.EINVALID, Message: "The platform design is not valid.", Fields: fields}
	}
	return d, nil
}

// protocolsAsWritten turns off the protocols a broker mapping does not
// name when it turns one on: `broker: {mqtt: true}` means MQTT only. With
// no protocol set to true (no broker, or only `amqp: false`), the ones not
// named keep their default, on.
func protocolsAsWritten(top map[string]any, d *myt.Design) {
	spec, _ := top["spec"].(map[string]any)
	broker, _ := spec["broker"].(map[string]any)
	if broker["mqtt"] != true && broker["amqp"] != true {
		return
	}
	if _, ok := broker["mqtt"]; !ok {
		d.Spec.Broker.MQTT = false
	}
	if _, ok := broker["amqp"]; !ok {
		d.Spec.Broker.AMQP = false
	}
}

// prune deletes the value at path (a.b.c, a list index drops the whole
// list) from doc.
func prune(doc map[string]any, path string) {
	keys := strings.Split(path, ".")
	m := doc
	for i, k := range keys {
		k, _, _ = strings.Cut(k, "[")
		if i == len(keys)-1 {
			delete(m, k)
			return
		}
		next, ok := m[k].(map[string]any)
		if !ok {
			delete(m, k)
			return
		}
		m = next
	}
}

// overlaps reports whether path is, contains or is inside one of the
// fields' paths.
func overlaps(path string, fields []myt.FieldError) bool {
	within := func(a, b string) bool {
		return a == b || strings.HasPrefix(a, b+".") || strings.HasPrefix(a, b+"[")
	}
	for _, f := range fields {
		if within(path, f.Field) || within(f.Field, path) {
			return true
		}
	}
	return false
}

// canonical gives a design one form for one meaning: an empty list or map
// is the same as an absent one (which is how it is written back out).
func canonical(d *myt.Design) {
	if len(d.Spec.Database.Fields) == 0 {
		d.Spec.Database.Fields = nil
	}
	if len(d.Spec.Target.AdminCIDRs) == 0 {
		d.Spec.Target.AdminCIDRs = nil
	}
	if len(d.Spec.Target.DeviceCIDRs) == 0 {
		d.Spec.Target.DeviceCIDRs = nil
	}
}

// MarshalYAML renders d as a YAML document in the field order of the
// types, multi-line strings (the handler) as literal blocks (|) that read
// like the code they hold.
func MarshalYAML(d *myt.Design) ([]byte, error) {
	// Going through JSON keeps the json tags (and omitempty) authoritative.
	raw, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return literalYAML(raw)
}

// MarshalJSON renders d as indented JSON.
func MarshalJSON(d *myt.Design) ([]byte, error) {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// checkShape compares a decoded document against the Go type it must fill,
// reporting unknown keys and values of the wrong kind by path.
func checkShape(path string, v any, t reflect.Type, out *[]myt.FieldError) {
	add := func(msg string, args ...any) {
		p := path
		if p == "" {
			p = "(document)"
		}
		*out = append(*out, myt.FieldError{Field: p, Message: fmt.Sprintf(msg, args...)})
	}
	if v == nil {
		return // null keeps the default, as for an omitted key
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			add("%s given; must be a mapping", describe(v))
			return
		}
		known := map[string]reflect.StructField{}
		var names []string
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			known[name] = f
			names = append(names, name)
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f, ok := known[k]
			if !ok {
				*out = append(*out, myt.FieldError{Field: join(path, k), Message: fmt.Sprintf("unknown field; allowed here: %s", strings.Join(names, ", "))})
				continue
			}
			checkShape(join(path, k), m[k], f.Type, out)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			add("%s given; must be a mapping", describe(v))
			return
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			checkShape(join(path, k), m[k], t.Elem(), out)
		}
	case reflect.Slice:
		s, ok := v.([]any)
		if !ok {
			add("%s given; must be a list", describe(v))
			return
		}
		for i, e := range s {
			checkShape(fmt.Sprintf("%s[%d]", path, i), e, t.Elem(), out)
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			add("%s given; must be a string (quote it)", describe(v))
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			add("%s given; must be true or false", describe(v))
		}
	case reflect.Int, reflect.Int64:
		if !isInteger(v) {
			add("%s given; must be a whole number", describe(v))
		}
	}
}

func isInteger(v any) bool {
	switch x := v.(type) {
	case int, int64, uint64:
		return true
	case json.Number:
		_, err := x.Int64()
		return err == nil
	case float64:
		return x == float64(int64(x))
	}
	return false
}

func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	default:
		return fmt.Sprint(x)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func jsonSyntaxMessage(data []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
		return fmt.Sprintf("line %d: %s", line, se.Error())
	}
	return err.Error()
}
