package record

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kbin"
)

// DefaultMaxDecompressedBytes is the decompressed size DecodeLimits allows
// when MaxBytes is zero.
const DefaultMaxDecompressedBytes = 64 << 20

// DecodeLimits bounds what decoding one batch may cost.
type DecodeLimits struct {
	// MaxBytes bounds the records section after decompression (for an
	// uncompressed batch, the section as stored). A batch over it fails with
	// an error wrapping ErrTooLarge before more than MaxBytes+1 bytes of
	// output are allocated, however much the compressed data claims. A zstd
	// frame that declares a window larger than MaxBytes fails the same way.
	// Besides the output, a decoder holds its codec's working memory, a few
	// MiB at most (an lz4 frame may declare 4 MiB blocks). Zero or negative
	// means DefaultMaxDecompressedBytes.
	MaxBytes int
}

// minRecordSize is the smallest encoded record: one byte each for the
// length, attributes, timestamp delta, offset delta, key, value and header
// count. It bounds how many records a section can hold.
const minRecordSize = 7

// minHeaderSize is the smallest encoded header: a key and a value length.
const minHeaderSize = 2

// DecodeBatch checks the batch that b holds exactly (see Check),
// decompresses its records and calls fn with each, in offset order, with its
// absolute Offset and Timestamp. It returns the batch header.
//
// Key, Value, Headers and the header values fn receives alias b (when the
// batch is uncompressed) or a buffer that DecodeBatch reuses: they are valid
// only until fn returns and must be copied to be kept (header keys are
// fresh strings and may be kept). fn must not modify them.
//
// DecodeBatch stops at the first error fn returns and returns it unchanged.
// It also stops at the first malformed record, after fn has seen the ones
// before it; a caller that must not act on part of a bad batch validates it
// first with a nil fn, which decodes every record without handing any out,
// or uses AppendRecords. Errors wrap ErrMalformed, ErrChecksum or
// ErrTooLarge.
func (c *Codecs) DecodeBatch(b []byte, limits DecodeLimits, fn func(Record) error) (Header, error) {
	h, err := Check(b)
	if err != nil {
		return h, err
	}
	limit := clampLimit(limits.MaxBytes)
	records := b[HeaderSize:]
	if codec := h.Compression(); codec != CompressionNone {
		scratch := c.getBuf()
		defer c.putBuf(scratch)
		buf := slices.Grow((*scratch)[:0], min(4*len(records)+512, limit+1))
		records, err = c.decompress(buf, records, codec, limit)
		*scratch = records
		if err != nil {
			return h, err
		}
	} else if len(records) > limit {
		return h, tooLarge(codec, limit)
	}
	var headers []RecordHeader // reused from record to record
	return h, walkRecords(&h, records, &headers, fn)
}

// AppendRecords checks and decodes the batch that b holds exactly, like
// DecodeBatch, and appends its records to dst. The records share no memory
// with b or with c, so the caller may keep and modify them; the keys and
// values of one batch point into one buffer, with capacities capped so that
// appending to one never overwrites another. On error it returns dst with
// its original length.
func (c *Codecs) AppendRecords(dst []Record, b []byte, limits DecodeLimits) ([]Record, Header, error) {
	return c.appendRecords(dst, b, limits, true)
}

// AppendRecordsInPlace is AppendRecords for a caller that owns b and
// leaves it unchanged while it keeps the records: the keys and values of
// an uncompressed batch point into b itself, which saves copying the
// batch. Their capacities are capped as AppendRecords caps them, so
// appending to them never writes into b.
func (c *Codecs) AppendRecordsInPlace(dst []Record, b []byte, limits DecodeLimits) ([]Record, Header, error) {
	return c.appendRecords(dst, b, limits, false)
}

func (c *Codecs) appendRecords(dst []Record, b []byte, limits DecodeLimits, clone bool) ([]Record, Header, error) {
	h, err := Check(b)
	if err != nil {
		return dst, h, err
	}
	limit := clampLimit(limits.MaxBytes)
	records := b[HeaderSize:]
	if codec := h.Compression(); codec != CompressionNone {
		// A fresh buffer, not a pooled one: the records alias it.
		buf := make([]byte, 0, min(4*len(records)+512, limit+1))
		if records, err = c.decompress(buf, records, codec, limit); err != nil {
			return dst, h, err
		}
	} else if len(records) > limit {
		return dst, h, tooLarge(codec, limit)
	} else if clone {
		records = slices.Clone(records)
	}
	n := len(dst)
	dst = slices.Grow(dst, min(int(max(h.RecordCount, 0)), len(records)/minRecordSize))
	err = walkRecords(&h, records, nil, func(r Record) error {
		dst = append(dst, r)
		return nil
	})
	if err != nil {
		return dst[:n], h, err
	}
	return dst, h, nil
}

// walkRecords parses the uncompressed records section of the batch with
// header h and calls fn (when not nil) with each record. With scratch, the
// Headers slices handed to fn reuse *scratch; without, each record gets its
// own.
func walkRecords(h *Header, data []byte, scratch *[]RecordHeader, fn func(Record) error) error {
	count := int(h.RecordCount)
	switch {
	case count < 0:
		return fmt.Errorf("%w: record count %d", ErrMalformed, count)
	case count > 0 && int64(h.LastOffsetDelta) != int64(count)-1:
		return fmt.Errorf("%w: record count %d does not match lastOffsetDelta %d", ErrMalformed, count, h.LastOffsetDelta)
	}
	logAppend, control := h.LogAppendTime(), h.Control()
	var r Record
	for i := 0; i < count; i++ {
		if len(data) == 0 {
			return fmt.Errorf("%w: header says %d records, found %d", ErrMalformed, count, i)
		}
		length, used := kbin.Varint(data)
		if used <= 0 || length < 0 || int(length) > len(data)-used {
			return fmt.Errorf("%w: record %d: bad length (%d bytes remain)", ErrMalformed, i, len(data))
		}
		rd := kbin.Reader{Src: data[used : used+int(length)]}
		data = data[used+int(length):]

		rd.Int8() // record attributes, unused since Kafka 0.11
		tsDelta := rd.Varlong()
		offsetDelta := rd.Varint()
		key := rd.VarintBytes()
		value := rd.VarintBytes()
		nh := int(rd.Varint())
		if !rd.Ok() {
			return fmt.Errorf("%w: record %d: truncated", ErrMalformed, i)
		}
		if offsetDelta != int32(i) {
			return fmt.Errorf("%w: record %d has offset delta %d, want %d", ErrMalformed, i, offsetDelta, i)
		}
		if nh < 0 || nh > len(rd.Src)/minHeaderSize {
			return fmt.Errorf("%w: record %d: header count %d in %d bytes", ErrMalformed, i, nh, len(rd.Src))
		}
		var headers []RecordHeader
		if nh > 0 {
			if scratch != nil {
				headers = slices.Grow((*scratch)[:0], nh)[:nh]
				*scratch = headers
			} else {
				headers = make([]RecordHeader, nh)
			}
		}
		for j := range headers {
			k := rd.VarintBytes()
			v := rd.VarintBytes()
			if !rd.Ok() {
				return fmt.Errorf("%w: record %d: header %d truncated", ErrMalformed, i, j)
			}
			if k == nil {
				return fmt.Errorf("%w: record %d: header %d has a null key", ErrMalformed, i, j)
			}
			headers[j] = RecordHeader{Key: string(k), Value: v}
		}
		if len(rd.Src) != 0 {
			return fmt.Errorf("%w: record %d: %d bytes left over inside its length", ErrMalformed, i, len(rd.Src))
		}

		r = Record{
			Key:       key,
			Value:     value,
			Headers:   headers,
			Timestamp: h.BaseTimestamp + tsDelta,
			Offset:    h.BaseOffset + int64(offsetDelta),
			Control:   control,
		}
		if logAppend {
			r.Timestamp = h.MaxTimestamp
		}
		if fn != nil {
			if err := fn(r); err != nil {
				return err
			}
		}
	}
	if len(data) != 0 {
		return fmt.Errorf("%w: %d bytes follow the last of %d records", ErrMalformed, len(data), count)
	}
	return nil
}
