package resource

import (
	"bytes"
	"fmt"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Bounds of one document's structure, checked on its tokens before the
// parser sees them: the parser's time grows with the square of the
// nesting depth and of the keys of one block mapping (20,000 levels of
// "[" take half a second, 40,000 keys of one mapping five seconds).
const (
	// MaxDepth bounds the nesting of mappings and lists.
	MaxDepth = 100
	// MaxMappingKeys bounds the keys of one block-style mapping.
	MaxMappingKeys = 2000
)

// document is one YAML document of a file: its bytes from its "---" line
// (if any) to the next, and the file line it starts on.
type document struct {
	data []byte
	line int
}

// splitDocuments cuts data at its document markers: lines that are "---"
// alone or followed by a space or tab, which YAML forbids inside any
// scalar. Each document is parsed on its own because the YAML parser
// drops the document that follows two consecutive markers, and so that a
// syntax error in one document does not hide the problems of the others.
// Documents holding only comments, blank lines or directives are kept;
// the caller skips them.
func splitDocuments(data []byte) []document {
	var docs []document
	start, startLine, line := 0, 1, 1
	for i := 0; i <= len(data); {
		end := bytes.IndexByte(data[i:], '\n')
		next := len(data) + 1
		if end >= 0 {
			next = i + end + 1
		}
		if i > start && isMarker(data[i:min(next, len(data))]) && !onlyDirectives(data[start:i]) {
			docs = append(docs, document{data: data[start:i], line: startLine})
			start, startLine = i, line
		}
		i = next
		line++
	}
	return append(docs, document{data: data[start:], line: startLine})
}

// onlyDirectives reports whether b is directives ("%YAML 1.2") with
// comments and blank lines: the head of the document that the next marker
// starts, not a document of its own.
func onlyDirectives(b []byte) bool {
	found := false
	for _, l := range bytes.Split(b, []byte("\n")) {
		l = bytes.TrimSpace(l)
		switch {
		case len(l) == 0 || l[0] == '#':
		case l[0] == '%':
			found = true
		default:
			return false
		}
	}
	return found
}

func isMarker(line []byte) bool {
	if !bytes.HasPrefix(line, []byte("---")) {
		return false
	}
	return len(line) == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\n' || line[3] == '\r'
}

// parseDocument parses one document, with the lines of its nodes counted
// from the start of the file. It returns nil for a document without
// content.
func parseDocument(file string, d document) (ast.Node, *Error) {
	if len(d.data) > MaxDocumentBytes {
		return nil, &Error{File: file, Line: d.line, Column: 1,
			Msg: fmt.Sprintf("document of %d bytes, at most %d", len(d.data), MaxDocumentBytes), Hint: "split it into several resources"}
	}
	tks := lexer.Tokenize(string(d.data))
	seen := make(map[*token.Position]bool, len(tks))
	for _, tk := range tks {
		if tk.Position != nil && !seen[tk.Position] {
			seen[tk.Position] = true
			tk.Position.Line += d.line - 1
		}
	}
	if tk, msg := checkStructure(tks); tk != nil {
		e := &Error{File: file, Msg: msg}
		if tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
		return nil, e
	}
	f, err := parser.Parse(tks, 0)
	if err != nil {
		return nil, yamlError(file, err)
	}
	var body ast.Node
	for _, doc := range f.Docs {
		switch doc.Body.(type) {
		case nil, *ast.DirectiveNode, *ast.CommentGroupNode, *ast.CommentNode:
			continue
		}
		if body != nil {
			// Only a "..." end marker can put two documents in one chunk.
			return nil, errAt(file, doc.Body, "", "a second document without a --- line before it")
		}
		body = doc.Body
	}
	return body, nil
}

// checkStructure returns the first token past MaxDepth or MaxMappingKeys,
// with the problem, or nil. Block structure is followed by the columns of
// list entries and keys; flow structure by its brackets. It also refuses
// aliases: an alias repeats its anchor's value wherever it appears, so a
// few lines of them can stand for more values than memory holds, and
// resource documents have no need for them.
func checkStructure(tks token.Tokens) (*token.Token, string) {
	type level struct{ col, keys int }
	var stack []level
	flow, line := 0, -1
	popTo := func(col int) {
		for len(stack) > 0 && stack[len(stack)-1].col > col {
			stack = stack[:len(stack)-1]
		}
	}
	for i, tk := range tks {
		if tk.Position == nil {
			continue
		}
		switch tk.Type {
		case token.AliasType:
			return tk, "aliases (*name) are not supported in resource files"
		case token.SequenceStartType, token.MappingStartType:
			flow++
		case token.SequenceEndType, token.MappingEndType:
			flow = max(flow-1, 0)
		}
		if flow+len(stack) > MaxDepth {
			return tk, fmt.Sprintf("nested more than %d levels deep", MaxDepth)
		}
		if flow > 0 {
			continue
		}
		if tk.Position.Line != line {
			line = tk.Position.Line
			popTo(tk.Position.Column)
		}
		switch tk.Type {
		case token.SequenceEntryType:
			col := tk.Position.Column
			popTo(col)
			if len(stack) == 0 || stack[len(stack)-1].col < col {
				stack = append(stack, level{col: col})
			}
		case token.MappingValueType:
			if i == 0 || tks[i-1].Position == nil {
				continue
			}
			key := tks[i-1]
			col := key.Position.Column
			popTo(col)
			if len(stack) > 0 && stack[len(stack)-1].col == col {
				top := &stack[len(stack)-1]
				top.keys++
				if top.keys > MaxMappingKeys {
					return key, fmt.Sprintf("a mapping of more than %d keys", MaxMappingKeys)
				}
			} else {
				stack = append(stack, level{col: col, keys: 1})
			}
		}
		if flow+len(stack) > MaxDepth {
			return tk, fmt.Sprintf("nested more than %d levels deep", MaxDepth)
		}
	}
	return nil, ""
}

// countContent counts the documents that hold more than a marker,
// comments and blank lines.
func countContent(docs []document) int {
	n := 0
	for _, d := range docs {
		for _, l := range bytes.Split(d.data, []byte("\n")) {
			l = bytes.TrimSpace(l)
			if isMarker(l) {
				l = bytes.TrimSpace(l[3:])
			}
			if len(l) > 0 && l[0] != '#' {
				n++
				break
			}
		}
	}
	return n
}
