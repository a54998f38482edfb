package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// BatchOptions says how AppendBatch frames a batch. The zero value writes an
// uncompressed batch from a producer without idempotence.
type BatchOptions struct {
	// Compression is the codec for the records section. It is used even
	// when it does not make the batch smaller, so that what a caller asks
	// for is what is stored.
	Compression Compression

	// Producer identifies an idempotent or transactional producer. Nil, the
	// usual case for HTTP ingestion and pipelines, writes Kafka's "no
	// producer": producerId, producerEpoch and baseSequence all -1.
	Producer *Producer
}

// Producer is the producer state an idempotent or transactional batch
// carries, as InitProducerId handed it out.
type Producer struct {
	ID           int64
	Epoch        int16
	BaseSequence int32 // the sequence number of the batch's first record

	// Transactional sets the batch's transactional attribute.
	Transactional bool
}

// ErrNoRecords is returned by AppendBatch for an empty slice of records:
// Kafka has no use for an empty batch from a producer, and the log refuses
// one (see CheckProduced).
var ErrNoRecords = errors.New("append batch: no records")

// recordsOverhead is what the batch header adds to the records section in
// batchLength: the header after the length prefix.
const recordsOverhead = HeaderSize - LengthPrefix

// AppendBatch appends to dst one RecordBatch v2 holding recs and returns the
// extended slice. Records get offset deltas 0..len(recs)-1 and the batch
// baseOffset 0, for the log to assign; baseTimestamp is the first record's
// timestamp and maxTimestamp the largest; partitionLeaderEpoch is -1. Each
// record's Offset and Control are ignored. The batch passes CheckProduced.
//
// AppendBatch does not retain recs or dst. On error it returns dst with its
// original length (its spare capacity may have been written).
func (c *Codecs) AppendBatch(dst []byte, recs []Record, opts BatchOptions) ([]byte, error) {
	if len(recs) == 0 {
		return dst, ErrNoRecords
	}
	if len(recs) > math.MaxInt32 {
		return dst, fmt.Errorf("append batch: %w: %d records", ErrTooLarge, len(recs))
	}
	if opts.Compression < CompressionNone || opts.Compression > CompressionZstd {
		return dst, fmt.Errorf("append batch: unknown compression %s", opts.Compression)
	}
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1,
		Magic:                2,
		Attributes:           int16(opts.Compression),
		LastOffsetDelta:      int32(len(recs) - 1),
		FirstTimestamp:       recs[0].Timestamp,
		MaxTimestamp:         recs[0].Timestamp,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(len(recs)),
	}
	if p := opts.Producer; p != nil {
		if p.ID < 0 || p.Epoch < 0 || p.BaseSequence < 0 {
			return dst, fmt.Errorf("append batch: producer id %d, epoch %d, base sequence %d: none may be negative", p.ID, p.Epoch, p.BaseSequence)
		}
		rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = p.ID, p.Epoch, p.BaseSequence
		if p.Transactional {
			rb.Attributes |= 0x10
		}
	}
	for i := range recs {
		rb.MaxTimestamp = max(rb.MaxTimestamp, recs[i].Timestamp)
	}

	start := len(dst)
	dst = rb.AppendTo(dst) // batchLength and crc are filled in below
	var err error
	if opts.Compression == CompressionNone {
		dst, err = appendRecords(dst, recs, rb.FirstTimestamp)
	} else {
		scratch := c.getBuf()
		*scratch, err = appendRecords((*scratch)[:0], recs, rb.FirstTimestamp)
		if err == nil {
			dst, err = c.compress(dst, *scratch, opts.Compression)
		}
		c.putBuf(scratch)
	}
	if err == nil && len(dst)-start-LengthPrefix > math.MaxInt32 {
		err = fmt.Errorf("%w: batch of %d bytes", ErrTooLarge, len(dst)-start)
	}
	if err != nil {
		return dst[:start], fmt.Errorf("append batch: %w", err)
	}
	batch := dst[start:]
	binary.BigEndian.PutUint32(batch[offBatchLength:], uint32(len(batch)-LengthPrefix))
	binary.BigEndian.PutUint32(batch[offCRC:], Checksum(batch))
	return dst, nil
}

// appendRecords appends the uncompressed records section: each record
// framed by kmsg, with offset delta i and its timestamp relative to base.
func appendRecords(dst []byte, recs []Record, base int64) ([]byte, error) {
	var (
		kr      kmsg.Record
		headers []kmsg.Header // reused from record to record
	)
	for i := range recs {
		r := &recs[i]
		headers = headers[:0]
		for _, h := range r.Headers {
			headers = append(headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		kr = kmsg.Record{
			TimestampDelta64: r.Timestamp - base,
			OffsetDelta:      int32(i),
			Key:              r.Key,
			Value:            r.Value,
			Headers:          headers,
		}
		n, err := bodyLength(&kr)
		if err != nil {
			return dst, fmt.Errorf("record %d: %w", i, err)
		}
		kr.Length = int32(n)
		dst = kr.AppendTo(dst)
	}
	return dst, nil
}

// bodyLength is the length kmsg.Record.AppendTo writes after the record's
// own length varint, which it needs to be told.
func bodyLength(r *kmsg.Record) (int, error) {
	n := 1 + // attributes
		kbin.VarlongLen(r.TimestampDelta64) +
		kbin.VarintLen(r.OffsetDelta) +
		bytesLength(r.Key) +
		bytesLength(r.Value) +
		kbin.VarintLen(int32(len(r.Headers)))
	for _, h := range r.Headers {
		n += kbin.VarintLen(int32(len(h.Key))) + len(h.Key) + bytesLength(h.Value)
		if len(h.Key) > math.MaxInt32 || len(h.Value) > math.MaxInt32 {
			return 0, fmt.Errorf("%w: header %q over 2 GiB", ErrTooLarge, h.Key[:min(len(h.Key), 32)])
		}
	}
	if len(r.Key) > math.MaxInt32 || len(r.Value) > math.MaxInt32 || len(r.Headers) > math.MaxInt32 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: record over 2 GiB", ErrTooLarge)
	}
	return n, nil
}

// bytesLength is the encoded size of a varint-length-prefixed byte slice;
// nil is written as length -1.
func bytesLength(b []byte) int {
	if b == nil {
		return 1
	}
	return kbin.VarintLen(int32(len(b))) + len(b)
}
