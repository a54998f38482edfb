package resource

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const good = `apiVersion: sluice.dev/v1
kind: Pipeline
metadata: {name: orders-to-pg}
spec:
  source: {topic: orders, startFrom: earliest}
  processors:
    - filter: 'record.value.amount > 0'
    - map: {value: '{"id": record.value.id, "cents": int(record.value.amount * 100.0)}'}
  sink:
    postgres: {dsn: '${PG_DSN}', table: orders, mode: upsert, key: [id]}
  delivery: exactly-once
  batch: {maxRecords: 5000, maxBytes: 4MiB, maxWait: 200ms}
  retry: {initialBackoff: 100ms, maxBackoff: 30s, maxAttempts: 10}
  deadLetter: {topic: orders.dlq}
---
apiVersion: sluice.dev/v1
kind: Topic
metadata: {name: orders}
spec: {partitions: 6, config: {retention.ms: "86400000"}}
`

// TestBadSpecs: each bad spec gives its message at its line and column,
// with the hint.
func TestBadSpecs(t *testing.T) {
	for _, tc := range []struct {
		name string
		old  string // replaced in good by new
		new  string
		want string // one line of the errors
	}{
		{"misspelt key", "startFrom: earliest", "startFrm: earliest",
			`f.yaml:5:27: spec.source.startFrm: unknown field (did you mean "startFrom"?)`},
		{"misspelt sink", "    postgres: {", "    postgress: {",
			`f.yaml:10:5: spec.sink.postgress: unknown field (did you mean "postgres"?)`},
		{"misspelt top level", "  processors:", "  proccessors:",
			`f.yaml:6:3: spec.proccessors: unknown field (did you mean "processors"?)`},
		{"unknown key, no neighbour", "  delivery: exactly-once", "  zzz: 1",
			`f.yaml:11:3: spec.zzz: unknown field`},
		{"wrong type", "maxRecords: 5000", "maxRecords: many",
			`f.yaml:12:23: spec.batch.maxRecords: "many": want a whole number`},
		{"bad size", "maxBytes: 4MiB", "maxBytes: 4XB",
			`f.yaml:12:39: spec.batch.maxBytes: "4XB": want a number of bytes, optionally with KiB, MiB or GiB (such as 64MiB)`},
		{"bad duration", "maxWait: 200ms", "maxWait: soon",
			`f.yaml:12:54: spec.batch.maxWait: "soon": want a duration such as 200ms, 30s or 5m`},
		{"list wanted", "key: [id]", "key: id",
			`f.yaml:10:68: spec.sink.postgres.key: want a list`},
		{"bad enum", "mode: upsert", "mode: upsrt",
			`f.yaml:10:55: spec.sink.postgres.mode: "upsrt" is not one of insert, upsert (did you mean "upsert"?)`},
		{"bad delivery", "delivery: exactly-once", "delivery: exactly-onc",
			`f.yaml:11:13: spec.delivery: "exactly-onc" is not one of at-least-once, exactly-once (did you mean "exactly-once"?)`},
		{"bad startFrom", "startFrom: earliest", "startFrom: oldest",
			`f.yaml:5:38: spec.source.startFrom: "oldest" is not one of earliest, latest`},
		{"bad CEL", "record.value.amount > 0", "record.value.amount >",
			`f.yaml:7:15: spec.processors[0].filter: `},
		{"misspelt record field", "record.value.amount > 0", "record.vaule.amount > 0",
			`f.yaml:7:15: spec.processors[0].filter: `},
		{"two processor kinds", "    - filter: 'record.value.amount > 0'", "    - filter: 'true'\n      drop: [x]",
			`f.yaml:7:7: spec.processors[0]: names filter and drop: one processor per list entry`},
		{"no sink", "    postgres: {dsn: '${PG_DSN}', table: orders, mode: upsert, key: [id]}", "",
			`spec.sink: required: one of postgres, parquet, file, topic, stdout`},
		{"exactly-once into parquet", "postgres: {dsn: '${PG_DSN}', table: orders, mode: upsert, key: [id]}", "parquet: {path: /lake}",
			`f.yaml:11:13: spec.delivery: exactly-once needs a sink that stores offsets with the data (only the postgres sink can; use at-least-once with parquet)`},
		{"upsert without key", ", key: [id]}", "}",
			`spec.sink.postgres.key: required in upsert mode (the columns of its ON CONFLICT)`},
		{"dead letter is source", "deadLetter: {topic: orders.dlq}", "deadLetter: {topic: orders}",
			`f.yaml:14:23: spec.deadLetter.topic: is the source topic (a failed record would be read again and fail again)`},
		{"bad pipeline name", "name: orders-to-pg", "name: Orders_To_PG",
			`f.yaml:3:18: metadata.name: "Orders_To_PG" is not a pipeline name (at most 200 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)`},
		{"pipeline name too long", "name: orders-to-pg", "name: " + strings.Repeat("a", 201),
			`f.yaml:3:18: metadata.name: "` + strings.Repeat("a", 201) + `" is not a pipeline name`},
		{"bad topic name", "metadata: {name: orders}", "metadata: {name: 'or ders'}",
			`f.yaml:18:18: metadata.name: "or ders" is not a topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-')`},
		{"misspelt kind", "kind: Topic", "kind: Topik",
			`f.yaml:17:7: kind: "Topik" is not a kind Sluice knows (did you mean "Topic"?)`},
		{"wrong apiVersion", "apiVersion: sluice.dev/v1\nkind: Topic", "apiVersion: sluice.dev/v2\nkind: Topic",
			`f.yaml:16:13: apiVersion: "sluice.dev/v2": want sluice.dev/v1`},
		{"zero partitions", "partitions: 6", "partitions: 0",
			`f.yaml:19:20: spec.partitions: 0: want 1 to 10000`},
		{"batch too big", "maxRecords: 5000", "maxRecords: 5000000",
			`f.yaml:12:23: spec.batch.maxRecords: 5000000: want 1 to 1000000`},
		{"backoffs reversed", "initialBackoff: 100ms, maxBackoff: 30s", "initialBackoff: 1m, maxBackoff: 30s",
			`f.yaml:13:27: spec.retry.initialBackoff: 1m0s is above maxBackoff 30s`},
		{"duplicate", "kind: Topic\nmetadata: {name: orders}", "kind: Pipeline\nmetadata: {name: orders-to-pg}\nspec: {source: {topic: a}, sink: {stdout: {}}}\n---\napiVersion: sluice.dev/v1\nkind: Topic\nmetadata: {name: orders}",
			`f.yaml:18:18: metadata.name: Pipeline "orders-to-pg" is declared twice (first at f.yaml:3:18)`},
		{"YAML syntax", "batch: {maxRecords: 5000,", "batch: [maxRecords: 5000,",
			`f.yaml:13:3: ',' or ']' must be specified`},
		{"schema file on the server", "    - filter: 'record.value.amount > 0'", "    - validate: {schemaFile: s.json}",
			`f.yaml:7:30: spec.processors[0].validate.schemaFile: schema files are read by sluice apply (send the schema inline as jsonSchema)`},
		{"window with exactly-once", "    - filter: 'record.value.amount > 0'", "    - window: {type: tumbling, size: 1m, aggregates: {n: 'count()'}}",
			`f.yaml:11:13: spec.delivery: exactly-once cannot be kept with the window of processors[0]`},
		{"misspelt window field", "    - filter: 'record.value.amount > 0'", "    - window: {type: tumbling, sise: 1m, aggregates: {n: 'count()'}}",
			`f.yaml:7:32: spec.processors[0].window.sise: unknown field (did you mean "size"?)`},
		{"bad window aggregate", "    - filter: 'record.value.amount > 0'", "    - window: {type: tumbling, size: 1m, aggregates: {n: 'median(record.value.x)'}}",
			`f.yaml:7:58: spec.processors[0].window.aggregates.n: unknown aggregate "median"`},
		{"bad window duration", "    - filter: 'record.value.amount > 0'", "    - window: {type: session, gap: soon, aggregates: {n: 'count()'}}",
			`f.yaml:7:36: spec.processors[0].window.gap: "soon": want a duration`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the good spec has no %q", tc.old)
			}
			spec := strings.Replace(good, tc.old, tc.new, 1)
			_, err := Parse("f.yaml", []byte(spec), ParseOptions{})
			if err == nil {
				t.Fatalf("got no error, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got errors\n%v\nwant a line containing\n%s", err, tc.want)
			}
		})
	}
}

func TestGoodSpecRoundTrip(t *testing.T) {
	rs, err := Parse("f.yaml", []byte(good), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].GetKind() != KindPipeline || rs[1].GetKind() != KindTopic {
		t.Fatalf("got %v", rs)
	}
	var docs []string
	for _, r := range rs {
		b, err := Marshal(r, "yaml")
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	again, err := Parse("again.yaml", []byte(strings.Join(docs, "---\n")), ParseOptions{})
	if err != nil {
		t.Fatalf("%v\nof\n%s", err, strings.Join(docs, "---\n"))
	}
	changes, err := Diff(rs, again, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Action != ActionUnchanged {
			t.Errorf("got %s %s %s after a round trip:\n%s", c.Action, c.Kind, c.Name, c.Text)
		}
	}
}

func TestSchemaFileInlined(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "schemas"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "schemas", "order.json"), []byte(`{"type": "object", "required": ["id"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := strings.Replace(good, "    - filter: 'record.value.amount > 0'", "    - validate: {schemaFile: schemas/order.json}", 1)
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	rs, err := ParseFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := rs[0].(*Pipeline).Spec.Processors[0].Validate
	if v.SchemaFile != "" || v.JSONSchema.(map[string]any)["type"] != "object" {
		t.Fatalf("got %+v, want the schema inline", v)
	}
}

func TestExpand(t *testing.T) {
	rs, err := Parse("f.yaml", []byte(good), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := rs[0].(*Pipeline)
	env := map[string]string{"PG_DSN": "postgres://u:secret@db/app"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	got, err := Expand(p, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Sink.Postgres.DSN != env["PG_DSN"] || p.Spec.Sink.Postgres.DSN != "${PG_DSN}" {
		t.Fatalf("got %q (stored %q)", got.Spec.Sink.Postgres.DSN, p.Spec.Sink.Postgres.DSN)
	}
	for _, tc := range []struct{ in, want, err string }{
		{in: "${X:-dflt}", want: "dflt"},
		{in: "a$${X}b", want: "a${X}b"},
		{in: "${MISSING}", err: "spec.sink.postgres.dsn: ${MISSING} is not set in the server's environment"},
	} {
		p.Spec.Sink.Postgres.DSN = tc.in
		got, err := Expand(p, lookup)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Expand(%q): got %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got.Spec.Sink.Postgres.DSN != tc.want {
			t.Errorf("Expand(%q): got %v, %v; want %q", tc.in, got.Spec.Sink.Postgres.DSN, err, tc.want)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"postgres://u:secret@db:5432/app?sslmode=disable", "postgres://u:****@db:5432/app?sslmode=disable"},
		{"postgres://u:${PW}@db/app", "postgres://u:${PW}@db/app"},
		{"${PG_DSN}", "${PG_DSN}"},
		{"host=db user=u password=secret dbname=app", "host=db user=u password=**** dbname=app"},
		{"host=db password='se cret' dbname=app", "host=db password=**** dbname=app"},
	} {
		if got := RedactDSN(tc.in); got != tc.want {
			t.Errorf("RedactDSN(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDiff(t *testing.T) {
	rs, err := Parse("f.yaml", []byte(good), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	changed, err := Parse("f.yaml", []byte(strings.Replace(good, "maxRecords: 5000", "maxRecords: 100", 1)), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := Diff(rs, changed[:1], true)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 2 || ch[0].Action != ActionDelete || ch[0].Kind != KindTopic || ch[1].Action != ActionUpdate {
		t.Fatalf("got %+v", ch)
	}
	if want := "- maxRecords: 5000\n+ maxRecords: 100"; !strings.Contains(strings.ReplaceAll(ch[1].Text, "    ", ""), want) {
		t.Fatalf("got diff\n%s\nwant it to show\n%s", ch[1].Text, want)
	}
	ch, _ = Diff(nil, rs, false)
	if len(ch) != 2 || ch[0].Action != ActionCreate || ch[1].Action != ActionCreate {
		t.Fatalf("got %+v", ch)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("a: [\n"))
	f.Add([]byte("---\n---\nkind: Topic\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse("f.yaml", b, ParseOptions{})
	})
}

func TestSizeLimits(t *testing.T) {
	big := "apiVersion: sluice.dev/v1\nkind: Topic\nmetadata: {name: x}\nspec:\n  partitions: 1\n  config:\n" +
		strings.Repeat("    key: value\n", MaxDocumentBytes/15+1)
	_, err := Parse("f.yaml", []byte(good+"---\n"+big), ParseOptions{})
	if want := "f.yaml:20:1: document of"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want %q", err, want)
	}
	_, err = Parse("f.yaml", make([]byte, MaxInputBytes+1), ParseOptions{})
	if err == nil || !strings.Contains(err.Error(), "at most") {
		t.Fatalf("got %v for an input over MaxInputBytes", err)
	}
}
