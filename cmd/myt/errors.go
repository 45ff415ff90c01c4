package main

import (
	"strings"

	"github.com/myt-iot/myt"
)

// oneLine renders err as a single line: a user-facing message, with field
// errors joined by "; ".
func oneLine(err error) string {
	msg := err.Error()
	if fields := myt.ErrorFields(err); len(fields) > 0 {
		parts := make([]string, len(fields))
		for i, f := range fields {
			parts[i] = f.String()
		}
		msg = myt.ErrorMessage(err) + " " + strings.Join(parts, "; ")
	}
	return strings.Join(strings.Fields(msg), " ")
}
