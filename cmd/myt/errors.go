package main

import "strings"

// oneLine renders err as a single line. A myt.Error lists its field
// errors one per line under its message; here the message is followed by
// a colon and the field errors are joined by "; ":
//
//	The platform design is not valid: spec.target.provider: "awz" given; allowed: ...
func oneLine(err error) string {
	msg := err.Error()
	if head, rest, ok := strings.Cut(msg, "\n  "); ok {
		msg = strings.TrimSuffix(head, ".") + ": " + strings.ReplaceAll(rest, "\n  ", "; ")
	}
	return strings.Join(strings.Fields(msg), " ")
}
