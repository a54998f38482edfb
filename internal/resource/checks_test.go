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
		{"processor of no kind", pipelineHead + "spec:\n  source: {topic: a}\n  processors:\n    - {}\n  sink: {stdout: {}}\n",
			`t.yaml:7:7: spec.processors[0]: names no processor: want one of filter, map, validate, drop, rename, set, dedupe`},
		{"two sinks", pipelineHead + "spec:\n  source: {topic: a}\n  sink:\n    stdout: {}\n    file: {path: /tmp/x}\n",
			`t.yaml:7:5: spec.sink: names file and stdout: a pipeline has one sink`},
		{"bad CEL at the filter", pipelineHead + "spec:\n  source: {topic: a}\n  processors:\n    - map: {value: 'record.value'}\n    - filter: 'record.value.n >'\n  sink: {stdout: {}}\n",
			`t.yaml:8:15: spec.processors[1].filter: `},
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

// TestErrorsShowNoSecret: a DSN that does not parse is reported without
// its value.
func TestErrorsShowNoSecret(t *testing.T) {
	for _, dsn := range []string{"postgres://u:hunter2@db:99999/app", "host=db password=hunter2 sslmode=bogus", "postgres://u:hunter2@db/app?x=${BAD"} {
		_, err := Parse("t.yaml", []byte(pipelineHead+"spec:\n  source: {topic: a}\n  sink:\n    postgres: {dsn: '"+dsn+"', table: x}\n"), ParseOptions{})
		if err == nil {
			t.Fatalf("%s: got no error", dsn)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("the error shows the password: %v", err)
		}
	}
}
