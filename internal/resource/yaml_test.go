package resource

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// roundTrip marshals every resource in both formats, parses the output
// and checks the canonical forms are unchanged.
func roundTrip(t *testing.T, rs []Resource) {
	t.Helper()
	for _, r := range rs {
		want, err := Canonical(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, format := range []string{"yaml", "json"} {
			out, err := Marshal(r, format)
			if err != nil {
				t.Fatalf("Marshal %s: %v", format, err)
			}
			back, err := Parse("again."+format, out, ParseOptions{})
			if err != nil {
				t.Fatalf("%s output does not parse: %v\n%s", format, err, out)
			}
			got, err := Canonical(back[0])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s round trip: got\n%s\nwant\n%s\nfrom\n%s", format, got, want, out)
			}
		}
	}
}

func TestRoundTripStrings(t *testing.T) {
	for _, s := range []string{" leading", "a\n b", "tab\there", "x: y", "line1\r\nline2", "\x01", "- x", "? q",
		" two\nlines", "ends with space ", "#hash", "a\n\n", "\n", "---", "...", "null", "~", "yes", "0x1F", "1e3",
		"é\u2028", "\t", "a #b", "@x", "%x", "!x", "&x", "*x", "|", ">", "'", "\"", "{x}", "[x]", "x,y", "${VAR}",
		"$key", "two\nlines\n", "  indented\nblock", "a\n  b\n", "trailing \nspace", "\\", "\u00a0", "\ufeff"} {
		t.Run(fmt.Sprintf("%q", s), func(t *testing.T) {
			src := "apiVersion: sluice.dev/v1\nkind: Topic\nmetadata: {name: t, labels: {l: " + fmt.Sprintf("%q", s) + ", " + fmt.Sprintf("%q", s) + ": k}}\nspec: {partitions: 1}\n"
			rs, err := Parse("r.yaml", []byte(src), ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, rs)
		})
	}
}

func TestRoundTripSchemaValues(t *testing.T) {
	src := `apiVersion: sluice.dev/v1
kind: Pipeline
metadata: {name: p}
spec:
  source: {topic: t}
  processors:
    - validate:
        jsonSchema: {"type": "object", "properties": {"n": {"type": "number", "minimum": -1.5, "maximum": 1.0e+21, "multipleOf": 0.000001}, "l": {"type": "array", "items": {}, "default": [[1, 2], [], {}]}}, "required": [], "x-null": null, "x-bool": false}
  sink: {stdout: {}}
`
	rs, err := Parse("s.yaml", []byte(src), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, rs)
	y, _ := Marshal(rs[0], "yaml")
	for _, want := range []string{"- - 1\n", "- []\n", "- {}\n", "maximum: 1.0e+21\n", "x-null: null\n"} {
		if !strings.Contains(string(y), want) {
			t.Errorf("got\n%s\nwant a line %q", y, want)
		}
	}
}

func TestRoundTripGood(t *testing.T) {
	rs, err := Parse("f.yaml", []byte(good), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, rs)
}

// FuzzRoundTrip: whatever parses, prints in YAML and JSON to something
// that parses back to the same resource.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("apiVersion: sluice.dev/v1\nkind: Topic\nmetadata: {name: t, labels: {a: \"\\t x\\n\"}}\nspec: {partitions: 1}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		start := time.Now()
		rs, err := Parse("f.yaml", b, ParseOptions{})
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("Parse took %v", d)
		}
		if err != nil {
			return
		}
		roundTrip(t, rs)
	})
}
