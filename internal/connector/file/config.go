package file

import "github.com/sluice-dev/sluice/internal/units"

// Config is a pipeline's file sink (JSON Lines), as written in its spec.
type Config struct {
	// Path is the file written; rotated files get a numbered suffix.
	Path string `json:"path" yaml:"path"`
	// Format is "value" (each record's value on a line, the default) or
	// "record" (an object with topic, partition, offset, timestamp, key,
	// headers and value).
	Format string `json:"format,omitempty" yaml:"format,omitempty"`
	// RotateBytes and RotateInterval start a new file (0: never).
	RotateBytes    units.ByteSize `json:"rotateBytes,omitempty" yaml:"rotateBytes,omitempty"`
	RotateInterval units.Duration `json:"rotateInterval,omitempty" yaml:"rotateInterval,omitempty"`
}
