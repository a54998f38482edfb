package resource

import (
	"strings"
	"testing"
)

// TestScalarsAsStrings: string fields and maps of strings take numbers and
// booleans as written, as Kafka configs are usually written.
func TestScalarsAsStrings(t *testing.T) {
	rs, err := Parse("t.yaml", []byte("apiVersion: sluice.dev/v1\nkind: Topic\nmetadata: {name: t, labels: {version: 2, beta: true}}\nspec: {partitions: 3, config: {retention.ms: 86400000, segment.bytes: 1048576}}\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tp := rs[0].(*Topic)
	for k, want := range map[string]string{"version": "2", "beta": "true"} {
		if got := tp.Metadata.Labels[k]; got != want {
			t.Errorf("label %s: got %q, want %q", k, got, want)
		}
	}
	for k, want := range map[string]string{"retention.ms": "86400000", "segment.bytes": "1048576"} {
		if got := tp.Spec.Config[k]; got != want {
			t.Errorf("config %s: got %q, want %q", k, got, want)
		}
	}
}

func TestIntegerRange(t *testing.T) {
	_, err := Parse("t.yaml", []byte("apiVersion: sluice.dev/v1\nkind: Topic\nmetadata: {name: t}\nspec: {partitions: 99999999999}\n"), ParseOptions{})
	if want := `t.yaml:4:20: spec.partitions: "99999999999": want at most 2147483647`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
}
