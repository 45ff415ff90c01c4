package design

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/goccy/go-yaml"
)

// literalYAML turns a JSON document into YAML in the same key order,
// writing multi-line strings as literal blocks. YAML cannot write every
// string as a block (one starting with spaces, say), so the result is
// read back and, if it does not give the same document, the plain
// (escaped) form is used instead.
func literalYAML(raw []byte) ([]byte, error) {
	var v any
	if err := yaml.UnmarshalWithOptions(raw, &v, yaml.UseOrderedMap()); err != nil {
		return nil, err
	}
	out, err := yaml.MarshalWithOptions(v, yaml.UseLiteralStyleIfMultiline(true))
	if err == nil && sameDocument(raw, out) {
		return out, nil
	}
	return yaml.JSONToYAML(raw)
}

func sameDocument(jsonDoc, yamlDoc []byte) bool {
	var a, b any
	if json.Unmarshal(jsonDoc, &a) != nil || yaml.Unmarshal(yamlDoc, &b) != nil {
		return false
	}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

var yamlPosRE = regexp.MustCompile(`^\[(\d+):(\d+)\]\s*`)

// yamlSyntaxMessage says where a YAML syntax error is and shows the lines
// around it, one per line, the error's line marked with ">" and its
// column with "^":
//
//	line 4, column 9: mapping value is not allowed in this context
//	   3 | metadata:
//	>  4 |   name: x: y
//	               ^
func yamlSyntaxMessage(err error) string {
	text := strings.TrimRight(yaml.FormatError(err, false, true), "\n ")
	head, snippet, _ := strings.Cut(text, "\n")
	if m := yamlPosRE.FindStringSubmatch(head); m != nil {
		head = fmt.Sprintf("line %s, column %s: %s", m[1], m[2], head[len(m[0]):])
	}
	if snippet == "" {
		return head
	}
	return head + "\n" + snippet
}
