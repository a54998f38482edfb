package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
)

// restRecords is a REST Proxy v2 records response.
type restRecords []struct {
	Topic     string          `json:"topic"`
	Key       json.RawMessage `json:"key"`
	Value     json.RawMessage `json:"value"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
}

func (rs restRecords) String() string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s/%d@%d ", r.Topic, r.Partition, r.Offset)
	}
	return strings.TrimSpace(b.String())
}

var (
	v2         = []string{"Content-Type", "application/vnd.kafka.v2+json"}
	acceptBin  = []string{"Accept", "application/vnd.kafka.binary.v2+json"}
	acceptJSON = []string{"Accept", "application/vnd.kafka.json.v2+json"}
)

// restErr checks a REST Proxy error: its status, code, media type and shape.
func restErr(t *testing.T, r response, status, code int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("got status %d, want %d: %s", r.status, status, r.body)
	}
	if eb := r.errBody(t); eb.ErrorCode != code {
		t.Errorf("got error_code %d, want %d: %s", eb.ErrorCode, code, eb.Message)
	}
	if ct := r.header.Get("Content-Type"); ct != mediaRESTV2 {
		t.Errorf("error Content-Type %q, want %s", ct, mediaRESTV2)
	}
}

// TestRESTConsumerFlow follows REST Proxy v2's documented consumer flow
// with its documented request bodies: create an instance, subscribe, read
// records, commit, read the commits, seek, delete.
func TestRESTConsumerFlow(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("test", 1, nil)
	e.produce("test", 0, record.BatchOptions{},
		record.Record{Key: []byte("key"), Value: []byte("confluent"), Timestamp: 1000},
		record.Record{Key: []byte("key"), Value: []byte("kafka"), Timestamp: 2000},
		record.Record{Value: []byte("logs"), Timestamp: 3000})

	var created struct {
		InstanceID string `json:"instance_id"`
		BaseURI    string `json:"base_uri"`
	}
	r := e.must(200, "POST", "/consumers/testgroup", `{"name": "my_consumer", "format": "binary", "auto.offset.reset": "earliest", "auto.commit.enable": "false"}`, &created, v2...)
	if created.InstanceID != "my_consumer" || created.BaseURI != "http://example.com/consumers/testgroup/instances/my_consumer" {
		t.Errorf("got %+v", created)
	}
	if ct := r.header.Get("Content-Type"); ct != mediaRESTV2 {
		t.Errorf("Content-Type %q", ct)
	}
	base := "/consumers/testgroup/instances/my_consumer"

	e.must(204, "POST", base+"/subscription", `{"topics": ["test"]}`, nil, v2...)
	var sub struct{ Topics []string }
	e.must(200, "GET", base+"/subscription", "", &sub, "Accept", mediaRESTV2)
	if !slices.Equal(sub.Topics, []string{"test"}) {
		t.Errorf("subscription: got %v", sub.Topics)
	}
	var asg struct {
		Partitions []struct {
			Topic     string
			Partition int32
		}
	}
	e.must(200, "GET", base+"/assignments", "", &asg)
	if len(asg.Partitions) != 1 || asg.Partitions[0].Topic != "test" {
		t.Errorf("assignments: got %+v", asg)
	}

	var recs restRecords
	r = e.must(200, "GET", base+"/records?timeout=3000&max_bytes=300000", "", &recs, acceptBin...)
	if ct := r.header.Get("Content-Type"); ct != mediaRESTBinary {
		t.Errorf("records Content-Type %q", ct)
	}
	if recs.String() != "test/0@0 test/0@1 test/0@2" {
		t.Fatalf("got %s", recs)
	}
	b64 := func(s string) string { return `"` + base64.StdEncoding.EncodeToString([]byte(s)) + `"` }
	if string(recs[0].Key) != b64("key") || string(recs[0].Value) != b64("confluent") || string(recs[2].Key) != "null" {
		t.Errorf("got key %s value %s, key %s", recs[0].Key, recs[0].Value, recs[2].Key)
	}
	// Nothing more: an empty array after the timeout.
	r = e.must(200, "GET", base+"/records?timeout=10", "", &recs, acceptBin...)
	if strings.TrimSpace(r.body) != "[]" {
		t.Errorf("got %s", r.body)
	}

	// Commit the offset of the last record processed; the group resumes
	// after it.
	e.must(200, "POST", base+"/offsets", `{"offsets": [{"topic": "test", "partition": 0, "offset": 1}]}`, nil, v2...)
	var committed groupOffsetsReply
	e.must(200, "GET", base+"/offsets", `{"partitions": [{"topic": "test", "partition": 0}, {"topic": "test", "partition": 5}]}`, &committed, v2...)
	if committed.String() != "test/0=2" {
		t.Errorf("committed: got %s", committed)
	}
	// With no body, everything returned so far.
	e.must(200, "POST", base+"/offsets", "", nil)
	e.must(200, "GET", base+"/offsets", "", &committed)
	if committed.String() != "test/0=3" {
		t.Errorf("committed: got %s", committed)
	}

	// Seeks.
	e.must(204, "POST", base+"/positions/beginning", `{"partitions": [{"topic": "test", "partition": 0}]}`, nil, v2...)
	e.must(200, "GET", base+"/records", "", &recs, acceptBin...)
	if recs.String() != "test/0@0 test/0@1 test/0@2" {
		t.Errorf("after seeking to the beginning: got %s", recs)
	}
	e.must(204, "POST", base+"/positions", `{"offsets": [{"topic": "test", "partition": 0, "offset": 2}]}`, nil, v2...)
	e.must(200, "GET", base+"/records", "", &recs, acceptBin...)
	if recs.String() != "test/0@2" {
		t.Errorf("after seeking to 2: got %s", recs)
	}
	e.must(204, "POST", base+"/positions", `{"timestamps": [{"topic": "test", "partition": 0, "timestamp": "1970-01-01T00:00:02Z"}]}`, nil, v2...)
	e.must(200, "GET", base+"/records", "", &recs, acceptBin...)
	if recs.String() != "test/0@1 test/0@2" {
		t.Errorf("after seeking to a time: got %s", recs)
	}
	e.must(204, "POST", base+"/positions/end", `{"partitions": [{"topic": "test", "partition": 0}]}`, nil, v2...)
	e.must(200, "GET", base+"/records?timeout=0", "", &recs, acceptBin...)
	if len(recs) != 0 {
		t.Errorf("after seeking to the end: got %s", recs)
	}

	e.must(204, "DELETE", base+"/subscription", "", nil)
	e.must(200, "GET", base+"/subscription", "", &sub)
	if len(sub.Topics) != 0 {
		t.Errorf("after unsubscribing: %v", sub.Topics)
	}
	restErr(t, e.do("GET", base+"/records", "", acceptBin...), 409, codeIllegalState)

	e.must(204, "DELETE", base, "", nil, v2...)
	restErr(t, e.do("DELETE", base, ""), 404, codeInstanceNotFound)
	restErr(t, e.do("GET", base+"/records", "", acceptBin...), 404, codeInstanceNotFound)
}

func TestRESTConsumerJSONFormat(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("j", 1, nil)
	e.produce("j", 0, record.BatchOptions{},
		record.Record{Key: []byte(`{"id":1}`), Value: []byte(`{"foo":"bar"}`)},
		record.Record{Value: []byte("not json")},
		record.Record{Key: []byte{0xff}})
	e.must(200, "POST", "/consumers/jg", `{"name": "c", "format": "json", "auto.offset.reset": "earliest"}`, nil, v2...)
	e.must(204, "POST", "/consumers/jg/instances/c/subscription", `{"topic_pattern": "j|k"}`, nil, v2...)
	var sub struct{ Topics []string }
	e.must(200, "GET", "/consumers/jg/instances/c/subscription", "", &sub)
	if !slices.Equal(sub.Topics, []string{"j"}) {
		t.Errorf("pattern subscription: got %v", sub.Topics)
	}
	restErr(t, e.do("GET", "/consumers/jg/instances/c/records", "", acceptBin...), 406, codeFormatMismatch)
	r := e.must(200, "GET", "/consumers/jg/instances/c/records", "", nil, acceptJSON...)
	want := `[{"topic":"j","key":{"id":1},"value":{"foo":"bar"},"partition":0,"offset":0},` +
		`{"topic":"j","key":null,"value":"not json","partition":0,"offset":1},` +
		`{"topic":"j","key":"/w==","value":null,"partition":0,"offset":2}]` + "\n"
	if r.body != want {
		t.Errorf("got\n%s\nwant\n%s", r.body, want)
	}
	if ct := r.header.Get("Content-Type"); ct != mediaRESTJSON {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestRESTConsumerErrors(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 2, nil)
	e.must(200, "POST", "/consumers/g", `{"name": "c"}`, nil, v2...)
	inst := "/consumers/g/instances/c"
	tests := []struct {
		name, method, path, body string
		header                   []string
		status, code             int
	}{
		{"exists", "POST", "/consumers/g", `{"name": "c"}`, v2, 409, codeInstanceExists},
		{"bad format", "POST", "/consumers/g", `{"format": "avro"}`, v2, 422, codeInvalidConfig},
		{"bad reset", "POST", "/consumers/g", `{"auto.offset.reset": "middle"}`, v2, 422, codeInvalidConfig},
		{"bad auto commit", "POST", "/consumers/g", `{"auto.commit.enable": "maybe"}`, v2, 422, codeInvalidConfig},
		{"bad timeout", "POST", "/consumers/g", `{"consumer.request.timeout.ms": "soon"}`, v2, 422, codeInvalidConfig},
		{"bad name", "POST", "/consumers/g", `{"name": "a/b"}`, v2, 422, codeInvalidConfig},
		{"unknown field", "POST", "/consumers/g", `{"nmae": "x"}`, v2, 400, 400},
		{"malformed", "POST", "/consumers/g", `{"name":`, v2, 400, 400},
		{"wrong content type", "POST", "/consumers/g", `{}`, []string{"Content-Type", "text/plain"}, 415, 415},
		{"unknown instance", "GET", "/consumers/g/instances/nope/records", "", nil, 404, codeInstanceNotFound},
		{"unknown instance's group", "DELETE", "/consumers/other/instances/c", "", nil, 404, codeInstanceNotFound},
		{"not subscribed", "GET", inst + "/records", "", nil, 409, codeIllegalState},
		{"subscribe to an unknown topic", "POST", inst + "/subscription", `{"topics": ["nope"]}`, v2, 404, codeUnknownTopic},
		{"subscribe to both", "POST", inst + "/subscription", `{"topics": ["t"], "topic_pattern": "t"}`, v2, 422, 422},
		{"bad pattern", "POST", inst + "/subscription", `{"topic_pattern": "("}`, v2, 422, 422},
		{"seek unassigned", "POST", inst + "/positions", `{"offsets": [{"topic": "t", "partition": 0, "offset": 0}]}`, v2, 409, codeIllegalState},
		{"seek without partition", "POST", inst + "/positions/beginning", `{"partitions": [{"topic": "t"}]}`, v2, 422, 422},
		{"commit negative", "POST", inst + "/offsets", `{"offsets": [{"topic": "t", "partition": 0, "offset": -1}]}`, v2, 422, 422},
		{"commit unknown partition", "POST", inst + "/offsets", `{"offsets": [{"topic": "t", "partition": 7, "offset": 1}]}`, v2, 404, codeUnknownPartition},
		{"bad timeout param", "GET", inst + "/records?timeout=x", "", nil, 400, 400},
		{"bad max_bytes", "GET", inst + "/records?max_bytes=0", "", nil, 422, 422},
		{"bad group", "POST", "/consumers/" + strings.Repeat("g", 256), `{}`, v2, 422, 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			restErr(t, e.do(tt.method, tt.path, tt.body, tt.header...), tt.status, tt.code)
		})
	}

	// A partition not assigned: subscribe c to t, then another instance
	// takes half of it.
	e.must(204, "POST", inst+"/subscription", `{"topics": ["t"]}`, nil, v2...)
	e.must(200, "POST", "/consumers/g", `{"name": "d"}`, nil, v2...)
	e.must(204, "POST", "/consumers/g/instances/d/subscription", `{"topics": ["t"]}`, nil, v2...)
	restErr(t, e.do("POST", inst+"/positions/end", `{"partitions": [{"topic": "t", "partition": 1}]}`, v2...), 409, codeIllegalState)
	e.must(204, "POST", inst+"/positions/end", `{"partitions": [{"topic": "t", "partition": 0}]}`, nil, v2...)

	// auto.offset.reset none without a commit.
	e.must(200, "POST", "/consumers/n", `{"name": "c", "auto.offset.reset": "none"}`, nil, v2...)
	e.must(204, "POST", "/consumers/n/instances/c/subscription", `{"topics": ["t"]}`, nil, v2...)
	restErr(t, e.do("GET", "/consumers/n/instances/c/records", ""), 409, codeIllegalState)
}

func TestRESTConsumerAssignment(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 4, nil)
	e.createTopic("u", 1, nil)
	for p := range int32(4) {
		e.values("t", p, 1, fmt.Sprintf("t%d", p))
	}
	e.values("u", 0, 1, "u0")
	create := func(name, topics string) {
		e.must(200, "POST", "/consumers/g", `{"name": "`+name+`", "auto.offset.reset": "earliest"}`, nil, v2...)
		e.must(204, "POST", "/consumers/g/instances/"+name+"/subscription", `{"topics": `+topics+`}`, nil, v2...)
	}
	assigned := func(name string) string {
		var asg struct {
			Partitions []struct {
				Topic     string
				Partition int32
			}
		}
		e.must(200, "GET", "/consumers/g/instances/"+name+"/assignments", "", &asg)
		var out []string
		for _, p := range asg.Partitions {
			out = append(out, fmt.Sprintf("%s/%d", p.Topic, p.Partition))
		}
		return strings.Join(out, " ")
	}
	create("a", `["t"]`)
	if got := assigned("a"); got != "t/0 t/1 t/2 t/3" {
		t.Errorf("alone: got %s", got)
	}
	create("b", `["t", "u"]`)
	if a, b := assigned("a"), assigned("b"); a != "t/0 t/2" || b != "t/1 t/3 u/0" {
		t.Errorf("two members: got a %s, b %s", a, b)
	}
	// Each reads only its partitions, and together everything once.
	var ra, rb restRecords
	e.must(200, "GET", "/consumers/g/instances/a/records", "", &ra)
	e.must(200, "GET", "/consumers/g/instances/b/records", "", &rb)
	var got []string
	for _, r := range append(ra, rb...) {
		got = append(got, fmt.Sprintf("%s/%d", r.Topic, r.Partition))
	}
	slices.Sort(got)
	if strings.Join(got, " ") != "t/0 t/1 t/2 t/3 u/0" {
		t.Errorf("records read: got %v (a %s, b %s)", got, ra, rb)
	}
	e.must(204, "DELETE", "/consumers/g/instances/b", "", nil)
	if got := assigned("a"); got != "t/0 t/1 t/2 t/3" {
		t.Errorf("after b left: got %s", got)
	}
}

func TestRESTConsumerAutoCommit(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 1, nil)
	e.values("t", 0, 1, "a", "b", "c")
	e.must(200, "POST", "/consumers/g", `{"name": "c", "auto.offset.reset": "earliest"}`, nil, v2...)
	e.must(204, "POST", "/consumers/g/instances/c/subscription", `{"topics": ["t"]}`, nil, v2...)
	var recs restRecords
	e.must(200, "GET", "/consumers/g/instances/c/records?max_bytes=1", "", &recs)
	if recs.String() != "t/0@0" {
		t.Fatalf("max_bytes 1: got %s", recs)
	}
	var committed groupOffsetsReply
	e.must(200, "GET", "/v1/groups/g/offsets", "", &committed)
	if len(committed.Offsets) != 0 {
		t.Errorf("committed before the next request: %s", committed)
	}
	// The next request commits what the last one returned.
	e.must(200, "GET", "/consumers/g/instances/c/records", "", &recs)
	if recs.String() != "t/0@1 t/0@2" {
		t.Fatalf("got %s", recs)
	}
	e.must(200, "GET", "/v1/groups/g/offsets", "", &committed)
	if committed.String() != "t/0=1" {
		t.Errorf("got %s", committed)
	}
	// Deleting the instance commits the rest.
	e.must(204, "DELETE", "/consumers/g/instances/c", "", nil)
	e.must(200, "GET", "/v1/groups/g/offsets", "", &committed)
	if committed.String() != "t/0=3" {
		t.Errorf("after delete: got %s", committed)
	}
	// A new instance resumes from the commit, and with the default
	// auto.offset.reset (latest) a partition without commit starts at the end.
	e.values("t", 0, 1, "d")
	e.must(200, "POST", "/consumers/g", `{"name": "c2"}`, nil, v2...)
	e.must(204, "POST", "/consumers/g/instances/c2/subscription", `{"topics": ["t"]}`, nil, v2...)
	e.must(200, "GET", "/consumers/g/instances/c2/records", "", &recs)
	if recs.String() != "t/0@3" {
		t.Errorf("resumed: got %s", recs)
	}
}

func TestRESTConsumerLongPoll(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 3, nil)
	e.must(200, "POST", "/consumers/g", `{"name": "c"}`, nil, v2...)
	e.must(204, "POST", "/consumers/g/instances/c/subscription", `{"topics": ["t"]}`, nil, v2...)
	var recs restRecords
	e.must(200, "GET", "/consumers/g/instances/c/records?timeout=0", "", &recs)
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(100 * time.Millisecond)
		e.values("t", 2, 1, "late")
	}()
	start := time.Now()
	e.must(200, "GET", "/consumers/g/instances/c/records?timeout=20000", "", &recs)
	<-done
	if recs.String() != "t/2@0" || time.Since(start) > 10*time.Second {
		t.Errorf("got %s after %s", recs, time.Since(start))
	}
	start = time.Now()
	e.must(200, "GET", "/consumers/g/instances/c/records?timeout=200", "", &recs)
	if len(recs) != 0 || time.Since(start) < 200*time.Millisecond {
		t.Errorf("got %s after %s", recs, time.Since(start))
	}
}

func TestRESTConsumerExpiryAndLimit(t *testing.T) {
	clock := &testClock{now: time.Now()}
	e := newTestEnv(t, withClock(clock), withOptions(func(o *Options) {
		o.ConsumerInstanceTimeout = time.Minute
		o.MaxConsumerInstances = 2
	}))
	e.must(200, "POST", "/consumers/g", `{"name": "a"}`, nil, v2...)
	e.must(200, "POST", "/consumers/g", `{}`, nil, v2...)
	restErr(t, e.do("POST", "/consumers/h", `{"name": "c"}`, v2...), 429, codeTooManyInstances)

	clock.Advance(40 * time.Second)
	e.must(200, "GET", "/consumers/g/instances/a/subscription", "", nil) // a is seen; the other is not
	clock.Advance(40 * time.Second)
	var d describeReply
	e.must(200, "GET", "/v1/groups/g", "", &d)
	if len(d.Members) != 1 || d.Members[0].MemberID != "a" {
		t.Errorf("after the other expired: got %+v", d.Members)
	}
	e.must(200, "POST", "/consumers/h", `{"name": "c"}`, nil, v2...)
	clock.Advance(61 * time.Second)
	restErr(t, e.do("GET", "/consumers/g/instances/a/subscription", ""), 404, codeInstanceNotFound)
	e.must(404, "GET", "/v1/groups/g", "", nil)
	var list groupsReply
	e.must(200, "GET", "/v1/groups", "", &list)
	if len(list.Groups) != 0 {
		t.Errorf("got %+v", list.Groups)
	}
}

func TestRESTConsumerResetAndNames(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("t", 1, nil)
	e.values("t", 0, 1, "a", "b")
	// A committed offset past the log is reset by auto.offset.reset.
	e.must(204, "POST", "/v1/groups/my%20group/offsets", `{"offsets": [{"topic": "t", "partition": 0, "offset": 100}]}`, nil)
	var created struct {
		InstanceID string `json:"instance_id"`
		BaseURI    string `json:"base_uri"`
	}
	e.must(200, "POST", "/consumers/my%20group", `{"auto.offset.reset": "earliest"}`, &created, v2...)
	if !strings.HasPrefix(created.InstanceID, "sluice-") ||
		created.BaseURI != "http://example.com/consumers/my%20group/instances/"+created.InstanceID {
		t.Errorf("got %+v", created)
	}
	inst := "/consumers/my%20group/instances/" + created.InstanceID
	e.must(204, "POST", inst+"/subscription", `{"topics": ["t"]}`, nil, v2...)
	var recs restRecords
	e.must(200, "GET", inst+"/records", "", &recs)
	if recs.String() != "t/0@0 t/0@1" {
		t.Errorf("got %s", recs)
	}
}
