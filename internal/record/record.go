package record

import (
	"encoding/binary"
	"fmt"
)

// Record is one record of a batch, as producers hand it to AppendBatch and
// as DecodeBatch hands it back.
//
// A nil Key is Kafka's null key and a nil Value its null value (a tombstone
// on compacted topics); an empty non-nil slice is a present, empty key or
// value. The distinction survives a round trip.
type Record struct {
	Key     []byte
	Value   []byte
	Headers []RecordHeader

	// Timestamp is in Unix milliseconds. AppendBatch writes it as given and
	// never reads the clock; DecodeBatch reports the batch's MaxTimestamp for
	// every record of a LogAppendTime batch.
	Timestamp int64

	// Offset is the record's absolute offset. AppendBatch ignores it (records
	// get offset deltas 0..n-1 and the log assigns the base offset).
	Offset int64

	// Control is set by DecodeBatch on the records of a control batch:
	// transaction markers written by the log, not user data (see
	// ParseControlKey). Consumers skip them. AppendBatch ignores it.
	Control bool
}

// RecordHeader is one key/value header of a record. A nil Value is a null
// header value; the key is never null.
type RecordHeader struct {
	Key   string
	Value []byte
}

// ControlType is the kind of marker a control record carries in its key.
type ControlType int16

// The control record types a transaction leaves in a partition. Kafka
// defines more (KRaft's own log uses some); ParseControlKey returns them too.
const (
	ControlAbort  ControlType = 0
	ControlCommit ControlType = 1
)

// ParseControlKey decodes the key of a control record: an int16 version
// (0 today) followed by an int16 type.
func ParseControlKey(key []byte) (ControlType, error) {
	if len(key) < 4 {
		return 0, fmt.Errorf("%w: control record key of %d bytes, want at least 4", ErrMalformed, len(key))
	}
	if v := int16(binary.BigEndian.Uint16(key)); v < 0 {
		return 0, fmt.Errorf("%w: control record key version %d", ErrMalformed, v)
	}
	return ControlType(binary.BigEndian.Uint16(key[2:])), nil
}
