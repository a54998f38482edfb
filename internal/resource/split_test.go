package resource

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func topicDoc(name string) string {
	return "apiVersion: sluice.dev/v1\nkind: Topic\nmetadata: {name: " + name + "}\nspec: {partitions: 1}\n"
}

// TestDocumentMarkers: no document is lost to empty documents, leading or
// trailing markers, comments or directives.
func TestDocumentMarkers(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"two markers in a row", topicDoc("a") + "---\n---\n" + topicDoc("b"), []string{"a", "b"}},
		{"leading and trailing", "---\n" + topicDoc("a") + "---\n---\n" + topicDoc("b") + "---\n", []string{"a", "b"}},
		{"comments only between", topicDoc("a") + "---\n# nothing\n---\n" + topicDoc("b"), []string{"a", "b"}},
		{"marker with content", "--- {apiVersion: sluice.dev/v1, kind: Topic, metadata: {name: a}, spec: {partitions: 1}}\n--- " + `{"apiVersion": "sluice.dev/v1", "kind": "Topic", "metadata": {"name": "b"}, "spec": {"partitions": 1}}`, []string{"a", "b"}},
		{"CRLF", strings.ReplaceAll(topicDoc("a")+"---\n"+topicDoc("b"), "\n", "\r\n"), []string{"a", "b"}},
		{"directive", "%YAML 1.2\n---\n" + topicDoc("a"), []string{"a"}},
		{"end marker", topicDoc("a") + "...\n---\n" + topicDoc("b"), []string{"a", "b"}},
		{"byte order mark", "\ufeff" + topicDoc("a"), []string{"a"}},
		{"--- inside a block scalar is indented", "apiVersion: sluice.dev/v1\nkind: Topic\nmetadata:\n  name: a\n  labels:\n    note: |\n      ---\n      x\nspec: {partitions: 1}\n", []string{"a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := Parse("f.yaml", []byte(tc.in), ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range rs {
				got = append(got, r.GetName())
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestErrorsOfEveryDocument: a syntax error in one document does not hide
// the others' problems, and lines count from the start of the file.
func TestErrorsOfEveryDocument(t *testing.T) {
	in := topicDoc("a") + "---\n" + "kind: [\n" + "---\n" + strings.Replace(topicDoc("b"), "partitions: 1", "partitionz: 1", 1)
	_, err := Parse("f.yaml", []byte(in), ParseOptions{})
	for _, want := range []string{
		"f.yaml:6:7: sequence end token ']' not found",
		`f.yaml:11:8: spec.partitionz: unknown field (did you mean "partitions"?)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got\n%v\nwant a line containing\n%s", err, want)
		}
	}
}

// TestStructureBounds: inputs the parser would take seconds over are
// refused quickly, at their position.
func TestStructureBounds(t *testing.T) {
	var keys strings.Builder
	for i := 0; i <= MaxMappingKeys; i++ {
		fmt.Fprintf(&keys, "    k%d: v\n", i)
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"flow depth", strings.Repeat("[", 20000), "f.yaml:1:101: nested more than 100 levels deep"},
		{"flow mapping depth", strings.Repeat("{a: ", 20000), "f.yaml:1:401: nested more than 100 levels deep"},
		{"block list depth", strings.Repeat("- ", 20000), "f.yaml:1:201: nested more than 100 levels deep"},
		{"keys", "apiVersion: sluice.dev/v1\nkind: Topic\nmetadata:\n  labels:\n" + keys.String(), fmt.Sprintf("f.yaml:%d:5: a mapping of more than %d keys", 5+MaxMappingKeys, MaxMappingKeys)},
		{"alias", "apiVersion: sluice.dev/v1\nkind: Topic\nmetadata: {name: &n a}\nspec: {partitions: 1, config: {x: *n}}\n", "f.yaml:4:35: aliases (*name) are not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := Parse("f.yaml", []byte(tc.in), ParseOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %.200v, want %q", err, tc.want)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}
