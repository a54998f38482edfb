package topic

import (
	"context"
	"math"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// fakeLog is a topic of one partition that keeps the values produced.
type fakeLog struct{ values []string }

func (l *fakeLog) DescribeTopic(ctx context.Context, name string) (stream.TopicInfo, error) {
	return stream.TopicInfo{Name: name, Partitions: []stream.PartitionInfo{{Partition: 0}}}, nil
}

func (l *fakeLog) Produce(ctx context.Context, topic string, partition int32, batch []byte) (stream.ProduceResult, error) {
	var c record.Codecs
	_, err := c.DecodeBatch(batch, record.DecodeLimits{}, func(r record.Record) error {
		l.values = append(l.values, string(r.Value))
		return nil
	})
	return stream.ProduceResult{}, err
}

// TestWriteRejectsValuesThatCannotBeEncoded checks that a record whose
// document has no JSON form goes to Reject, and the rest of its batch to
// the topic, instead of failing the batch, which no retry could fix.
func TestWriteRejectsValuesThatCannotBeEncoded(t *testing.T) {
	log := &fakeLog{}
	s, err := New(Options{Log: log, Topic: "out"})
	if err != nil {
		t.Fatal(err)
	}
	bad := connector.NewRecord(nil)
	bad.SetDoc(map[string]any{"x": math.Inf(1)})
	var got []connector.Rejection
	b := &connector.Batch{
		Records: []*connector.Record{connector.NewRecord([]byte(`{"a":1}`)), bad, connector.NewRecord([]byte(`{"a":2}`))},
		Reject: func(ctx context.Context, rej []connector.Rejection) error {
			got = append(got, rej...)
			return nil
		},
	}
	if err := s.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: got %v, want nil", err)
	}
	if len(got) != 1 || got[0].Record != bad || !strings.Contains(got[0].Err.Error(), "JSON cannot hold") {
		t.Errorf("rejections: got %v, want the record with an infinite number", got)
	}
	if v := strings.Join(log.values, " "); v != `{"a":1} {"a":2}` {
		t.Errorf("produced: got %s, want {\"a\":1} {\"a\":2}", v)
	}
}
