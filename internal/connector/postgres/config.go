package postgres

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

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

// Modes of writing.
const (
	ModeInsert = "insert"
	ModeUpsert = "upsert"
)

// Sources of a column that are not paths into the record's value.
const (
	SourceKey       = "$key"       // the record key, as text (bytes for bytea)
	SourceTimestamp = "$timestamp" // the record timestamp (timestamptz)
	SourceTopic     = "$topic"     // the source topic
	SourcePartition = "$partition" // the source partition
	SourceOffset    = "$offset"    // the source offset
)

// maxIdentifier is PostgreSQL's NAMEDATALEN-1: longer names are truncated
// by the server, and would then not match.
const maxIdentifier = 63

// Validate reports every problem of the configuration, naming the field of
// each, or nil when there is none. It does not connect.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.DSN == "" {
		add("dsn: required")
	} else if _, err := pgxpool.ParseConfig(c.DSN); err != nil {
		add("dsn: %s", dsnError(c.DSN, err))
	}
	if c.Table == "" {
		add("table: required")
	} else if _, err := parseTable(c.Table); err != nil {
		add("table: %q: %v", c.Table, err)
	}
	switch c.Mode {
	case "", ModeInsert:
	case ModeUpsert:
		if len(c.Key) == 0 {
			add("key: required in upsert mode (the columns of its ON CONFLICT)")
		}
	default:
		add("mode: %q: want insert or upsert", c.Mode)
	}
	seen := map[string]bool{}
	for _, k := range c.Key {
		if err := checkIdentifier(k); err != nil {
			add("key: %q: %v", k, err)
		} else if seen[k] {
			add("key: %q named twice", k)
		} else if c.Columns != nil {
			if _, ok := c.Columns[k]; !ok {
				add("key: %q is not among columns", k)
			}
		}
		seen[k] = true
	}
	for _, col := range sortedKeys(c.Columns) {
		if err := checkIdentifier(col); err != nil {
			add("columns: %q: %v", col, err)
			continue
		}
		if _, err := parseSource(c.Columns[col]); err != nil {
			add("columns: %s: %q: %v", col, c.Columns[col], err)
		}
	}
	if c.Columns != nil && len(c.Columns) == 0 {
		add("columns: empty (leave it out to map every column by name)")
	}
	if c.MaxConnections < 0 {
		add("maxConnections: %d: want a positive number (default 4)", c.MaxConnections)
	}
	return errors.Join(errs...)
}

// source is where a column's value comes from: a special source, or a
// path into the value.
type source struct {
	special string   // one of the Source constants, or ""
	path    []string // when special is ""
}

func parseSource(s string) (source, error) {
	if strings.HasPrefix(s, "$") {
		switch s {
		case SourceKey, SourceTimestamp, SourceTopic, SourcePartition, SourceOffset:
			return source{special: s}, nil
		}
		return source{}, fmt.Errorf("unknown source: want a dot-separated path into the value or one of %s, %s, %s, %s, %s",
			SourceKey, SourceTimestamp, SourceTopic, SourcePartition, SourceOffset)
	}
	if s == "" {
		return source{}, errors.New("empty path")
	}
	path := strings.Split(s, ".")
	for _, p := range path {
		if p == "" {
			return source{}, errors.New("empty element in the path")
		}
	}
	return source{path: path}, nil
}

// tableName is a parsed Config.Table; schema is "" for an unqualified name,
// found on the search_path.
type tableName struct{ schema, name string }

func parseTable(s string) (tableName, error) {
	parts := strings.Split(s, ".")
	if len(parts) > 2 {
		return tableName{}, errors.New(`want "name" or "schema.name"`)
	}
	for _, p := range parts {
		if err := checkIdentifier(p); err != nil {
			return tableName{}, err
		}
	}
	if len(parts) == 2 {
		return tableName{schema: parts[0], name: parts[1]}, nil
	}
	return tableName{name: parts[0]}, nil
}

// checkIdentifier accepts the names that need no quoting apart from their
// case: names are always quoted, so "Orders" is another table than
// "orders", as PostgreSQL sees them.
func checkIdentifier(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	if len(s) > maxIdentifier {
		return fmt.Errorf("name longer than %d bytes", maxIdentifier)
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '$'):
		default:
			return errors.New("want letters, digits, _ and $, not starting with a digit")
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
