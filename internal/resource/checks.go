package resource

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/sluice-dev/sluice/internal/topic"
)

// Validate checks a resource that did not come from Parse (a spec after
// Expand, or read back from a store) as Parse checks a file's, apart from
// reading schema files. Errors are Errors, without positions.
func Validate(r Resource) error {
	p := &fileParser{}
	switch t := r.(type) {
	case *Pipeline:
		p.validatePipeline(t, nil)
	case *Topic:
		p.validateTopic(t, nil)
	default:
		return Errors{{Msg: fmt.Sprintf("%T is not a resource", r)}}
	}
	if len(p.errs) > 0 {
		sortErrors(p.errs)
		return p.errs
	}
	return nil
}

// topicConfig checks config keys against the ones topics understand, with
// a suggestion for a misspelt one, and each value as the topic package
// will when the topic is applied, so that apply fails before it changes
// anything.
func (p *fileParser) topicConfig(t *Topic, body ast.Node) {
	known := topic.Keys()
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range t.Spec.Config {
			if !yield(k) {
				return
			}
		}
	}) {
		path := "spec.config." + k
		if !slices.Contains(known, k) {
			p.add(configKey(body, k), path, "not a topic config key Sluice supports", orKnown(suggest(k, known), known))
			continue
		}
		if _, err := topic.DefaultConfig().Apply(map[string]string{k: t.Spec.Config[k]}); err != nil {
			msg := strings.TrimPrefix(err.Error(), topic.ErrInvalid.Error()+": ")
			p.add(nodeAt(body, "spec", "config", k), path, msg, "")
		}
	}
}

// configKey is the key node of a config entry (the error is about the
// key, not its value).
func configKey(body ast.Node, k string) ast.Node {
	cfg := nodeAt(body, "spec", "config")
	for _, mv := range mappingValues(cfg) {
		if keyText(mv) == k {
			return mv.Key
		}
	}
	return cfg
}

// ref is one ${...} of a string, well formed or not: "$${" is skipped as
// the escape of a literal "${".
var ref = regexp.MustCompile(`\$\$\{|\$\{[^}]*\}?`)

var goodRef = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$`)

// references reports every ${...} in the spec's strings that Expand would
// not resolve but keep as literal text (an unterminated "${PG_DSN", a
// name that is not one), which would otherwise surface as a baffling
// failure when the pipeline starts.
func (p *fileParser) references(pl *Pipeline, body ast.Node) {
	b, err := json.Marshal(pl.Spec)
	if err != nil {
		return
	}
	var doc any
	if json.Unmarshal(b, &doc) != nil {
		return
	}
	var walk func(v any, path []string)
	walk = func(v any, path []string) {
		switch t := v.(type) {
		case map[string]any:
			if len(path) >= 3 && path[len(path)-1] == "validate" {
				// A JSON Schema is not expanded.
				delete(t, "jsonSchema")
			}
			for _, k := range slices.Sorted(func(yield func(string) bool) {
				for k := range t {
					if !yield(k) {
						return
					}
				}
			}) {
				walk(t[k], append(slices.Clone(path), k))
			}
		case []any:
			for i, e := range t {
				walk(e, append(slices.Clone(path), "["+strconv.Itoa(i)+"]"))
			}
		case string:
			for _, m := range ref.FindAllStringIndex(t, -1) {
				s := t[m[0]:m[1]]
				if s == "$${" || goodRef.MatchString(s) {
					continue
				}
				dotted := strings.ReplaceAll(strings.Join(path, "."), ".[", "[")
				p.add(nodeAt(body, path...), dotted, fmt.Sprintf("malformed variable reference at offset %d", m[0]),
					"write ${NAME} or ${NAME:-default}, NAME of letters, digits and _; $${ for a literal ${")
			}
		}
	}
	walk(doc, []string{"spec"})
}

// hasRef reports whether s holds a ${VAR} that the server resolves when it
// starts the pipeline: such a value is checked after expansion (Validate),
// not as written.
func hasRef(s string) bool {
	for _, m := range ref.FindAllString(s, -1) {
		if m != "$${" && goodRef.MatchString(m) {
			return true
		}
	}
	return false
}
