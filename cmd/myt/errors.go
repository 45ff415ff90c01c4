package main

import "strings"

// errorText renders err for stderr: its message, then each field error
// (or line of detail, such as a YAML excerpt) on a line of its own:
//
//	The platform design is not valid.
//	  spec.target.provider: "awz" given; allowed: ...
//	  metadata.name: required
func errorText(err error) string {
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	out := lines[:0]
	for _, l := range lines {
		if l = strings.TrimRight(l, " \t"); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
