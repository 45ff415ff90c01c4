package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// decoders are reused: a jsontext.Decoder can be Reset to a new input.
var decoders = sync.Pool{New: func() any {
	return jsontext.NewDecoder(bytes.NewReader(nil), jsontext.AllowDuplicateNames(true))
}}

// DecodeJSON parses exactly one JSON value into map[string]any, []any,
// string, bool, nil and json.Number (numbers keep their exact text, as
// with encoding/json's UseNumber). For object keys given twice the last
// wins. It is about twice as fast as encoding/json for this job.
func DecodeJSON(b []byte) (any, error) {
	d := decoders.Get().(*jsontext.Decoder)
	defer decoders.Put(d)
	d.Reset(bytes.NewReader(b), jsontext.AllowDuplicateNames(true))
	v, err := readValue(d)
	if err != nil {
		return nil, err
	}
	if _, err := d.ReadToken(); err != io.EOF {
		return nil, fmt.Errorf("trailing data after the JSON value")
	}
	return v, nil
}

// DecodeFields parses a stored fields document (a sink's JSON column):
// a JSON object, decoded as DecodeJSON does; null is no fields.
func DecodeFields(b []byte) (map[string]any, error) {
	v, err := DecodeJSON(b)
	if err != nil {
		return nil, err
	}
	switch m := v.(type) {
	case map[string]any:
		return m, nil
	case nil:
		return map[string]any{}, nil
	}
	return nil, fmt.Errorf("fields document is %T, want an object", v)
}

func readValue(d *jsontext.Decoder) (any, error) {
	tok, err := d.ReadToken()
	if err != nil {
		return nil, err
	}
	switch tok.Kind() {
	case 'n':
		return nil, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case '"':
		return tok.String(), nil
	case '0':
		return json.Number(tok.String()), nil
	case '{':
		m := make(map[string]any)
		for d.PeekKind() != '}' {
			k, err := d.ReadToken()
			if err != nil {
				return nil, err
			}
			key := k.String() // before the token is voided by the next read
			v, err := readValue(d)
			if err != nil {
				return nil, err
			}
			m[key] = v
		}
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		return m, nil
	case '[':
		a := make([]any, 0, 4)
		for d.PeekKind() != ']' {
			v, err := readValue(d)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		if _, err := d.ReadToken(); err != nil {
			return nil, err
		}
		return a, nil
	}
	return nil, fmt.Errorf("unexpected %v", tok.Kind())
}
