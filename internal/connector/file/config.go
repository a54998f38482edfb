package file

import (
	"fmt"

	"github.com/sluice-dev/sluice/internal/units"
)

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

// The formats of a line.
const (
	FormatValue  = "value"
	FormatRecord = "record"
)

// Validate checks the configuration; its errors name the field as a spec
// writes it.
func (c Config) Validate() error {
	if c.Path == "" {
		return fmt.Errorf("file sink: path is required")
	}
	if err := validateFormat(c.Format); err != nil {
		return err
	}
	if c.RotateBytes < 0 {
		return fmt.Errorf("file sink: rotateBytes=%d: want 0 (never) or more", int64(c.RotateBytes))
	}
	if c.RotateInterval < 0 {
		return fmt.Errorf("file sink: rotateInterval=%s: want 0 (never) or more", c.RotateInterval)
	}
	return nil
}

func validateFormat(f string) error {
	switch f {
	case "", FormatValue, FormatRecord:
		return nil
	}
	return fmt.Errorf("file sink: format=%q: want %q or %q", f, FormatValue, FormatRecord)
}
