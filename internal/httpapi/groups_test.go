package httpapi

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

type groupOffsetsReply struct {
	Offsets []struct {
		Topic      string `json:"topic"`
		Partition  int32  `json:"partition"`
		Offset     int64  `json:"offset"`
		Metadata   string `json:"metadata"`
		CommitTime string `json:"commit_time"`
	} `json:"offsets"`
}

func (g groupOffsetsReply) String() string {
	var b strings.Builder
	for _, o := range g.Offsets {
		fmt.Fprintf(&b, "%s/%d=%d ", o.Topic, o.Partition, o.Offset)
	}
	return strings.TrimSpace(b.String())
}

func TestGroupOffsets(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("orders", 3, nil)
	e.createTopic("audit", 1, nil)

	var got groupOffsetsReply
	e.must(200, "GET", "/v1/groups/g1/offsets", "", &got)
	if got.Offsets == nil || len(got.Offsets) != 0 {
		t.Fatalf("a group with no commits: got %s, want an empty list", e.do("GET", "/v1/groups/g1/offsets", "").body)
	}

	e.must(204, "POST", "/v1/groups/g1/offsets", `{"offsets": [
		{"topic": "orders", "partition": 2, "offset": 17, "metadata": "worker-1"},
		{"topic": "orders", "partition": 0, "offset": 5},
		{"topic": "audit", "partition": 0, "offset": 0}]}`, nil)
	e.must(200, "GET", "/v1/groups/g1/offsets", "", &got)
	if s := got.String(); s != "audit/0=0 orders/0=5 orders/2=17" {
		t.Errorf("got %s", s)
	}
	// Kafka's OffsetFetch carries no commit time, so cluster mode leaves
	// commit_time out.
	wantCommitTime := testLogMode(t) == "embedded"
	if o := got.Offsets[2]; o.Metadata != "worker-1" || (o.CommitTime == "") == wantCommitTime {
		t.Errorf("got %+v, want metadata worker-1 and a commit time only in embedded mode", o)
	} else if wantCommitTime {
		if ct, err := time.Parse(time.RFC3339Nano, o.CommitTime); err != nil || time.Since(ct) > time.Minute {
			t.Errorf("commit_time %q: %v", o.CommitTime, err)
		}
	}
	// A later commit replaces an earlier one.
	e.must(204, "POST", "/v1/groups/g1/offsets", `{"offsets": [{"topic": "orders", "partition": 0, "offset": 6}]}`, nil)
	e.must(200, "GET", "/v1/groups/g1/offsets", "", &got)
	if s := got.String(); s != "audit/0=0 orders/0=6 orders/2=17" {
		t.Errorf("got %s", s)
	}

	long := strings.Repeat("m", 4097)
	tests := []struct {
		name, group, contentType, body string
		status                         int
		message                        string
	}{
		{"malformed JSON", "g1", "", `{"offsets": [`, 400, "malformed"},
		{"not an object", "g1", "", `[1]`, 400, "array"},
		{"unknown field", "g1", "", `{"offset": []}`, 400, "unknown field"},
		{"empty body", "g1", "", ``, 400, "empty"},
		{"wrong type", "g1", "", `{"offsets": [{"topic": "orders", "partition": "0", "offset": 1}]}`, 400, "partition"},
		{"wrong content type", "g1", "text/plain", `{"offsets": []}`, 415, "Content-Type"},
		{"no offsets", "g1", "", `{"offsets": []}`, 422, "offsets"},
		{"missing topic", "g1", "", `{"offsets": [{"partition": 0, "offset": 1}]}`, 422, "offsets[0]: topic"},
		{"missing partition", "g1", "", `{"offsets": [{"topic": "orders", "offset": 1}]}`, 422, "partition is missing"},
		{"missing offset", "g1", "", `{"offsets": [{"topic": "orders", "partition": 0}]}`, 422, "offset is missing"},
		{"negative offset", "g1", "", `{"offsets": [{"topic": "orders", "partition": 0, "offset": -1}]}`, 422, "negative"},
		{"negative partition", "g1", "", `{"offsets": [{"topic": "orders", "partition": -1, "offset": 1}]}`, 422, "negative"},
		{"twice", "g1", "", `{"offsets": [{"topic": "orders", "partition": 0, "offset": 1}, {"topic": "orders", "partition": 0, "offset": 2}]}`, 422, "offsets[1]"},
		{"metadata too long", "g1", "", `{"offsets": [{"topic": "orders", "partition": 0, "offset": 1, "metadata": "` + long + `"}]}`, 422, "metadata"},
		{"unknown topic", "g1", "", `{"offsets": [{"topic": "nope", "partition": 0, "offset": 1}]}`, 404, "nope"},
		{"unknown partition", "g1", "", `{"offsets": [{"topic": "orders", "partition": 0, "offset": 1}, {"topic": "orders", "partition": 3, "offset": 1}]}`, 404, "partition"},
		{"group name too long", strings.Repeat("g", 256), "", `{"offsets": [{"topic": "orders", "partition": 0, "offset": 1}]}`, 422, "group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.contentType != "" {
				hdr = []string{"Content-Type", tt.contentType}
			}
			r := e.do("POST", "/v1/groups/"+tt.group+"/offsets", tt.body, hdr...)
			if r.status != tt.status {
				t.Fatalf("got %d, want %d: %s", r.status, tt.status, r.body)
			}
			if eb := r.errBody(t); eb.ErrorCode != tt.status || !strings.Contains(eb.Message, tt.message) {
				t.Errorf("got %+v, want a message with %q", eb, tt.message)
			}
		})
	}
	// Nothing of the refused commits was stored.
	e.must(200, "GET", "/v1/groups/g1/offsets", "", &got)
	if s := got.String(); s != "audit/0=0 orders/0=6 orders/2=17" {
		t.Errorf("after the refused commits: got %s", s)
	}
}

type groupsReply struct {
	Groups []struct {
		Group   string `json:"group"`
		State   string `json:"state"`
		Members int    `json:"members"`
		Lag     int64  `json:"lag"`
	} `json:"groups"`
}

type describeReply struct {
	Group   string `json:"group"`
	State   string `json:"state"`
	Lag     int64  `json:"lag"`
	Members []struct {
		Kind       string `json:"kind"`
		MemberID   string `json:"member_id"`
		InstanceID string `json:"instance_id"`
		ClientID   string `json:"client_id"`
		ClientHost string `json:"client_host"`
		Topics     []string
		Partitions []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
		} `json:"partitions"`
		LastSeen string `json:"last_seen"`
	} `json:"members"`
	Partitions []struct {
		Topic           string `json:"topic"`
		Partition       int32  `json:"partition"`
		CommittedOffset *int64 `json:"committed_offset"`
		LogStartOffset  int64  `json:"log_start_offset"`
		LogEndOffset    int64  `json:"log_end_offset"`
		Lag             *int64 `json:"lag"`
		Member          string `json:"member"`
		Metadata        string `json:"metadata"`
	} `json:"partitions"`
}

func TestGroupsListAndDescribe(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("orders", 2, nil)
	e.createTopic("audit", 1, nil)
	e.values("orders", 0, 1, "a", "b", "c", "d", "e", "f", "g", "h", "i", "j") // hwm 10
	e.values("orders", 1, 1, "a", "b", "c")                                    // hwm 3
	e.values("audit", 0, 1, "a", "b")                                          // hwm 2

	var list groupsReply
	e.must(200, "GET", "/v1/groups", "", &list)
	if list.Groups == nil || len(list.Groups) != 0 {
		t.Fatalf("no groups: got %+v", list)
	}
	e.must(404, "GET", "/v1/groups/g1", "", nil)

	e.must(204, "POST", "/v1/groups/g1/offsets", `{"offsets": [{"topic": "orders", "partition": 0, "offset": 4, "metadata": "m"}, {"topic": "audit", "partition": 0, "offset": 2}]}`, nil)
	e.must(204, "POST", "/v1/groups/g0/offsets", `{"offsets": [{"topic": "orders", "partition": 1, "offset": 50}]}`, nil)

	e.must(200, "GET", "/v1/groups", "", &list)
	if got := fmt.Sprintf("%+v", list.Groups); got != "[{Group:g0 State:Empty Members:0 Lag:0} {Group:g1 State:Empty Members:0 Lag:6}]" {
		t.Errorf("got %s", got)
	}
	var d describeReply
	e.must(200, "GET", "/v1/groups/g1", "", &d)
	if d.Group != "g1" || d.State != "Empty" || d.Lag != 6 || len(d.Members) != 0 || len(d.Partitions) != 2 {
		t.Fatalf("got %+v", d)
	}
	if p := d.Partitions[1]; p.Topic != "orders" || p.Partition != 0 || *p.CommittedOffset != 4 || p.LogEndOffset != 10 || *p.Lag != 6 || p.Member != "" || p.Metadata != "m" {
		t.Errorf("got %+v", p)
	}
	if p := d.Partitions[0]; p.Topic != "audit" || *p.CommittedOffset != 2 || p.LogEndOffset != 2 || *p.Lag != 0 {
		t.Errorf("got %+v", p)
	}

	// The lag gauge is computed at scrape time, by group and topic.
	for _, tt := range []struct {
		group, topic string
		want         float64
	}{{"g1", "orders", 6}, {"g1", "audit", 0}, {"g0", "orders", 0}} {
		if v, ok := e.metric("sluice_consumer_group_lag_records", map[string]string{"group": tt.group, "topic": tt.topic}); !ok || v != tt.want {
			t.Errorf("lag gauge %s/%s: got %v, %v; want %v", tt.group, tt.topic, v, ok, tt.want)
		}
	}
	e.values("orders", 0, 1, "k")
	if v, _ := e.metric("sluice_consumer_group_lag_records", map[string]string{"group": "g1", "topic": "orders"}); v != 7 {
		t.Errorf("lag gauge after a produce: got %v, want 7", v)
	}

	// A REST Proxy consumer instance makes the group Stable and owns its
	// partitions.
	e.must(200, "POST", "/consumers/g1", `{"name": "c1", "format": "binary"}`, nil, "Content-Type", mediaRESTV2, "User-Agent", "test-client/1.0")
	e.must(204, "POST", "/consumers/g1/instances/c1/subscription", `{"topics": ["orders"]}`, nil, "Content-Type", mediaRESTV2)
	e.must(200, "GET", "/v1/groups", "", &list)
	if got := fmt.Sprintf("%+v", list.Groups[1]); got != "{Group:g1 State:Stable Members:1 Lag:7}" {
		t.Errorf("got %s", got)
	}
	d = describeReply{}
	e.must(200, "GET", "/v1/groups/g1", "", &d)
	if d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != "c1" || d.Members[0].Kind != "rest_proxy" || d.Members[0].ClientID != "test-client/1.0" ||
		len(d.Members[0].Partitions) != 2 || d.Members[0].LastSeen == "" || !slices.Equal(d.Members[0].Topics, []string{"orders"}) {
		t.Fatalf("got %+v", d)
	}
	if len(d.Partitions) != 3 {
		t.Fatalf("partitions: got %+v", d.Partitions)
	}
	if p := d.Partitions[2]; p.Topic != "orders" || p.Partition != 1 || p.CommittedOffset != nil || p.Lag != nil || p.Member != "c1" || p.LogEndOffset != 3 {
		t.Errorf("an assigned partition without a commit: got %+v", p)
	}
	if p := d.Partitions[1]; p.Member != "c1" || *p.Lag != 7 {
		t.Errorf("got %+v", p)
	}

	// A group with members but no commits is listed and described.
	e.must(200, "POST", "/consumers/fresh", `{"name": "c"}`, nil, "Content-Type", mediaRESTV2)
	e.must(200, "GET", "/v1/groups", "", &list)
	if len(list.Groups) != 3 || list.Groups[0].Group != "fresh" || list.Groups[0].State != "Stable" {
		t.Errorf("got %+v", list.Groups)
	}
	e.must(200, "GET", "/v1/groups/fresh", "", nil)
	e.must(422, "GET", "/v1/groups/"+strings.Repeat("x", 256), "", nil)
}

func TestGroupSeek(t *testing.T) {
	e := newTestEnv(t)
	e.createTopic("orders", 3, nil)
	const ts = 1_700_000_000_000
	for p := range int32(3) {
		e.values("orders", p, ts, "a", "b", "c", "d") // offsets 0-3, timestamps ts..ts+3
	}
	seek := func(body string) string {
		t.Helper()
		var got groupOffsetsReply
		e.must(200, "POST", "/v1/groups/g/seek", body, &got)
		var stored groupOffsetsReply
		e.must(200, "GET", "/v1/groups/g/offsets", "", &stored)
		return got.String() + " | " + stored.String()
	}
	at := time.UnixMilli(ts + 2).UTC().Format(time.RFC3339Nano)
	tests := []struct{ body, want string }{
		{`{"to": "latest", "topic": "orders"}`, "orders/0=4 orders/1=4 orders/2=4 | orders/0=4 orders/1=4 orders/2=4"},
		{`{"to": "earliest", "topic": "orders", "partitions": [1]}`, "orders/1=0 | orders/0=4 orders/1=0 orders/2=4"},
		{`{"to": 2, "topic": "orders", "partitions": [2, 0, 2]}`, "orders/0=2 orders/2=2 | orders/0=2 orders/1=0 orders/2=2"},
		{`{"to": "3", "topic": "orders"}`, "orders/0=3 orders/1=3 orders/2=3 | orders/0=3 orders/1=3 orders/2=3"},
		{`{"to": 100, "topic": "orders", "partitions": [0]}`, "orders/0=4 | orders/0=4 orders/1=3 orders/2=3"},
		{`{"to": "@` + at + `", "topic": "orders"}`, "orders/0=2 orders/1=2 orders/2=2 | orders/0=2 orders/1=2 orders/2=2"},
		{`{"to": "@` + fmt.Sprint(ts+1) + `", "topic": "orders", "partitions": [1]}`, "orders/1=1 | orders/0=2 orders/1=1 orders/2=2"},
	}
	for _, tt := range tests {
		if got := seek(tt.body); got != tt.want {
			t.Errorf("seek %s: got %s, want %s", tt.body, got, tt.want)
		}
	}

	errs := []struct {
		body    string
		status  int
		message string
	}{
		{`{"topic": "orders"}`, 422, "to is missing"},
		{`{"to": "latest"}`, 422, "topic"},
		{`{"to": "soon", "topic": "orders"}`, 400, "to: "},
		{`{"to": -1, "topic": "orders"}`, 422, "to: "},
		{`{"to": 1.5, "topic": "orders"}`, 400, "to: "},
		{`{"to": true, "topic": "orders"}`, 400, "boolean"},
		{`{"to": "latest", "topic": "nope"}`, 404, "nope"},
		{`{"to": "latest", "topic": "orders", "partitions": [3]}`, 404, "partition 3"},
		{`{"to": "latest", "topic": "orders", "extra": 1}`, 400, "unknown field"},
		{`{"to": "latest", "topic": "orders"`, 400, "malformed"},
	}
	for _, tt := range errs {
		r := e.do("POST", "/v1/groups/g/seek", tt.body)
		if r.status != tt.status {
			t.Errorf("seek %s: got %d, want %d: %s", tt.body, r.status, tt.status, r.body)
			continue
		}
		if eb := r.errBody(t); !strings.Contains(eb.Message, tt.message) {
			t.Errorf("seek %s: got %q, want a message with %q", tt.body, eb.Message, tt.message)
		}
	}

	// Refused while a REST Proxy consumer instance is a member; allowed
	// once it is deleted.
	e.must(200, "POST", "/consumers/g", `{"name": "alive"}`, nil, "Content-Type", mediaRESTV2)
	r := e.must(409, "POST", "/v1/groups/g/seek", `{"to": "earliest", "topic": "orders"}`, nil)
	if eb := r.errBody(t); eb.ErrorCode != 409 || !strings.Contains(eb.Message, "alive") {
		t.Errorf("got %+v", eb)
	}
	e.must(409, "DELETE", "/v1/groups/g", "", nil)
	e.must(204, "DELETE", "/consumers/g/instances/alive", "", nil)
	if got := seek(`{"to": "earliest", "topic": "orders"}`); got != "orders/0=0 orders/1=0 orders/2=0 | orders/0=0 orders/1=0 orders/2=0" {
		t.Errorf("after the instance is deleted: got %s", got)
	}

	// Deleting the group.
	e.must(204, "DELETE", "/v1/groups/g", "", nil)
	e.must(404, "DELETE", "/v1/groups/g", "", nil)
	e.must(404, "GET", "/v1/groups/g", "", nil)
}
