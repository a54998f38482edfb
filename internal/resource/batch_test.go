package resource

import (
	"strings"
	"testing"
	"time"
)

// batchDoc is a batch pipeline with the given lines of spec (each
// indented by two spaces) after its source topic.
func batchDoc(source string, lines ...string) string {
	return pipelineHead + "spec:\n  mode: batch\n  source: {topic: clicks" + source + "}\n  sink: {parquet: {path: /lake}}\n" +
		strings.Join(lines, "\n") + "\n"
}

// TestBatchSpecs: the batch fields are accepted in batch mode only, each
// error at its field's line and column.
func TestBatchSpecs(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want string // a line of the errors; "" for a valid spec
	}{
		{"hourly", batchDoc("", "  schedule: '@hourly'"), ""},
		{"every 15m", batchDoc("", "  schedule: '@every 15m'"), ""},
		{"five fields", batchDoc("", "  schedule: '5 * * * 1-5'"), ""},
		{"time zone", batchDoc("", "  schedule: 'CRON_TZ=Europe/Paris 0 6 * * *'"), ""},
		{"no schedule", batchDoc(""), ""},
		{"window", batchDoc("", "  processors:", "    - window: {type: tumbling, size: 1h, groupBy: record.value.page, aggregates: {clicks: 'count()'}}"), ""},
		{"window lateness", batchDoc("", "  processors:", "    - window: {type: tumbling, size: 1h, allowedLateness: 5m, aggregates: {clicks: 'count()'}}"),
			`spec.processors[0].window.allowedLateness: is for stream pipelines (a batch run has all of its range: its windows close when it has read it, and none of its events is late)`},
		{"window on update", batchDoc("", "  processors:", "    - window: {type: tumbling, size: 1h, emit: onUpdate, aggregates: {clicks: 'count()'}}"),
			`spec.processors[0].window.emit: is for stream pipelines`},
		{"from earliest to a time", batchDoc(", from: earliest, to: '2026-12-02T15:00:00Z'"), ""},
		{"from lastRun", batchDoc(", from: lastRun, to: latest"), ""},
		{"times in order", batchDoc(", from: '2026-12-01T00:00:00Z', to: '2026-12-02T00:00:00+01:00'"), ""},
		{"explicit offsets", batchDoc(`, fromOffsets: {"0": 100, 1: 250}, toOffsets: {"0": 200, "1": 250}`), ""},
		{"from offsets to latest", batchDoc(`, fromOffsets: {"3": 0}`), ""},
		{"with a variable", batchDoc(", to: '${END}'"), ""},

		{"bad cron", batchDoc("", "  schedule: '* * *'"),
			`t.yaml:8:13: spec.schedule: "* * *": expected exactly 5 fields, found 3: [* * *] (five fields`},
		{"bad descriptor", batchDoc("", "  schedule: '@hourlyy'"),
			`t.yaml:8:13: spec.schedule: "@hourlyy": unrecognized descriptor: @hourlyy`},
		{"bad field value", batchDoc("", "  schedule: '61 * * * *'"),
			`t.yaml:8:13: spec.schedule: "61 * * * *": end of range (61) above maximum (59): 61`},
		{"every below a second", batchDoc("", "  schedule: '@every 100ms'"),
			`t.yaml:8:13: spec.schedule: @every 100ms: want an interval of 1s or more`},
		{"bad time zone", batchDoc("", "  schedule: 'CRON_TZ=Mars/Olympus 0 * * * *'"),
			`t.yaml:8:13: spec.schedule: "0 * * * *": provided bad location Mars/Olympus`},
		{"misspelt from", batchDoc(", from: lastrun"),
			`t.yaml:6:33: spec.source.from: "lastrun": want lastRun, earliest, an RFC 3339 time or partition=offset,... (did you mean "lastRun"?)`},
		{"latest is no start", batchDoc(", from: latest"),
			`t.yaml:6:33: spec.source.from: "latest": want lastRun, earliest`},
		{"earliest is no end", batchDoc(", to: earliest"),
			`t.yaml:6:31: spec.source.to: "earliest": want latest, an RFC 3339 time or partition=offset,...`},
		{"bad time", batchDoc(", to: '2026-13-01T00:00:00Z'"),
			`t.yaml:6:31: spec.source.to: "2026-13-01T00:00:00Z" is not an RFC 3339 time such as 2026-12-02T15:00:00Z`},
		{"time without zone", batchDoc(", to: '2026-12-01T00:00:00'"),
			`spec.source.to: "2026-12-01T00:00:00" is not an RFC 3339 time`},
		{"times out of order", batchDoc(", from: '2026-12-02T00:00:00Z', to: '2026-12-01T00:00:00Z'"),
			`t.yaml:6:61: spec.source.to: 2026-12-01T00:00:00Z is before the start 2026-12-02T00:00:00Z`},
		{"from and fromOffsets", batchDoc(`, from: earliest, fromOffsets: {"0": 1}`),
			`t.yaml:6:56: spec.source.fromOffsets: set together with from (give one start)`},
		{"to and toOffsets", batchDoc(`, to: latest, toOffsets: {"0": 1}`),
			`t.yaml:6:50: spec.source.toOffsets: set together with to (give one end)`},
		{"offsets in from", batchDoc(", from: '0=100'"),
			`t.yaml:6:33: spec.source.from: offsets go in fromOffsets (fromOffsets: {"0": 100, "1": 250})`},
		{"partition not a number", batchDoc(`, fromOffsets: {"p0": 1}`),
			`t.yaml:6:41: spec.source.fromOffsets.p0: "p0" is not a partition number (0 to 9999)`},
		{"negative partition", batchDoc(`, fromOffsets: {"-1": 1}`),
			`spec.source.fromOffsets.-1: "-1" is not a partition number`},
		{"negative offset", batchDoc(`, toOffsets: {"0": -5}`),
			`t.yaml:6:44: spec.source.toOffsets.0: -5: want an offset of 0 or more`},
		{"offset not a number", batchDoc(`, toOffsets: {"0": ten}`),
			`t.yaml:6:44: spec.source.toOffsets.0: "ten": want a whole number`},
		{"no partition", batchDoc(`, toOffsets: {}`),
			`spec.source.toOffsets: names no partition`},
		{"different partitions", batchDoc(`, fromOffsets: {"0": 1, "1": 1}, toOffsets: {"0": 5, "2": 5}`),
			`spec.source.toOffsets: names partitions 0, 2, the start names 0, 1: both ends name the same partitions`},
		{"offsets out of order", batchDoc(`, fromOffsets: {"0": 10}, toOffsets: {"0": 5}`),
			`spec.source.toOffsets: partition 0 ends at 5, before its start 10`},

		{"schedule in stream mode", strings.Replace(batchDoc("", "  schedule: '@hourly'"), "mode: batch", "mode: stream", 1),
			`t.yaml:8:13: spec.schedule: only batch pipelines read a range (set mode: batch, or remove it`},
		{"from without a mode", strings.Replace(batchDoc(", from: earliest"), "  mode: batch\n", "", 1),
			`t.yaml:5:33: spec.source.from: only batch pipelines read a range`},
		{"toOffsets in stream mode", strings.Replace(batchDoc(`, toOffsets: {"0": 5}`), "mode: batch", "mode: stream", 1),
			`t.yaml:6:38: spec.source.toOffsets: only batch pipelines read a range`},
		{"misspelt mode", strings.Replace(batchDoc(""), "mode: batch", "mode: bach", 1),
			`t.yaml:5:9: spec.mode: "bach" is not one of stream, batch (did you mean "batch"?)`},
		{"startFrom in batch mode", batchDoc(", startFrom: earliest"),
			`t.yaml:6:38: spec.source.startFrom: is for stream pipelines (a batch run starts where from says`},
		{"exactly-once in batch mode", batchDoc("", "  delivery: exactly-once"),
			`t.yaml:8:13: spec.delivery: exactly-once is for stream pipelines (a batch run publishes its Parquet files once`},
		{"exactly-once into postgres in batch mode", strings.Replace(batchDoc("", "  delivery: exactly-once"), "{parquet: {path: /lake}}", "{postgres: {dsn: 'postgres://db/x', table: t}}", 1),
			`spec.delivery: exactly-once is for stream pipelines`},
		{"maxWait in batch mode", batchDoc("", "  batch: {maxRecords: 10, maxWait: 1s}"),
			`t.yaml:8:36: spec.batch.maxWait: a batch run does not wait for records (its batches are cut by maxRecords and maxBytes only`},
		{"rollInterval in batch mode", strings.Replace(batchDoc(""), "{path: /lake}", "{path: /lake, rollInterval: 1m}", 1),
			`t.yaml:7:47: spec.sink.parquet.rollInterval: a batch run's files are published when the run completes`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.in), ParseOptions{})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v, want no error for\n%s", err, tc.in)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got\n%v\nwant a line containing\n%s\nfor\n%s", err, tc.want, tc.in)
			}
		})
	}
}

// TestExactlyOnceInBatchModeOneError: exactly-once into parquet in batch
// mode is one problem, reported once.
func TestExactlyOnceInBatchModeOneError(t *testing.T) {
	_, err := Parse("t.yaml", []byte(batchDoc("", "  delivery: exactly-once")), ParseOptions{})
	if es, ok := err.(Errors); !ok || len(es) != 1 {
		t.Fatalf("got %v, want one error", err)
	}
}

func TestParseBounds(t *testing.T) {
	ts := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in      string
		to      bool
		want    Bound
		wantErr string
	}{
		{in: "lastRun", want: Bound{Kind: BoundLastRun}},
		{in: "earliest", want: Bound{Kind: BoundEarliest}},
		{in: "latest", to: true, want: Bound{Kind: BoundLatest}},
		{in: "2026-12-02T16:00:00+01:00", want: Bound{Kind: BoundTime, Time: ts}},
		{in: "0=100, 1=250", to: true, want: Bound{Kind: BoundOffsets, Offsets: map[int32]int64{0: 100, 1: 250}}},
		{in: "latest", wantErr: `"latest": want lastRun, earliest`},
		{in: "lastRun", to: true, wantErr: `"lastRun": want latest`},
		{in: "", wantErr: "empty"},
		{in: "0=1,0=2", wantErr: "partition 0 is named twice"},
		{in: "0=-1", wantErr: `"0=-1": the offset of partition 0 is not a whole number of 0 or more`},
		{in: "x=1", wantErr: `"x" is not a partition number`},
		{in: "0=1,", wantErr: `"": want partition=offset`},
		{in: "2026-12-02", wantErr: "is not an RFC 3339 time"},
	} {
		parse := ParseFrom
		if tc.to {
			parse = ParseTo
		}
		got, err := parse(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: got %v, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got.String() != tc.want.String() || got.Kind != tc.want.Kind || !got.Time.Equal(tc.want.Time) {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
		// The string form reads back as the same bound.
		if again, err := parse(got.String()); err != nil || again.String() != got.String() {
			t.Errorf("%q: %q reads back as %v, %v", tc.in, got.String(), again, err)
		}
	}
}

// TestScheduleUTC: a schedule without a time zone is in UTC, whatever
// the time it is given.
func TestScheduleUTC(t *testing.T) {
	s, err := ParseSchedule("0 6 * * *")
	if err != nil {
		t.Fatal(err)
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip(err)
	}
	from := time.Date(2026, 12, 2, 7, 30, 0, 0, paris) // 06:30 UTC
	if got, want := s.Next(from).UTC(), time.Date(2026, 12, 3, 6, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("got %s, want %s", got, want)
	}
	s, err = ParseSchedule("CRON_TZ=Europe/Paris 0 6 * * *")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.Next(from).UTC(), time.Date(2026, 12, 3, 5, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("got %s, want %s", got, want)
	}
}

// TestBatchSpecRoundTrip: a batch spec written out as YAML reads back as
// the same resource.
func TestBatchSpecRoundTrip(t *testing.T) {
	in := batchDoc(`, fromOffsets: {"0": 100, "10": 7}, toOffsets: {"0": 200, "10": 9}`, "  schedule: '@every 15m'", "  batch: {maxRecords: 500}")
	rs, err := Parse("t.yaml", []byte(in), ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Canonical(rs[0])
	if err != nil {
		t.Fatal(err)
	}
	y, err := Marshal(rs[0], "yaml")
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse("back.yaml", y, ParseOptions{})
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	got, err := Canonical(back[0])
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	s := rs[0].(*Pipeline).Spec.Source
	from, _ := s.FromBound()
	to, _ := s.ToBound()
	if from.String() != "0=100,10=7" || to.String() != "0=200,10=9" {
		t.Fatalf("got [%s, %s)", from, to)
	}
}
