// Package record frames Kafka RecordBatch v2 batches: it parses and checks
// batch headers and CRC32C checksums, and encodes and decodes the records
// inside a batch with any of Kafka's compression codecs.
//
// The batch layout (all integers big-endian) is:
//
//	offset size field
//	     0    8 baseOffset           assigned by the log; outside the CRC
//	     8    4 batchLength          bytes that follow this field
//	    12    4 partitionLeaderEpoch outside the CRC
//	    16    1 magic                always 2
//	    17    4 crc                  CRC32C (Castagnoli) of bytes 21..end
//	    21    2 attributes           bits 0-2 codec, 3 timestamp type,
//	                                 4 transactional, 5 control
//	    23    4 lastOffsetDelta
//	    27    8 baseTimestamp
//	    35    8 maxTimestamp
//	    43    8 producerId
//	    51    2 producerEpoch
//	    53    4 baseSequence
//	    57    4 recordCount
//	    61    - records (compressed as a whole when the codec is not none)
//
// Each record in the (decompressed) records section is, with varints
// zigzag-encoded as in protobuf:
//
//	varint  length          bytes that follow
//	int8    attributes      unused
//	varlong timestampDelta  from baseTimestamp (may be negative)
//	varint  offsetDelta     from baseOffset: 0, 1, ... recordCount-1
//	varint  keyLength       -1 for a null key
//	bytes   key
//	varint  valueLength     -1 for a null value (a tombstone)
//	bytes   value
//	varint  headerCount
//	        per header: varint keyLength, key, varint valueLength (-1 null), value
//
// Codecs frames and unframes records (AppendBatch, DecodeBatch,
// AppendRecords) with franz-go's kmsg and kbin. Snappy is written as one
// plain snappy block, as franz-go does, and read either as a plain block or
// in the xerial framing of the Java client; lz4 uses the lz4 frame format.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// HeaderSize is the size of a RecordBatch v2 header, up to the records.
const HeaderSize = 61

// LengthPrefix is the number of leading bytes (baseOffset and batchLength)
// that batchLength does not count.
const LengthPrefix = 12

// Byte offsets of the header fields the log reads or rewrites.
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57
)

// crcTable is Castagnoli's polynomial table. It is written once at package
// initialisation and only read afterwards.
var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Compression is a batch's codec, the low three bits of its attributes.
type Compression int8

// The codecs Kafka defines.
const (
	CompressionNone   Compression = 0
	CompressionGzip   Compression = 1
	CompressionSnappy Compression = 2
	CompressionLZ4    Compression = 3
	CompressionZstd   Compression = 4
)

func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	case CompressionSnappy:
		return "snappy"
	case CompressionLZ4:
		return "lz4"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// ParseCompression maps a codec name (as in Kafka's compression.type) to its
// Compression value.
func ParseCompression(name string) (Compression, error) {
	switch name {
	case "none", "":
		return CompressionNone, nil
	case "gzip":
		return CompressionGzip, nil
	case "snappy":
		return CompressionSnappy, nil
	case "lz4":
		return CompressionLZ4, nil
	case "zstd":
		return CompressionZstd, nil
	}
	return 0, fmt.Errorf("unknown compression %q (want none, gzip, snappy, lz4 or zstd)", name)
}

// ErrMalformed is wrapped by every error that reports bytes which are not a
// well-formed RecordBatch v2.
var ErrMalformed = errors.New("malformed record batch")

// ErrChecksum is wrapped by errors reporting a batch whose CRC32C does not
// match its contents.
var ErrChecksum = errors.New("record batch checksum mismatch")

// Header is the decoded fixed-size header of a RecordBatch v2.
type Header struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the total size of the batch in bytes, header included.
func (h Header) Size() int { return LengthPrefix + int(h.BatchLength) }

// LastOffset is the offset of the batch's last record.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is the offset that follows the batch's last record.
func (h Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Compression is the codec the records section is compressed with.
func (h Header) Compression() Compression { return Compression(h.Attributes & 0x7) }

// LogAppendTime reports whether timestamps were set by the log rather than
// the producer.
func (h Header) LogAppendTime() bool { return h.Attributes&0x8 != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h Header) Transactional() bool { return h.Attributes&0x10 != 0 }

// Control reports whether the batch holds control records (transaction
// markers) rather than user data.
func (h Header) Control() bool { return h.Attributes&0x20 != 0 }

// ParseHeader decodes the header at the start of b. It checks only that the
// header is present and self-consistent (magic 2, a batchLength that covers
// the header, a known codec, a record count between 0 and lastOffsetDelta+1:
// compaction may leave fewer records than offsets, never more); it does not
// require the whole batch to be in b and does not check the CRC.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, a header needs %d", ErrMalformed, len(b), HeaderSize)
	}
	be := binary.BigEndian
	h := Header{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		BatchLength:          int32(be.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(be.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		RecordCount:          int32(be.Uint32(b[offRecordCount:])),
	}
	switch {
	case h.Magic != 2:
		return h, fmt.Errorf("%w: magic %d, only 2 is supported", ErrMalformed, h.Magic)
	case h.BatchLength < HeaderSize-LengthPrefix:
		return h, fmt.Errorf("%w: batchLength %d is shorter than the header", ErrMalformed, h.BatchLength)
	case h.LastOffsetDelta < 0:
		return h, fmt.Errorf("%w: negative lastOffsetDelta %d", ErrMalformed, h.LastOffsetDelta)
	case h.BaseOffset < 0:
		return h, fmt.Errorf("%w: negative baseOffset %d", ErrMalformed, h.BaseOffset)
	case h.Compression() > CompressionZstd:
		return h, fmt.Errorf("%w: unknown compression codec %d", ErrMalformed, h.Compression())
	case h.RecordCount < 0:
		return h, fmt.Errorf("%w: negative record count %d", ErrMalformed, h.RecordCount)
	case int64(h.RecordCount) > int64(h.LastOffsetDelta)+1:
		return h, fmt.Errorf("%w: record count %d exceeds lastOffsetDelta %d + 1", ErrMalformed, h.RecordCount, h.LastOffsetDelta)
	}
	return h, nil
}

// Checksum computes the CRC32C a batch should carry: that of everything from
// the attributes field to the end of the batch.
func Checksum(batch []byte) uint32 {
	return crc32.Checksum(batch[offAttributes:], crcTable)
}

// Check parses the header of the single batch that b must hold exactly and
// verifies its CRC32C. It is the check the log runs on append and on every
// read; it does not decompress or walk the records.
func Check(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if h.Size() != len(b) {
		return h, fmt.Errorf("%w: batchLength says %d bytes, got %d", ErrMalformed, h.Size(), len(b))
	}
	if sum := Checksum(b); sum != h.CRC {
		return h, fmt.Errorf("%w: stored %#08x, computed %#08x", ErrChecksum, h.CRC, sum)
	}
	return h, nil
}

// CheckProduced is Check plus the rules a batch from a producer must follow
// before the log accepts it: at least one record, a record count that matches
// lastOffsetDelta, and no more than maxBytes in all.
func CheckProduced(b []byte, maxBytes int) (Header, error) {
	if maxBytes > 0 && len(b) > maxBytes {
		return Header{}, fmt.Errorf("%w: batch of %d bytes exceeds the limit of %d", ErrTooLarge, len(b), maxBytes)
	}
	h, err := Check(b)
	if err != nil {
		return h, err
	}
	if h.RecordCount < 1 {
		return h, fmt.Errorf("%w: record count %d, want at least 1", ErrMalformed, h.RecordCount)
	}
	if int64(h.RecordCount) != int64(h.LastOffsetDelta)+1 {
		return h, fmt.Errorf("%w: record count %d does not match lastOffsetDelta %d", ErrMalformed, h.RecordCount, h.LastOffsetDelta)
	}
	return h, nil
}

// ErrTooLarge is wrapped by errors reporting a batch or record above a size
// limit.
var ErrTooLarge = errors.New("record batch too large")

// SetBaseOffset rewrites the baseOffset field of the batch at the start of b.
// The field lies outside the CRC, so the checksum stays valid.
func SetBaseOffset(b []byte, offset int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(offset))
}

// SetPartitionLeaderEpoch rewrites the partitionLeaderEpoch field, which also
// lies outside the CRC.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(epoch))
}

// SetMaxTimestampLogAppend marks the batch as LogAppendTime with the given
// time and recomputes the CRC, for topics configured with
// message.timestamp.type=LogAppendTime.
func SetMaxTimestampLogAppend(b []byte, ts int64) {
	be := binary.BigEndian
	attrs := be.Uint16(b[offAttributes:]) | 0x8
	be.PutUint16(b[offAttributes:], attrs)
	be.PutUint64(b[offMaxTimestamp:], uint64(ts))
	be.PutUint32(b[offCRC:], Checksum(b))
}
