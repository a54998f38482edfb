package process

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/sluice-dev/sluice/internal/connector"
)

// maxViolations is how many schema violations a record's error lists; the
// rest are counted.
const maxViolations = 3

type validateProc struct {
	schema *jsonschema.Schema
	// doc is the schema as a document of connector.DecodeJSON's types.
	doc     map[string]any
	printer *message.Printer
}

// newValidate compiles the schema once. The compiler loads nothing but the
// schema itself and the metaschemas built into the library: a $ref to
// another file or a URL fails here, at NewChain, rather than fetching
// something from the network for every pipeline start.
func newValidate(idx int, cfg *ValidateConfig, opts Options) (*validateProc, error) {
	var (
		field = "validate.jsonSchema"
		raw   []byte
		loc   string
		err   error
	)
	switch {
	case cfg.JSONSchema != nil && cfg.SchemaFile != "":
		return nil, &ConfigError{Index: idx, Field: "validate", Err: errors.New("want jsonSchema or schemaFile, not both")}
	case cfg.JSONSchema != nil:
		raw, err = json.Marshal(jsonable(cfg.JSONSchema))
		if err != nil {
			return nil, &ConfigError{Index: idx, Field: field, Err: fmt.Errorf("not a JSON document: %w", err)}
		}
		loc = fmt.Sprintf("sluice:///processors/%d/validate.json", idx)
	case cfg.SchemaFile != "":
		field = "validate.schemaFile"
		name := cfg.SchemaFile
		if !filepath.IsAbs(name) && opts.BaseDir != "" {
			name = filepath.Join(opts.BaseDir, name)
		}
		if name, err = filepath.Abs(name); err != nil {
			return nil, &ConfigError{Index: idx, Field: field, Err: err}
		}
		if raw, err = os.ReadFile(name); err != nil {
			return nil, &ConfigError{Index: idx, Field: field, Err: err}
		}
		loc = (&url.URL{Scheme: "file", Path: filepath.ToSlash(name)}).String()
	default:
		return nil, &ConfigError{Index: idx, Field: "validate", Err: errors.New("want jsonSchema or schemaFile")}
	}
	fail := func(err error) error { return &ConfigError{Index: idx, Field: field, Err: err} }
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fail(fmt.Errorf("not a JSON document: %w", err))
	}
	plain, err := connector.DecodeJSON(raw)
	if err != nil {
		return nil, fail(fmt.Errorf("not a JSON document: %w", err))
	}
	obj, ok := plain.(map[string]any)
	if !ok {
		// true and false are schemas too, but no table can be made of them.
		return nil, fail(fmt.Errorf("schema is %s, want an object", kindOf(plain)))
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fail(err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, fail(err)
	}
	return &validateProc{schema: sch, doc: obj, printer: message.NewPrinter(language.English)}, nil
}

type noLoader struct{}

func (noLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("schemas load no other documents: %s", u)
}

// jsonable turns what a YAML decoder may produce (map[any]any,
// map[string]string, []string and so on) into something encoding/json takes.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, e := range t {
			m[k] = jsonable(e)
		}
		return m
	case []any:
		l := make([]any, len(t))
		for i, e := range t {
			l[i] = jsonable(e)
		}
		return l
	}
	return v
}

// process validates the value as it is: documents hold int64, uint64 and
// float64 numbers, all of which the validator takes.
func (p *validateProc) process(_ context.Context, c *Chain) (bool, error) {
	doc, err := c.act.view.r.Doc()
	if err != nil {
		return false, err
	}
	err = p.schema.Validate(doc)
	if err == nil {
		return true, nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return false, fmt.Errorf("validate: %w", err)
	}
	return false, p.violations(ve)
}

// violations lists the first few failed leaves of the validator's error
// tree with their JSON pointers: "/amount: got string, want number".
func (p *validateProc) violations(ve *jsonschema.ValidationError) error {
	var msgs []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "(root)"
			if len(e.InstanceLocation) > 0 {
				loc = pointer(e.InstanceLocation)
			}
			msgs = append(msgs, loc+": "+e.ErrorKind.LocalizedString(p.printer))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	// Object properties are checked in map order: sort for stable messages.
	slices.Sort(msgs)
	msgs = slices.Compact(msgs)
	n := len(msgs)
	if n > maxViolations {
		msgs = append(msgs[:maxViolations], fmt.Sprintf("and %d more", n-maxViolations))
	}
	return &SchemaError{Violations: n, msg: "schema violation: " + strings.Join(msgs, "; ")}
}

func pointer(tokens []string) string {
	var b strings.Builder
	r := strings.NewReplacer("~", "~0", "/", "~1")
	for _, t := range tokens {
		b.WriteByte('/')
		b.WriteString(r.Replace(t))
	}
	return b.String()
}

// SchemaError is a record's value that violates a validate processor's
// schema; it is the Err of the RecordError.
type SchemaError struct {
	// Violations is how many failed checks the validator reported.
	Violations int
	msg        string
}

func (e *SchemaError) Error() string { return e.msg }
