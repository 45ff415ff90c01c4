package record

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Field types, the vocabulary of a design's spec.database.fields.
const (
	Float  = "float"
	Int    = "int"
	Bool   = "bool"
	String = "string"
)

// Coerce converts a JSON value to the declared type: float64, int64, bool
// or string; nil stays nil (a missing value). A value that cannot be
// represented (a word for a float, 1.5 for an int, an object) is an error:
// the record is then dead-lettered instead of silently losing the value.
func Coerce(v any, typ string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch typ {
	case Float:
		switch x := v.(type) {
		case json.Number:
			f, err := strconv.ParseFloat(string(x), 64)
			if err != nil || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%s is not a float", x)
			}
			return f, nil
		case float64:
			return x, nil
		case int64:
			return float64(x), nil
		case bool:
			if x {
				return 1.0, nil
			}
			return 0.0, nil
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, fmt.Errorf("%q is not a float", x)
			}
			return f, nil
		}
	case Int:
		switch x := v.(type) {
		case json.Number:
			if n, err := strconv.ParseInt(string(x), 10, 64); err == nil {
				return n, nil
			}
			f, err := strconv.ParseFloat(string(x), 64)
			if err == nil && f == math.Trunc(f) && math.Abs(f) < 1<<53 {
				return int64(f), nil
			}
			return nil, fmt.Errorf("%s is not an int", x)
		case float64:
			if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
				return int64(x), nil
			}
			return nil, fmt.Errorf("%v is not an int", x)
		case int64:
			return x, nil
		case bool:
			if x {
				return int64(1), nil
			}
			return int64(0), nil
		case string:
			n, err := strconv.ParseInt(x, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("%q is not an int", x)
			}
			return n, nil
		}
	case Bool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
		case json.Number:
			switch x {
			case "0":
				return false, nil
			case "1":
				return true, nil
			}
		case string:
			if b, err := strconv.ParseBool(x); err == nil {
				return b, nil
			}
		}
		return nil, fmt.Errorf("%v is not a bool", v)
	case String:
		switch x := v.(type) {
		case string:
			return x, nil
		case json.Number:
			return string(x), nil
		case bool:
			return strconv.FormatBool(x), nil
		case float64:
			return strconv.FormatFloat(x, 'g', -1, 64), nil
		case int64:
			return strconv.FormatInt(x, 10), nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	default:
		return nil, fmt.Errorf("unknown field type %q", typ)
	}
	return nil, fmt.Errorf("%T value is not a %s", v, typ)
}

// Split separates a record's fields into the declared ones, converted to
// their types (missing ones nil), and the rest (nil when none).
func Split(fields map[string]any, declared map[string]string, names []string) (typed []any, extra map[string]any, err error) {
	typed = make([]any, len(names))
	for i, n := range names {
		v, err := Coerce(fields[n], declared[n])
		if err != nil {
			return nil, nil, fmt.Errorf("field %s: %w", n, err)
		}
		typed[i] = v
	}
	for k, v := range fields {
		if _, ok := declared[k]; !ok {
			if extra == nil {
				extra = make(map[string]any)
			}
			extra[k] = v
		}
	}
	return typed, extra, nil
}

// InvalidError marks a record that its sink (or the declared types) cannot
// store; it is dead-lettered, the rest of the batch goes on.
type InvalidError struct {
	ID  string
	Err error
}

func (e *InvalidError) Error() string { return "record " + e.ID + ": " + e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }
