package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/topic"
)

func TestMapErr(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want error // nil: no sentinel applies
	}{
		{kerr.UnknownTopicOrPartition, stream.ErrUnknownTopic},
		{kerr.UnknownTopicID, stream.ErrUnknownTopic},
		{kerr.TopicAlreadyExists, stream.ErrTopicExists},
		{kerr.OffsetOutOfRange, stream.ErrOffsetOutOfRange},
		{kerr.MessageTooLarge, stream.ErrTooLarge},
		{kerr.RecordListTooLarge, stream.ErrTooLarge},
		{kerr.CorruptMessage, stream.ErrInvalid}, // retriable in kerr, but a bad batch is bad again
		{kerr.InvalidRecord, stream.ErrInvalid},
		{kerr.OutOfOrderSequenceNumber, stream.ErrOutOfOrderSequence},
		{kerr.InvalidProducerEpoch, stream.ErrProducerFenced},
		{kerr.ProducerFenced, stream.ErrProducerFenced},
		{kerr.UnknownProducerID, stream.ErrInvalid},
		{kerr.InvalidConfig, stream.ErrInvalid},
		{kerr.InvalidTopicException, stream.ErrInvalid},
		{kerr.InvalidPartitions, stream.ErrInvalid},
		{kerr.PolicyViolation, stream.ErrInvalid},
		{kerr.NonEmptyGroup, stream.ErrInvalid},
		{kerr.UnknownMemberID, stream.ErrInvalid},
		{kerr.NotLeaderForPartition, stream.ErrUnavailable},
		{kerr.KafkaStorageError, stream.ErrUnavailable},
		{kerr.CoordinatorNotAvailable, stream.ErrUnavailable},
		{kerr.RequestTimedOut, stream.ErrUnavailable},
		{kerr.TopicAuthorizationFailed, nil},
		{&kadm.AuthError{Err: kerr.GroupAuthorizationFailed}, nil},
		{kerr.UnknownServerError, nil},
		{&kadm.ShardErrors{Errs: []kadm.ShardError{{Err: kerr.NotCoordinator}}}, stream.ErrUnavailable},
		{kgo.ErrClientClosed, stream.ErrUnavailable},
		{&net.OpError{Op: "dial", Err: errors.New("connection refused")}, stream.ErrUnavailable},
		{io.ErrUnexpectedEOF, stream.ErrUnavailable},
		{context.Canceled, nil},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), nil},
		{fmt.Errorf("x: %w", record.ErrChecksum), stream.ErrInvalid},
		{fmt.Errorf("x: %w", record.ErrMalformed), stream.ErrInvalid},
		{fmt.Errorf("x: %w", record.ErrTooLarge), stream.ErrTooLarge},
		{fmt.Errorf("x: %w", topic.ErrInvalid), stream.ErrInvalid},
	} {
		wrapped := fmt.Errorf("op: %w", tt.err)
		got := mapErr(wrapped)
		if got.Error() != wrapped.Error() {
			t.Errorf("mapErr(%v): message %q, want it kept", tt.err, got.Error())
		}
		if !errors.Is(got, tt.err) {
			t.Errorf("mapErr(%v) = %v: no longer matches the original error", tt.err, got)
		}
		for _, s := range sentinels {
			if is := errors.Is(got, s); is != (s == tt.want) {
				t.Errorf("mapErr(%v): errors.Is(%v) = %v, want %v", tt.err, s, is, !is)
			}
		}
	}
	already := fmt.Errorf("x: %w", stream.ErrUnknownPartition)
	if got := mapErr(already); got != already {
		t.Errorf("mapErr of a mapped error: got %v, want it unchanged", got)
	}
	if mapErr(nil) != nil {
		t.Error("mapErr(nil) != nil")
	}
}

func TestWholeBatches(t *testing.T) {
	var c record.Codecs
	mk := func(base int64, n int) []byte {
		recs := make([]record.Record, n)
		for i := range recs {
			recs[i] = record.Record{Value: []byte("v")}
		}
		b, err := c.AppendBatch(nil, recs, record.BatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		record.SetBaseOffset(b, base)
		return b
	}
	b1, b2 := mk(10, 3), mk(13, 2)
	two := append(append([]byte(nil), b1...), b2...)
	for _, tt := range []struct {
		name    string
		in      []byte
		offset  int64
		want    int // bytes kept
		next    int64
		corrupt bool
	}{
		{"empty", nil, 7, 0, 7, false},
		{"one", b1, 11, len(b1), 13, false},
		{"two", two, 10, len(two), 15, false},
		{"second cut in its body", two[:len(two)-1], 10, len(b1), 13, false},
		{"second cut in its header", two[:len(b1)+20], 10, len(b1), 13, false},
		{"first cut short", b1[:len(b1)-1], 10, 0, 10, false},
		{"garbage after a batch", append(append([]byte(nil), b1...), make([]byte, 70)...), 10, len(b1), 13, false},
		{"garbage first", make([]byte, 70), 10, 0, 10, true},
	} {
		got, next, err := wholeBatches(tt.in, tt.offset)
		if tt.corrupt {
			if !errors.Is(err, stream.ErrCorrupt) {
				t.Errorf("%s: got %v, want ErrCorrupt", tt.name, err)
			}
			continue
		}
		if err != nil || len(got) != tt.want || next != tt.next {
			t.Errorf("%s: got %d bytes, next %d, %v; want %d bytes, next %d", tt.name, len(got), next, err, tt.want, tt.next)
		}
	}
}
