// Package connector is the contract between pipelines and the systems they
// deliver to: the Record a pipeline carries from its source topic through
// its processors, and the Sink that a sub-package (postgres, parquet, file,
// topic) implements for one external system. The pipeline runtime owns
// batching, retries, dead-lettering and checkpoints; a sink only writes.
package connector

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
)

// Sink writes batches of records to an external system. A pipeline calls
// Write from one goroutine at a time, batch after batch, in source order;
// Close once, after the last Write has returned.
type Sink interface {
	// Write makes every record of b durable in the external system, or
	// fails. It returns nil only when every record of b is either durable
	// or was handed to b.Reject, which it must call (and see succeed)
	// before the batch becomes durable, so that a crash never loses a
	// rejected record: the runtime stores them in the dead-letter topic.
	//
	// A record is rejected when the system refuses it for its own content
	// (a constraint violation, a value that does not fit its column); the
	// rest of the batch is then written without it. Any other error
	// (connection refused, a timeout, a serialization failure, a full disk)
	// is returned, and the runtime retries the whole batch with backoff:
	// Write must therefore be safe to repeat after an error, leaving the
	// system as if the failed call had written nothing, or as if it wrote
	// the batch (an upsert). Errors that retrying cannot fix wrap
	// ErrPermanent so the pipeline fails at once instead of retrying.
	//
	// Write must not retain b or its records after it returns.
	Write(ctx context.Context, b *Batch) error
	// Close releases the sink's resources (connections, open files,
	// anything not yet complete is discarded, never made visible).
	Close(ctx context.Context) error
}

// TransactionalSink is a Sink that stores the pipeline's source positions
// with the records, atomically: the exactly-once delivery mode. Each Write
// stores b.Checkpoint in the same transaction as b's records, and the
// pipeline resumes from LoadCheckpoint after a crash, so a batch is either
// written with its positions or not at all.
type TransactionalSink interface {
	Sink
	// LoadCheckpoint returns the positions stored by the last Write that
	// succeeded, or none for a pipeline that has written nothing.
	LoadCheckpoint(ctx context.Context) (Checkpoint, error)
}

// StagingSink is a Sink whose records become durable later than Write
// returns: a Parquet file is written whole and is visible only once it is
// complete. Write stages the batch (into a temporary file, bounded in
// memory) and returns; Flush completes what is staged and makes it durable
// and visible. The runtime commits a batch's checkpoint only after a Flush
// that followed its Write returned nil, so a crash loses staged records from
// the sink but never from the source, which is read again from the last
// committed checkpoint.
type StagingSink interface {
	Sink
	// Flush makes every staged record durable and visible, atomically per
	// file. After an error nothing staged is visible and the runtime
	// resumes from its last committed checkpoint.
	Flush(ctx context.Context) error
	// FlushDue returns when the staged records should be flushed (a file
	// reached its size, or its age), and false when nothing is staged.
	FlushDue() (time.Time, bool)
}

// Batch is one write: records in source order, the positions they take the
// pipeline to, and the callback for rejected records.
type Batch struct {
	Records []*Record
	// Checkpoint is where the pipeline resumes once this batch is durable:
	// for every source partition the batch covers, the offset after its
	// last record (records dropped by processors included).
	Checkpoint Checkpoint
	// Reject hands records the system refused to the dead-letter topic.
	// It returns an error when that failed, and then Write must fail too
	// without making the batch durable.
	Reject func(ctx context.Context, rejected []Rejection) error
}

// Rejection is a record a sink refused, with the reason.
type Rejection struct {
	Record *Record
	Err    error
}

// Checkpoint holds the next offset to read of each source partition.
type Checkpoint []Position

// Position is the next offset to read in one partition.
type Position struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// ErrPermanent marks sink errors that retrying cannot fix: a table that
// does not exist and may not be created, a directory that cannot be
// written, an authentication failure.
var ErrPermanent = errors.New("permanent sink error")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil || errors.Is(err, ErrPermanent) {
		return err
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() []error { return []error{ErrPermanent, e.err} }

// Record is one record on its way through a pipeline. Processors change its
// key, value and headers; sinks read them. The value is the stored bytes
// until someone asks for it as JSON (Doc), and then the parsed document
// until someone asks for bytes again, so a chain of processors parses and
// encodes each record at most once.
type Record struct {
	// Where the record came from; they do not change.
	Topic     string
	Partition int32
	Offset    int64
	Timestamp time.Time

	Key     []byte
	Headers []record.RecordHeader

	value []byte
	doc   any
	// state says which of value and doc is current.
	state valueState
}

type valueState uint8

const (
	valueBytes valueState = iota // value is current; doc is unset
	valueDoc                     // doc is current; value is stale
	valueBoth                    // both are current
)

// NewRecord returns a record with the given value bytes (nil: a null value).
func NewRecord(value []byte) *Record { return &Record{value: value} }

// Value returns the value's bytes, encoding the JSON document when a
// processor replaced it. A null value is nil.
func (r *Record) Value() ([]byte, error) {
	if r.state == valueDoc {
		b, err := EncodeJSON(r.doc)
		if err != nil {
			return nil, fmt.Errorf("encode value: %w", err)
		}
		r.value, r.state = b, valueBoth
	}
	return r.value, nil
}

// RawValue returns the stored bytes of the value (nil: a null value) and
// whether they still are the value: false once a processor replaced the
// document (SetDoc), until Value encodes it. Unlike Doc, the bytes keep
// the exact text of numbers a float64 cannot hold, for sinks that can.
func (r *Record) RawValue() ([]byte, bool) { return r.value, r.state != valueDoc }

// SetValue replaces the value with bytes.
func (r *Record) SetValue(b []byte) { r.value, r.doc, r.state = b, nil, valueBytes }

// Doc returns the value parsed as JSON (see DecodeJSON for the types); a
// null value is nil. The result is shared: callers that change it must
// call SetDoc with it afterwards.
func (r *Record) Doc() (any, error) {
	if r.state == valueBytes {
		if r.value == nil {
			r.doc, r.state = nil, valueBoth
			return nil, nil
		}
		d, err := DecodeJSON(r.value)
		if err != nil {
			return nil, fmt.Errorf("value is not JSON: %w", err)
		}
		r.doc, r.state = d, valueBoth
	}
	return r.doc, nil
}

// Parsed reports whether the value has been parsed, so that Doc costs
// nothing; when it has not, Value returns the stored bytes as they are.
func (r *Record) Parsed() bool { return r.state != valueBytes }

// ParseDoc parses the value with d, so that a later Doc returns the
// document at once; the error is Doc's. Fetchers call it ahead of the
// processors, each with its own decoder.
func (r *Record) ParseDoc(d *JSONDecoder) error {
	if r.state != valueBytes || r.value == nil {
		return nil
	}
	doc, err := d.Decode(r.value)
	if err != nil {
		return fmt.Errorf("value is not JSON: %w", err)
	}
	r.doc, r.state = doc, valueBoth
	return nil
}

// SetDoc replaces the value with a JSON document.
func (r *Record) SetDoc(doc any) { r.doc, r.value, r.state = doc, nil, valueDoc }

// Header returns the value of the last header named key, and whether
// there is one.
func (r *Record) Header(key string) ([]byte, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

// SetHeader replaces every header named key with one of the given value.
func (r *Record) SetHeader(key string, value []byte) {
	out := r.Headers[:0]
	for _, h := range r.Headers {
		if h.Key != key {
			out = append(out, h)
		}
	}
	r.Headers = append(out, record.RecordHeader{Key: key, Value: value})
}

// Clone returns a copy whose key, headers and document can be changed
// without affecting r. Byte slices are shared: nobody writes into them.
func (r *Record) Clone() *Record {
	c := *r
	c.Headers = append([]record.RecordHeader(nil), r.Headers...)
	if r.state != valueBytes {
		c.doc = CloneJSON(r.doc)
	}
	return &c
}
