package kafkawire

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
)

func TestDeleteRecords(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("dr", 2, nil)
	cl := e.client(kgo.DefaultProduceTopic("dr"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testContext(t)
	for i := 0; i < 50; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)

	for _, tt := range []struct {
		name      string
		partition int32
		offset    int64
		wantLow   int64
		wantErr   error
	}{
		{"move the log start", 0, 20, 20, nil},
		{"below the log start", 0, 5, 20, nil},
		{"above the high watermark", 0, 51, -1, kerr.OffsetOutOfRange},
		{"negative", 0, -7, -1, kerr.OffsetOutOfRange},
		{"empty partition", 1, 0, 0, nil},
		{"missing partition", 9, 0, -1, kerr.UnknownTopicOrPartition},
	} {
		os := make(kadm.Offsets)
		os.Add(kadm.Offset{Topic: "dr", Partition: tt.partition, At: tt.offset, LeaderEpoch: -1})
		rs, err := adm.DeleteRecords(ctx, os)
		if tt.partition == 9 && err != nil {
			// kadm cannot route a partition its metadata lacks; ask directly.
			rs, err = rawDeleteRecords(t, e, tt.partition, tt.offset)
		}
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		r, err := rs.On("dr", tt.partition, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !errors.Is(r.Err, tt.wantErr) || (tt.wantErr == nil && r.Err != nil) || r.LowWatermark != tt.wantLow {
			t.Errorf("%s: got low watermark %d, error %v; want %d, %v", tt.name, r.LowWatermark, r.Err, tt.wantLow, tt.wantErr)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, "dr")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup("dr", 0); o.Offset != 20 {
		t.Errorf("start offset after DeleteRecords: got %d, want 20", o.Offset)
	}
	// A consumer from the start begins at the new log start.
	cons := e.client(kgo.ConsumeTopics("dr"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := cons.PollFetches(ctx)
	if errs := fs.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if recs := fs.Records(); len(recs) == 0 || recs[0].Offset != 20 {
		t.Errorf("first record consumed from the start: got %d records, want the first at 20", len(recs))
	}

	// -1 deletes up to the high watermark.
	os := make(kadm.Offsets)
	os.Add(kadm.Offset{Topic: "dr", Partition: 0, At: -1, LeaderEpoch: -1})
	rs, err := adm.DeleteRecords(ctx, os)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := rs.On("dr", 0, nil); r.Err != nil || r.LowWatermark != 50 {
		t.Errorf("delete up to the high watermark: got %d, %v; want 50", r.LowWatermark, r.Err)
	}
	if got, err := e.log.ListOffset(context.Background(), "dr", 0, stream.Earliest); err != nil || got != 50 {
		t.Errorf("earliest after deleting everything: got %d, %v; want 50", got, err)
	}
}

// rawDeleteRecords sends a DeleteRecords request of one partition of "dr".
func rawDeleteRecords(t *testing.T, e *testEnv, partition int32, offset int64) (kadm.DeleteRecordsResponses, error) {
	rc := e.dial()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.SetVersion(2)
	req.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "dr", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: partition, Offset: offset}}}}
	resp := roundTrip[*kmsg.DeleteRecordsResponse](rc, req)
	rs := kadm.DeleteRecordsResponses{}
	for _, rt := range resp.Topics {
		rs[rt.Topic] = map[int32]kadm.DeleteRecordsResponse{}
		for _, p := range rt.Partitions {
			rs[rt.Topic][p.Partition] = kadm.DeleteRecordsResponse{Topic: rt.Topic, Partition: p.Partition,
				LowWatermark: p.LowWatermark, Err: kerr.ErrorForCode(p.ErrorCode)}
		}
	}
	return rs, nil
}

func TestCreatePartitions(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("cp", 2, nil)
	adm := e.admin()
	ctx := testContext(t)
	count := func() int {
		t.Helper()
		ti, err := e.log.DescribeTopic(context.Background(), "cp")
		if err != nil {
			t.Fatal(err)
		}
		return len(ti.Partitions)
	}

	if rs, err := adm.ValidateCreatePartitions(ctx, 3, "cp"); err != nil || rs["cp"].Err != nil {
		t.Fatalf("validate adding 3: got %v, %v", err, rs["cp"].Err)
	}
	if got := count(); got != 2 {
		t.Fatalf("after validate only: got %d partitions, want 2", got)
	}
	if rs, err := adm.CreatePartitions(ctx, 3, "cp"); err != nil || rs["cp"].Err != nil {
		t.Fatalf("add 3: got %v, %v", err, rs["cp"].Err)
	}
	if got := count(); got != 5 {
		t.Fatalf("after adding 3: got %d partitions, want 5", got)
	}
	// The new partitions take records.
	cl := e.client(kgo.DefaultProduceTopic("cp"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 4, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatalf("produce to a new partition: %v", err)
	}

	for _, tt := range []struct {
		name  string
		total int
		topic string
		want  error
	}{
		{"the same count", 5, "cp", kerr.InvalidPartitions},
		{"fewer", 3, "cp", kerr.InvalidPartitions},
		{"too many", 10001, "cp", kerr.InvalidPartitions},
		{"missing topic", 4, "nope", kerr.UnknownTopicOrPartition},
	} {
		rs, err := adm.UpdatePartitions(ctx, tt.total, tt.topic)
		if err == nil {
			err = rs[tt.topic].Err
		}
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	if got := count(); got != 5 {
		t.Fatalf("after refused changes: got %d partitions, want 5", got)
	}

	// Shapes kadm does not send: a topic twice, assignments.
	rc := e.dial()
	for _, tt := range []struct {
		name   string
		topics []kmsg.CreatePartitionsRequestTopic
		want   []int16
	}{
		{"topic twice", []kmsg.CreatePartitionsRequestTopic{{Topic: "cp", Count: 6}, {Topic: "cp", Count: 7}},
			[]int16{kerr.InvalidRequest.Code, kerr.InvalidRequest.Code}},
		{"assignment on another broker", []kmsg.CreatePartitionsRequestTopic{{Topic: "cp", Count: 6,
			Assignment: []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{7}}}}}, []int16{kerr.InvalidReplicaAssignment.Code}},
		{"too few assignments", []kmsg.CreatePartitionsRequestTopic{{Topic: "cp", Count: 7,
			Assignment: []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{0}}}}}, []int16{kerr.InvalidReplicaAssignment.Code}},
		{"good assignment", []kmsg.CreatePartitionsRequestTopic{{Topic: "cp", Count: 6,
			Assignment: []kmsg.CreatePartitionsRequestTopicAssignment{{Replicas: []int32{0}}}}}, []int16{0}},
	} {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.SetVersion(3)
		req.Topics = tt.topics
		resp := roundTrip[*kmsg.CreatePartitionsResponse](rc, req)
		if len(resp.Topics) != len(tt.want) {
			t.Fatalf("%s: %d topics answered, want %d", tt.name, len(resp.Topics), len(tt.want))
		}
		for i, rt := range resp.Topics {
			if rt.ErrorCode != tt.want[i] {
				t.Errorf("%s: topic %d: got %s, want %s", tt.name, i, errorName(rt.ErrorCode), errorName(tt.want[i]))
			}
			if rt.ErrorCode != 0 && (rt.ErrorMessage == nil || *rt.ErrorMessage == "") {
				t.Errorf("%s: topic %d: no error message", tt.name, i)
			}
		}
	}
	if got := count(); got != 6 {
		t.Fatalf("after the good assignment: got %d partitions, want 6", got)
	}
}
