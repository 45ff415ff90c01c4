// Package diff compares two texts line by line (Myers' O(ND) algorithm)
// and prints the difference as a unified diff: what the code page and
// `myt code history` show between two handler versions.
package diff

import (
	"fmt"
	"strings"
)

// Op is what happens to one line.
type Op byte

const (
	Equal  Op = ' '
	Insert Op = '+'
	Delete Op = '-'
)

// Line is one line of an edit script.
type Line struct {
	Op   Op
	Text string
}

// maxEdits bounds the search: texts that differ in more lines than this
// are shown as everything deleted, then everything inserted (still a
// correct script, just not the shortest).
const maxEdits = 4000

// Lines returns an edit script from a to b, line by line: every line of a
// in order, marked Equal or Delete, interleaved with b's Insert lines.
func Lines(a, b string) []Line {
	x, y := split(a), split(b)
	// Common head and tail first: the usual edit touches a few lines.
	pre := 0
	for pre < len(x) && pre < len(y) && x[pre] == y[pre] {
		pre++
	}
	suf := 0
	for suf < len(x)-pre && suf < len(y)-pre && x[len(x)-1-suf] == y[len(y)-1-suf] {
		suf++
	}
	var out []Line
	for _, l := range x[:pre] {
		out = append(out, Line{Equal, l})
	}
	out = append(out, myers(x[pre:len(x)-suf], y[pre:len(y)-suf])...)
	for _, l := range x[len(x)-suf:] {
		out = append(out, Line{Equal, l})
	}
	return out
}

func split(s string) []string {
	if s == "" {
		return nil
	}
	ls := strings.SplitAfter(strings.TrimSuffix(s, "\n")+"\n", "\n")
	return ls[:len(ls)-1] // after the last newline: ""
}

// myers finds a shortest edit script from x to y.
func myers(x, y []string) []Line {
	n, m := len(x), len(y)
	if n == 0 || m == 0 {
		return replaceAll(x, y)
	}
	limit := n + m
	off := limit + 1
	v := make([]int, 2*limit+3)
	var trace [][]int
search:
	for d := 0; d <= limit; d++ {
		if d > maxEdits {
			return replaceAll(x, y)
		}
		trace = append(trace, append([]int(nil), v...))
		for k := -d; k <= d; k += 2 {
			var i int
			if k == -d || k != d && v[off+k-1] < v[off+k+1] {
				i = v[off+k+1] // down: a line of y inserted
			} else {
				i = v[off+k-1] + 1 // right: a line of x deleted
			}
			j := i - k
			for i < n && j < m && x[i] == y[j] {
				i++
				j++
			}
			v[off+k] = i
			if i >= n && j >= m {
				break search
			}
		}
	}
	// Walk back through the frontier each round started from.
	var rev []Line
	i, j := n, m
	for d := len(trace) - 1; d >= 0; d-- {
		vd := trace[d]
		k := i - j
		pk := k - 1
		if k == -d || k != d && vd[off+k-1] < vd[off+k+1] {
			pk = k + 1
		}
		pi := vd[off+pk]
		pj := pi - pk
		for i > pi && j > pj {
			rev = append(rev, Line{Equal, x[i-1]})
			i--
			j--
		}
		if d > 0 {
			if i == pi {
				rev = append(rev, Line{Insert, y[j-1]})
			} else {
				rev = append(rev, Line{Delete, x[i-1]})
			}
		}
		i, j = pi, pj
	}
	out := make([]Line, len(rev))
	for k, l := range rev {
		out[len(rev)-1-k] = l
	}
	return out
}

func replaceAll(x, y []string) []Line {
	out := make([]Line, 0, len(x)+len(y))
	for _, l := range x {
		out = append(out, Line{Delete, l})
	}
	for _, l := range y {
		out = append(out, Line{Insert, l})
	}
	return out
}

// Stat counts the lines inserted and deleted from a to b.
func Stat(a, b string) (inserted, deleted int) {
	for _, l := range Lines(a, b) {
		switch l.Op {
		case Insert:
			inserted++
		case Delete:
			deleted++
		}
	}
	return inserted, deleted
}

// Hunk is a run of changes with up to context equal lines around it.
type Hunk struct {
	// FromLine and ToLine are the 1-based first lines in a and b;
	// FromCount and ToCount how many lines of each the hunk spans.
	FromLine, FromCount, ToLine, ToCount int
	Lines                                []Line
}

// Hunks groups the edit script from a to b into hunks.
func Hunks(a, b string, context int) []Hunk {
	ls := Lines(a, b)
	var hunks []Hunk
	ai, bi := 0, 0 // lines of a and b before ls[k]
	for k := 0; k < len(ls); {
		if ls[k].Op == Equal {
			ai, bi, k = ai+1, bi+1, k+1
			continue
		}
		// A change at k: start context lines before it.
		start := max(k-context, 0)
		for start < k && ls[start].Op != Equal {
			start++
		}
		back := k - start
		h := Hunk{FromLine: ai - back + 1, ToLine: bi - back + 1}
		end := k
		for end < len(ls) {
			if ls[end].Op != Equal {
				end++
				continue
			}
			// Equal run: does another change follow within 2*context?
			run := end
			for run < len(ls) && ls[run].Op == Equal {
				run++
			}
			if run < len(ls) && run-end <= 2*context {
				end = run
				continue
			}
			end = min(end+context, run)
			break
		}
		h.Lines = ls[start:end]
		for _, l := range h.Lines {
			if l.Op != Insert {
				h.FromCount++
			}
			if l.Op != Delete {
				h.ToCount++
			}
		}
		for _, l := range ls[k:end] {
			if l.Op != Insert {
				ai++
			}
			if l.Op != Delete {
				bi++
			}
		}
		hunks = append(hunks, h)
		k = end
	}
	return hunks
}

// Unified returns the difference from a to b as a unified diff (as
// `diff -u`), or "" when they are the same.
func Unified(fromName, toName, a, b string, context int) string {
	hs := Hunks(a, b, context)
	if len(hs) == 0 {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ %s\n", fromName, toName)
	for _, h := range hs {
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", span(h.FromLine, h.FromCount), span(h.ToLine, h.ToCount))
		for _, l := range h.Lines {
			sb.WriteByte(byte(l.Op))
			sb.WriteString(l.Text)
		}
	}
	return sb.String()
}

// span is a hunk range as diff -u writes it.
func span(line, count int) string {
	switch count {
	case 0:
		return fmt.Sprintf("%d,0", line-1)
	case 1:
		return fmt.Sprint(line)
	}
	return fmt.Sprintf("%d,%d", line, count)
}
