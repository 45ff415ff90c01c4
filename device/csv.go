package device

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/myt-iot/myt"
)

// MaxImport is the most devices one import adds.
const MaxImport = 10000

// MaxDescription is the longest description, in characters.
const MaxDescription = 200

// ParseCSV reads a fleet: one device per line, name[,description], with
// an optional header line "name[,description]"; blank lines are skipped.
// It checks every line and returns either all devices or an EINVALID
// error whose fields are "line N" and what is wrong there (a bad name, a
// name given twice, too many columns, a name taken reports as taken),
// every problem at once. lines are the devices' line numbers. taken may
// be nil.
func ParseCSV(b []byte, taken func(name string) bool) (ds []myt.DeviceNew, lines []int, err error) {
	if !utf8.Valid(b) {
		return nil, nil, myt.Errorf(myt.EINVALID, "The file is not UTF-8 text.")
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // a spreadsheet's byte order mark
	r := csv.NewReader(bytes.NewReader(b))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	var out []myt.DeviceNew
	var fields []myt.FieldError
	first := map[string]int{}
	bad := func(line int, format string, args ...any) {
		if len(fields) < 100 {
			fields = append(fields, myt.FieldError{Field: fmt.Sprintf("line %d", line), Message: fmt.Sprintf(format, args...)})
		}
	}
	for n := 0; ; n++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				bad(pe.StartLine, "not CSV: %v", pe.Err)
				break
			}
			return nil, nil, err
		}
		line, _ := r.FieldPos(0)
		if n == 0 && strings.EqualFold(strings.TrimSpace(rec[0]), "name") {
			continue // header
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) > 2 {
			bad(line, "%d columns: give name[,description]", len(rec))
			continue
		}
		d := myt.DeviceNew{Name: strings.TrimSpace(rec[0])}
		if len(rec) == 2 {
			d.Description = strings.TrimSpace(rec[1])
		}
		if err := myt.ValidateDeviceName(d.Name); err != nil {
			bad(line, "name %q: %s", d.Name, myt.ErrorFields(err)[0].Message)
			continue
		}
		if err := validateDescription(d.Description); err != nil {
			bad(line, "%s", myt.ErrorFields(err)[0].Message)
			continue
		}
		if taken != nil && taken(d.Name) {
			bad(line, "%s: the platform already has a device of that name", d.Name)
			continue
		}
		if l, ok := first[d.Name]; ok {
			bad(line, "%s is already on line %d", d.Name, l)
			continue
		}
		first[d.Name] = line
		out = append(out, d)
		lines = append(lines, line)
	}
	if len(out) > MaxImport {
		return nil, nil, myt.Errorf(myt.EINVALID, "The file has %d devices; import at most %d at a time.", len(out), MaxImport)
	}
	if err := myt.Invalid("Nothing was imported: fix these lines and import the file again.", fields); err != nil {
		return nil, nil, err
	}
	if len(out) == 0 {
		return nil, nil, myt.Errorf(myt.EINVALID, "The file has no devices: give one per line, name[,description].")
	}
	return out, lines, nil
}

func validateDescription(s string) error {
	if utf8.RuneCountInString(s) > MaxDescription || strings.ContainsAny(s, "\r\n\x00") {
		return myt.Invalid("Check the description.", []myt.FieldError{{Field: "description", Message: fmt.Sprintf("description: one line of at most %d characters", MaxDescription)}})
	}
	return nil
}

// WriteCSV writes name,password lines (with that header): the only
// copy of the passwords of newly added devices.
func WriteCSV(w io.Writer, ss []*myt.DeviceSecret) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"name", "password"})
	for _, s := range ss {
		cw.Write([]string{s.Device.Name, s.Password})
	}
	cw.Flush()
	return cw.Error()
}
