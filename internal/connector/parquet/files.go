package parquet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
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

func tmpName(name string) string { return "." + name + ".tmp" }

// tmpPattern matches the temporary files of pipeline and no other: the
// date after the name keeps "orders" from matching "orders-eu"'s files.
func tmpPattern(pipeline string) *regexp.Regexp {
	return regexp.MustCompile(`^\.` + regexp.QuoteMeta(pipeline) + `-\d{8}T\d{6}-\d+\.parquet\.tmp$`)
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
	clean := func(dir string) error {
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
	}
	root := s.cfg.Path
	if err := clean(root); err != nil {
		return err
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && e.Name()[0] != '.' {
			if err := clean(filepath.Join(root, e.Name())); err != nil {
				return err
			}
		}
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
