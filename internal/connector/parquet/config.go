package parquet

import "github.com/sluice-dev/sluice/internal/units"

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
}
