package kafkawire

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/stream"
)

// fuzzLog keeps fuzzed requests from exhausting the machine: topics of at
// most 4 partitions, at most 20 of them. Everything else is the real
// embedded log.
type fuzzLog struct {
	stream.Log
	mu     sync.Mutex
	topics int
}

func (l *fuzzLog) CreateTopic(ctx context.Context, name string, partitions int32, config map[string]string) (stream.TopicInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if partitions > 4 || l.topics >= 20 {
		return stream.TopicInfo{}, fmt.Errorf("%w: fuzzing limits topics", stream.ErrInvalid)
	}
	ti, err := l.Log.CreateTopic(ctx, name, partitions, config)
	if err == nil {
		l.topics++
	}
	return ti, err
}

// newFuzzServer is a server over the embedded log with small limits, whose
// connections the fuzz targets drive directly.
func newFuzzServer(tb testing.TB) *Server {
	dir := tb.TempDir()
	m, ls, sl := openLog(tb, dir, logstore.SyncPolicy{Mode: logstore.SyncNever})
	tb.Cleanup(func() {
		_ = ls.Close()
		_ = m.Close()
	})
	if _, err := sl.CreateTopic(context.Background(), "fuzz", 2, nil); err != nil {
		tb.Fatal(err)
	}
	s, err := New(&fuzzLog{Log: sl, topics: 1}, Options{Store: m, Logger: testLogger(), MaxRequestBytes: 1 << 20,
		FetchMaxBytes: 1 << 20, AutoCreateTopics: true})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// driveConn writes input to a connection of s over net.Pipe, discards the
// answers, and returns once the connection has ended. Requests still
// running 50ms after the input is written (fetches waiting for data), or
// 2s after it started, are cancelled.
func driveConn(s *Server, input []byte) {
	client, server := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := newConn(s, server, hostPort{"127.0.0.1", 9092})
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.serve(ctx)
	}()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	written := make(chan struct{})
	go func() {
		defer close(written)
		_, _ = client.Write(input)
		_ = client.Close()
	}()
	limit := time.NewTimer(2 * time.Second)
	defer limit.Stop()
	select {
	case <-done:
	case <-written:
		select {
		case <-done:
		case <-time.After(50 * time.Millisecond):
		case <-limit.C:
		}
	case <-limit.C:
	}
	cancel()
	<-done
	_ = client.Close()
	<-written
}

// FuzzConnection writes arbitrary bytes to a connection, either as they are
// or framed as one request, and checks that the server neither panics (a
// recovered handler panic counts as a failure here) nor allocates more than
// a bounded multiple of what it was sent.
func FuzzConnection(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		f.Add(seed, false)
		f.Add(seed[4:], true)
	}
	s := newFuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte, framed bool) {
		input := data
		if framed {
			input = binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(data)), uint32(len(data)))
			input = append(input, data...)
		}
		before := heapAllocs()
		panics := testutilCount(s, "internal_error")
		driveConn(s, input)
		if testutilCount(s, "internal_error") != panics {
			t.Fatalf("a request handler panicked on %x", input)
		}
		// Decoding is bounded by the shapes (about 80 bytes of structs per
		// element), responses by the fetch limit and the few topics.
		if d := heapAllocs() - before; d > uint64(100*len(input))+(16<<20) {
			t.Fatalf("allocated %d bytes for %d bytes of input", d, len(input))
		}
	})
}

// testutilCount sums the requests counted with the given error label.
func testutilCount(s *Server, errName string) float64 {
	var n float64
	for _, a := range s.apis {
		if a != nil {
			n += counterValue(s.metrics.requests.WithLabelValues(a.name, errName))
		}
	}
	return n
}

// FuzzRequestDecode feeds arbitrary bodies to the shape check and, when it
// passes, to kmsg, for every served API and version: decoding must not
// panic and must stay within its bound.
func FuzzRequestDecode(f *testing.F) {
	for _, seed := range fuzzSeeds(f) {
		key := int16(binary.BigEndian.Uint16(seed[4:]))
		version := int16(binary.BigEndian.Uint16(seed[6:]))
		idLen := int(int16(binary.BigEndian.Uint16(seed[12:])))
		body := seed[14+max(idLen, 0):]
		if req := kmsg.RequestForKey(key); req != nil {
			req.SetVersion(version)
			if req.IsFlexible() && len(body) > 0 {
				body = body[1:]
			}
		}
		f.Add(key, version, body)
	}
	shapes := requestShapes()
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		sh := shapes[key]
		req := kmsg.RequestForKey(key)
		if sh == nil || req == nil || version < 0 || version > req.MaxVersion() {
			return
		}
		req.SetVersion(version)
		if validateShape(sh, body, version, req.IsFlexible()) != nil {
			return
		}
		before := heapAllocs()
		start := time.Now()
		_ = req.ReadFrom(body)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%s v%d: decoding %d bytes took %v", kmsg.NameForKey(key), version, len(body), d)
		}
		if d := heapAllocs() - before; d > uint64(100*len(body))+(1<<20) {
			t.Fatalf("%s v%d: decoding %d bytes allocated %d", kmsg.NameForKey(key), version, len(body), d)
		}
	})
}

// sampleRequests returns one request of every served API, about the topic
// "fuzz" (two partitions) and the group "g", valid at every version.
func sampleRequests(tb testing.TB) map[int16]kmsg.Request {
	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1.0"
	lo := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "fuzz"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = 0
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	ct := kmsg.NewPtrCreateTopicsRequest()
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "made", 1, 1
	ctt.Configs = append(ctt.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: "retention.ms", Value: kmsg.StringPtr("1000")})
	ct.Topics = append(ct.Topics, ctt)
	ct.ValidateOnly = true
	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TopicNames = []string{"made"}
	dtt := kmsg.NewDeleteTopicsRequestTopic()
	dtt.Topic = kmsg.StringPtr("made")
	dt.Topics = append(dt.Topics, dtt)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey, fc.CoordinatorKeys = "g", []string{"g"}
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = "g", -1
	oct := kmsg.NewOffsetCommitRequestTopic()
	oct.Topic = "fuzz"
	ocp := kmsg.NewOffsetCommitRequestTopicPartition()
	ocp.Offset, ocp.Metadata = 1, kmsg.StringPtr("meta")
	oct.Partitions = append(oct.Partitions, ocp)
	oc.Topics = append(oc.Topics, oct)
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "g"
	oft := kmsg.NewOffsetFetchRequestTopic()
	oft.Topic, oft.Partitions = "fuzz", []int32{0, 1}
	of.Topics = append(of.Topics, oft)
	ofg := kmsg.NewOffsetFetchRequestGroup()
	ofg.Group = "g"
	of.Groups = append(of.Groups, ofg)
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dcr := kmsg.NewDescribeConfigsRequestResource()
	dcr.ResourceType, dcr.ResourceName = kmsg.ConfigResourceTypeTopic, "fuzz"
	dc.Resources = append(dc.Resources, dcr)
	dcr.ResourceType, dcr.ResourceName = kmsg.ConfigResourceTypeBroker, "0"
	dc.Resources = append(dc.Resources, dcr)
	dc.IncludeSynonyms = true
	jg := kmsg.NewPtrJoinGroupRequest() // no group name: answered at once, never held
	jg.SessionTimeoutMillis, jg.RebalanceTimeoutMillis, jg.ProtocolType = 10000, 10000, "consumer"
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1}}}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID = "g", "m"
	lg := kmsg.NewPtrLeaveGroupRequest()
	lg.Group, lg.MemberID = "g", "m"
	lg.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m"}}
	sg := kmsg.NewPtrSyncGroupRequest() // unknown group: answered at once
	sg.Group, sg.MemberID = "g", "m"
	sg.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: "m", MemberAssignment: []byte{1}}}
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g", ""}
	lgs := kmsg.NewPtrListGroupsRequest()
	lgs.StatesFilter = []string{"Stable"}
	dgs := kmsg.NewPtrDeleteGroupsRequest()
	dgs.Groups = []string{"g"}
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "fuzz", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "fuzz", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: 0}}}}
	cpr := kmsg.NewPtrCreatePartitionsRequest()
	cpr.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "fuzz", Count: 3}}
	cpr.ValidateOnly = true
	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.Resources = []kmsg.AlterConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "fuzz",
			Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: kmsg.StringPtr("1000")}}},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "0"},
	}
	ac.ValidateOnly = true
	iac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	iac.Resources = []kmsg.IncrementalAlterConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "fuzz", Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{
			{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr("1000")},
			{Name: "retention.bytes", Op: kmsg.IncrementalAlterConfigOpDelete},
			{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: kmsg.StringPtr("delete")},
		}},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "0"},
	}
	iac.ValidateOnly = true
	return map[int16]kmsg.Request{
		33: ac,
		44: iac,
		21: dr,
		37: cpr,
		11: jg,
		12: hb,
		13: lg,
		14: sg,
		15: dg,
		16: lgs,
		42: dgs,
		47: od,
		0:  produceRequest(tb, 9, 1, "fuzz", 0, "a", "b"),
		1:  twoPartitionFetch("fuzz", 50, 1, 1<<20, 1<<20),
		2:  lo,
		3:  metadataRequest(12, true, "fuzz", "auto"),
		8:  oc,
		9:  of,
		10: fc,
		18: av,
		19: ct,
		20: dt,
		22: kmsg.NewPtrInitProducerIDRequest(),
		32: dc,
	}
}

// fuzzSeeds returns framed requests of every served API, some malformed
// ones, and a few requests back to back. The committed corpus under
// testdata/fuzz holds the same; KAFKAWIRE_WRITE_SEEDS=1 rewrites it.
func fuzzSeeds(tb testing.TB) [][]byte {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	var seeds [][]byte
	samples := sampleRequests(tb)
	for _, kv := range []struct{ key, version int16 }{
		{18, 3}, {3, 12}, {3, 0}, {0, 9}, {0, 3}, {1, 12}, {1, 4}, {2, 7}, {19, 7}, {20, 6},
		{10, 6}, {8, 9}, {9, 8}, {9, 5}, {22, 4}, {32, 4}, {33, 0}, {33, 2}, {44, 0}, {44, 1},
	} {
		req := samples[kv.key]
		req.SetVersion(kv.version)
		seeds = append(seeds, f.AppendRequest(nil, req, int32(len(seeds))))
	}
	malformed := [][]byte{
		{0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff},                                       // ApiVersions v99
		{0, 18, 0, 3, 0, 0, 0, 1, 0xff, 0xff, 0, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, // tag count
		{0, 3, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0, 1},           // array length
		{0, 11, 0, 5, 0, 0, 0, 1, 0xff, 0xff},                                        // no body
		fetchWithReplicaState(0xff, 0xff, 0xff, 0xff, 0x0f),                          // nested tags
	}
	for _, m := range malformed {
		seeds = append(seeds, append(binary.BigEndian.AppendUint32(nil, uint32(len(m))), m...))
	}
	var all []byte
	for _, s := range seeds[:6] {
		all = append(all, s...)
	}
	seeds = append(seeds, all)
	return seeds
}

// TestWriteFuzzSeeds rewrites the committed seed corpus from fuzzSeeds.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("KAFKAWIRE_WRITE_SEEDS") == "" {
		t.Skip("set KAFKAWIRE_WRITE_SEEDS=1 to rewrite testdata/fuzz")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzConnection")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds(t) {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbool(false)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
