// Package topic holds what defines a topic independently of where it is
// stored: its name rules, its Kafka-style configuration with defaults and
// validation, and the Spec that the metadata store persists and the log opens.
package topic

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// MaxNameLen is Kafka's limit on topic name length.
const MaxNameLen = 249

// MaxPartitions bounds the partition count of one topic; each partition holds
// open files, so an unbounded count is a resource-exhaustion vector.
const MaxPartitions = 10000

// ErrInvalid is wrapped by every validation error in this package.
var ErrInvalid = errors.New("invalid topic")

// ValidateName applies Kafka's rules: 1 to 249 characters from
// [a-zA-Z0-9._-], and not "." or "..".
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: name is empty", ErrInvalid)
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: name is %d characters, the limit is %d", ErrInvalid, len(name), MaxNameLen)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: name %q is reserved", ErrInvalid, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: name %q has character %q at %d; allowed are [a-zA-Z0-9._-]", ErrInvalid, name, c, i)
		}
	}
	return nil
}

// TimestampType says which time a record carries: the producer's or the
// log's at append.
type TimestampType string

// Kafka's two timestamp types.
const (
	CreateTime    TimestampType = "CreateTime"
	LogAppendTime TimestampType = "LogAppendTime"
)

// Config is a topic's configuration. Zero values are not meaningful: start
// from DefaultConfig. Negative RetentionMs or RetentionBytes mean unlimited,
// as in Kafka.
type Config struct {
	RetentionMs        int64
	RetentionBytes     int64
	SegmentBytes       int64
	SegmentMs          int64
	MaxMessageBytes    int64
	IndexIntervalBytes int64
	CleanupPolicy      string
	TimestampType      TimestampType
}

// DefaultConfig returns the defaults a topic gets for every key it does not
// set: Kafka's broker defaults.
func DefaultConfig() Config {
	return Config{
		RetentionMs:        7 * 24 * time.Hour.Milliseconds(),
		RetentionBytes:     -1,
		SegmentBytes:       128 << 20,
		SegmentMs:          7 * 24 * time.Hour.Milliseconds(),
		MaxMessageBytes:    1 << 20,
		IndexIntervalBytes: 4096,
		CleanupPolicy:      "delete",
		TimestampType:      CreateTime,
	}
}

// Config keys, spelled as Kafka spells them.
const (
	KeyRetentionMs        = "retention.ms"
	KeyRetentionBytes     = "retention.bytes"
	KeySegmentBytes       = "segment.bytes"
	KeySegmentMs          = "segment.ms"
	KeyMaxMessageBytes    = "max.message.bytes"
	KeyIndexIntervalBytes = "index.interval.bytes"
	KeyCleanupPolicy      = "cleanup.policy"
	KeyTimestampType      = "message.timestamp.type"
)

// Limits on values; they keep a configuration from making the log unusable
// (a 10-byte segment) or from letting one batch exhaust memory.
const (
	MinSegmentBytes    = 1 << 10
	MaxSegmentBytes    = 1 << 30
	MaxMaxMessageBytes = 64 << 20
)

// Keys lists every key Config understands, in sorted order.
func Keys() []string {
	keys := []string{KeyRetentionMs, KeyRetentionBytes, KeySegmentBytes, KeySegmentMs,
		KeyMaxMessageBytes, KeyIndexIntervalBytes, KeyCleanupPolicy, KeyTimestampType}
	sort.Strings(keys)
	return keys
}

// Apply returns c with the given Kafka-style key/value pairs set, or an error
// naming the first key or value that is not valid. c itself is unchanged.
func (c Config) Apply(kv map[string]string) (Config, error) {
	keys := make([]string, 0, len(kv))
	for k := range kv {
		keys = append(keys, k)
	}
	sort.Strings(keys) // report errors deterministically
	for _, k := range keys {
		v := kv[k]
		var err error
		switch k {
		case KeyRetentionMs:
			c.RetentionMs, err = parseInt(k, v, -1, maxInt64)
		case KeyRetentionBytes:
			c.RetentionBytes, err = parseInt(k, v, -1, maxInt64)
		case KeySegmentBytes:
			c.SegmentBytes, err = parseInt(k, v, MinSegmentBytes, MaxSegmentBytes)
		case KeySegmentMs:
			c.SegmentMs, err = parseInt(k, v, 1, maxInt64)
		case KeyMaxMessageBytes:
			c.MaxMessageBytes, err = parseInt(k, v, 64, MaxMaxMessageBytes)
		case KeyIndexIntervalBytes:
			c.IndexIntervalBytes, err = parseInt(k, v, 0, 1<<30)
		case KeyCleanupPolicy:
			if v != "delete" {
				err = fmt.Errorf("%w: %s=%q: only \"delete\" is supported", ErrInvalid, k, v)
			}
			c.CleanupPolicy = v
		case KeyTimestampType:
			switch TimestampType(v) {
			case CreateTime, LogAppendTime:
				c.TimestampType = TimestampType(v)
			default:
				err = fmt.Errorf("%w: %s=%q: want CreateTime or LogAppendTime", ErrInvalid, k, v)
			}
		default:
			err = fmt.Errorf("%w: unknown config key %q", ErrInvalid, k)
		}
		if err != nil {
			return c, err
		}
	}
	return c, c.Validate()
}

// Validate checks the relations between values that Apply cannot check one
// key at a time.
func (c Config) Validate() error {
	if c.SegmentBytes < MinSegmentBytes || c.SegmentBytes > MaxSegmentBytes {
		return fmt.Errorf("%w: %s=%d outside [%d, %d]", ErrInvalid, KeySegmentBytes, c.SegmentBytes, MinSegmentBytes, MaxSegmentBytes)
	}
	if c.MaxMessageBytes < 64 || c.MaxMessageBytes > MaxMaxMessageBytes {
		return fmt.Errorf("%w: %s=%d outside [64, %d]", ErrInvalid, KeyMaxMessageBytes, c.MaxMessageBytes, MaxMaxMessageBytes)
	}
	if c.SegmentMs < 1 {
		return fmt.Errorf("%w: %s=%d, want at least 1", ErrInvalid, KeySegmentMs, c.SegmentMs)
	}
	if c.CleanupPolicy != "delete" {
		return fmt.Errorf("%w: %s=%q: only \"delete\" is supported", ErrInvalid, KeyCleanupPolicy, c.CleanupPolicy)
	}
	if c.TimestampType != CreateTime && c.TimestampType != LogAppendTime {
		return fmt.Errorf("%w: %s=%q", ErrInvalid, KeyTimestampType, c.TimestampType)
	}
	return nil
}

// Map returns every key with its value as Kafka would list it.
func (c Config) Map() map[string]string {
	return map[string]string{
		KeyRetentionMs:        strconv.FormatInt(c.RetentionMs, 10),
		KeyRetentionBytes:     strconv.FormatInt(c.RetentionBytes, 10),
		KeySegmentBytes:       strconv.FormatInt(c.SegmentBytes, 10),
		KeySegmentMs:          strconv.FormatInt(c.SegmentMs, 10),
		KeyMaxMessageBytes:    strconv.FormatInt(c.MaxMessageBytes, 10),
		KeyIndexIntervalBytes: strconv.FormatInt(c.IndexIntervalBytes, 10),
		KeyCleanupPolicy:      c.CleanupPolicy,
		KeyTimestampType:      string(c.TimestampType),
	}
}

// Explicit returns the canonical values of the keys set in kv, which c
// was resolved with: a topic's overrides are what was set explicitly, as
// Kafka's are, even where a value equals the default, so that a client
// that set it sees it set.
func (c Config) Explicit(kv map[string]string) map[string]string {
	all := c.Map()
	out := make(map[string]string, len(kv))
	for k := range kv {
		if v, ok := all[k]; ok {
			out[k] = v
		}
	}
	return out
}

const maxInt64 = int64(^uint64(0) >> 1)

func parseInt(key, v string, min, max int64) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q is not an integer", ErrInvalid, key, v)
	}
	if n < min || n > max {
		return 0, fmt.Errorf("%w: %s=%d outside [%d, %d]", ErrInvalid, key, n, min, max)
	}
	return n, nil
}

// Spec is a topic as the metadata store persists it: its identity, partition
// count and configuration overrides.
type Spec struct {
	Name string
	// ID is the topic's UUID, as Kafka's topic IDs (KIP-516): a topic that is
	// deleted and created again under the same name gets a new ID.
	ID         [16]byte
	Partitions int32
	// Config holds only the overrides; Resolved applies them to the defaults.
	Config    map[string]string
	CreatedAt time.Time
}

// Resolved returns the full configuration of the topic.
func (s Spec) Resolved() (Config, error) {
	return DefaultConfig().Apply(s.Config)
}

// Validate checks the name, partition count and configuration.
func (s Spec) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if s.Partitions < 1 || s.Partitions > MaxPartitions {
		return fmt.Errorf("%w: %d partitions, want 1 to %d", ErrInvalid, s.Partitions, MaxPartitions)
	}
	_, err := s.Resolved()
	return err
}
