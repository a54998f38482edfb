package logstore

import (
	"errors"
	"fmt"
)

// Sentinel errors; test for them with errors.Is.
var (
	ErrUnknownTopic      = errors.New("unknown topic")
	ErrUnknownPartition  = errors.New("unknown partition")
	ErrTopicExists       = errors.New("topic already exists")
	ErrOffsetOutOfRange  = errors.New("offset out of range")
	ErrClosed            = errors.New("log closed")
	ErrPartitionFailed   = errors.New("partition failed")
	ErrCorrupt           = errors.New("corrupt log data")
	ErrInvalidPartitions = errors.New("invalid partition count")

	// ErrOutOfOrderSequence reports an idempotent batch whose sequence
	// does not follow the producer's last batch (see producers.go).
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrInvalidProducerEpoch reports an idempotent batch from an epoch
	// older than the producer's current one: a fenced producer.
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")
	// ErrInvalidRecord reports a well-formed batch whose fields no
	// producer may send, such as a negative sequence number.
	ErrInvalidRecord = errors.New("invalid record batch")
)

// CorruptionError reports stored bytes that fail their checks: a bad CRC, a
// malformed header, or an offset out of sequence. It wraps ErrCorrupt.
type CorruptionError struct {
	Topic     string
	Partition int32
	Segment   string // file name
	Position  int64  // byte position of the damaged batch in Segment
	Offset    int64  // the offset expected at Position
	Err       error  // what was wrong
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("%s/%d: corrupt batch in %s at byte %d (offset %d): %v",
		e.Topic, e.Partition, e.Segment, e.Position, e.Offset, e.Err)
}

// Unwrap lets errors.Is match both ErrCorrupt and the underlying cause.
func (e *CorruptionError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// FailedError reports a partition that refuses writes after a write or fsync
// error. The log never retries such an error: after a failed fsync the page
// cache may hold data the disk does not, so only a restart, which recovers
// from what is on disk, can make the partition writable again.
type FailedError struct {
	Topic     string
	Partition int32
	Err       error
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("%s/%d refuses writes until restart: %v", e.Topic, e.Partition, e.Err)
}

// Unwrap matches ErrPartitionFailed and the original cause.
func (e *FailedError) Unwrap() []error { return []error{ErrPartitionFailed, e.Err} }
