package resource

import (
	"fmt"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/sluice-dev/sluice/internal/units"
)

func dump(n ast.Node, ind string) {
	if n == nil {
		fmt.Println(ind, "nil")
		return
	}
	tk := n.GetToken()
	pos := ""
	if tk != nil && tk.Position != nil {
		pos = fmt.Sprintf("%d:%d", tk.Position.Line, tk.Position.Column)
	}
	var gv any; if sn, ok := n.(ast.ScalarNode); ok { gv = sn.GetValue() }; fmt.Printf("%s%T %s %q %T %v\n", ind, n, pos, func() string { if tk != nil { return tk.Value }; return "" }(), gv, gv)
	switch n := n.(type) {
	case *ast.MappingNode:
		for _, v := range n.Values {
			dump(v, ind+"  ")
		}
	case *ast.MappingValueNode:
		dump(n.Key, ind+"  K ")
		dump(n.Value, ind+"  V ")
	case *ast.SequenceNode:
		for _, v := range n.Values {
			dump(v, ind+"  ")
		}
	case *ast.AnchorNode:
		dump(n.Value, ind+"  ")
	case *ast.AliasNode:
		dump(n.Value, ind+"  alias ")
	case *ast.TagNode:
		fmt.Println(ind, "tag", n.Start.Value)
		dump(n.Value, ind+"  ")
	}
}

func TestScratch(t *testing.T) {
	for _, src := range []string{
		"b: &x [1]\nc: *x\nd: !!str 12\nf: !!int \"3\"\nbase: &b {k: 1}\nm:\n  <<: *b\n  j: 2\nn: 99999999999999999999\no: 1_000\np: 0x10\nq: 1e3\nr: .inf\ns: ~\nt: yes\n? complex\n: v\n",
		"--- {a: 1}\n",
		"--- |\n  text\n",
		"--- >\ntext\n",
		"%YAML 1.2\n---\na: 1\n",
	} {
		f, err := parser.ParseBytes([]byte(src), 0)
		if err != nil {
			fmt.Printf("ERR %T %v\n", err, err)
			if ye, ok := err.(yaml.Error); ok {
				fmt.Printf("  msg=%q tok=%v\n", ye.GetMessage(), ye.GetToken().Position)
			}
			continue
		}
		fmt.Println("docs", len(f.Docs))
		for _, d := range f.Docs {
			dump(d.Body, "  ")
		}
	}
	type B struct {
		MaxRecords int            `json:"maxRecords,omitempty" yaml:"maxRecords,omitempty"`
		MaxBytes   units.ByteSize `json:"maxBytes,omitempty" yaml:"maxBytes,omitempty"`
		MaxWait    units.Duration `json:"maxWait,omitempty" yaml:"maxWait,omitempty"`
	}
	type S struct {
		Name  string            `yaml:"name"`
		B     B                 `yaml:"batch,omitempty"`
		M     map[string]string `yaml:"m,omitempty"`
		A     any               `yaml:"a,omitempty"`
		L     []string          `yaml:"l,omitempty"`
		Multi string            `yaml:"multi,omitempty"`
	}
	for _, v := range []S{{Name: "x"}, {Name: "123", B: B{MaxBytes: 1000, MaxWait: units.Duration(2e8)}, M: map[string]string{"z": "1", "a": "true", "m": ""}, A: map[string]any{"type": "object", "b": []any{1, "x"}, "a": nil}, L: []string{"a", "yes"}, Multi: "a &&\n  b\n"}} {
		out, err := yaml.MarshalWithOptions(v, yaml.Indent(2), yaml.IndentSequence(true), yaml.UseLiteralStyleIfMultiline(true))
		fmt.Printf("%s err=%v\n", out, err)
		out, err = yaml.MarshalWithOptions(v, yaml.JSON())
		fmt.Printf("%s err=%v\n", out, err)
	}
}
