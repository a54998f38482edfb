package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/kafka"
	"github.com/sluice-dev/sluice/internal/stream/streamtest"
)

func TestConformance(t *testing.T) {
	streamtest.Run(t, func(t *testing.T) stream.Log {
		l, _ := newLog(t)
		return l
	})
}

// newLog starts a three-broker kfake cluster and a Log on it.
func newLog(t *testing.T, opts ...kfake.Opt) (*kafka.Log, *kfake.Cluster) {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	validateTopicConfigs(c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := kafka.New(ctx, kafka.Options{Brokers: c.ListenAddrs()})
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close()
		c.Close()
	})
	return l, c
}

// kafkaTopicConfigs are the topic-level configs of Apache Kafka 3.x and 4.x.
var kafkaTopicConfigs = map[string]bool{
	"cleanup.policy": true, "compression.gzip.level": true, "compression.lz4.level": true,
	"compression.type": true, "compression.zstd.level": true, "delete.retention.ms": true,
	"file.delete.delay.ms": true, "flush.messages": true, "flush.ms": true,
	"follower.replication.throttled.replicas": true, "index.interval.bytes": true,
	"leader.replication.throttled.replicas": true, "local.retention.bytes": true, "local.retention.ms": true,
	"max.compaction.lag.ms": true, "max.message.bytes": true, "message.downconversion.enable": true,
	"message.format.version": true, "message.timestamp.after.max.ms": true,
	"message.timestamp.before.max.ms": true, "message.timestamp.difference.max.ms": true,
	"message.timestamp.type": true, "min.cleanable.dirty.ratio": true, "min.compaction.lag.ms": true,
	"min.insync.replicas": true, "preallocate": true, "remote.log.copy.disable": true,
	"remote.log.delete.on.disable": true, "remote.storage.enable": true, "retention.bytes": true,
	"retention.ms": true, "segment.bytes": true, "segment.index.bytes": true, "segment.jitter.ms": true,
	"segment.ms": true, "unclean.leader.election.enable": true,
}

// validateTopicConfigs makes kfake refuse topic configs Kafka does not know,
// as a broker does (INVALID_CONFIG, "Unknown topic config name"): kfake
// stores any name it is given, in CreateTopics and IncrementalAlterConfigs
// alike. The handlers answer a request only when every topic in it names an
// unknown config, which is all a Log ever sends (one topic per request).
func validateTopicConfigs(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.CreateTopics), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.CreateTopicsRequest)
		resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
		for _, rt := range req.Topics {
			bad := ""
			for _, rc := range rt.Configs {
				if !kafkaTopicConfigs[rc.Name] {
					bad = rc.Name
				}
			}
			if bad == "" {
				return nil, nil, false
			}
			st := kmsg.NewCreateTopicsResponseTopic()
			st.Topic = rt.Topic
			st.ErrorCode = kerr.InvalidConfig.Code
			st.ErrorMessage = kmsg.StringPtr("Unknown topic config name: " + bad)
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.IncrementalAlterConfigs), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
		resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
		for _, rr := range req.Resources {
			bad := ""
			for _, rc := range rr.Configs {
				if rr.ResourceType == kmsg.ConfigResourceTypeTopic && !kafkaTopicConfigs[rc.Name] {
					bad = rc.Name
				}
			}
			if bad == "" {
				return nil, nil, false
			}
			sr := kmsg.NewIncrementalAlterConfigsResponseResource()
			sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
			sr.ErrorCode = kerr.InvalidConfig.Code
			sr.ErrorMessage = kmsg.StringPtr("Unknown topic config name: " + bad)
			resp.Resources = append(resp.Resources, sr)
		}
		return resp, nil, true
	})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func batch(t *testing.T, values ...string) []byte {
	t.Helper()
	var c record.Codecs
	recs := make([]record.Record, len(values))
	for i, v := range values {
		recs[i] = record.Record{Value: []byte(v), Timestamp: 1000 + int64(i)}
	}
	b, err := c.AppendBatch(nil, recs, record.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestProduceRewritesBaseOffset: brokers refuse a client batch whose
// baseOffset is not zero, as a batch fetched from another log has.
func TestProduceRewritesBaseOffset(t *testing.T) {
	l, _ := newLog(t)
	ctx := testCtx(t)
	if _, err := l.CreateTopic(ctx, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	b := batch(t, "a", "b")
	record.SetBaseOffset(b, 42)
	orig := append([]byte(nil), b...)
	res, err := l.Produce(ctx, "t", 0, b)
	if err != nil || res.BaseOffset != 0 || res.LastOffset != 1 || res.LogAppendTime != -1 {
		t.Fatalf("produce: got %+v, %v; want offsets [0, 1], no log append time", res, err)
	}
	if string(b) != string(orig) {
		t.Fatal("produce wrote to the caller's batch")
	}
}

// TestLeaderMoves: produce and fetch follow a partition whose leader moved
// after its metadata was cached.
func TestLeaderMoves(t *testing.T) {
	l, c := newLog(t)
	ctx := testCtx(t)
	if _, err := l.CreateTopic(ctx, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Produce(ctx, "t", 0, batch(t, "before")); err != nil {
		t.Fatal(err)
	}
	if err := c.MoveTopicPartition("t", 0, (c.LeaderFor("t", 0)+1)%3); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Produce(ctx, "t", 0, batch(t, "after")); err != nil {
		t.Fatalf("produce after the leader moved: %v", err)
	}
	if err := c.MoveTopicPartition("t", 0, (c.LeaderFor("t", 0)+1)%3); err != nil {
		t.Fatal(err)
	}
	res, err := l.Fetch(ctx, stream.FetchRequest{Topic: "t", Offset: 0, MaxBytes: 1 << 20})
	if err != nil || res.HighWatermark != 2 || res.NextOffset != 2 {
		t.Fatalf("fetch after the leader moved: got hw %d, next %d, %v; want 2, 2", res.HighWatermark, res.NextOffset, err)
	}
}

// TestLongPollsDoNotQueue: a fetch waiting on an idle partition does not
// hold up a fetch of another partition led by the same broker.
func TestLongPollsDoNotQueue(t *testing.T) {
	l, c := newLog(t)
	ctx := testCtx(t)
	if _, err := l.CreateTopic(ctx, "t", 2, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.MoveTopicPartition("t", 1, c.LeaderFor("t", 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Produce(ctx, "t", 1, batch(t, "x")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Fetch(ctx, stream.FetchRequest{Topic: "t", Partition: 0, Offset: 0, MaxBytes: 1000, MaxWait: 3 * time.Second})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the long poll reach the broker
	start := time.Now()
	res, err := l.Fetch(ctx, stream.FetchRequest{Topic: "t", Partition: 1, Offset: 0, MaxBytes: 1000, MaxWait: 3 * time.Second})
	if err != nil || len(res.Batches) == 0 {
		t.Fatalf("fetch: got %d bytes, %v", len(res.Batches), err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("fetch with data waiting took %v: it queued behind the long poll", d)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestFetchDropsPartialBatch: Kafka may cut the last batch of a fetch short
// at the byte limit; Fetch returns only whole batches.
func TestFetchDropsPartialBatch(t *testing.T) {
	l, c := newLog(t)
	ctx := testCtx(t)
	if _, err := l.CreateTopic(ctx, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	var whole []byte
	for i := range 3 {
		b := batch(t, fmt.Sprint("v", i))
		if _, err := l.Produce(ctx, "t", 0, b); err != nil {
			t.Fatal(err)
		}
		record.SetBaseOffset(b, int64(i))
		whole = append(whole, b...)
	}
	// Answer the next fetch as a broker that cut the third batch short.
	size := len(whole) / 3
	c.ControlKey(int16(kmsg.Fetch), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		req := kreq.(*kmsg.FetchRequest)
		resp := req.ResponseKind().(*kmsg.FetchResponse)
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic, rt.TopicID = req.Topics[0].Topic, req.Topics[0].TopicID
		rp := kmsg.NewFetchResponseTopicPartition()
		rp.HighWatermark, rp.LogStartOffset = 3, 0
		rp.RecordBatches = whole[:len(whole)-5]
		rt.Partitions = append(rt.Partitions, rp)
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})
	res, err := l.Fetch(ctx, stream.FetchRequest{Topic: "t", Offset: 0, MaxBytes: 2*size + 10})
	if err != nil || len(res.Batches) != 2*size || res.NextOffset != 2 || res.HighWatermark != 3 {
		t.Fatalf("fetch: got %d bytes, next %d, hw %d, %v; want %d bytes, next 2, hw 3", len(res.Batches), res.NextOffset, res.HighWatermark, err, 2*size)
	}
}

// TestAlterTopicAllOrNothing: a change Kafka refuses in part changes
// nothing.
func TestAlterTopicAllOrNothing(t *testing.T) {
	l, _ := newLog(t)
	ctx := testCtx(t)
	if _, err := l.CreateTopic(ctx, "t", 2, map[string]string{"retention.ms": "1000"}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []stream.TopicChange{
		{Set: map[string]string{"retention.ms": "2000", "nope": "1"}, Partitions: 4},
		{Set: map[string]string{"retention.ms": "2000"}, Partitions: 1},
	} {
		if _, err := l.AlterTopic(ctx, "t", ch); !errors.Is(err, stream.ErrInvalid) {
			t.Fatalf("alter %+v: got %v, want ErrInvalid", ch, err)
		}
	}
	ti, err := l.DescribeTopic(ctx, "t")
	if err != nil || len(ti.Partitions) != 2 || ti.Overrides["retention.ms"] != "1000" {
		t.Fatalf("after refused changes: got %d partitions, overrides %v, %v; want 2, retention.ms=1000", len(ti.Partitions), ti.Overrides, err)
	}
	if _, err := l.AlterTopic(ctx, "missing", stream.TopicChange{Partitions: 3}); !errors.Is(err, stream.ErrUnknownTopic) {
		t.Fatalf("alter a missing topic: got %v, want ErrUnknownTopic", err)
	}
}

// TestErrorsMatchKafkaToo: mapped errors match the stream sentinel and
// Kafka's own error.
func TestErrorsMatchKafkaToo(t *testing.T) {
	l, _ := newLog(t)
	ctx := testCtx(t)
	if _, err := l.CreateTopic(ctx, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	_, err := l.CreateTopic(ctx, "t", 1, nil)
	if !errors.Is(err, stream.ErrTopicExists) || !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Fatalf("create again: got %v, want ErrTopicExists and TOPIC_ALREADY_EXISTS", err)
	}
	_, err = l.Fetch(ctx, stream.FetchRequest{Topic: "t", Offset: 9, MaxBytes: 100})
	if !errors.Is(err, stream.ErrOffsetOutOfRange) || !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("fetch past the end: got %v, want ErrOffsetOutOfRange and OFFSET_OUT_OF_RANGE", err)
	}
	if err := l.DeleteGroup(ctx, "never-seen"); err != nil {
		t.Fatalf("delete a group that does not exist: %v", err)
	}
	for _, tt := range []struct {
		name string
		err  error
		want error
	}{
		{"list offset of a missing partition", func() error { _, err := l.ListOffset(ctx, "t", 5, stream.Latest); return err }(), stream.ErrUnknownPartition},
		{"list offset of a missing topic", func() error { _, err := l.ListOffset(ctx, "missing", 0, stream.Earliest); return err }(), stream.ErrUnknownTopic},
		{"list offset at a bad position", func() error { _, err := l.ListOffset(ctx, "t", 0, -7); return err }(), stream.ErrInvalid},
		{"fetch a missing topic", func() error {
			_, err := l.Fetch(ctx, stream.FetchRequest{Topic: "missing", MaxBytes: 100})
			return err
		}(), stream.ErrUnknownTopic},
		{"commit to a missing topic", l.CommitOffsets(ctx, "g", []stream.GroupOffset{{Topic: "missing", Offset: 1, LeaderEpoch: -1}}), stream.ErrUnknownTopic},
		{"describe a missing topic", func() error { _, err := l.DescribeTopic(ctx, "missing"); return err }(), stream.ErrUnknownTopic},
		{"delete a missing topic", l.DeleteTopic(ctx, "missing"), stream.ErrUnknownTopic},
		{"create with no partitions", func() error { _, err := l.CreateTopic(ctx, "u", 0, nil); return err }(), stream.ErrInvalid},
	} {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	if gs, err := l.ListGroups(ctx); err != nil || len(gs) != 0 {
		t.Errorf("groups after a refused commit: got %v, %v; want none", gs, err)
	}
}

// TestClosed: a closed Log fails with ErrUnavailable.
func TestClosed(t *testing.T) {
	l, _ := newLog(t)
	ctx := testCtx(t)
	if _, err := l.CreateTopic(ctx, "t", 1, nil); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := l.Produce(ctx, "t", 0, batch(t, "x")); !errors.Is(err, stream.ErrUnavailable) {
		t.Fatalf("produce after close: got %v, want ErrUnavailable", err)
	}
	if _, err := l.ListTopics(ctx); !errors.Is(err, stream.ErrUnavailable) {
		t.Fatalf("list topics after close: got %v, want ErrUnavailable", err)
	}
}

func TestNewUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := kafka.New(ctx, kafka.Options{Brokers: []string{"127.0.0.1:1"}}); !errors.Is(err, stream.ErrUnavailable) {
		t.Fatalf("new on an unreachable broker: got %v, want ErrUnavailable", err)
	}
	if _, err := kafka.New(ctx, kafka.Options{}); !errors.Is(err, stream.ErrInvalid) {
		t.Fatalf("new without brokers: got %v, want ErrInvalid", err)
	}
}

// TestDescribe: configuration as the broker reports it, overrides as set,
// sizes from the leaders' log directories.
func TestDescribe(t *testing.T) {
	l, _ := newLog(t)
	ctx := testCtx(t)
	created, err := l.CreateTopic(ctx, "t", 2, map[string]string{"retention.ms": "60000"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Produce(ctx, "t", 1, batch(t, "a", "b", "c")); err != nil {
		t.Fatal(err)
	}
	ti, err := l.DescribeTopic(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if ti.ID == ([16]byte{}) || ti.ID != created.ID {
		t.Errorf("topic ID: got %x, created %x; want the same, non-zero", ti.ID, created.ID)
	}
	if len(ti.Overrides) != 1 || ti.Overrides["retention.ms"] != "60000" {
		t.Errorf("overrides: got %v, want only retention.ms=60000", ti.Overrides)
	}
	if ti.Config["retention.ms"] != "60000" || ti.Config["cleanup.policy"] != "delete" {
		t.Errorf("config: got retention.ms %q, cleanup.policy %q; want 60000, delete", ti.Config["retention.ms"], ti.Config["cleanup.policy"])
	}
	p0, p1 := ti.Partitions[0], ti.Partitions[1]
	if p0.HighWatermark != 0 || p0.SizeBytes != 0 || p1.HighWatermark != 3 || p1.LogStartOffset != 0 || p1.SizeBytes <= 0 {
		t.Errorf("partitions: got %+v", ti.Partitions)
	}
	ts, err := l.ListTopics(ctx)
	if err != nil || len(ts) != 1 || ts[0].Name != "t" || ts[0].Partitions[1].HighWatermark != 3 {
		t.Fatalf("list topics: got %+v, %v", ts, err)
	}
}
