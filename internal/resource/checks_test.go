package resource

import (
	"strings"
	"testing"
)

const pipelineHead = "apiVersion: sluice.dev/v1\nkind: Pipeline\nmetadata: {name: p}\n"

func TestMoreBadSpecs(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"misspelt topic config key", "apiVersion: sluice.dev/v1\nkind: Topic\nmetadata: {name: t}\nspec: {partitions: 1, config: {retention.msx: 1}}\n",
			`t.yaml:4:32: spec.config.retention.msx: not a topic config key Sluice supports (did you mean "retention.ms"?)`},
		{"bad topic config value", "apiVersion: sluice.dev/v1\nkind: Topic\nmetadata: {name: t}\nspec: {partitions: 1, config: {cleanup.policy: compact}}\n",
			`t.yaml:4:48: spec.config.cleanup.policy: cleanup.policy="compact": only "delete" is supported`},
		{"partitions above the log's limit", "apiVersion: sluice.dev/v1\nkind: Topic\nmetadata: {name: t}\nspec: {partitions: 20000}\n",
			`t.yaml:4:20: spec.partitions: 20000: want 1 to 10000`},
		{"unterminated reference", pipelineHead + "spec:\n  source: {topic: t}\n  sink: {file: {path: '/out/${DIR'}}\n",
			`t.yaml:6:23: spec.sink.file.path: malformed variable reference at offset 5 (write ${NAME} or ${NAME:-default}`},
		{"reference with a bad name", pipelineHead + "spec:\n  source: {topic: t}\n  sink:\n    postgres: {dsn: '${PG-DSN}', table: x}\n",
			`t.yaml:7:21: spec.sink.postgres.dsn: malformed variable reference at offset 0`},
		{"dead letter is the sink topic", pipelineHead + "spec:\n  source: {topic: a}\n  sink: {topic: {name: b}}\n  deadLetter: {topic: b}\n",
			`t.yaml:7:23: spec.deadLetter.topic: is the sink topic (refused records would be mixed with the output)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.in), ParseOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got\n%v\nwant a line containing\n%s", err, tc.want)
			}
		})
	}
}

// TestReferencesCheckedAfterExpansion: a topic name from the environment
// is accepted as written, and checked by Validate once expanded.
func TestReferencesCheckedAfterExpansion(t *testing.T) {
	rs, err := Parse("t.yaml", []byte(pipelineHead+"spec:\n  source: {topic: 'orders-${ENV}'}\n  sink: {topic: {name: '${OUT}'}}\n  deadLetter: {topic: '$${literal}'}\n"), ParseOptions{})
	if err == nil || !strings.Contains(err.Error(), `spec.deadLetter.topic: "$${literal}" is not a topic name`) {
		t.Fatalf("got %v, want the escaped $${ checked as the literal it is", err)
	}
	rs, err = Parse("t.yaml", []byte(pipelineHead+"spec:\n  source: {topic: 'orders-${ENV}'}\n  sink: {topic: {name: '${OUT}'}}\n"), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"ENV": "prod", "OUT": "bad name"}
	p, err := Expand(rs[0].(*Pipeline), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	err = Validate(p)
	if want := `spec.sink.topic.name: "bad name" is not a topic name`; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	env["OUT"] = "orders-out"
	p, _ = Expand(rs[0].(*Pipeline), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err := Validate(p); err != nil {
		t.Fatal(err)
	}
}
