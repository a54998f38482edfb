// Package parquet is the sink that writes a pipeline's records as Parquet
// files into a directory, a data lake that query engines (DuckDB, Spark,
// Trino) read in place. It is a connector.StagingSink: Write stages records
// into temporary files, bounded in memory, and Flush makes each file visible
// whole, so a reader never sees a partial file.
//
// # Files
//
//	<Path>/
//	  <partition>/                                 one directory per value of Options.Partition
//	    orders-20261202T101500-0001.parquet        complete: <pipeline>-<UTC start>-<seq>
//	    .orders-20261202T101630-0002.parquet.tmp   being written; hidden from readers
//
// Without Options.Partition the files are written in Path itself. A file is
// started when its partition receives records and has no open file, or its
// open file is full (RollBytes) or cannot hold the records (see Columns);
// the time in its name is when it was started, seq counts the sink's
// files and skips names already taken (by an earlier run in the same
// second). Flush writes each file's footer, fsyncs it, gives it its final
// name (a hard link, which never replaces a file, then the temporary name
// is removed) and fsyncs the directory. New removes the temporary files of
// the pipeline that a crash left behind; Close removes those it wrote.
//
// A file is rolled (FlushDue asks for a flush) when it reaches RollBytes
// or is RollInterval old, or when MaxOpenFiles files are open. Rows are
// written out as a row group whenever about RowGroupBytes of a file are
// buffered, so memory stays near RowGroupBytes per open file however large
// the file grows.
//
// # Batch runs
//
// With Options.Run the sink writes the output of one run of a batch
// pipeline, which must become visible all at once, when the run completes,
// and be the same files however often the run is attempted:
//
//	<Path>/<partition>/clicks-batch-3f2a9c0d11e4b7a2-0001.parquet   <pipeline>-batch-<run>-<seq>
//
// seq counts the run's files from 1 in the order they are started, so the
// names follow from the records written alone, not from the clock: a
// repeated run over the same records, in the same batches, writes the same
// names with the same rows. Nothing is published before Flush. A file that
// reaches RollBytes, or the oldest when more than MaxOpenFiles are open, is
// completed at once (footer, fsync) but stays hidden; Flush completes the
// rest and renames each into place, replacing a file of the same name (an
// earlier attempt's, or the run's own output when a range is run again),
// and removes any other file of the run, so that the run's visible output
// is exactly this attempt's. The renames follow one another: a crash among
// them leaves some of the run's files visible, each complete, until the
// run is attempted again. RollInterval and FlushDue's times do not apply:
// the run flushes once, at its end.
//
// # Columns
//
// Every file has four metadata columns, so that each row can be traced to
// the record it came from (and deduplicated after a redelivery):
//
//	_topic       STRING (dictionary encoded)  source topic
//	_partition   INT32                        source partition
//	_offset      INT64                        source offset
//	_timestamp   TIMESTAMP(MILLIS, UTC)       record timestamp
//
// and a column for each top-level field of the records, whose values must
// be JSON objects. With Options.Schema (the pipeline's JSON Schema) the
// columns are its properties: integer INT64, number DOUBLE, boolean
// BOOLEAN, string STRING (TIMESTAMP(MILLIS, UTC) with format date-time),
// object, array and anything else the value as JSON text in a STRING;
// required (and not nullable) properties are REQUIRED columns, the rest
// OPTIONAL. Fields the schema does not list are not written. A record that
// does not fit (a string in an integer column, a missing required field, a
// value that is not an object) is rejected to the dead-letter topic.
//
// Without a schema each file infers its columns from the records staged
// into it, all OPTIONAL: the union of their fields, integers and floats
// mixed widen to DOUBLE, other mixed types become JSON text, a field seen
// only as null gets no column yet. When a later batch brings a field or a
// type the open file cannot hold, the partition starts a new file with the
// widened schema (the earlier file is completed at the next Flush as
// usual), so no record is refused for the shape of its fields.
package parquet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"

	"github.com/sluice-dev/sluice/internal/connector"
)

// Options configures a Sink.
type Options struct {
	Config Config
	// Pipeline names the files (required).
	Pipeline string
	// Partition returns the directory of a record below Config.Path (the
	// runtime compiles Config.PartitionBy into it). An error, or a value
	// that is not a single directory name (see checkPartition), rejects the
	// record. Nil writes every file in Config.Path.
	Partition func(*connector.Record) (string, error)
	// Schema is the pipeline's JSON Schema; nil (or one without properties)
	// infers each file's columns from its records.
	Schema map[string]any
	// Run, when set, names the output of a batch run (1 to 64 of a-z and
	// 0-9): see the package documentation.
	Run string
	// Now is the clock of file names and rolling by age (default time.Now).
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Sink writes Parquet files; see the package documentation. Like every
// connector.Sink it is used from one goroutine at a time.
type Sink struct {
	opts  Options
	cfg   Config // with defaults
	codec compress.Codec
	log   *slog.Logger
	fixed *fileSchema // from Options.Schema; nil: inferred per file

	files []*stagedFile          // open files, in the order they were started
	cur   map[string]*stagedFile // the file taking each partition's records
	seq   int
	// sealed are a run's files that are complete but not yet published
	// (Options.Run), in the order they were started; published the
	// paths a run has published.
	sealed    []*stagedFile
	published map[string]bool
	// newDirs says a partition directory was created since the last flush,
	// so Path must be fsynced for its entry to be durable.
	newDirs bool
	// lost is why a failed Write discarded records staged by earlier ones:
	// the next Flush fails, so the runtime reads them again.
	lost   error
	closed bool

	rows []parquet.Row // scratch of Write
}

// New returns a sink writing into opts.Config.Path, which it creates, and
// removes the temporary files an earlier run of the pipeline left there.
// Configuration errors are permanent.
func New(ctx context.Context, opts Options) (*Sink, error) {
	if err := opts.Config.Validate(); err != nil {
		return nil, connector.Permanent(err)
	}
	if err := checkDirName("pipeline name", opts.Pipeline); err != nil {
		return nil, connector.Permanent(fmt.Errorf("parquet: %w", err))
	}
	if opts.Run != "" && !runName.MatchString(opts.Run) {
		return nil, connector.Permanent(fmt.Errorf("parquet: run %q: want 1 to 64 of a-z and 0-9", opts.Run))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Sink{opts: opts, cfg: opts.Config.withDefaults(), cur: map[string]*stagedFile{}, published: map[string]bool{}}
	s.codec, _ = codec(s.cfg.Compression)
	s.log = opts.Logger.With("pipeline", opts.Pipeline, "path", s.cfg.Path)
	if opts.Schema != nil {
		fields, err := fieldsFromJSONSchema(opts.Schema)
		if err != nil {
			return nil, connector.Permanent(fmt.Errorf("parquet: %w", err))
		}
		if fields != nil {
			s.fixed = newFileSchema(fields)
		}
	}
	if err := os.MkdirAll(s.cfg.Path, 0o755); err != nil {
		return nil, fmt.Errorf("parquet: create %s: %w", s.cfg.Path, connector.FileError(err))
	}
	if err := s.removeTemps(); err != nil {
		return nil, fmt.Errorf("parquet: remove incomplete files in %s: %w", s.cfg.Path, connector.FileError(err))
	}
	return s, nil
}

// group is the records of one write bound for one partition.
type group struct {
	part string
	recs []*connector.Record
	docs []map[string]any
}

// plan is what a write stages into a partition.
type plan struct {
	part    string
	schema  *fileSchema
	newFile bool
	rows    []parquet.Row
}

// Write stages b's records into the files of their partitions. Records are
// rejected (to the dead-letter topic, before anything is staged) when their
// value is not a JSON object, their partition is not valid, or they do not
// fit the schema. After an error from staging itself (a full disk)
// everything staged so far is discarded and the next Flush fails, so that
// the runtime reads those records again.
func (s *Sink) Write(ctx context.Context, b *connector.Batch) error {
	if s.closed {
		return errors.New("parquet: write after close")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var rejected []connector.Rejection
	reject := func(rec *connector.Record, err error) {
		rejected = append(rejected, connector.Rejection{Record: rec, Err: fmt.Errorf("parquet: %w", err)})
	}
	groups := s.group(b.Records, reject)
	s.rows = s.rows[:0]
	plans := make([]plan, 0, len(groups))
	for _, g := range groups {
		if p := s.plan(g, reject); len(p.rows) > 0 {
			plans = append(plans, p)
		}
	}
	if len(rejected) > 0 {
		if err := b.Reject(ctx, rejected); err != nil {
			return fmt.Errorf("parquet: %s: reject: %w", s.opts.Pipeline, err)
		}
	}
	for _, p := range plans {
		if err := s.stage(p); err != nil {
			err = fmt.Errorf("parquet: stage %s: %w", s.where(p.part), err)
			if derr := s.discardAll(); derr != nil {
				s.log.Warn("parquet: remove incomplete files", "err", derr)
			}
			s.lost = err
			return err
		}
	}
	if s.opts.Run != "" {
		if err := s.seal(); err != nil {
			err = fmt.Errorf("parquet: %s: complete a file: %w", s.opts.Pipeline, err)
			if derr := s.discardAll(); derr != nil {
				s.log.Warn("parquet: remove incomplete files", "err", derr)
			}
			s.lost = err
			return err
		}
	}
	return nil
}

// seal completes, without publishing, a run's files that take no more
// rows (full) and the oldest ones while more than MaxOpenFiles are open,
// so that a long run holds the memory and descriptors of MaxOpenFiles
// files at most. Which files it seals follows from the writes alone.
func (s *Sink) seal() error {
	var done, open []*stagedFile
	for _, sf := range s.files {
		if s.full(sf) {
			done = append(done, sf)
		} else {
			open = append(open, sf)
		}
	}
	if n := len(open) - s.cfg.MaxOpenFiles; n > 0 {
		done = append(done, open[:n]...)
		open = open[n:]
	}
	s.files = open
	for _, sf := range done {
		if s.cur[sf.part] == sf {
			delete(s.cur, sf.part)
		}
		s.sealed = append(s.sealed, sf)
		if err := sf.complete(); err != nil {
			return err
		}
	}
	return nil
}

// group sorts the records into partitions, in the order the partitions
// first appear, rejecting those without a partition or an object value.
func (s *Sink) group(recs []*connector.Record, reject func(*connector.Record, error)) []*group {
	var groups []*group
	byPart := map[string]*group{}
	for _, rec := range recs {
		doc, err := rec.Doc()
		if err != nil {
			reject(rec, err)
			continue
		}
		obj, ok := doc.(map[string]any)
		if !ok {
			reject(rec, fmt.Errorf("value is %s, want a JSON object (one row)", describe(doc)))
			continue
		}
		part := ""
		if s.opts.Partition != nil {
			if part, err = s.opts.Partition(rec); err != nil {
				reject(rec, fmt.Errorf("partition: %w", err))
				continue
			}
			if err := checkPartition(part); err != nil {
				reject(rec, err)
				continue
			}
		}
		g := byPart[part]
		if g == nil {
			g = &group{part: part}
			byPart[part] = g
			groups = append(groups, g)
		}
		g.recs = append(g.recs, rec)
		g.docs = append(g.docs, obj)
	}
	return groups
}

// plan converts a partition's records into rows of the schema they are
// staged with, and says whether that takes a new file: the partition has
// none open, its file is full, or (inferring) the records need columns it
// lacks.
func (s *Sink) plan(g *group, reject func(*connector.Record, error)) plan {
	cur := s.cur[g.part]
	p := plan{part: g.part, schema: s.fixed, newFile: cur == nil || s.full(cur)}
	recs, docs := g.recs, g.docs
	if s.fixed == nil {
		var from *fileSchema
		if cur != nil {
			from = cur.schema
		}
		in := newInference(from)
		recs, docs = recs[:0:0], docs[:0:0]
		for i, doc := range g.docs {
			if err := in.add(doc); err != nil {
				reject(g.recs[i], err)
				continue
			}
			recs, docs = append(recs, g.recs[i]), append(docs, doc)
		}
		switch {
		case cur == nil || in.changed:
			p.schema, p.newFile = newFileSchema(in.fields), true
		default:
			p.schema = cur.schema
		}
	}
	start := len(s.rows)
	for i, rec := range recs {
		var buf parquet.Row
		if n := len(s.rows); n < cap(s.rows) {
			buf = s.rows[:n+1][n]
		}
		row, err := p.schema.row(buf, rec, docs[i])
		if err != nil {
			reject(rec, err)
			continue
		}
		s.rows = append(s.rows, row)
	}
	p.rows = s.rows[start:]
	return p
}

// full says whether a file has reached RollBytes and takes no more rows.
func (s *Sink) full(sf *stagedFile) bool { return sf.w.Size() >= int64(s.cfg.RollBytes) }

func (s *Sink) stage(p plan) error {
	sf := s.cur[p.part]
	if p.newFile {
		dir := s.cfg.Path
		if p.part != "" {
			dir = filepath.Join(dir, p.part)
		}
		var err error
		if sf, err = s.create(p.part, dir, p.schema); err != nil {
			return err
		}
		s.files = append(s.files, sf)
		s.cur[p.part] = sf
	}
	return s.write(sf, p.rows)
}

// FlushDue returns when the open files should be completed: now when one
// reached RollBytes, MaxOpenFiles are open or a failed Write lost staged
// records; else when the oldest turns RollInterval old. It returns false
// when nothing is staged.
//
// With Options.Run it says only whether anything is staged, with the zero
// time: a run flushes once, when it has written everything.
func (s *Sink) FlushDue() (time.Time, bool) {
	if s.lost != nil {
		return s.opts.Now(), true
	}
	if s.opts.Run != "" {
		return time.Time{}, len(s.files)+len(s.sealed) > 0
	}
	if len(s.files) == 0 {
		return time.Time{}, false
	}
	if len(s.files) >= s.cfg.MaxOpenFiles {
		return s.opts.Now(), true
	}
	due := s.files[0].started.Add(s.cfg.RollInterval.D())
	for _, sf := range s.files {
		if s.full(sf) {
			return s.opts.Now(), true
		}
		due = minTime(due, sf.started.Add(s.cfg.RollInterval.D()))
	}
	return due, true
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Flush completes every open file and makes it visible. All files are
// written and fsynced before the first is renamed, so an error in writing
// leaves none of them visible; one in renaming leaves those before it
// visible, each complete. After an error nothing remains staged.
func (s *Sink) Flush(ctx context.Context) error {
	if s.closed {
		return errors.New("parquet: flush after close")
	}
	if s.lost != nil {
		err := s.lost
		s.lost = nil
		return fmt.Errorf("parquet: flush %s: staged records were discarded after an earlier error: %w", s.opts.Pipeline, err)
	}
	if s.opts.Run != "" {
		return s.publishRun()
	}
	files := s.files
	s.files = nil
	clear(s.cur)
	fail := func(sf *stagedFile, rest []*stagedFile, err error) error {
		for _, o := range rest {
			if derr := o.discard(); derr != nil {
				s.log.Warn("parquet: remove an incomplete file", "file", o.tmp, "err", derr)
			}
		}
		return fmt.Errorf("parquet: flush %s: %w", s.where(sf.part), err)
	}
	for _, sf := range files {
		if err := sf.complete(); err != nil {
			return fail(sf, files, err)
		}
	}
	dirs := map[string]bool{}
	for i, sf := range files {
		if err := sf.publish(s.opts.Pipeline, s.nextSeq); err != nil {
			return fail(sf, files[i:], err)
		}
		dirs[sf.dir] = true
	}
	for _, sf := range files {
		if dirs[sf.dir] {
			delete(dirs, sf.dir)
			if err := connector.SyncDir(sf.dir); err != nil {
				return fmt.Errorf("parquet: flush %s: sync directory: %w", s.where(sf.part), connector.FileError(err))
			}
		}
	}
	if s.newDirs {
		if err := connector.SyncDir(s.cfg.Path); err != nil {
			return fmt.Errorf("parquet: flush %s: sync directory %s: %w", s.opts.Pipeline, s.cfg.Path, connector.FileError(err))
		}
		s.newDirs = false
	}
	for _, sf := range files {
		s.log.Debug("parquet: file complete", "file", describeFile(sf), "rows", sf.rows)
	}
	return nil
}

func (s *Sink) nextSeq() int {
	s.seq++
	return s.seq
}

// where names a partition of the pipeline in errors.
func (s *Sink) where(part string) string {
	if part == "" {
		return s.opts.Pipeline
	}
	return s.opts.Pipeline + "/" + part
}

// discardAll removes every open and sealed file.
func (s *Sink) discardAll() error {
	var errs []error
	for _, sf := range slices.Concat(s.sealed, s.files) {
		if err := sf.discard(); err != nil {
			errs = append(errs, err)
		}
	}
	s.files, s.sealed = nil, nil
	clear(s.cur)
	return errors.Join(errs...)
}

// Close discards what is staged: the temporary files are removed and never
// become visible.
func (s *Sink) Close(ctx context.Context) error {
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.discardAll(); err != nil {
		return fmt.Errorf("parquet: close %s: %w", s.opts.Pipeline, err)
	}
	return nil
}
