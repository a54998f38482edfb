package kafkawire

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestAdminTopics(t *testing.T) {
	e := newTestEnv(t, Options{DefaultPartitions: 2})
	adm := e.admin()
	ctx := testContext(t)

	// Create, with a config override.
	res, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, "orders")
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if res.NumPartitions != 3 || res.ReplicationFactor != 1 || res.ID == (kadm.TopicID{}) {
		t.Errorf("create response: got %d partitions, RF %d, ID %v; want 3, 1, non-zero", res.NumPartitions, res.ReplicationFactor, res.ID)
	}
	if c, ok := res.Configs["retention.ms"]; !ok || c.Value == nil || *c.Value != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("create response config retention.ms: got %+v", c)
	}
	// Defaults (-1, -1) use DefaultPartitions.
	res, err = adm.CreateTopic(ctx, -1, -1, nil, "defaults")
	if err != nil || res.NumPartitions != 2 {
		t.Fatalf("create with defaults: got %d partitions, %v; want 2, nil", res.NumPartitions, err)
	}

	// Errors, one per topic.
	bad := []struct {
		name       string
		partitions int32
		rf         int16
		configs    map[string]*string
		want       error
	}{
		{"orders", 1, 1, nil, kerr.TopicAlreadyExists},
		{"bad name!", 1, 1, nil, kerr.InvalidTopicException},
		{"rf3", 1, 3, nil, kerr.InvalidReplicationFactor},
		{"rf0", 1, 0, nil, kerr.InvalidReplicationFactor},
		{"p0", 0, 1, nil, kerr.InvalidPartitions},
		{"p-many", 10001, 1, nil, kerr.InvalidPartitions},
		{"cfg", 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, kerr.InvalidConfig},
		{"cfg2", 1, 1, map[string]*string{"no.such.key": kadm.StringPtr("1")}, kerr.InvalidConfig},
		// A null value is INVALID_CONFIG, as Kafka's controller answers it
		// (ReplicationControlManager: "Null value not supported for topic
		// configs").
		{"cfg-null", 1, 1, map[string]*string{"retention.ms": nil}, kerr.InvalidConfig},
	}
	for _, b := range bad {
		_, err := adm.CreateTopic(ctx, b.partitions, b.rf, b.configs, b.name)
		if !errors.Is(err, b.want) {
			t.Errorf("create %q: got %v, want %v", b.name, err, b.want)
		}
	}

	// Validate only: checked, not created.
	vres, err := adm.ValidateCreateTopics(ctx, 4, 1, nil, "dry")
	if err != nil || vres["dry"].Err != nil || vres["dry"].NumPartitions != 4 {
		t.Fatalf("validate create: %+v, %v", vres["dry"], err)
	}
	vres, _ = adm.ValidateCreateTopics(ctx, 4, 1, nil, "orders")
	if !errors.Is(vres["orders"].Err, kerr.TopicAlreadyExists) {
		t.Errorf("validate existing topic: got %v, want TOPIC_ALREADY_EXISTS", vres["orders"].Err)
	}

	// List: every topic, led by node 0.
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := topics.Names(), []string{"defaults", "orders"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("topics: got %v, want %v", got, want)
	}
	td := topics["orders"]
	info, _ := e.log.DescribeTopic(ctx, "orders")
	if [16]byte(td.ID) != info.ID || len(td.Partitions) != 3 {
		t.Errorf("orders: got ID %v and %d partitions, want %x and 3", td.ID, len(td.Partitions), info.ID)
	}
	for _, p := range td.Partitions {
		if p.Leader != 0 || !reflect.DeepEqual(p.Replicas, []int32{0}) || !reflect.DeepEqual(p.ISR, []int32{0}) || p.Err != nil {
			t.Errorf("partition %d: %+v", p.Partition, p)
		}
	}

	// Describe configs.
	rcs, err := adm.DescribeTopicConfigs(ctx, "orders", "missing")
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		switch rc.Name {
		case "orders":
			got := map[string]kadm.Config{}
			for _, c := range rc.Configs {
				got[c.Key] = c
			}
			if c := got["retention.ms"]; c.Value == nil || *c.Value != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
				t.Errorf("retention.ms: got %+v", c)
			}
			if c := got["max.message.bytes"]; c.Value == nil || *c.Value != "1048576" || c.Source != kmsg.ConfigSourceDefaultConfig {
				t.Errorf("max.message.bytes: got %+v", c)
			}
		case "missing":
			if !errors.Is(rc.Err, kerr.UnknownTopicOrPartition) {
				t.Errorf("missing topic configs: got %v, want UNKNOWN_TOPIC_OR_PARTITION", rc.Err)
			}
		}
	}
	bcs, err := adm.DescribeBrokerConfigs(ctx, 0)
	if err != nil || len(bcs) != 1 {
		t.Fatalf("broker configs: %v, %v", bcs, err)
	}
	brokerCfg := map[string]string{}
	for _, c := range bcs[0].Configs {
		if c.Value != nil {
			brokerCfg[c.Key] = *c.Value
		}
	}
	if brokerCfg["num.partitions"] != "2" || brokerCfg["advertised.listeners"] != "PLAINTEXT://"+e.addr {
		t.Errorf("broker configs: num.partitions %q, advertised.listeners %q", brokerCfg["num.partitions"], brokerCfg["advertised.listeners"])
	}

	// Delete.
	dres, err := adm.DeleteTopics(ctx, "orders", "missing")
	if err != nil {
		t.Fatal(err)
	}
	if dres["orders"].Err != nil || !errors.Is(dres["missing"].Err, kerr.UnknownTopicOrPartition) {
		t.Errorf("delete: orders %v, missing %v", dres["orders"].Err, dres["missing"].Err)
	}
	if _, err := e.log.DescribeTopic(ctx, "orders"); err == nil {
		t.Error("orders still exists after delete")
	}
}

func TestAdminListOffsets(t *testing.T) {
	e := newTestEnv(t, Options{})
	ctx := testContext(t)
	e.createTopic("t", 1, nil)
	cl := e.client(kgo.DefaultProduceTopic("t"))
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 10; i++ {
		// One batch per record, with timestamps a second apart.
		r := &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := e.admin()
	start, err := adm.ListStartOffsets(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	end, err := adm.ListEndOffsets(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := start.Lookup("t", 0); o.Offset != 0 || o.Err != nil {
		t.Errorf("start offset: got %+v, want 0", o)
	}
	if o, _ := end.Lookup("t", 0); o.Offset != 10 || o.Err != nil {
		t.Errorf("end offset: got %+v, want 10", o)
	}
	for _, c := range []struct {
		at         time.Time
		wantOffset int64
		wantTS     int64
	}{
		{base.Add(-time.Minute), 0, base.UnixMilli()},
		{base.Add(3*time.Second + time.Millisecond), 4, base.Add(4 * time.Second).UnixMilli()},
		{base.Add(9 * time.Second), 9, base.Add(9 * time.Second).UnixMilli()},
		{base.Add(time.Minute), 10, -1}, // none: kadm turns Kafka's -1 into the end offset
	} {
		lo, err := adm.ListOffsetsAfterMilli(ctx, c.at.UnixMilli(), "t")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := lo.Lookup("t", 0)
		if o.Err != nil || o.Offset != c.wantOffset || (c.wantTS >= 0 && o.Timestamp != c.wantTS) {
			t.Errorf("after %v: got offset %d timestamp %d (%v), want %d %d", c.at.Sub(base), o.Offset, o.Timestamp, o.Err, c.wantOffset, c.wantTS)
		}
	}

	// Raw: a timestamp with no record after it is -1/-1, as in Kafka.
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = time.Now().Add(time.Hour).UnixMilli()
	rt.Partitions = append(rt.Partitions, rp)
	rp.Partition, rp.Timestamp = 1, -1 // unknown partition
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := cl.Broker(0).Request(ctx, req) // unsharded: straight to the broker
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.ListOffsetsResponse)
	p0, p1 := resp.Topics[0].Partitions[0], resp.Topics[0].Partitions[1]
	if p0.ErrorCode != 0 || p0.Offset != -1 || p0.Timestamp != -1 {
		t.Errorf("future timestamp: got %+v, want offset and timestamp -1", p0)
	}
	if p1.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown partition: got error %d, want UNKNOWN_TOPIC_OR_PARTITION", p1.ErrorCode)
	}
}

func TestAdminGroupOffsets(t *testing.T) {
	e := newTestEnv(t, Options{})
	ctx := testContext(t)
	e.createTopic("a", 2, nil)
	e.createTopic("b", 1, nil)
	adm := e.admin()

	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "a", Partition: 0, At: 5, LeaderEpoch: -1, Metadata: "m0"})
	os.Add(kadm.Offset{Topic: "a", Partition: 1, At: 7, LeaderEpoch: 3})
	os.Add(kadm.Offset{Topic: "b", Partition: 0, At: 1, LeaderEpoch: -1})
	os.Add(kadm.Offset{Topic: "b", Partition: 4, At: 1, LeaderEpoch: -1}) // no such partition
	res, err := adm.CommitOffsets(ctx, "g1", os)
	if err != nil {
		t.Fatal(err)
	}
	for topic, ps := range res {
		for p, r := range ps {
			if topic == "b" && p == 4 {
				if !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
					t.Errorf("commit b/4: got %v, want UNKNOWN_TOPIC_OR_PARTITION", r.Err)
				}
			} else if r.Err != nil {
				t.Errorf("commit %s/%d: %v", topic, p, r.Err)
			}
		}
	}

	fetched, err := adm.FetchOffsets(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]kadm.Offset{}
	fetched.Each(func(r kadm.OffsetResponse) {
		if r.Err != nil {
			t.Errorf("fetch %s/%d: %v", r.Topic, r.Partition, r.Err)
		}
		got[fmt.Sprintf("%s/%d", r.Topic, r.Partition)] = r.Offset
	})
	want := map[string]kadm.Offset{
		"a/0": {Topic: "a", Partition: 0, At: 5, LeaderEpoch: -1, Metadata: "m0"},
		"a/1": {Topic: "a", Partition: 1, At: 7, LeaderEpoch: 3},
		"b/0": {Topic: "b", Partition: 0, At: 1, LeaderEpoch: -1},
	}
	for k, w := range want {
		g := got[k]
		g.TopicID = kadm.TopicID{}
		if g != w {
			t.Errorf("offset %s: got %+v, want %+v", k, g, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("fetched %d offsets, want %d: %v", len(got), len(want), got)
	}

	// The offsets are the stream's: the HTTP API sees the same.
	so, err := e.log.FetchOffsets(ctx, "g1")
	if err != nil || len(so) != 3 {
		t.Errorf("stream offsets of g1: %v, %v", so, err)
	}

	// A group that committed nothing has no offsets and no error.
	fetched, err = adm.FetchOffsets(ctx, "nobody")
	if err != nil || len(fetched) != 0 {
		t.Errorf("fetch offsets of an unknown group: %v, %v", fetched, err)
	}
}

// TestDeleteTopicsByID deletes topics named by ID (v6) and checks each
// entry's answer: the name and ID of a deleted topic, a null name for an
// unknown ID (as Kafka's ControllerApis.deleteTopics answers it), and
// INVALID_REQUEST for an entry with neither.
func TestDeleteTopicsByID(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("byid", 1, nil)
	info, err := e.log.DescribeTopic(testContext(t), "byid")
	if err != nil {
		t.Fatal(err)
	}
	r := e.dial()
	cases := []struct {
		name     string
		id       [16]byte
		wantName *string
		wantCode int16
	}{
		{"known", info.ID, kmsg.StringPtr("byid"), 0},
		{"unknown", [16]byte{0xff}, nil, kerr.UnknownTopicID.Code},
		{"neither", [16]byte{}, nil, kerr.InvalidRequest.Code},
	}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.SetVersion(6)
	for _, c := range cases {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.TopicID = c.id
		req.Topics = append(req.Topics, rt)
	}
	resp := roundTrip[*kmsg.DeleteTopicsResponse](r, req)
	if len(resp.Topics) != len(cases) {
		t.Fatalf("got %d topics, want %d", len(resp.Topics), len(cases))
	}
	for i, c := range cases {
		got := resp.Topics[i]
		if got.ErrorCode != c.wantCode || got.TopicID != c.id || !reflect.DeepEqual(got.Topic, c.wantName) {
			t.Errorf("%s: got name %v, ID %x, code %d; want %v, %x, %d", c.name, ptrString(got.Topic), got.TopicID, got.ErrorCode,
				ptrString(c.wantName), c.id, c.wantCode)
		}
	}
	if _, err := e.log.DescribeTopic(testContext(t), "byid"); err == nil {
		t.Error("byid still exists after delete")
	}
}

// ptrString prints a nullable string.
func ptrString(s *string) string {
	if s == nil {
		return "null"
	}
	return strconv.Quote(*s)
}
