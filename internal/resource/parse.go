// Package resource reads Sluice's declarative resource files: YAML
// documents (apiVersion sluice.dev/v1, kind Topic or Pipeline) that
// `sluice apply` and `sluice diff` take and that a Git repository can hold.
// Parsing is strict and reports every problem of a file at once, each with
// its file, line and column and, for a misspelt key or value, a "did you
// mean"; Diff and Canonical compare resources for apply.
package resource

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
)

// Limits of what Parse reads. The YAML parser's time grows faster than
// linearly with the size of one document (a 2 MiB mapping takes a minute),
// so documents are bounded on their own, before parsing, well below that.
const (
	// MaxInputBytes bounds one file or request body.
	MaxInputBytes = 1 << 20
	// MaxDocumentBytes bounds one document of it.
	MaxDocumentBytes = 128 << 10
	// MaxDocuments bounds the documents of one file.
	MaxDocuments = 1000
)

// Resource is a parsed *Topic or *Pipeline.
type Resource interface {
	GetKind() string
	GetName() string
	// Origin is where Parse read the resource, "file:line:column" of its
	// first key, or "" for one built in code or decoded from JSON.
	Origin() string
}

// GetKind, GetName and Origin make *Topic and *Pipeline Resources.
func (t *Topic) GetKind() string    { return KindTopic }
func (t *Topic) GetName() string    { return t.Metadata.Name }
func (t *Topic) Origin() string     { return t.origin }
func (p *Pipeline) GetKind() string { return KindPipeline }
func (p *Pipeline) GetName() string { return p.Metadata.Name }
func (p *Pipeline) Origin() string  { return p.origin }

// setOrigin records where a parsed resource's document starts.
func setOrigin(r Resource, file string, body ast.Node) {
	at := body
	if mvs := mappingValues(body); len(mvs) > 0 {
		at = mvs[0].Key
	}
	line, col := position(at)
	o := fmt.Sprintf("%s:%d:%d", file, line, col)
	switch t := r.(type) {
	case *Topic:
		t.origin = o
	case *Pipeline:
		t.origin = o
	}
}

// Error is one problem of a resource file, where it is.
type Error struct {
	File         string
	Line, Column int
	// Path is the field, such as spec.sink.postgres.mode.
	Path string
	Msg  string
	Hint string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" || e.Line > 0 {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (" + e.Hint + ")")
	}
	return b.String()
}

// Errors is every problem found, sorted by file and position.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// ParseOptions changes what Parse accepts.
type ParseOptions struct {
	// BaseDir resolves schemaFile references, which are read and put
	// inline (validate.jsonSchema). Empty refuses them: a server cannot
	// read a client's files.
	BaseDir string
}

// ParseFiles parses files and directories (every *.yaml, *.yml and *.json
// directly in a directory, sorted; subdirectories are not read), checking
// names for duplicates across all of them.
func ParseFiles(paths ...string) ([]Resource, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".yaml", ".yml", ".json":
				if !e.IsDir() {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no resource files (*.yaml, *.yml, *.json) in %s", strings.Join(paths, ", "))
	}
	var all []Resource
	var errs Errors
	var origins []origin
	for _, f := range files {
		data, err := readLimited(f)
		if err != nil {
			return nil, err
		}
		rs, ors, err := parse(f, data, ParseOptions{BaseDir: filepath.Dir(f)})
		if err != nil {
			var es Errors
			if errors.As(err, &es) {
				errs = append(errs, es...)
				continue
			}
			return nil, err
		}
		all = append(all, rs...)
		origins = append(origins, ors...)
	}
	errs = append(errs, duplicates(all, origins)...)
	if len(errs) > 0 {
		return nil, errs
	}
	return all, nil
}

// ParseDir parses the resource files directly in dir, as ParseFiles does
// for a directory; it fails if dir is not one. Subdirectories are not
// read, so that schema files can live beside the resources in schemas/
// without being taken for resources.
func ParseDir(dir string) ([]Resource, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	return ParseFiles(dir)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxInputBytes {
		return nil, fmt.Errorf("%s: %d bytes, at most %d", path, st.Size(), MaxInputBytes)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// Parse parses and validates the documents of one file (name is used in
// errors). Errors are Errors.
func Parse(name string, data []byte, opts ParseOptions) ([]Resource, error) {
	rs, ors, err := parse(name, data, opts)
	if err != nil {
		return nil, err
	}
	if errs := duplicates(rs, ors); len(errs) > 0 {
		return nil, errs
	}
	return rs, nil
}

// origin is where a resource was declared.
type origin struct {
	file string
	node ast.Node
}

func parse(name string, data []byte, opts ParseOptions) ([]Resource, []origin, error) {
	if len(data) > MaxInputBytes {
		return nil, nil, Errors{{File: name, Msg: fmt.Sprintf("%d bytes, at most %d", len(data), MaxInputBytes)}}
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	docs := splitDocuments(data)
	if n := countContent(docs); n > MaxDocuments {
		return nil, nil, Errors{{File: name, Msg: fmt.Sprintf("%d documents, at most %d", n, MaxDocuments), Hint: "split them into several files"}}
	}
	p := &fileParser{file: name, opts: opts}
	var out []Resource
	var ors []origin
	for _, d := range docs {
		body, e := parseDocument(name, d)
		if e != nil {
			p.errs = append(p.errs, e)
			continue
		}
		if body == nil {
			continue // an empty document, as after a trailing ---
		}
		if r := p.document(body); r != nil {
			setOrigin(r, name, body)
			out = append(out, r)
			ors = append(ors, origin{file: name, node: body})
		}
	}
	if len(p.errs) > 0 {
		sortErrors(p.errs)
		return nil, nil, p.errs
	}
	if len(out) == 0 {
		return nil, nil, Errors{{File: name, Msg: "no resource documents"}}
	}
	return out, ors, nil
}

func sortErrors(es Errors) {
	sort.SliceStable(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

func yamlError(file string, err error) *Error {
	e := &Error{File: file, Msg: err.Error()}
	var ye yaml.Error
	if errors.As(err, &ye) {
		e.Msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
	}
	return e
}

func duplicates(rs []Resource, ors []origin) Errors {
	var errs Errors
	seen := map[string]origin{}
	for i, r := range rs {
		k := r.GetKind() + "/" + r.GetName()
		if first, ok := seen[k]; ok {
			e := errAt(ors[i].file, nodeAt(ors[i].node, "metadata", "name"), "metadata.name", fmt.Sprintf("%s %q is declared twice", r.GetKind(), r.GetName()))
			line, col := position(nodeAt(first.node, "metadata", "name"))
			e.Hint = fmt.Sprintf("first at %s:%d:%d", first.file, line, col)
			errs = append(errs, e)
			continue
		}
		seen[k] = ors[i]
	}
	return errs
}

// fileParser collects the problems of one file.
type fileParser struct {
	file string
	opts ParseOptions
	errs Errors
}

func position(n ast.Node) (int, int) {
	if n == nil {
		return 0, 0
	}
	// A block mapping's token is the ":" of its first key; point at the key.
	if m, ok := n.(*ast.MappingNode); ok && !m.IsFlowStyle && len(m.Values) > 0 && m.Values[0].Key != nil {
		n = m.Values[0].Key
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil {
		return tk.Position.Line, tk.Position.Column
	}
	return 0, 0
}

func errAt(file string, n ast.Node, path, msg string) *Error {
	line, col := position(n)
	return &Error{File: file, Line: line, Column: col, Path: path, Msg: msg}
}

func (p *fileParser) add(n ast.Node, path, msg, hint string) {
	e := errAt(p.file, n, path, msg)
	e.Hint = hint
	p.errs = append(p.errs, e)
}

// document checks one document against its kind's type, decodes it and
// validates its values.
func (p *fileParser) document(body ast.Node) Resource {
	before := len(p.errs)
	m, ok := mapping(body)
	if !ok {
		p.add(body, "", "want a mapping with apiVersion, kind, metadata and spec", "")
		return nil
	}
	kindNode := m["kind"]
	kind := scalarText(kindNode)
	var r Resource
	switch kind {
	case KindPipeline:
		r = &Pipeline{}
	case KindTopic:
		r = &Topic{}
	case "":
		p.add(body, "kind", "required: Pipeline or Topic", "")
		return nil
	default:
		p.add(kindNode, "kind", fmt.Sprintf("%q is not a kind Sluice knows", kind), suggest(kind, []string{KindPipeline, KindTopic}))
		return nil
	}
	p.check(body, reflect.TypeOf(r).Elem(), "")
	if len(p.errs) > before {
		return nil
	}
	// The shape is right: decode through JSON, which the types' tags and
	// units' unmarshalers speak.
	v := p.value(body, reflect.TypeOf(r).Elem(), "")
	if len(p.errs) > before {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		p.add(body, "", err.Error(), "")
		return nil
	}
	if err := json.Unmarshal(b, r); err != nil {
		p.add(body, "", err.Error(), "")
		return nil
	}
	switch t := r.(type) {
	case *Pipeline:
		p.validatePipeline(t, body)
	case *Topic:
		p.validateTopic(t, body)
	}
	if len(p.errs) > before {
		return nil
	}
	return r
}

// mapping returns the key -> value nodes of a mapping node.
func mapping(n ast.Node) (map[string]ast.Node, bool) {
	n = unwrap(n)
	var values []*ast.MappingValueNode
	switch t := n.(type) {
	case *ast.MappingNode:
		values = t.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{t}
	default:
		return nil, false
	}
	m := make(map[string]ast.Node, len(values))
	for _, mv := range values {
		m[keyText(mv)] = mv.Value
	}
	return m, true
}

func mappingValues(n ast.Node) []*ast.MappingValueNode {
	switch t := unwrap(n).(type) {
	case *ast.MappingNode:
		return t.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{t}
	}
	return nil
}

func keyText(mv *ast.MappingValueNode) string {
	if mv.Key == nil {
		return ""
	}
	return scalarText(mv.Key)
}

// unwrap skips tags, anchors and comments around a node.
func unwrap(n ast.Node) ast.Node {
	for {
		switch t := n.(type) {
		case *ast.TagNode:
			n = t.Value
		case *ast.AnchorNode:
			n = t.Value
		case *ast.CommentGroupNode:
			return nil
		default:
			return n
		}
	}
}

func scalarText(n ast.Node) string {
	switch t := unwrap(n).(type) {
	case *ast.StringNode:
		return t.Value
	case *ast.MappingKeyNode:
		return scalarText(t.Value)
	case nil:
		return ""
	case ast.ScalarNode:
		return fmt.Sprint(t.GetValue())
	}
	return ""
}

func isNull(n ast.Node) bool {
	_, ok := unwrap(n).(*ast.NullNode)
	return n == nil || ok
}

var textUnmarshaler = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()

// check walks node against type t: mappings for structs (every key a
// field, misspellings suggested), sequences for slices, scalars of the
// right kind. path is the dotted path of node.
func (p *fileParser) check(node ast.Node, t reflect.Type, path string) {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	n := unwrap(node)
	if isNull(n) {
		return
	}
	if reflect.PointerTo(t).Implements(textUnmarshaler) {
		s, ok := n.(ast.ScalarNode)
		if !ok {
			p.add(n, path, "want a single value", "")
			return
		}
		v := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := v.UnmarshalText([]byte(fmt.Sprint(s.GetValue()))); err != nil {
			p.add(n, path, err.Error(), "")
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		values := mappingValues(n)
		if values == nil {
			if m, ok := n.(*ast.MappingNode); !ok || len(m.Values) != 0 {
				p.add(n, path, "want a mapping of "+strings.Join(fieldNames(t), ", "), "")
			}
			return
		}
		fields := jsonFields(t)
		names := fieldNames(t)
		for _, mv := range values {
			k := keyText(mv)
			f, ok := fields[k]
			if !ok {
				p.add(mv.Key, join(path, k), "unknown field", orKnown(suggest(k, names), names))
				continue
			}
			p.check(mv.Value, f.Type, join(path, k))
		}
	case reflect.Map:
		values := mappingValues(n)
		if values == nil {
			if m, ok := n.(*ast.MappingNode); !ok || len(m.Values) != 0 {
				p.add(n, path, "want a mapping", "")
			}
			return
		}
		for _, mv := range values {
			p.check(mv.Value, t.Elem(), join(path, keyText(mv)))
		}
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			p.add(n, path, "want a list", "")
			return
		}
		for i, e := range seq.Values {
			p.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	case reflect.String:
		if _, ok := n.(ast.ScalarNode); !ok {
			p.add(n, path, "want a string", "")
		}
	case reflect.Bool:
		if _, ok := n.(*ast.BoolNode); !ok {
			p.add(n, path, fmt.Sprintf("%s: want true or false", describe(n)), "")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i, ok := n.(*ast.IntegerNode)
		if !ok {
			p.add(n, path, fmt.Sprintf("%s: want a whole number", describe(n)), "")
			return
		}
		if v, ok := i.Value.(uint64); ok && v > math.MaxInt64 || reflect.Zero(t).OverflowInt(toInt64(i.Value)) {
			p.add(n, path, fmt.Sprintf("%s: want at most %d", describe(n), maxInt(t)), "")
		}
	case reflect.Interface:
		// Any YAML value (an inline JSON Schema).
	}
}

func toInt64(v any) int64 {
	switch t := v.(type) {
	case int64:
		return t
	case uint64:
		return int64(t)
	}
	return 0
}

func maxInt(t reflect.Type) int64 { return int64(1)<<(t.Bits()-1) - 1 }

func describe(n ast.Node) string {
	if s, ok := n.(ast.ScalarNode); ok {
		return strconv.Quote(fmt.Sprint(s.GetValue()))
	}
	return "a " + strings.ToLower(strings.TrimSuffix(n.Type().String(), "Type"))
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// jsonFields maps a struct's JSON names to its fields.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		m[name] = f
	}
	return m
}

func fieldNames(t reflect.Type) []string {
	return slices.Sorted(func(yield func(string) bool) {
		for k := range jsonFields(t) {
			if !yield(k) {
				return
			}
		}
	})
}

// orKnown is the hint for an unknown key: a suggestion, or the list of
// known keys when there are few.
func orKnown(suggestion string, names []string) string {
	if suggestion != "" {
		return suggestion
	}
	if len(names) <= 12 {
		return "known fields: " + strings.Join(names, ", ")
	}
	return ""
}

// suggest returns `did you mean "x"?` for the closest known name, when
// it is close enough to be a misspelling.
func suggest(got string, known []string) string {
	best, bestD := "", -1
	for _, k := range known {
		d := distance(strings.ToLower(got), strings.ToLower(k))
		if bestD < 0 || d < bestD {
			best, bestD = k, d
		}
	}
	if bestD >= 0 && bestD <= max(2, len(best)/3) && bestD < len(got) {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return ""
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// nodeAt finds the node at a path of keys and [i] indexes below n, or the
// deepest one found on the way (so an error still has a position).
func nodeAt(n ast.Node, path ...string) ast.Node {
	for _, k := range path {
		var next ast.Node
		if strings.HasPrefix(k, "[") {
			i, _ := strconv.Atoi(strings.Trim(k, "[]"))
			if seq, ok := unwrap(n).(*ast.SequenceNode); ok && i < len(seq.Values) {
				next = seq.Values[i]
			}
		} else if m, ok := mapping(n); ok {
			next = m[k]
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}
