package design

import (
	"bytes"

	"github.com/myt-iot/myt"
)

// Limits of a YAML or JSON document MyT reads from a user (a design, a
// worker configuration). A real design nests about six levels and has a few
// dozen entries.
const (
	MaxDepth   = 32
	MaxEntries = 4000
)

// CheckStructure refuses a YAML or JSON document that nests deeper than
// MaxDepth or has more than MaxEntries entries, before any parser sees it.
// The YAML library builds the whole tree before it checks depth itself, and
// its cost grows with the square of the nesting and of the entries in a
// mapping: 60 KB of "[" took gigabytes, and so did 900 KB of keys. This is
// a byte-level scan, one pass, no allocation beyond a stack of MaxDepth
// entries: it follows flow collections ([ and {), block indentation and
// "- " / "? " entries, and skips quoted strings, comments and block scalars
// (| and >, so brackets in handler code do not count). It bounds the shape
// rather than parses: a document it passes may still be invalid, which the
// parser then says.
//
// The error is EINVALID and names the line where a limit was passed.
func CheckStructure(data []byte) error {
	return checkStructure(data, MaxDepth, MaxEntries)
}

func checkStructure(data []byte, maxDepth, maxEntries int) error {
	var sc depthScanner
	sc.max, sc.maxEntries = maxDepth, maxEntries
	line := 0
	for len(data) > 0 {
		line++
		l := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if !sc.line(bytes.TrimSuffix(l, []byte{'\r'})) {
			if sc.entries > maxEntries {
				return myt.Errorf(myt.EINVALID, "The document has more than %d entries (line %d); MyT refuses documents this large.", maxEntries, line)
			}
			return myt.Errorf(myt.EINVALID, "The document nests deeper than %d levels at line %d; MyT refuses documents nested this deeply.", maxDepth, line)
		}
	}
	return nil
}

type depthScanner struct {
	max int
	// entries counts nodes: block lines, "- " entries, flow items.
	entries, maxEntries int
	flow                int   // open [ and { not yet closed
	block               []int // columns of the open block nodes
	// quote is the quote character of a string that goes on to the next
	// line, or 0.
	quote byte
	// scalar is true inside a block scalar, whose lines are more indented
	// than scalarIndent.
	scalar       bool
	scalarIndent int
}

// line scans one line and reports whether the depth stayed within max.
func (s *depthScanner) line(l []byte) bool {
	indent := 0
	for indent < len(l) && l[indent] == ' ' {
		indent++
	}
	blank := indent == len(l) || l[indent] == '#'
	if s.scalar {
		if blank || indent > s.scalarIndent {
			return true
		}
		s.scalar = false
	}
	i := 0
	nodeStart := true
	if s.quote == 0 && s.flow == 0 {
		if blank {
			return true
		}
		if bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("...")) {
			s.block = s.block[:0]
			return true
		}
		for len(s.block) > 0 && s.block[len(s.block)-1] >= indent {
			s.block = s.block[:len(s.block)-1]
		}
		if !s.push(indent) {
			return false
		}
		i = indent
		// Compact nesting: "- - - x" and "? - x" open a node per indicator.
		for i+1 < len(l) && (l[i] == '-' || l[i] == '?') && (l[i+1] == ' ' || l[i+1] == '\t') {
			i += 2
			for i < len(l) && (l[i] == ' ' || l[i] == '\t') {
				i++
			}
			if !s.push(i) {
				return false
			}
		}
	}
	for ; i < len(l); i++ {
		c := l[i]
		if s.quote != 0 {
			switch {
			case c == '\\' && s.quote == '"':
				i++
			case c == s.quote && s.quote == '\'' && i+1 < len(l) && l[i+1] == '\'':
				i++
			case c == s.quote:
				s.quote = 0
				nodeStart = false
			}
			continue
		}
		switch {
		case c == ' ' || c == '\t':
			continue
		case c == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return true // a comment: the rest of the line
		case nodeStart && (c == '"' || c == '\''):
			s.quote = c
			continue
		case nodeStart && (c == '&' || c == '!'):
			// An anchor or a tag: the node is still to come.
			for i+1 < len(l) && l[i+1] != ' ' && l[i+1] != '\t' {
				i++
			}
			continue
		case nodeStart && s.flow == 0 && (c == '|' || c == '>'):
			s.scalar, s.scalarIndent = true, indent
			return true
		case c == '[' || c == '{':
			if s.flow > 0 || nodeStart {
				s.flow++
				if !s.count() || len(s.block)+s.flow > s.max {
					return false
				}
				nodeStart = true
				continue
			}
		case (c == ']' || c == '}') && s.flow > 0:
			s.flow--
			nodeStart = false
			continue
		case c == ',' && s.flow > 0:
			if !s.count() {
				return false
			}
			nodeStart = true
			continue
		case c == ':' && (s.flow > 0 || i+1 == len(l) || l[i+1] == ' ' || l[i+1] == '\t'):
			nodeStart = true
			continue
		}
		nodeStart = false
	}
	return true
}

// push opens a block node at column col.
func (s *depthScanner) push(col int) bool {
	s.block = append(s.block, col)
	return s.count() && len(s.block)+s.flow <= s.max
}

// count counts one entry.
func (s *depthScanner) count() bool {
	s.entries++
	return s.entries <= s.maxEntries
}
