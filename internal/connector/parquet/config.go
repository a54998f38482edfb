package parquet

import (
	"fmt"
	"time"

	"github.com/sluice-dev/sluice/internal/units"
)

// Config is a pipeline's parquet sink, as written in its spec.
type Config struct {
	// Path is the directory files are written under.
	Path string `json:"path" yaml:"path"`
	// PartitionBy is a CEL expression whose string value names the
	// sub-directory of each record (for example "date(record.timestamp)"
	// gives dt=2026-12-02 style directories: see Options.Partition).
	PartitionBy string `json:"partitionBy,omitempty" yaml:"partitionBy,omitempty"`
	// RollBytes and RollInterval close a file and start the next one
	// (defaults 128MiB and 5m).
	RollBytes    units.ByteSize `json:"rollBytes,omitempty" yaml:"rollBytes,omitempty"`
	RollInterval units.Duration `json:"rollInterval,omitempty" yaml:"rollInterval,omitempty"`
	// Compression of the column chunks: snappy (default), zstd, gzip or none.
	Compression string `json:"compression,omitempty" yaml:"compression,omitempty"`
	// RowGroupBytes is how much of a file is buffered in memory before it
	// is written out as a row group (default 8MiB; the estimate counts
	// values before compression). Memory use is about RowGroupBytes per
	// open file.
	RowGroupBytes units.ByteSize `json:"rowGroupBytes,omitempty" yaml:"rowGroupBytes,omitempty"`
	// MaxOpenFiles asks for a flush once this many files are open (default
	// 64), which bounds memory and file descriptors when records spread
	// over many partitions. A single write may still open more.
	MaxOpenFiles int `json:"maxOpenFiles,omitempty" yaml:"maxOpenFiles,omitempty"`
}

// The defaults of Config's zero values.
const (
	DefaultRollBytes     = 128 << 20
	DefaultRollInterval  = 5 * time.Minute
	DefaultCompression   = "snappy"
	DefaultRowGroupBytes = 8 << 20
	DefaultMaxOpenFiles  = 64
)

// Validate checks the configuration; its errors name the field as a spec
// writes it.
func (c Config) Validate() error {
	if c.Path == "" {
		return fmt.Errorf("parquet: path is required")
	}
	if c.RollBytes < 0 {
		return fmt.Errorf("parquet: rollBytes=%d: want 0 (the default, %s) or more", int64(c.RollBytes), units.ByteSize(DefaultRollBytes))
	}
	if c.RollInterval < 0 {
		return fmt.Errorf("parquet: rollInterval=%s: want 0 (the default, %s) or more", c.RollInterval, DefaultRollInterval)
	}
	if _, ok := codec(c.Compression); !ok && c.Compression != "" {
		return fmt.Errorf("parquet: compression=%q: want snappy, zstd, gzip or none", c.Compression)
	}
	if c.RowGroupBytes < 0 {
		return fmt.Errorf("parquet: rowGroupBytes=%d: want 0 (the default, %s) or more", int64(c.RowGroupBytes), units.ByteSize(DefaultRowGroupBytes))
	}
	if c.MaxOpenFiles < 0 {
		return fmt.Errorf("parquet: maxOpenFiles=%d: want 0 (the default, %d) or more", c.MaxOpenFiles, DefaultMaxOpenFiles)
	}
	return nil
}

// withDefaults returns c with its zero values replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.RollBytes == 0 {
		c.RollBytes = DefaultRollBytes
	}
	if c.RollInterval == 0 {
		c.RollInterval = units.Duration(DefaultRollInterval)
	}
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.RowGroupBytes == 0 {
		c.RowGroupBytes = DefaultRowGroupBytes
	}
	if c.MaxOpenFiles == 0 {
		c.MaxOpenFiles = DefaultMaxOpenFiles
	}
	return c
}
