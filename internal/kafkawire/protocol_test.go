package kafkawire

import (
	"context"
	"encoding/binary"
	"errors"
	rtmetrics "runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
)

// servedKeys lists what ApiVersions must advertise.
var servedKeys = map[int16][2]int16{
	0: {0, 12}, 1: {4, 12}, 2: {1, 7}, 3: {0, 12}, 8: {2, 9}, 9: {1, 9}, 10: {0, 6},
	18: {0, 4}, 19: {0, 7}, 20: {0, 6}, 22: {0, 4}, 32: {0, 4},
	21: {0, 2}, 37: {0, 3}, // DeleteRecords, CreatePartitions
	33: {0, 2}, 44: {0, 1}, // AlterConfigs, IncrementalAlterConfigs
	11: {0, 9}, 12: {0, 4}, 13: {0, 5}, 14: {0, 5}, 15: {0, 5}, 16: {0, 4}, 42: {0, 2}, 47: {0, 0}, // groups
}

func checkKeys(t *testing.T, keys []kmsg.ApiVersionsResponseApiKey) {
	t.Helper()
	got := map[int16][2]int16{}
	for _, k := range keys {
		got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
	}
	if len(got) != len(servedKeys) {
		t.Errorf("advertised %d keys, want %d: %v", len(got), len(servedKeys), got)
	}
	for k, v := range servedKeys {
		if got[k] != v {
			t.Errorf("key %d (%s): got versions %v, want %v", k, kmsg.NameForKey(k), got[k], v)
		}
	}
}

func TestApiVersions(t *testing.T) {
	e := newTestEnv(t, Options{})
	rc := e.dial()
	for v := int16(0); v <= 4; v++ {
		req := kmsg.NewPtrApiVersionsRequest()
		req.SetVersion(v)
		req.ClientSoftwareName, req.ClientSoftwareVersion = "raw-test", "1.0.0"
		// recv checks that no header tags precede the body, even at v3+.
		resp := roundTrip[*kmsg.ApiVersionsResponse](rc, req)
		if resp.ErrorCode != 0 {
			t.Errorf("v%d: error %d", v, resp.ErrorCode)
		}
		checkKeys(t, resp.ApiKeys)
	}

	// A version from the future: a v0 answer with UNSUPPORTED_VERSION and
	// the key list, and the connection stays open. Its body is not parsed.
	frame := []byte{0, 0, 0, 0, 0, apiVersionsKey, 0, 99, 0, 0, 0, 42, 0, 3, 'n', 'e', 'w', 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	rc.write(frame)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	rc.recv(resp, 42)
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Errorf("v99: error %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	checkKeys(t, resp.ApiKeys)

	// Client software names are checked from v3 (KIP-511).
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(3)
	req.ClientSoftwareName, req.ClientSoftwareVersion = "bad name", "1.0"
	resp = roundTrip[*kmsg.ApiVersionsResponse](rc, req)
	if resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("bad software name: error %d, want INVALID_REQUEST", resp.ErrorCode)
	}

	// Still usable.
	md := roundTrip[*kmsg.MetadataResponse](rc, kmsg.NewPtrMetadataRequest())
	if len(md.Brokers) != 1 || md.Brokers[0].NodeID != 0 {
		t.Errorf("metadata brokers: %+v", md.Brokers)
	}
}

func TestUnsupportedClosesConnection(t *testing.T) {
	e := newTestEnv(t, Options{})
	for _, c := range []struct {
		name         string
		key, version int16
	}{
		{"metadata v13", 3, 13},
		{"fetch v3", 1, 3},
		{"list offsets v0", 2, 0},
		{"join group without a body", 11, 5},
		{"unknown key", 999, 0},
		{"negative key", -5, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := e.dial()
			frame := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0xff, 0xff, 0, 0, 0, 0}
			binary.BigEndian.PutUint16(frame[4:], uint16(c.key))
			binary.BigEndian.PutUint16(frame[6:], uint16(c.version))
			binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
			rc.write(frame)
			rc.expectClosed(5 * time.Second)
		})
	}
}

func TestPipelinedRequestsAnsweredInOrder(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("p", 1, nil)
	rc := e.dial()
	var frames []byte
	var corrs []int32
	reqs := []kmsg.Request{
		kmsg.NewPtrMetadataRequest(),
		produceRequest(t, 9, 1, "p", 0, "a", "b"),
		kmsg.NewPtrApiVersionsRequest(),
		produceRequest(t, 3, -1, "p", 0, "c"),
	}
	for _, r := range reqs {
		b, corr := rc.frame(r)
		frames = append(frames, b...)
		corrs = append(corrs, corr)
	}
	rc.write(frames) // all at once
	md := kmsg.NewPtrMetadataResponse()
	md.SetVersion(reqs[0].GetVersion())
	rc.recv(md, corrs[0])
	p1 := kmsg.NewPtrProduceResponse()
	p1.SetVersion(9)
	rc.recv(p1, corrs[1])
	av := kmsg.NewPtrApiVersionsResponse()
	av.SetVersion(reqs[2].GetVersion())
	rc.recv(av, corrs[2])
	p2 := kmsg.NewPtrProduceResponse()
	p2.SetVersion(3)
	rc.recv(p2, corrs[3])
	if got := p1.Topics[0].Partitions[0]; got.ErrorCode != 0 || got.BaseOffset != 0 || got.LogStartOffset != 0 {
		t.Errorf("first produce: %+v", got)
	}
	if got := p2.Topics[0].Partitions[0]; got.ErrorCode != 0 || got.BaseOffset != 2 {
		t.Errorf("second produce: %+v", got)
	}
}

func TestProduceErrors(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("p", 1, map[string]string{"max.message.bytes": "1024"})
	rc := e.dial()

	check := func(name string, req *kmsg.ProduceRequest, want int16) {
		t.Helper()
		resp := roundTrip[*kmsg.ProduceResponse](rc, req)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != want || (want != 0 && p.BaseOffset != -1) {
			t.Errorf("%s: got error %d base offset %d, want error %d", name, p.ErrorCode, p.BaseOffset, want)
		}
	}
	check("v2", produceRequest(t, 2, 1, "p", 0, "x"), kerr.UnsupportedVersion.Code)
	check("unknown topic", produceRequest(t, 9, 1, "nope", 0, "x"), kerr.UnknownTopicOrPartition.Code)
	check("unknown partition", produceRequest(t, 9, 1, "p", 3, "x"), kerr.UnknownTopicOrPartition.Code)
	check("bad acks", produceRequest(t, 9, 2, "p", 0, "x"), kerr.InvalidRequiredAcks.Code)
	check("too large", produceRequest(t, 9, 1, "p", 0, strings.Repeat("x", 2000)), kerr.MessageTooLarge.Code)

	req := produceRequest(t, 9, 1, "p", 0, "x")
	req.Topics[0].Partitions[0].Records[len(req.Topics[0].Partitions[0].Records)-1] ^= 1 // break the CRC
	check("bad crc", req, kerr.CorruptMessage.Code)

	req = produceRequest(t, 9, 1, "p", 0, "x")
	req.Topics[0].Partitions[0].Records[16] = 1 // magic 1
	check("magic 1", req, kerr.InvalidRecord.Code)

	req = produceRequest(t, 9, 1, "p", 0, "x")
	req.Topics[0].Partitions[0].Records = nil
	check("no records", req, kerr.InvalidRecord.Code)

	req = produceRequest(t, 9, 1, "p", 0, "x")
	req.TransactionID = kmsg.StringPtr("txn")
	check("transactional", req, kerr.InvalidRequest.Code)

	// Two batches in one partition: both stored; a bad second batch
	// stores neither.
	a, b := produceRequest(t, 9, 1, "p", 0, "a1", "a2"), produceRequest(t, 9, 1, "p", 0, "b1")
	two := append(append([]byte(nil), a.Topics[0].Partitions[0].Records...), b.Topics[0].Partitions[0].Records...)
	a.Topics[0].Partitions[0].Records = two
	check("two batches", a, 0)
	hw, _ := e.log.ListOffset(context.Background(), "p", 0, stream.Latest)
	if hw != 3 {
		t.Errorf("after two batches: high watermark %d, want 3", hw)
	}
	bad := append([]byte(nil), two...)
	bad[len(bad)-1] ^= 1
	a.Topics[0].Partitions[0].Records = bad
	check("two batches, second corrupt", a, kerr.CorruptMessage.Code)
	if hw2, _ := e.log.ListOffset(context.Background(), "p", 0, stream.Latest); hw2 != hw {
		t.Errorf("a corrupt second batch stored something: high watermark %d, want %d", hw2, hw)
	}
}

func TestProduceAcks0(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("p", 1, nil)
	rc := e.dial()
	// No response for acks=0: the next response is the ApiVersions one.
	rc.send(produceRequest(t, 9, 0, "p", 0, "a"))
	req := kmsg.NewPtrApiVersionsRequest()
	resp := roundTrip[*kmsg.ApiVersionsResponse](rc, req)
	if resp.ErrorCode != 0 {
		t.Fatal(resp.ErrorCode)
	}
	if hw, _ := e.log.ListOffset(context.Background(), "p", 0, stream.Latest); hw != 1 {
		t.Errorf("high watermark %d, want 1", hw)
	}
	// A failed acks=0 produce closes the connection.
	rc.send(produceRequest(t, 9, 0, "nope", 0, "a"))
	rc.expectClosed(5 * time.Second)
}

func TestRequestTooLargeClosesWithoutAllocating(t *testing.T) {
	e := newTestEnv(t, Options{MaxRequestBytes: 64 << 20})
	for _, c := range []struct {
		name string
		size uint32
	}{
		{"2 GiB", 1<<31 - 1},
		{"just over", 64<<20 + 1},
		{"negative", 1 << 31},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := e.dial()
			before := heapAllocs()
			var frame [4]byte
			binary.BigEndian.PutUint32(frame[:], c.size)
			rc.write(frame[:])
			rc.expectClosed(5 * time.Second)
			if d := heapAllocs() - before; d > 4<<20 {
				t.Errorf("allocated %d bytes for a refused request", d)
			}
		})
	}

	// Under the limit but never sent: the buffer grows only with the data.
	rc := e.dial()
	before := heapAllocs()
	var frame [14]byte
	binary.BigEndian.PutUint32(frame[:], 60<<20)
	rc.write(frame[:])
	time.Sleep(100 * time.Millisecond)
	if d := heapAllocs() - before; d > 4<<20 {
		t.Errorf("allocated %d bytes for a 60 MiB request of which 10 bytes arrived", d)
	}
}

// heapAllocs returns the bytes allocated on the heap so far (exact without
// a GC).
func heapAllocs() uint64 {
	s := []rtmetrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

func TestMalformedClosesQuickly(t *testing.T) {
	e := newTestEnv(t, Options{})
	for _, c := range []struct {
		name string
		body []byte // after the frame size
	}{
		// ApiVersions v3: empty software name and version, then 2^32-1
		// tagged fields, which kmsg alone would loop over for a minute.
		{"tag count", []byte{0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		// The same in the request header.
		{"header tag count", []byte{0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f}},
		// Metadata v1 claiming 2^31-1 topics.
		{"array length", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0, 1}},
		// Fetch v12 whose ReplicaState tag (1) holds 2^32-1 tags.
		{"nested tag count", fetchWithReplicaState(0xff, 0xff, 0xff, 0xff, 0x0f)},
		{"short header", []byte{0, 3, 0, 1, 0, 0, 0, 1, 0, 9}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := e.dial()
			frame := binary.BigEndian.AppendUint32(nil, uint32(len(c.body)))
			rc.write(append(frame, c.body...))
			start := time.Now()
			rc.expectClosed(5 * time.Second)
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v to refuse", d)
			}
		})
	}
}

// fetchWithReplicaState is a Fetch v12 request (header and body) whose
// top-level tag 1 holds a ReplicaState struct with the given tag section.
func fetchWithReplicaState(tags ...byte) []byte {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	b := kmsg.NewRequestFormatter().AppendRequest(nil, req, 1)[4:]
	b = b[:len(b)-1] // drop the body's empty tag section
	payload := append([]byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, tags...)
	b = append(b, 1, 1, byte(len(payload)))
	return append(b, payload...)
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := newTestEnv(t, Options{Registerer: reg})
	e.createTopic("m", 1, nil)
	rc := e.dial()
	roundTrip[*kmsg.MetadataResponse](rc, kmsg.NewPtrMetadataRequest())
	roundTrip[*kmsg.ProduceResponse](rc, produceRequest(t, 9, 1, "nope", 0, "x"))
	if got := testutil.ToFloat64(e.srv.metrics.requests.WithLabelValues("Metadata", "none")); got != 1 {
		t.Errorf("Metadata requests: got %v, want 1", got)
	}
	if got := testutil.ToFloat64(e.srv.metrics.requests.WithLabelValues("Produce", "UNKNOWN_TOPIC_OR_PARTITION")); got != 1 {
		t.Errorf("failed Produce requests: got %v, want 1", got)
	}
	if got := testutil.ToFloat64(e.srv.metrics.connections); got != 1 {
		t.Errorf("connections: got %v, want 1", got)
	}
	n, err := testutil.GatherAndCount(reg, "sluice_kafka_request_duration_seconds")
	if err != nil || n == 0 {
		t.Errorf("duration histogram: %d series, %v", n, err)
	}
}

func TestProducerIDsAndClusterIDSurviveRestart(t *testing.T) {
	e := newTestEnv(t, Options{})
	initPID := func() int64 {
		rc := e.dial()
		resp := roundTrip[*kmsg.InitProducerIDResponse](rc, kmsg.NewPtrInitProducerIDRequest())
		if resp.ErrorCode != 0 || resp.ProducerEpoch != 0 {
			t.Fatalf("InitProducerId: %+v", resp)
		}
		return resp.ProducerID
	}
	clusterID := func() string {
		req := kmsg.NewPtrMetadataRequest()
		req.SetVersion(12)
		resp := roundTrip[*kmsg.MetadataResponse](e.dial(), req)
		if resp.ClusterID == nil || *resp.ClusterID == "" {
			t.Fatal("no cluster ID")
		}
		return *resp.ClusterID
	}
	a, b := initPID(), initPID()
	if b != a+1 {
		t.Errorf("producer IDs %d then %d", a, b)
	}
	id := clusterID()
	e.restart(Options{})
	if c := initPID(); c <= b {
		t.Errorf("after restart: producer ID %d, want above %d", c, b)
	}
	if got := clusterID(); got != id {
		t.Errorf("cluster ID changed across restart: %q, then %q", id, got)
	}

	// Transactional producers are refused.
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = kmsg.StringPtr("txn")
	if resp := roundTrip[*kmsg.InitProducerIDResponse](e.dial(), req); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("transactional InitProducerId: error %d, want INVALID_REQUEST", resp.ErrorCode)
	}
}

func TestTransactionalClientFails(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("t", 1, nil)
	cl := e.client(kgo.TransactionalID("txn"), kgo.DefaultProduceTopic("t"), kgo.RequestRetries(1))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := cl.BeginTransaction()
	if err == nil {
		err = cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr()
	}
	if !errors.Is(err, kerr.InvalidRequest) {
		t.Errorf("transactional produce: got %v, want INVALID_REQUEST", err)
	}
}

func TestShutdownEndsFetchWait(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("w", 1, nil)
	rc := e.dial()
	req := fetchRequest("w", 0, 0)
	req.MaxWaitMillis, req.MinBytes = 60000, 1
	corr := rc.send(req)
	time.Sleep(200 * time.Millisecond) // the fetch is waiting
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(req.Version)
	rc.recv(resp, corr) // the waiting fetch was answered
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.HighWatermark != 0 {
		t.Errorf("fetch answered at shutdown: %+v", p)
	}
	rc.expectClosed(5 * time.Second)
}

// fetchRequest is a Fetch v12 for one partition.
func fetchRequest(topic string, partition int32, offset int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID, req.MaxBytes, req.SessionEpoch = -1, 50<<20, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// counterValue reads a counter.
func counterValue(c prometheus.Counter) float64 { return testutil.ToFloat64(c) }
