package kafkawire

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// idempotentProduce builds a Produce v9 request of one idempotent batch of
// n records.
func idempotentProduce(t testing.TB, topic string, partition int32, pid int64, epoch int16, seq int32, n int) *kmsg.ProduceRequest {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{Value: []byte{byte('a' + i)}, Timestamp: time.Now().UnixMilli()}
	}
	var codecs record.Codecs
	batch, err := codecs.AppendBatch(nil, recs, record.BatchOptions{Producer: &record.Producer{ID: pid, Epoch: epoch, BaseSequence: seq}})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.SetVersion(9)
	req.Acks = -1
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// TestIdempotentRetries plays an idempotent producer by hand on one
// connection: retried batches, gaps and a stale epoch, as a producer that
// lost responses would send them.
func TestIdempotentRetries(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("idem", 1, map[string]string{"message.timestamp.type": "LogAppendTime"})
	rc := e.dial()
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.SetVersion(4)
	ipr := roundTrip[*kmsg.InitProducerIDResponse](rc, ip)
	if ipr.ErrorCode != 0 || ipr.ProducerID < 0 {
		t.Fatalf("InitProducerId: got code %d, ID %d", ipr.ErrorCode, ipr.ProducerID)
	}
	pid := ipr.ProducerID

	var firstAppendTime int64
	steps := []struct {
		name     string
		epoch    int16
		seq      int32
		n        int
		wantCode int16
		wantBase int64
	}{
		{"first batch", 0, 0, 3, 0, 0},
		{"second batch", 0, 3, 2, 0, 3},
		{"first batch again", 0, 0, 3, 0, 0},
		{"second batch again", 0, 3, 2, 0, 3},
		{"gap", 0, 9, 1, kerr.OutOfOrderSequenceNumber.Code, -1},
		{"overlapping range", 0, 4, 2, kerr.OutOfOrderSequenceNumber.Code, -1},
		{"third batch", 0, 5, 1, 0, 5},
		{"new epoch not at 0", 1, 6, 1, kerr.OutOfOrderSequenceNumber.Code, -1},
		{"new epoch at 0", 1, 0, 1, 0, 6},
		{"stale epoch", 0, 6, 1, kerr.InvalidProducerEpoch.Code, -1},
	}
	for _, s := range steps {
		resp := roundTrip[*kmsg.ProduceResponse](rc, idempotentProduce(t, "idem", 0, pid, s.epoch, s.seq, s.n))
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != s.wantCode || p.BaseOffset != s.wantBase {
			t.Fatalf("%s: got code %s, base offset %d; want %s, %d", s.name, errorName(p.ErrorCode), p.BaseOffset, errorName(s.wantCode), s.wantBase)
		}
		if s.wantCode != 0 && (p.ErrorMessage == nil || *p.ErrorMessage == "") {
			t.Errorf("%s: no error message", s.name)
		}
		switch s.name {
		case "first batch":
			firstAppendTime = p.LogAppendTime
		case "first batch again":
			if p.LogAppendTime != firstAppendTime {
				t.Errorf("%s: LogAppendTime %d, want the original %d", s.name, p.LogAppendTime, firstAppendTime)
			}
		}
	}
	if hw, err := e.log.ListOffset(context.Background(), "idem", 0, stream.Latest); err != nil || hw != 7 {
		t.Fatalf("high watermark: got %d, %v; want 7: retries or refused batches were stored", hw, err)
	}

	// The state survives a restart: the retry is still a duplicate.
	e.restart(Options{})
	rc = e.dial()
	resp := roundTrip[*kmsg.ProduceResponse](rc, idempotentProduce(t, "idem", 0, pid, 1, 0, 1))
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || p.BaseOffset != 6 {
		t.Fatalf("retry after restart: got code %s, base offset %d; want the original at 6", errorName(p.ErrorCode), p.BaseOffset)
	}
	resp = roundTrip[*kmsg.ProduceResponse](rc, idempotentProduce(t, "idem", 0, pid, 1, 2, 1))
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap after restart: got code %s, want OUT_OF_ORDER_SEQUENCE_NUMBER", errorName(p.ErrorCode))
	}
}

// TestIdempotentProducerAcrossPartitions produces many records with
// franz-go's idempotent producer in many small batches,
// and reads every record back exactly once.
func TestIdempotentProducerAcrossPartitions(t *testing.T) {
	e := newTestEnv(t, Options{})
	e.createTopic("idem-many", 6, nil)
	const n = 30000
	produceKeyed(t, e.client(kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchMaxBytes(16<<10)), "idem-many", n)
	var total int64
	for p := int32(0); p < 6; p++ {
		hw, err := e.log.ListOffset(context.Background(), "idem-many", p, stream.Latest)
		if err != nil {
			t.Fatal(err)
		}
		total += hw
	}
	if total != n {
		t.Fatalf("records stored: got %d, want %d", total, n)
	}
	consumeAll(t, e.client(kgo.ConsumeTopics("idem-many"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())), n)
}
