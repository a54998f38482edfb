// Package streamtest is the conformance suite for stream.Log: every
// implementation (the embedded log, a Kafka cluster) runs the same tests,
// so services written against the seam behave the same on each.
package streamtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// Run runs the suite. newLog returns a fresh, empty log for each test; the
// test's cleanup releases it.
func Run(t *testing.T, newLog func(t *testing.T) stream.Log) {
	tests := []struct {
		name string
		fn   func(t *testing.T, l stream.Log)
	}{
		{"TopicAdmin", testTopicAdmin},
		{"ProduceFetch", testProduceFetch},
		{"FetchWaits", testFetchWaits},
		{"ListOffset", testListOffset},
		{"DeleteRecords", testDeleteRecords},
		{"IdempotentProduce", testIdempotentProduce},
		{"StagedProduce", testStagedProduce},
		{"GroupOffsets", testGroupOffsets},
		{"GroupDescriptions", testGroupDescriptions},
		{"Errors", testErrors},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newLog(t)) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// batch encodes records with values v0..vn-1 and timestamps ts, ts+1, ...
func batch(t *testing.T, prefix string, n int, ts int64) []byte {
	t.Helper()
	var c record.Codecs
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("%s-%d", prefix, i)), Timestamp: ts + int64(i)}
	}
	b, err := c.AppendBatch(nil, recs, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// values decodes every record value in batches at or after from.
func values(t *testing.T, batches []byte, from int64) []string {
	t.Helper()
	var c record.Codecs
	var out []string
	for len(batches) > 0 {
		h, err := record.ParseHeader(batches)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.DecodeBatch(batches[:h.Size()], record.DecodeLimits{}, func(r record.Record) error {
			if r.Offset >= from {
				out = append(out, string(r.Value))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		batches = batches[h.Size():]
	}
	return out
}

func testTopicAdmin(t *testing.T, l stream.Log) {
	c := ctx(t)
	ti, err := l.CreateTopic(c, "orders", 3, map[string]string{"retention.ms": "3600000"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ti.Partitions) != 3 || ti.Config["retention.ms"] != "3600000" || ti.Overrides["retention.ms"] != "3600000" {
		t.Fatalf("created topic: got %d partitions, retention.ms %q (override %q); want 3, 3600000",
			len(ti.Partitions), ti.Config["retention.ms"], ti.Overrides["retention.ms"])
	}
	if _, err := l.CreateTopic(c, "orders", 1, nil); !errors.Is(err, stream.ErrTopicExists) {
		t.Fatalf("create again: got %v, want ErrTopicExists", err)
	}
	ti, err = l.AlterTopic(c, "orders", stream.TopicChange{Set: map[string]string{"max.message.bytes": "2048"}, Delete: []string{"retention.ms"}, Partitions: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(ti.Partitions) != 5 || ti.Config["max.message.bytes"] != "2048" || ti.Overrides["retention.ms"] != "" {
		t.Fatalf("altered topic: got %d partitions, max.message.bytes %q, overrides %v", len(ti.Partitions), ti.Config["max.message.bytes"], ti.Overrides)
	}
	// A key set to its default is set, as Kafka reports it.
	ti, err = l.CreateTopic(c, "audit", 1, map[string]string{"retention.bytes": "-1"})
	if err != nil {
		t.Fatal(err)
	}
	if ti.Overrides["retention.bytes"] != "-1" {
		t.Fatalf("a topic created with retention.bytes=-1, the default: overrides %v, want it among them", ti.Overrides)
	}
	ts, err := l.ListTopics(c)
	if err != nil || len(ts) != 2 || ts[0].Name != "audit" || ts[1].Name != "orders" {
		t.Fatalf("list topics: got %v, %v; want audit, orders", names(ts), err)
	}
	if err := l.DeleteTopic(c, "orders"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.DescribeTopic(c, "orders"); !errors.Is(err, stream.ErrUnknownTopic) {
		t.Fatalf("describe deleted topic: got %v, want ErrUnknownTopic", err)
	}
}

func names(ts []stream.TopicInfo) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Name)
	}
	return out
}

func testProduceFetch(t *testing.T, l stream.Log) {
	c := ctx(t)
	if _, err := l.CreateTopic(c, "t", 2, nil); err != nil {
		t.Fatal(err)
	}
	var want []string
	next := int64(0)
	for i := 0; i < 20; i++ {
		res, err := l.Produce(c, "t", 1, batch(t, fmt.Sprint("b", i), 5, 1000))
		if err != nil {
			t.Fatal(err)
		}
		if res.BaseOffset != next || res.LastOffset != next+4 {
			t.Fatalf("produce %d: got offsets [%d, %d], want [%d, %d]", i, res.BaseOffset, res.LastOffset, next, next+4)
		}
		next += 5
		for j := 0; j < 5; j++ {
			want = append(want, fmt.Sprintf("b%d-%d", i, j))
		}
	}
	var got []string
	off := int64(7)
	for off < next {
		res, err := l.Fetch(c, stream.FetchRequest{Topic: "t", Partition: 1, Offset: off, MaxBytes: 300})
		if err != nil {
			t.Fatal(err)
		}
		if res.HighWatermark != next {
			t.Fatalf("fetch: got high watermark %d, want %d", res.HighWatermark, next)
		}
		got = append(got, values(t, res.Batches, off)...)
		if res.NextOffset <= off {
			t.Fatalf("fetch at %d made no progress", off)
		}
		off = res.NextOffset
	}
	if !equal(got, want[7:]) {
		t.Fatalf("fetched values differ from produced:\ngot  %v\nwant %v", got, want[7:])
	}
	res, err := l.Fetch(c, stream.FetchRequest{Topic: "t", Partition: 0, Offset: 0, MaxBytes: 1000})
	if err != nil || len(res.Batches) != 0 || res.HighWatermark != 0 {
		t.Fatalf("fetch empty partition: got %d bytes, hw %d, %v", len(res.Batches), res.HighWatermark, err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func testFetchWaits(t *testing.T, l stream.Log) {
	c := ctx(t)
	if _, err := l.CreateTopic(c, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := l.Fetch(c, stream.FetchRequest{Topic: "t", Offset: 0, MaxBytes: 1000, MaxWait: 100 * time.Millisecond})
	if err != nil || len(res.Batches) != 0 {
		t.Fatalf("fetch with nothing to read: got %d bytes, %v", len(res.Batches), err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("fetch returned after %v, before its max wait", d)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = l.Produce(context.Background(), "t", 0, batch(t, "late", 1, 1))
	}()
	start = time.Now()
	res, err = l.Fetch(c, stream.FetchRequest{Topic: "t", Offset: 0, MaxBytes: 1000, MaxWait: 10 * time.Second})
	if err != nil || !equal(values(t, res.Batches, 0), []string{"late-0"}) {
		t.Fatalf("long poll: got %v, %v", values(t, res.Batches, 0), err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("long poll returned after %v: not woken by the produce", d)
	}
}

func testListOffset(t *testing.T, l stream.Log) {
	c := ctx(t)
	if _, err := l.CreateTopic(c, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	for i := int64(0); i < 10; i++ {
		if _, err := l.Produce(c, "t", 0, batch(t, "x", 10, 1_000_000+i*100)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		at, want int64
	}{{stream.Earliest, 0}, {stream.Latest, 100}, {0, 0}, {1_000_000, 0}, {1_000_105, 15}, {1_000_109, 19}, {1_000_110, 20}, {2_000_000, 100}} {
		got, err := l.ListOffset(c, "t", 0, tt.at)
		if err != nil || got != tt.want {
			t.Fatalf("ListOffset(%d): got %d, %v; want %d", tt.at, got, err, tt.want)
		}
	}
}

func testGroupOffsets(t *testing.T, l stream.Log) {
	c := ctx(t)
	if _, err := l.CreateTopic(c, "t", 2, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := l.FetchOffsets(c, "g"); err != nil || len(got) != 0 {
		t.Fatalf("offsets of a new group: got %v, %v; want none", got, err)
	}
	commit := []stream.GroupOffset{{Topic: "t", Partition: 1, Offset: 42, Metadata: "m1", LeaderEpoch: -1}, {Topic: "t", Partition: 0, Offset: 7, LeaderEpoch: -1}}
	if err := l.CommitOffsets(c, "g", commit); err != nil {
		t.Fatal(err)
	}
	got, err := l.FetchOffsets(c, "g")
	if err != nil || len(got) != 2 || got[0].Partition != 0 || got[0].Offset != 7 || got[1].Offset != 42 || got[1].Metadata != "m1" {
		t.Fatalf("fetch offsets: got %+v, %v", got, err)
	}
	if err := l.CommitOffsets(c, "g", []stream.GroupOffset{{Topic: "t", Partition: 9, Offset: 1, LeaderEpoch: -1}}); !errors.Is(err, stream.ErrUnknownPartition) && !errors.Is(err, stream.ErrUnknownTopic) {
		t.Fatalf("commit to a missing partition: got %v, want ErrUnknownPartition", err)
	}
	if gs, err := l.ListGroups(c); err != nil || !equal(gs, []string{"g"}) {
		t.Fatalf("list groups: got %v, %v", gs, err)
	}
	if err := l.DeleteGroup(c, "g"); err != nil {
		t.Fatal(err)
	}
	if got, err := l.FetchOffsets(c, "g"); err != nil || len(got) != 0 {
		t.Fatalf("offsets after delete: got %v, %v", got, err)
	}
}

// testGroupDescriptions checks DescribeGroups and DeleteOffsets for groups
// without live members, which every implementation can have; live
// membership is tested through the Kafka listener with real consumers.
func testGroupDescriptions(t *testing.T, l stream.Log) {
	c := ctx(t)
	if _, err := l.CreateTopic(c, "t", 3, nil); err != nil {
		t.Fatal(err)
	}
	state := func(ds []stream.GroupDescription, group string) string {
		for _, d := range ds {
			if d.Group == group {
				if len(d.Members) != 0 {
					t.Errorf("group %q: %d members, want none", group, len(d.Members))
				}
				return d.State
			}
		}
		return "absent"
	}
	ds, err := l.DescribeGroups(c, []string{"never"})
	if err != nil || len(ds) != 1 || ds[0].Group != "never" || ds[0].State != stream.GroupDead {
		t.Fatalf("describe a group that never existed: got %+v, %v; want it Dead", ds, err)
	}
	commit := []stream.GroupOffset{{Topic: "t", Partition: 0, Offset: 1, LeaderEpoch: -1},
		{Topic: "t", Partition: 1, Offset: 2, LeaderEpoch: -1}, {Topic: "t", Partition: 2, Offset: 3, LeaderEpoch: -1}}
	if err := l.CommitOffsets(c, "g", commit); err != nil {
		t.Fatal(err)
	}
	ds, err = l.DescribeGroups(c, []string{"g", "never"})
	if err != nil || len(ds) != 2 || ds[0].Group != "g" || ds[1].Group != "never" {
		t.Fatalf("describe g and never: got %+v, %v; want both, in that order", ds, err)
	}
	if got := state(ds, "g"); got != stream.GroupEmpty {
		t.Errorf("group with commits and no members: state %s, want Empty", got)
	}
	if got := state(ds, "never"); got != stream.GroupDead {
		t.Errorf("group without commits: state %s, want Dead", got)
	}
	all, err := l.DescribeGroups(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := state(all, "g"); got != stream.GroupEmpty {
		t.Errorf("describe all: g is %s, want Empty", got)
	}
	if got := state(all, "never"); got != "absent" {
		t.Errorf("describe all: never is %s, want it absent", got)
	}

	if err := l.DeleteOffsets(c, "g", []stream.TopicPartitions{{Topic: "t", Partitions: []int32{1}}}); err != nil {
		t.Fatal(err)
	}
	got, err := l.FetchOffsets(c, "g")
	if err != nil || len(got) != 2 || got[0].Partition != 0 || got[1].Partition != 2 {
		t.Fatalf("offsets after deleting t/1: got %+v, %v; want t/0 and t/2", got, err)
	}
	if err := l.DeleteOffsets(c, "g", []stream.TopicPartitions{{Topic: "t", Partitions: []int32{0, 2}}}); err != nil {
		t.Fatal(err)
	}
	if got, err := l.FetchOffsets(c, "g"); err != nil || len(got) != 0 {
		t.Fatalf("offsets after deleting all: got %+v, %v; want none", got, err)
	}
	if err := l.DeleteOffsets(c, "never", []stream.TopicPartitions{{Topic: "t", Partitions: []int32{0}}}); err != nil {
		t.Errorf("delete offsets of a group without commits: %v, want nil", err)
	}
}

func testErrors(t *testing.T, l stream.Log) {
	c := ctx(t)
	if _, err := l.CreateTopic(c, "t", 1, map[string]string{"max.message.bytes": "1024"}); err != nil {
		t.Fatal(err)
	}
	bad := batch(t, "x", 1, 1)
	bad[len(bad)-1] ^= 1
	for _, tt := range []struct {
		name string
		err  error
		want error
	}{
		{"create with a bad name", func() error { _, err := l.CreateTopic(c, "a/b", 1, nil); return err }(), stream.ErrInvalid},
		{"create with a bad config", func() error { _, err := l.CreateTopic(c, "u", 1, map[string]string{"nope": "1"}); return err }(), stream.ErrInvalid},
		{"produce to a missing topic", func() error { _, err := l.Produce(c, "missing", 0, batch(t, "x", 1, 1)); return err }(), stream.ErrUnknownTopic},
		{"produce to a missing partition", func() error { _, err := l.Produce(c, "t", 3, batch(t, "x", 1, 1)); return err }(), stream.ErrUnknownPartition},
		{"produce a corrupt batch", func() error { _, err := l.Produce(c, "t", 0, bad); return err }(), stream.ErrInvalid},
		{"produce an oversized batch", func() error {
			_, err := l.Produce(c, "t", 0, batch(t, string(bytes.Repeat([]byte("v"), 2000)), 1, 1))
			return err
		}(), stream.ErrTooLarge},
		{"fetch past the end", func() error {
			_, err := l.Fetch(c, stream.FetchRequest{Topic: "t", Offset: 5, MaxBytes: 100})
			return err
		}(), stream.ErrOffsetOutOfRange},
	} {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.err, tt.want)
		}
	}
}

// testStagedProduce checks stream.StagedProducer where the log offers it:
// staged batches are ordered by their ProduceStaged calls whatever order
// their waits run in, the batch slice may be reused at once, and a missing
// partition fails before anything is appended.
func testStagedProduce(t *testing.T, l stream.Log) {
	sp, ok := l.(stream.StagedProducer)
	if !ok {
		t.Skip("the log does not implement stream.StagedProducer")
	}
	c := ctx(t)
	if _, err := l.CreateTopic(c, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var waits []func(context.Context) (stream.ProduceResult, error)
	buf := make([]byte, 0, 4096)
	for i := range n {
		b := batch(t, fmt.Sprint("s", i), 3, 1000)
		buf = append(buf[:0], b...)
		wait, err := sp.ProduceStaged(c, "t", 0, buf)
		if err != nil {
			t.Fatalf("stage batch %d: %v", i, err)
		}
		clear(buf) // the log must not keep the slice
		waits = append(waits, wait)
	}
	for i := n - 1; i >= 0; i-- {
		res, err := waits[i](c)
		if err != nil {
			t.Fatalf("wait for batch %d: %v", i, err)
		}
		if want := int64(3 * i); res.BaseOffset != want || res.LastOffset != want+2 {
			t.Errorf("batch %d: got offsets [%d, %d], want [%d, %d]", i, res.BaseOffset, res.LastOffset, want, want+2)
		}
	}
	res, err := l.Fetch(c, stream.FetchRequest{Topic: "t", Partition: 0, Offset: 0, MaxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range n {
		for j := range 3 {
			want = append(want, fmt.Sprintf("s%d-%d", i, j))
		}
	}
	if got := values(t, res.Batches, 0); !equal(got, want) {
		t.Errorf("got values %v, want %v", got, want)
	}
	if _, err := sp.ProduceStaged(c, "t", 5, batch(t, "x", 1, 1)); !errors.Is(err, stream.ErrUnknownPartition) {
		t.Errorf("stage to a missing partition: got %v, want %v", err, stream.ErrUnknownPartition)
	}
}
