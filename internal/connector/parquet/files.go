package parquet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/compress/gzip"
	"github.com/parquet-go/parquet-go/compress/snappy"
	"github.com/parquet-go/parquet-go/compress/uncompressed"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/sluice-dev/sluice/internal/connector"
)

func codec(name string) (compress.Codec, bool) {
	switch name {
	case "snappy":
		return &snappy.Codec{}, true
	case "zstd":
		return &zstd.Codec{}, true
	case "gzip":
		return &gzip.Codec{}, true
	case "none":
		return &uncompressed.Codec{}, true
	}
	return nil, false
}

// stagedFile is a file being written: a temporary file in its partition's
// directory, with the writer that encodes rows into it.
type stagedFile struct {
	part    string // partition ("" without partitioning)
	dir     string
	name    string // final name, without the directory
	tmp     string // temporary path
	started time.Time
	schema  *fileSchema
	f       *os.File
	w       *parquet.Writer
	rows    int64
	// groupStart is the writer's size when the current row group began.
	groupStart int64
}

// maxPartitionLen keeps a partition a valid file name on every common file
// system (255 bytes).
const maxPartitionLen = 255

// checkPartition checks that a partition names one directory below Path:
// not empty, not hidden (the temporary files are hidden, and readers such
// as Spark skip hidden directories), no separators, no "..", no control
// characters, valid UTF-8, at most 255 bytes.
func checkPartition(p string) error { return checkDirName("partition", p) }

// checkDirName checks a name that makes (part of) a file name; what names
// it in errors.
func checkDirName(what, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s is empty", what)
	case len(p) > maxPartitionLen:
		return fmt.Errorf("%s %.40q... is longer than %d bytes", what, p, maxPartitionLen)
	case p[0] == '.':
		return fmt.Errorf("%s %q starts with a dot", what, p)
	case !utf8.ValidString(p):
		return fmt.Errorf("%s %q is not UTF-8", what, p)
	}
	for _, r := range p {
		if r == '/' || r == '\\' || unicode.IsControl(r) {
			return fmt.Errorf("%s %q holds %q: it must name one directory", what, p, r)
		}
	}
	if strings.Contains(p, "..") {
		return fmt.Errorf("%s %q holds \"..\"", what, p)
	}
	return nil
}

// fileName is the final name of a pipeline's file started at t.
func fileName(pipeline string, t time.Time, seq int) string {
	return fmt.Sprintf("%s-%s-%04d.parquet", pipeline, t.UTC().Format("20060102T150405"), seq)
}

// runName is what Options.Run may be: no dash, so that a run's file
// names cannot be taken for another pipeline's (see tmpPattern).
var runName = regexp.MustCompile(`^[a-z0-9]{1,64}$`)

// runFileName is the final name of the seq'th file of a batch run.
func runFileName(pipeline, run string, seq int) string {
	return fmt.Sprintf("%s-batch-%s-%04d.parquet", pipeline, run, seq)
}

func tmpName(name string) string { return "." + name + ".tmp" }

// tmpPattern matches the temporary files of pipeline and no other: the
// date or the dash-free run name after the name, then the number, keep
// "orders" from matching "orders-eu"'s files.
func tmpPattern(pipeline string) *regexp.Regexp {
	return regexp.MustCompile(`^\.` + regexp.QuoteMeta(pipeline) + `-(\d{8}T\d{6}|batch-[a-z0-9]+)-\d+\.parquet\.tmp$`)
}

// runPattern matches the complete files of one run of pipeline.
func runPattern(pipeline, run string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(pipeline) + `-batch-` + regexp.QuoteMeta(run) + `-\d+\.parquet$`)
}

// create starts a file in dir, named for the time and the sink's next
// sequence number; a name taken (by a sink of an earlier run in the same
// second) moves on to the next number.
func (s *Sink) create(part, dir string, schema *fileSchema) (*stagedFile, error) {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, connector.FileError(err)
		}
		s.newDirs = true
	}
	now := s.opts.Now()
	if s.opts.Run != "" {
		// A run's names follow from the order of its files alone; one
		// left by an earlier attempt is replaced when this one publishes.
		s.seq++
		name := runFileName(s.opts.Pipeline, s.opts.Run, s.seq)
		tmp := filepath.Join(dir, tmpName(name))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, connector.FileError(err)
		}
		w := parquet.NewWriter(f, schema.schema, parquet.Compression(s.codec),
			parquet.KeyValueMetadata("sluice.pipeline", s.opts.Pipeline))
		return &stagedFile{part: part, dir: dir, name: name, tmp: tmp, started: now, schema: schema, f: f, w: w}, nil
	}
	for range 1000 {
		s.seq++
		name := fileName(s.opts.Pipeline, now, s.seq)
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			continue
		}
		tmp := filepath.Join(dir, tmpName(name))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, connector.FileError(err)
		}
		w := parquet.NewWriter(f, schema.schema, parquet.Compression(s.codec),
			parquet.KeyValueMetadata("sluice.pipeline", s.opts.Pipeline))
		return &stagedFile{part: part, dir: dir, name: name, tmp: tmp, started: now, schema: schema, f: f, w: w}, nil
	}
	return nil, fmt.Errorf("no free file name in %s", dir)
}

// write appends rows, writing out a row group whenever RowGroupBytes of
// them are buffered.
func (s *Sink) write(sf *stagedFile, rows []parquet.Row) error {
	// Chunks keep the buffered size close to RowGroupBytes for batches
	// much larger than a row group: at most 256 rows, fewer when that many
	// would fill a row group several times over.
	for len(rows) > 0 {
		chunk := 256
		if sf.rows > 0 {
			if per := sf.w.Size() / sf.rows; per > 0 {
				chunk = int(min(max(int64(s.cfg.RowGroupBytes)/per, 1), 256))
			}
		}
		n := min(len(rows), chunk)
		if _, err := sf.w.WriteRows(rows[:n]); err != nil {
			return connector.FileError(err)
		}
		sf.rows += int64(n)
		rows = rows[n:]
		if sf.w.Size()-sf.groupStart >= int64(s.cfg.RowGroupBytes) {
			if err := sf.w.Flush(); err != nil {
				return connector.FileError(err)
			}
			sf.groupStart = sf.w.Size()
		}
	}
	return nil
}

// complete writes the footer and makes the temporary file durable; it is
// not visible yet.
func (sf *stagedFile) complete() error {
	err := sf.w.Close()
	if err == nil {
		err = sf.f.Sync()
	}
	if cerr := sf.f.Close(); err == nil {
		err = cerr
	}
	sf.f = nil
	return connector.FileError(err)
}

// publish gives a completed file its final name without replacing a file
// of that name: a hard link fails when the name exists, where a rename
// would replace it. seq supplies the next number when the name is taken.
func (sf *stagedFile) publish(pipeline string, seq func() int) error {
	for range 1000 {
		final := filepath.Join(sf.dir, sf.name)
		err := os.Link(sf.tmp, final)
		if errors.Is(err, fs.ErrExist) {
			sf.name = fileName(pipeline, sf.started, seq())
			continue
		}
		if err != nil {
			// A file system without hard links: rename, after checking the
			// name is free (this sink is its directory's only writer of
			// the pipeline's names).
			if _, serr := os.Lstat(final); serr == nil {
				sf.name = fileName(pipeline, sf.started, seq())
				continue
			}
			return connector.FileError(os.Rename(sf.tmp, final))
		}
		return connector.FileError(os.Remove(sf.tmp))
	}
	return fmt.Errorf("no free file name in %s", sf.dir)
}

// publishRun completes a run's files and renames each into place, then
// removes the run's files that this sink did not publish, and fsyncs the
// directories. After an error the files not renamed yet are removed; the
// run is attempted again, and publishes the same names.
func (s *Sink) publishRun() error {
	files := slices.Concat(s.sealed, s.files)
	s.files, s.sealed = nil, nil
	clear(s.cur)
	fail := func(rest []*stagedFile, err error) error {
		for _, o := range rest {
			if derr := o.discard(); derr != nil {
				s.log.Warn("parquet: remove an incomplete file", "file", o.tmp, "err", derr)
			}
		}
		return fmt.Errorf("parquet: publish run %s of %s: %w", s.opts.Run, s.opts.Pipeline, err)
	}
	for _, sf := range files {
		if sf.f != nil {
			if err := sf.complete(); err != nil {
				return fail(files, err)
			}
		}
	}
	dirs := map[string]bool{s.cfg.Path: s.newDirs}
	for i, sf := range files {
		final := filepath.Join(sf.dir, sf.name)
		if err := os.Rename(sf.tmp, final); err != nil {
			return fail(files[i:], connector.FileError(err))
		}
		s.published[final] = true
		dirs[sf.dir] = true
	}
	stale, err := s.staleRunFiles()
	if err != nil {
		return fail(nil, connector.FileError(err))
	}
	for _, path := range stale {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fail(nil, connector.FileError(err))
		}
		s.log.Info("parquet: removed a file of an earlier attempt of the run", "file", path)
		dirs[filepath.Dir(path)] = true
	}
	for dir, changed := range dirs {
		if !changed {
			continue
		}
		if err := connector.SyncDir(dir); err != nil {
			return fail(nil, fmt.Errorf("sync directory %s: %w", dir, connector.FileError(err)))
		}
	}
	s.newDirs = false
	for _, sf := range files {
		s.log.Debug("parquet: file published", "file", describeFile(sf), "rows", sf.rows)
	}
	return nil
}

// staleRunFiles lists the complete files of the run, in Path and its
// partition directories, that this sink has not published.
func (s *Sink) staleRunFiles() ([]string, error) {
	pattern := runPattern(s.opts.Pipeline, s.opts.Run)
	var out []string
	err := s.eachDir(func(dir string) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			path := filepath.Join(dir, e.Name())
			if e.Type().IsRegular() && pattern.MatchString(e.Name()) && !s.published[path] {
				out = append(out, path)
			}
		}
		return nil
	})
	return out, err
}

// eachDir calls fn with Path and each of its partition directories.
func (s *Sink) eachDir(fn func(dir string) error) error {
	root := s.cfg.Path
	if err := fn(root); err != nil {
		return err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && e.Name()[0] != '.' {
			if err := fn(filepath.Join(root, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// discard closes and removes the temporary file.
func (sf *stagedFile) discard() error {
	if sf.f != nil {
		_ = sf.f.Close()
		sf.f = nil
	}
	sf.w = nil
	if err := os.Remove(sf.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// removeTemps removes the temporary files of the pipeline left in Path and
// its partition directories by a process that crashed while writing them.
func (s *Sink) removeTemps() error {
	pattern := tmpPattern(s.opts.Pipeline)
	removed := 0
	err := s.eachDir(func(dir string) error {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		n := 0
		for _, e := range entries {
			if e.Type().IsRegular() && pattern.MatchString(e.Name()) {
				if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
				n++
			}
		}
		if n > 0 {
			removed += n
			return connector.SyncDir(dir)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if removed > 0 {
		s.log.Info("parquet sink: removed incomplete files of an earlier run", "files", removed)
	}
	return nil
}

// describeFile names a file in errors and logs: the partition and the
// sequence number, which is what an operator looks for.
func describeFile(sf *stagedFile) string {
	if sf.part == "" {
		return sf.name
	}
	return sf.part + "/" + sf.name
}
