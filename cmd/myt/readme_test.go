package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMECommandsRunAsWritten reads the README's walkthrough as a
// newcomer does: `myt` must be installed before it is first used, and
// every myt command it shows must be a real command whose flags and
// arguments are accepted.
func TestREADMECommandsRunAsWritten(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	walk, _, _ := strings.Cut(string(raw), "## Reference")

	// Shell lines of fenced sh blocks and inline `myt …` spans, in order.
	var cmds []string
	inSh := false
	inline := regexp.MustCompile("`(myt [^`]+|go (?:install|build|run) [^`]+)`")
	for _, line := range strings.Split(walk, "\n") {
		trim := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trim, "```sh"):
			inSh = true
		case strings.HasPrefix(trim, "```"):
			inSh = false
		case inSh:
			cmds = append(cmds, trim)
		default:
			for _, m := range inline.FindAllStringSubmatch(line, -1) {
				cmds = append(cmds, m[1])
			}
		}
	}

	installed := false
	used := 0
	for _, line := range cmds {
		for _, part := range regexp.MustCompile(`\s*(?:&&|\||;)\s*`).Split(line, -1) {
			words := strings.Fields(part)
			if len(words) == 0 {
				continue
			}
			if words[0] == "go" && len(words) > 1 && (words[1] == "install" || words[1] == "build" && strings.Contains(part, "-o")) && strings.Contains(part, "./cmd/myt") {
				installed = true
				continue
			}
			if words[0] != "myt" {
				continue
			}
			used++
			if !installed {
				t.Errorf("README runs %q before saying how to get myt on the PATH (go install ./cmd/myt)", part)
			}
			// Drop redirections: they are the shell's.
			var args []string
			for _, w := range words[1:] {
				if strings.HasPrefix(w, ">") || strings.HasPrefix(w, "<") {
					break
				}
				args = append(args, w)
			}
			root := newRootCmd()
			cmd, rest, err := root.Find(args)
			if err != nil || cmd == root {
				t.Errorf("README command %q: not a myt command (%v)", part, err)
				continue
			}
			if err := cmd.ParseFlags(rest); err != nil {
				t.Errorf("README command %q: %v", part, err)
				continue
			}
			if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
				t.Errorf("README command %q: %v", part, err)
			}
		}
	}
	if used < 5 {
		t.Fatalf("found only %d myt commands in the README walkthrough: is the parser broken?", used)
	}
}
