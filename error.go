package myt

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Error codes. They are few on purpose; httpapi maps each to one HTTP status.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EUNAUTHORIZED = "unauthorized"
	EFORBIDDEN    = "forbidden"
	ETOOMANY      = "too_many_requests"
	ETOOLARGE     = "too_large"
	EINTERNAL     = "internal"
)

// Error is an error a user may see: Message is written for them. Internal
// detail never goes into Message; it is logged where the error is handled.
type Error struct {
	Code    string
	Message string
	// Fields lists per-field problems for EINVALID errors (form and design
	// validation), in input order.
	Fields []FieldError
}

// FieldError is one invalid field: its path (for example
// "spec.target.provider") and what is wrong with it.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e FieldError) String() string { return e.Field + ": " + e.Message }

// Error implements error. With field errors, it lists them one per line.
func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	var b strings.Builder
	b.WriteString(e.Message)
	for _, f := range e.Fields {
		b.WriteString("\n  ")
		b.WriteString(f.String())
	}
	return b.String()
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error carrying fields, or nil when there are none.
func Invalid(message string, fields []FieldError) error {
	if len(fields) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Message: message, Fields: fields}
}

// ErrorCode returns the code of the *Error in err's chain, EINTERNAL for any
// other error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the user-facing message of err: the *Error's Message,
// or a generic text for internal errors (whose detail must not leak).
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "Internal error."
	}
}

// ErrorFields returns the field errors of the *Error in err's chain.
func ErrorFields(err error) []FieldError {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

// ParseID parses an object id as it appears in a URL path. Anything that
// is not a positive integer is an id no object can have, so the answer is
// ENOTFOUND, the same as for an id that belongs to nobody or to someone
// else.
func ParseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, Errorf(ENOTFOUND, "Not found.")
	}
	return id, nil
}

// WithMoreFields adds to err the field errors of more whose paths err
// does not already speak about, so that a caller reports every problem in
// one answer. A more that is not a validation error is returned as is (it
// is then the real problem); a nil more leaves err alone.
func WithMoreFields(err, more error) error {
	if more == nil {
		return err
	}
	if ErrorCode(more) != EINVALID {
		return more
	}
	fields := ErrorFields(err)
	n := len(fields)
	for _, f := range ErrorFields(more) {
		dup := false
		for _, g := range fields[:n] {
			if f.Field == g.Field || strings.HasPrefix(f.Field, g.Field+".") || strings.HasPrefix(f.Field, g.Field+"[") || strings.HasPrefix(g.Field, f.Field+".") || strings.HasPrefix(g.Field, f.Field+"[") {
				dup = true
				break
			}
		}
		if !dup {
			fields = append(fields, f)
		}
	}
	return &Error{Code: EINVALID, Message: ErrorMessage(err), Fields: fields}
}
