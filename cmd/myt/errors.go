package main

import "strings"

// oneLine renders err as a single line: field errors (one per line in
// myt.Error) are joined by "; ".
func oneLine(err error) string {
	msg := strings.ReplaceAll(err.Error(), "\n  ", "; ")
	return strings.Join(strings.Fields(msg), " ")
}
