package process

import "github.com/sluice-dev/sluice/internal/units"

// Config is one processor of a pipeline spec. Exactly one field is set.
type Config struct {
	// Filter keeps the records for which the CEL expression is true.
	Filter string `json:"filter,omitempty" yaml:"filter,omitempty"`
	// Map replaces the value and, when set, the key.
	Map *MapConfig `json:"map,omitempty" yaml:"map,omitempty"`
	// Validate checks the value against a JSON Schema.
	Validate *ValidateConfig `json:"validate,omitempty" yaml:"validate,omitempty"`
	// Drop removes top-level or dotted-path fields of the value.
	Drop []string `json:"drop,omitempty" yaml:"drop,omitempty"`
	// Rename moves fields: old path -> new path.
	Rename map[string]string `json:"rename,omitempty" yaml:"rename,omitempty"`
	// Set assigns fields: path -> CEL expression.
	Set map[string]string `json:"set,omitempty" yaml:"set,omitempty"`
	// Dedupe drops records whose key expression was seen within Window.
	Dedupe *DedupeConfig `json:"dedupe,omitempty" yaml:"dedupe,omitempty"`
	// Window aggregates events in keyed event-time windows.
	Window *WindowConfig `json:"window,omitempty" yaml:"window,omitempty"`
}

// MapConfig holds CEL expressions for the new value and key.
type MapConfig struct {
	Value string `json:"value,omitempty" yaml:"value,omitempty"`
	Key   string `json:"key,omitempty" yaml:"key,omitempty"`
}

// ValidateConfig names a JSON Schema: inline, or a file (relative paths
// resolve against the spec file's directory).
type ValidateConfig struct {
	JSONSchema any    `json:"jsonSchema,omitempty" yaml:"jsonSchema,omitempty"`
	SchemaFile string `json:"schemaFile,omitempty" yaml:"schemaFile,omitempty"`
}

// DedupeConfig drops repeats of a key within a window.
type DedupeConfig struct {
	Key    string         `json:"key" yaml:"key"`
	Window units.Duration `json:"window" yaml:"window"`
	// MaxKeys bounds the keys remembered (default 1,000,000); the oldest
	// are forgotten first.
	MaxKeys int `json:"maxKeys,omitempty" yaml:"maxKeys,omitempty"`
}
