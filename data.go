package myt

import (
	"context"
	"io"
	"time"
)

// Export formats.
const (
	FormatCSV    = "csv"
	FormatNDJSON = "ndjson"
)

// ExportQuery selects the records of an export: From inclusive, To
// exclusive (zero: unbounded), one Device or all, in Format (FormatCSV or
// FormatNDJSON; empty is NDJSON).
type ExportQuery struct {
	From, To time.Time
	Device   string
	Format   string
}

// Export is an export being read from a platform's worker, in time order.
// Body is the stream as the worker sends it (NDJSON records, the import
// format, or CSV); its Close releases the connection. A Read that fails
// before io.EOF means the export is incomplete.
type Export struct {
	Platform    string
	Format      string
	ContentType string
	Body        io.ReadCloser
}

// Filename is a name for the export's file: the platform, the range and
// the format.
func (e *Export) Filename(q ExportQuery) string {
	name := e.Platform
	if q.Device != "" {
		name += "-" + q.Device
	}
	if !q.From.IsZero() {
		name += "-from-" + q.From.UTC().Format("20060102T150405Z")
	}
	if !q.To.IsZero() {
		name += "-to-" + q.To.UTC().Format("20060102T150405Z")
	}
	return name + "." + e.Format
}

// Move says what a move of records from one platform to another did:
// Exported records read from the source, Imported written to the
// destination (a record already there counts, and stays one record),
// Rejected refused by the destination (with the first few reasons).
type Move struct {
	From     string   `json:"from"`
	To       string   `json:"to"`
	Exported int      `json:"exported"`
	Imported int      `json:"imported"`
	Rejected int      `json:"rejected"`
	Reasons  []string `json:"reasons,omitempty"`
}

// DataService reads a running platform's records out, and moves them into
// another platform. It is an optional ability of a WorkerService (found by
// type assertion), and like it acts only on the principal's own running
// platforms: a platform that is not running is EINVALID, another user's
// ENOTFOUND.
type DataService interface {
	// Export opens the platform's export for q. Errors before the first
	// byte are returned here (EINVALID for a bad query or a platform
	// that does not run); the caller must Close the Body.
	Export(ctx context.Context, platformID int64, q ExportQuery) (*Export, error)
	// Move streams the source's export (NDJSON) into the destination's
	// import. Ids are kept, so moving again adds no record. A move cut
	// short returns an error; what was imported stays and moving again
	// completes it.
	Move(ctx context.Context, fromID, toID int64, q ExportQuery) (*Move, error)
}

// ParseExportRange reads an export's from and to (RFC 3339, or a date
// YYYY-MM-DD in UTC; empty is unbounded). A date as "to" means the end of
// that day, so from=to=one date is that whole day. Errors are EINVALID
// naming the field by the names given (a flag, a form field).
func ParseExportRange(from, to, fromName, toName string) (time.Time, time.Time, error) {
	var fields []FieldError
	parse := func(s, name string, end bool) time.Time {
		if s == "" {
			return time.Time{}
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC()
		}
		if t, err := time.Parse(time.DateOnly, s); err == nil {
			if end {
				t = t.AddDate(0, 0, 1)
			}
			return t
		}
		fields = append(fields, FieldError{Field: name, Message: "must be an RFC 3339 time (2026-01-02T15:04:05Z) or a date (2026-01-02), got " + quote(s)})
		return time.Time{}
	}
	f, t := parse(from, fromName, false), parse(to, toName, true)
	if len(fields) == 0 && !f.IsZero() && !t.IsZero() && !f.Before(t) {
		fields = append(fields, FieldError{Field: toName, Message: "must be after " + fromName})
	}
	if len(fields) > 0 {
		return time.Time{}, time.Time{}, &Error{Code: EINVALID, Message: "The time range is not valid.", Fields: fields}
	}
	return f, t, nil
}

func quote(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return `"` + s + `"`
}
