// Package file is the sink that appends a pipeline's records to a JSON Lines
// file, one line per record, durable when Write returns and rotated by size
// and age; NewWriter writes the same lines to a stream such as standard
// output, for looking at a pipeline's output while building it.
//
// Every line is valid JSON whatever the records hold, and the file never
// keeps a partial line: a failed write is cut off before the error is
// returned, and a line torn by a crash is cut off when the file is opened
// again. The lines, by format:
//
//	value   the value as JSON: as stored when it is valid JSON (compacted
//	        when it spans lines), encoded compactly when a processor changed
//	        the document, null for a null value, and otherwise (text, binary)
//	        the bytes as a JSON string, so that every line parses
//	record  {"topic":"orders","partition":0,"offset":42,
//	        "timestamp":"2026-12-02T10:15:00.123Z","key":"k1",
//	        "headers":{"h":"v"},"value":{...}}
//	        timestamp is RFC 3339 in UTC with as many fraction digits as
//	        needed; key is a string or null; headers is an object of strings
//	        (null for a null header value; of several headers with one name
//	        the last, as Kafka's lastHeader); value is as in "value" lines
//
// Bytes that are not UTF-8, in a key, a header or a value written as a
// string, become U+FFFD: JSON strings hold text. A pipeline that must keep
// binary values exactly should encode them (base64) in a processor.
//
// Rotation renames the file to
//
//	<path>.<UTC yyyymmddThhmmssZ of the rotation>.<n>
//
// with n = 1, 2, ... the first number that names no file yet (several
// rotations within one second), and starts a new file at path. Rotated files
// are never renamed again, so a reader that lists them sees each once, and
// their names sort in the order they were written. Rotation is checked at
// each Write: a batch goes whole into one file, which is rotated first when
// the batch would take it past RotateBytes or it is RotateInterval old.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Options configures a file Sink.
type Options struct {
	Config Config
	// Now is the clock of rotation by age (default time.Now).
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	// openFile opens the file at path for appending; tests replace it to
	// make writes and fsyncs fail.
	openFile func(path string) (osFile, error)
}

// osFile is what the sink needs of an *os.File.
type osFile interface {
	io.Writer
	io.ReaderAt
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Close() error
}

func openOSFile(path string) (osFile, error) {
	// O_APPEND: after a truncation the next write lands at the new end
	// without a seek.
	return os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
}

// Sink appends JSON Lines to a file (New) or a stream (NewWriter). A Sink is
// used from one goroutine at a time, as connector.Sink says.
type Sink struct {
	opts   Options
	format string
	log    *slog.Logger

	// The stream variant writes to w; the file variant to f.
	w io.Writer
	f osFile
	// size is the length of f up to its last complete batch: what a failed
	// write is truncated back to.
	size int64
	// torn says a write failed and truncating it away failed too, so the
	// next Write truncates first.
	torn bool
	// opened is when f was started, for rotation by age.
	opened time.Time
	closed bool

	buf []byte // the lines of one batch, reused
}

// New opens (or creates) the file at opts.Config.Path, and the directories
// above it, for appending; configuration errors are permanent. A line
// left incomplete by a crash is cut off. The age of a file that already
// existed counts from New, not from its creation: a restart does not rotate
// at once.
func New(ctx context.Context, opts Options) (*Sink, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, connector.Permanent(err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.openFile == nil {
		opts.openFile = openOSFile
	}
	s := &Sink{opts: opts, format: formatOf(opts.Config.Format), log: opts.Logger.With("path", opts.Config.Path)}
	if err := os.MkdirAll(filepath.Dir(opts.Config.Path), 0o755); err != nil {
		return nil, fmt.Errorf("file sink %s: %w", opts.Config.Path, connector.FileError(err))
	}
	if err := s.open(); err != nil {
		return nil, err
	}
	if err := s.repairTail(); err != nil {
		_ = s.f.Close()
		return nil, err
	}
	return s, nil
}

// NewWriter returns a sink that writes lines of the given format ("" is
// "value") to w, one w.Write per batch. It neither syncs nor rotates, and
// it cannot take back a write that failed halfway: the stream may then hold
// a partial line. Close does not close w.
func NewWriter(w io.Writer, format string) (*Sink, error) {
	if err := validateFormat(format); err != nil {
		return nil, err
	}
	return &Sink{w: w, format: formatOf(format), log: slog.Default()}, nil
}

func formatOf(f string) string {
	if f == "" {
		return FormatValue
	}
	return f
}

// Write appends one line per record of b and, for a file, fsyncs before it
// returns. Records whose value cannot be encoded (a processor produced a
// number JSON cannot hold) are rejected. After an error the file holds what
// it held before the call, so the runtime's retry does not duplicate lines;
// a failed fsync is permanent, because after one the page cache can no
// longer be trusted to hold what the disk holds.
func (s *Sink) Write(ctx context.Context, b *connector.Batch) error {
	if s.closed {
		return errors.New("file sink: write after close")
	}
	s.buf = s.buf[:0]
	var rejected []connector.Rejection
	for _, rec := range b.Records {
		start := len(s.buf)
		var err error
		if s.buf, err = appendLine(s.buf, rec, s.format); err != nil {
			s.buf = s.buf[:start]
			rejected = append(rejected, connector.Rejection{Record: rec, Err: err})
		}
	}
	if len(rejected) > 0 {
		if err := b.Reject(ctx, rejected); err != nil {
			return fmt.Errorf("%s: reject: %w", s.name(), err)
		}
	}
	if len(s.buf) == 0 {
		return nil
	}
	if s.w != nil {
		if _, err := s.w.Write(s.buf); err != nil {
			return fmt.Errorf("%s: write: %w", s.name(), err)
		}
		return nil
	}
	return s.append(s.buf)
}

// append writes p to the file (rotating first when due), fsyncs, and on
// error truncates back to the size before.
func (s *Sink) append(p []byte) error {
	if s.torn {
		if err := s.f.Truncate(s.size); err != nil {
			return fmt.Errorf("%s: truncate the failed write: %w", s.name(), err)
		}
		s.torn = false
	}
	if s.f != nil && s.rotateDue(len(p)) {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	if s.f == nil {
		// A rotation renamed the file but could not start the next one.
		if err := s.open(); err != nil {
			return err
		}
	}
	if _, err := s.f.Write(p); err != nil {
		s.undo()
		return fmt.Errorf("%s: write: %w", s.name(), connector.FileError(err))
	}
	if err := s.f.Sync(); err != nil {
		s.undo()
		return fmt.Errorf("%s: fsync: %w", s.name(), connector.Permanent(err))
	}
	s.size += int64(len(p))
	return nil
}

// undo cuts a failed write off the file, or leaves that to the next Write.
func (s *Sink) undo() {
	if err := s.f.Truncate(s.size); err != nil {
		s.log.Warn("file sink: cannot truncate a failed write; the next write tries again", "err", err)
		s.torn = true
	}
}

// rotateDue says whether the file must be rotated before n more bytes are
// written: never an empty file, so a batch larger than RotateBytes still
// goes somewhere.
func (s *Sink) rotateDue(n int) bool {
	c := s.opts.Config
	if s.size == 0 {
		return false
	}
	if c.RotateBytes > 0 && s.size+int64(n) > int64(c.RotateBytes) {
		return true
	}
	return c.RotateInterval > 0 && s.opts.Now().Sub(s.opened) >= c.RotateInterval.D()
}

// rotate renames the file to its rotated name and starts a new one.
func (s *Sink) rotate() error {
	path := s.opts.Config.Path
	stamp := s.opts.Now().UTC().Format("20060102T150405Z")
	var to string
	for n := 1; ; n++ {
		to = path + "." + stamp + "." + strconv.Itoa(n)
		if _, err := os.Lstat(to); errors.Is(err, fs.ErrNotExist) {
			break
		} else if err != nil {
			return fmt.Errorf("%s: rotate: %w", s.name(), connector.FileError(err))
		}
	}
	// The sink is the only writer of path, so nothing can take the name
	// between the Lstat and the rename.
	if err := os.Rename(path, to); err != nil {
		return fmt.Errorf("%s: rotate: %w", s.name(), connector.FileError(err))
	}
	old := s.f
	s.f, s.size = nil, 0
	if err := old.Close(); err != nil {
		s.log.Warn("file sink: close the rotated file", "file", to, "err", err)
	}
	s.log.Info("file sink: rotated", "file", to)
	return s.open()
}

// open opens the file at path, makes its directory entry durable, and
// takes its size.
func (s *Sink) open() error {
	path := s.opts.Config.Path
	f, err := s.opts.openFile(path)
	if err != nil {
		return fmt.Errorf("%s: open: %w", s.name(), connector.FileError(err))
	}
	fi, err := f.Stat()
	if err == nil {
		err = connector.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: open: %w", s.name(), connector.FileError(err))
	}
	s.f, s.size, s.opened = f, fi.Size(), s.opts.Now()
	return nil
}

// repairTail cuts off a last line without its newline: a write torn by a
// crash, whose records the runtime sends again because that Write never
// returned.
func (s *Sink) repairTail() error {
	end := s.size
	var chunk [4096]byte
	for end > 0 {
		n := int64(len(chunk))
		if end < n {
			n = end
		}
		if _, err := s.f.ReadAt(chunk[:n], end-n); err != nil {
			return fmt.Errorf("%s: read the last line: %w", s.name(), err)
		}
		i := n - 1
		for i >= 0 && chunk[i] != '\n' {
			i--
		}
		if i >= 0 {
			end = end - n + i + 1
			break
		}
		end -= n
	}
	if end == s.size {
		return nil
	}
	s.log.Warn("file sink: cutting off a partial last line left by a crash", "bytes", s.size-end)
	if err := s.f.Truncate(end); err != nil {
		return fmt.Errorf("%s: cut off a partial line: %w", s.name(), connector.FileError(err))
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("%s: fsync: %w", s.name(), connector.Permanent(err))
	}
	s.size = end
	return nil
}

// Close closes the file. Everything Write returned nil for is already
// durable; Close does not close the stream of NewWriter.
func (s *Sink) Close(ctx context.Context) error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.f == nil {
		return nil
	}
	f := s.f
	s.f = nil
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: close: %w", s.name(), err)
	}
	return nil
}

func (s *Sink) name() string {
	if s.w != nil {
		return "file sink (stream)"
	}
	return "file sink " + s.opts.Config.Path
}
