// Package meta is Sluice's embedded metadata store: topic specs, consumer
// group offsets and small key/value state for pipelines, kept in one bbolt
// file. Every call is one bbolt transaction, fsynced before a mutating call
// returns, so what a call acknowledged survives a crash and what it did not
// acknowledge is absent or complete, never half-written.
//
// # Layout
//
// The file holds these top-level buckets (keys and values in bytes):
//
//	meta    "format" -> decimal format version, currently "1"
//	topics  topic name -> JSON {"name","id" (32 hex digits),"partitions",
//	        "config" (overrides only),"created_at" (RFC 3339, UTC)}
//	groups  group name -> bucket:
//	            topic name, 0x00, partition (uint32 big-endian)
//	                -> JSON {"offset","leader_epoch","metadata","commit_ms"}
//	kv      namespace -> bucket: key -> value as given
//
// Topic names cannot contain 0x00, so offset keys sort by topic and then by
// partition. Empty group and namespace buckets are removed. A file whose
// format version is newer than this build understands is refused, so that a
// downgrade cannot misread it; a later version migrates older files in Open.
//
// Methods take no context.Context: each call is one local transaction
// bounded by an fsync, which bbolt cannot abandon midway.
package meta

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FormatVersion is the version of the layout described in the package doc.
const FormatVersion = 1

// DefaultTimeout is how long Open waits for the file lock by default.
const DefaultTimeout = time.Second

var (
	// ErrNotFound is wrapped by errors about a topic, group or key that does
	// not exist.
	ErrNotFound = errors.New("not found")
	// ErrInvalid is wrapped by errors about an argument the store refuses
	// to persist; the message names the bad value.
	ErrInvalid = errors.New("invalid argument")
	// ErrLocked is wrapped by the error of Open when another process, or
	// another Store in this process, holds the file.
	ErrLocked = errors.New("metadata store is locked by another process")
	// ErrCorrupt is wrapped by errors about stored data that cannot be
	// decoded.
	ErrCorrupt = errors.New("metadata store is corrupt")
	// ErrVersion is wrapped by the error of Open for a file written in a
	// format this build does not understand.
	ErrVersion = errors.New("unsupported metadata format version")
	// ErrClosed is wrapped by the error of every method called after Close.
	ErrClosed = errors.New("metadata store is closed")
)

var (
	bucketMeta   = []byte("meta")
	bucketTopics = []byte("topics")
	bucketGroups = []byte("groups")
	bucketKV     = []byte("kv")
	keyFormat    = []byte("format")
)

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Timeout bounds the wait for the file lock held by another process.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// Now stamps offset commits that carry no commit time. Nil means
	// time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is the metadata store. Its methods are safe for concurrent use;
// writes are serialized, reads run concurrently with each other and with a
// write. Values a method returns are copies the caller may keep and modify.
type Store struct {
	db   *bolt.DB
	opts Options
}

// Open opens the store at path, creating the file if it does not exist.
// The parent directory must exist. Only one Store may have a file open at a
// time: if another holds it, Open waits up to opts.Timeout and then fails
// with ErrLocked.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open metadata store %s: %w (waited %s; is another sluice using the same data directory?)", path, ErrLocked, opts.Timeout)
		}
		return nil, fmt.Errorf("open metadata store %s: %w", path, err)
	}
	if err := db.Update(initialize); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open metadata store %s: %w", path, err)
	}
	return &Store{db: db, opts: opts}, nil
}

// initialize writes the layout into an empty file and checks the format
// version of an existing one.
func initialize(tx *bolt.Tx) error {
	mb := tx.Bucket(bucketMeta)
	if mb == nil {
		empty := true
		_ = tx.ForEach(func([]byte, *bolt.Bucket) error {
			empty = false
			return nil
		})
		if !empty {
			return fmt.Errorf("%w: no format version; not a Sluice metadata file", ErrCorrupt)
		}
		var err error
		if mb, err = tx.CreateBucket(bucketMeta); err != nil {
			return err
		}
		if err := mb.Put(keyFormat, []byte(strconv.Itoa(FormatVersion))); err != nil {
			return err
		}
	}
	raw := mb.Get(keyFormat)
	v, err := strconv.Atoi(string(raw))
	if err != nil {
		return fmt.Errorf("%w: format version %q", ErrCorrupt, raw)
	}
	if v != FormatVersion {
		return fmt.Errorf("%w: file has version %d, this build reads version %d; use a newer sluice", ErrVersion, v, FormatVersion)
	}
	for _, name := range [][]byte{bucketTopics, bucketGroups, bucketKV} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return err
		}
	}
	return nil
}

// Close waits for running calls to finish and releases the file. Calls
// after Close fail with ErrClosed; Close itself may be called again.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close metadata store: %w", err)
	}
	return nil
}

// update runs fn in a write transaction, which bbolt fsyncs before it
// returns, and wraps any error with op.
func (s *Store) update(op string, fn func(*bolt.Tx) error) error {
	return wrap(op, s.db.Update(fn))
}

// view runs fn in a read transaction and wraps any error with op.
func (s *Store) view(op string, fn func(*bolt.Tx) error) error {
	return wrap(op, s.db.View(fn))
}

func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return fmt.Errorf("%s: %w", op, ErrClosed)
	default:
		return fmt.Errorf("%s: %w", op, err)
	}
}

// invalidError marks an error from another package's validation as
// ErrInvalid without repeating ErrInvalid's text.
type invalidError struct{ err error }

func (e invalidError) Error() string   { return e.err.Error() }
func (e invalidError) Unwrap() []error { return []error{ErrInvalid, e.err} }
