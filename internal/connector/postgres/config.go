package postgres

// Config is a pipeline's postgres sink, as written in its spec.
type Config struct {
	// DSN is a libpq connection string or URL; several hosts with
	// target_session_attrs=read-write follow a failover. It is a secret:
	// never logged, never printed in errors.
	DSN string `json:"dsn" yaml:"dsn"`
	// Table is "name" or "schema.name".
	Table string `json:"table" yaml:"table"`
	// Mode is "insert" (COPY, the default) or "upsert" (INSERT ... ON
	// CONFLICT (Key) DO UPDATE).
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Key names the conflict columns of upsert mode.
	Key []string `json:"key,omitempty" yaml:"key,omitempty"`
	// CreateTable creates the table when it does not exist, with columns
	// from the pipeline's JSON Schema or else from the first batch.
	CreateTable bool `json:"createTable,omitempty" yaml:"createTable,omitempty"`
	// Columns maps column names to where their values come from: a
	// dot-separated path into the record's JSON value ("customer.id"), or
	// one of $key, $timestamp, $topic, $partition, $offset. Without it,
	// every column of the table takes the top-level field of its name.
	Columns map[string]string `json:"columns,omitempty" yaml:"columns,omitempty"`
	// MaxConnections bounds the connection pool (default 4).
	MaxConnections int `json:"maxConnections,omitempty" yaml:"maxConnections,omitempty"`
}
