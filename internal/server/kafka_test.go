package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/dirlock"
	"github.com/sluice-dev/sluice/internal/stream"
)

// newKafkaClient returns a franz-go client of s's Kafka listener.
func newKafkaClient(t *testing.T, s *Server, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(s.KafkaAddr().String())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// TestKafkaProduceConsume: a franz-go producer and consumer work through
// the listener of a started server, and what they write is in the log the
// HTTP API serves.
func TestKafkaProduceConsume(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.KafkaDefaultPartitions = 3
	s := startServer(t, opts)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// The topic does not exist: the producer's Metadata request creates it.
	prod := newKafkaClient(t, s, kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("orders"))
	want := map[string]string{}
	var recs []*kgo.Record
	for i := range 20 {
		k, v := fmt.Sprint("k", i), fmt.Sprint("v", i)
		want[k] = v
		recs = append(recs, &kgo.Record{Key: []byte(k), Value: []byte(v)})
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	info, err := s.stream.DescribeTopic(ctx, "orders")
	if err != nil {
		t.Fatalf("describe the auto-created topic: %v", err)
	}
	var total int64
	for _, p := range info.Partitions {
		total += p.HighWatermark
	}
	if len(info.Partitions) != 3 || total != 20 {
		t.Fatalf("auto-created topic: got %d partitions holding %d records, want 3 holding 20", len(info.Partitions), total)
	}

	cons := newKafkaClient(t, s, kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]string{}
	for len(got) < len(want) {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume: %v (after %d records)", err, len(got))
		}
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Key)] = string(r.Value) })
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("record %s: got value %q, want %q", k, got[k], v)
		}
	}

	r := get(t, "GET", "http://"+s.Addr().String()+"/metrics")
	for _, name := range []string{`sluice_kafka_requests_total{api="Produce",error="none"}`, "sluice_kafka_connections "} {
		if !strings.Contains(r.body, name) {
			t.Errorf("metrics lack %s", name)
		}
	}
}

// TestKafkaNoAutoCreate: with auto-creation off, a producer's topic is not
// created.
func TestKafkaNoAutoCreate(t *testing.T) {
	opts := testOptions(t, t.TempDir())
	opts.KafkaNoAutoCreateTopics = true
	s := startServer(t, opts)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cl := newKafkaClient(t, s)
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("nope")
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode == 0 {
		t.Fatalf("metadata of a missing topic: got %+v, want an error", resp.Topics)
	}
	if _, err := s.stream.DescribeTopic(ctx, "nope"); !errors.Is(err, stream.ErrUnknownTopic) {
		t.Fatalf("describe: got %v, want ErrUnknownTopic", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestKafkaListenerLogsPort: with port 0 the log says which port the
// listener got, as it does for HTTP, since tests and scripts parse it.
func TestKafkaListenerLogsPort(t *testing.T) {
	var buf syncBuffer
	opts := testOptions(t, t.TempDir())
	opts.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	s := startServer(t, opts)

	want := s.KafkaAddr().String()
	if _, port, _ := net.SplitHostPort(want); port == "0" {
		t.Fatalf("KafkaAddr: got %s, want the port picked", want)
	}
	var logged []string
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	for sc.Scan() {
		var rec struct{ Msg, Addr, AdvertisedAddr, KafkaAddr string }
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		json.Unmarshal(sc.Bytes(), &rec)
		switch rec.Msg {
		case "kafka listening":
			logged = append(logged, rec.Addr)
			if raw["advertised_addr"] != want {
				t.Errorf("kafka listening: got advertised_addr %v, want %s", raw["advertised_addr"], want)
			}
		case "ready":
			if raw["kafka_addr"] != want {
				t.Errorf("ready: got kafka_addr %v, want %s", raw["kafka_addr"], want)
			}
		}
	}
	if len(logged) != 1 || logged[0] != want {
		t.Fatalf(`"kafka listening" lines: got addresses %v, want [%s]`, logged, want)
	}
}

// TestKafkaListenerBusyPort: a Kafka port in use fails Start and releases
// the data directory.
func TestKafkaListenerBusyPort(t *testing.T) {
	startOnBusyPort(t, func(o *Options, addr string) { o.KafkaAddr = addr }, "kafka listener")
}

// TestShutdownDuringKafkaLongPoll: a fetch waiting for data does not hold up
// shutdown, which ends the wait, then closes the log.
func TestShutdownDuringKafkaLongPoll(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions(t, dir)
	opts.ShutdownTimeout = time.Minute // only the drain may end the shutdown early
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(ctx) }()
	waitReady(t, s)
	if _, err := s.stream.CreateTopic(t.Context(), "idle", 1, nil); err != nil {
		t.Fatal(err)
	}

	// fetchSent is closed once the client has written the Fetch request.
	fetchSent := make(chan struct{})
	var once sync.Once
	cl := newKafkaClient(t, s, kgo.WithHooks(brokerWriteHook(func(key int16) {
		if key == int16(kmsg.Fetch) {
			once.Do(func() { close(fetchSent) })
		}
	})))
	topicID := func() [16]byte {
		ti, err := s.stream.DescribeTopic(t.Context(), "idle")
		if err != nil {
			t.Fatal(err)
		}
		return ti.ID
	}()
	type result struct {
		resp *kmsg.FetchResponse
		err  error
	}
	fetched := make(chan result, 1)
	go func() {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = 60_000
		req.MinBytes = 1
		req.MaxBytes = 1 << 20
		req.ReplicaID = -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic, ft.TopicID = "idle", topicID
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.PartitionMaxBytes = 1 << 20
		fp.LogStartOffset = -1
		ft.Partitions = append(ft.Partitions, fp)
		req.Topics = append(req.Topics, ft)
		resp, err := req.RequestWith(context.Background(), cl)
		fetched <- result{resp, err}
	}()
	select {
	case <-fetchSent:
	case r := <-fetched:
		t.Fatalf("fetch of an idle partition returned before shutdown: %+v, %v", r.resp, r.err)
	case <-time.After(10 * time.Second):
		t.Fatal("the fetch was never sent")
	}

	start := time.Now()
	cancel()
	select {
	case err := <-runDone:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return: shutdown waited for the long poll")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown took %v with a long poll in flight", d)
	}
	// The fetch either got its (empty) answer or, if the server had not
	// read it yet when the listener drained, lost its connection; it must
	// not hang, and it must not carry records that do not exist.
	select {
	case r := <-fetched:
		if r.err == nil {
			for _, rt := range r.resp.Topics {
				for _, rp := range rt.Partitions {
					if len(rp.RecordBatches) != 0 {
						t.Errorf("fetch answered with %d bytes of records from an empty partition", len(rp.RecordBatches))
					}
				}
			}
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the fetch did not end after shutdown")
	}
	l, err := dirlock.Acquire(dir)
	if err != nil {
		t.Fatalf("data directory still locked after shutdown: %v", err)
	}
	l.Release()
}

// brokerWriteHook calls fn with the API key of every request a client
// writes to a broker.
type brokerWriteHook func(key int16)

func (h brokerWriteHook) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil {
		h(key)
	}
}
