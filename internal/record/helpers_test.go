package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var allCodecs = []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd}

// sampleRecords covers what a round trip must keep: null and empty keys,
// values and header values, no headers, several headers, timestamps that go
// backwards (negative deltas), and values large enough to compress.
func sampleRecords() []Record {
	big := bytes.Repeat([]byte(`{"user":"alice","action":"click","page":"/home"} `), 400)
	return []Record{
		{Key: []byte("k0"), Value: []byte("v0"), Timestamp: 1_700_000_000_000},
		{Key: nil, Value: []byte("null key"), Timestamp: 1_700_000_000_005},
		{Key: []byte{}, Value: []byte("empty key"), Timestamp: 1_699_999_999_990},
		{Key: []byte("tombstone"), Value: nil, Timestamp: 1_700_000_000_100},
		{Key: []byte("empty value"), Value: []byte{}, Timestamp: 1_700_000_000_100},
		{Key: nil, Value: nil, Timestamp: 0},
		{
			Key:   []byte("headers"),
			Value: []byte("with headers"),
			Headers: []RecordHeader{
				{Key: "trace-id", Value: []byte("abc123")},
				{Key: "null", Value: nil},
				{Key: "empty", Value: []byte{}},
				{Key: "", Value: []byte("empty key")},
				{Key: "ключ", Value: []byte{0, 1, 2, 0xff}},
			},
			Timestamp: 1_700_000_000_200,
		},
		{Key: []byte("big"), Value: big, Timestamp: 1_700_000_000_300},
		{Key: bytes.Repeat([]byte("k"), 300), Value: bytes.Repeat([]byte{0xab}, 200), Timestamp: 1_700_000_000_150},
	}
}

// wantDecoded is what decoding a batch of recs at baseOffset gives.
func wantDecoded(recs []Record, baseOffset int64) []Record {
	out := make([]Record, len(recs))
	for i, r := range recs {
		r.Offset = baseOffset + int64(i)
		if len(r.Headers) == 0 {
			r.Headers = nil // no headers decode as nil, whatever was encoded
		}
		r.Control = false
		out[i] = r
	}
	return out
}

// describe prints a record so that nil and empty slices differ.
func describe(r Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "{offset %d ts %d key %s value %s", r.Offset, r.Timestamp, showBytes(r.Key), showBytes(r.Value))
	if r.Control {
		b.WriteString(" control")
	}
	if r.Headers != nil {
		b.WriteString(" headers [")
		for i, h := range r.Headers {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%q=%s", h.Key, showBytes(h.Value))
		}
		b.WriteString("]")
	}
	b.WriteString("}")
	return b.String()
}

func showBytes(b []byte) string {
	switch {
	case b == nil:
		return "null"
	case len(b) > 40:
		return fmt.Sprintf("%q...(%d bytes)", b[:40], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func sameRecord(a, b Record) bool {
	if !sameBytes(a.Key, b.Key) || !sameBytes(a.Value, b.Value) ||
		a.Timestamp != b.Timestamp || a.Offset != b.Offset || a.Control != b.Control ||
		len(a.Headers) != len(b.Headers) || (a.Headers == nil) != (b.Headers == nil) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Key != b.Headers[i].Key || !sameBytes(a.Headers[i].Value, b.Headers[i].Value) {
			return false
		}
	}
	return true
}

// sameBytes is bytes.Equal that also tells nil from empty.
func sameBytes(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

func checkRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !sameRecord(got[i], want[i]) {
			t.Errorf("record %d: got %s, want %s", i, describe(got[i]), describe(want[i]))
		}
	}
}

// cloneRecord deep-copies what DecodeBatch only lends.
func cloneRecord(r Record) Record {
	c := r
	c.Key = cloneBytes(r.Key)
	c.Value = cloneBytes(r.Value)
	if r.Headers != nil {
		c.Headers = make([]RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			c.Headers[i] = RecordHeader{Key: h.Key, Value: cloneBytes(h.Value)}
		}
	}
	return c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// decodeAll decodes with DecodeBatch, copying each record out.
func decodeAll(c *Codecs, b []byte, limits DecodeLimits) ([]Record, Header, error) {
	var out []Record
	h, err := c.DecodeBatch(b, limits, func(r Record) error {
		out = append(out, cloneRecord(r))
		return nil
	})
	return out, h, err
}

// reseal fixes the batchLength and CRC of a batch a test has edited.
func reseal(b []byte) []byte {
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-LengthPrefix))
	binary.BigEndian.PutUint32(b[offCRC:], Checksum(b))
	return b
}

// rawBatch frames an arbitrary records section, as a hostile or buggy
// producer might.
func rawBatch(codec Compression, count int32, section []byte) []byte {
	rb := kmsg.RecordBatch{
		PartitionLeaderEpoch: -1, Magic: 2, Attributes: int16(codec),
		LastOffsetDelta: max(count-1, 0), FirstTimestamp: 1000, MaxTimestamp: 1000,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: count, Records: section,
	}
	return reseal(rb.AppendTo(nil))
}

// kmsgSection encodes records with kmsg directly, offset deltas and all as
// given, for tests that need records AppendBatch would never write.
func kmsgSection(recs ...kmsg.Record) []byte {
	var out []byte
	for _, r := range recs {
		body := r
		body.Length = 0
		n := len(body.AppendTo(nil)) - 1 // the zero length varint is one byte
		r.Length = int32(n)
		out = r.AppendTo(out)
	}
	return out
}

func mustAppend(t testing.TB, c *Codecs, recs []Record, opts BatchOptions) []byte {
	t.Helper()
	b, err := c.AppendBatch(nil, recs, opts)
	if err != nil {
		t.Fatalf("AppendBatch: %v", err)
	}
	return b
}

func wantErrIs(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want one wrapping %v", err, want)
	}
}
