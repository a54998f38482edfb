package logstore

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/topic"
)

// SyncMode says when appended data is made durable.
type SyncMode int

// The durability policies.
const (
	// SyncAlways acknowledges an append only once its data is on stable
	// storage. Concurrent appends to a partition share one fsync.
	SyncAlways SyncMode = iota
	// SyncInterval fsyncs every partition that has new data once per
	// interval; an append is acknowledged once written.
	SyncInterval
	// SyncNever leaves flushing to the operating system, except that rolled
	// segments are flushed in the background before the recovery checkpoint
	// moves past them, and everything is flushed on a clean close.
	SyncNever
)

// SyncPolicy is the server-wide durability policy.
type SyncPolicy struct {
	Mode     SyncMode
	Interval time.Duration // for SyncInterval
}

func (p SyncPolicy) String() string {
	switch p.Mode {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval:" + p.Interval.String()
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncMode(%d)", p.Mode)
}

// ParseSyncPolicy parses "always", "never" or "interval:<duration>".
func ParseSyncPolicy(s string) (SyncPolicy, error) {
	switch {
	case s == "always":
		return SyncPolicy{Mode: SyncAlways}, nil
	case s == "never":
		return SyncPolicy{Mode: SyncNever}, nil
	case strings.HasPrefix(s, "interval:"):
		d, err := time.ParseDuration(strings.TrimPrefix(s, "interval:"))
		if err != nil || d <= 0 {
			return SyncPolicy{}, fmt.Errorf("fsync policy %q: want a positive duration after \"interval:\", such as interval:100ms", s)
		}
		return SyncPolicy{Mode: SyncInterval, Interval: d}, nil
	}
	return SyncPolicy{}, fmt.Errorf("fsync policy %q: want always, never or interval:<duration>", s)
}

// DefaultCacheWindow is Options.CacheWindow's default: at the rate of
// the whole disk (about 1 GB/s on the machines of docs/benchmarks.md) a
// partition's window covers a few tenths of a second, which a consumer that
// keeps up stays well inside, while a few dozen busy partitions still
// recycle their pages within the second or two after which a virtual
// machine may have returned freed memory to its host.
const DefaultCacheWindow = 64 << 20

// Catalog persists topic definitions. The log calls it to list topics at
// open and to record creations, changes and deletions; a PutTopic or
// DeleteTopic that returns nil must be durable.
type Catalog interface {
	Topics() ([]topic.Spec, error)
	PutTopic(topic.Spec) error
	DeleteTopic(name string) error
}

// Options configures a Log. Dir and Catalog are required; every other field
// has a default.
type Options struct {
	// Dir is the log's directory; it is created if missing.
	Dir     string
	Catalog Catalog
	Sync    SyncPolicy
	// FS defaults to the operating system's file system.
	FS FS
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the log's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// CheckpointInterval is how often the recovery checkpoint is rewritten
	// (and rolled segments flushed); it bounds how much a restart after a
	// crash must scan. Default 1s.
	CheckpointInterval time.Duration
	// RetentionCheckInterval is how often retention runs. Default 30s.
	RetentionCheckInterval time.Duration
	// Now returns the current time; tests replace it. Default time.Now.
	Now func() time.Time
	// RecoveryParallelism bounds how many partitions are recovered at once.
	// Default 4.
	RecoveryParallelism int
	// ProducerIDExpiration is how long a partition remembers an idempotent
	// producer that has stopped appending (Kafka's broker setting
	// producer.id.expiration.ms). Default 24h.
	ProducerIDExpiration time.Duration
	// CacheWindow is how many bytes at the end of each partition stay in
	// the page cache once durable (cache.go); older data is handed back
	// to the kernel. Negative leaves the page cache to the kernel.
	// Default DefaultCacheWindow.
	CacheWindow int64
}

func (o *Options) setDefaults() error {
	if o.Dir == "" {
		return fmt.Errorf("logstore: Options.Dir is required")
	}
	if o.Catalog == nil {
		return fmt.Errorf("logstore: Options.Catalog is required")
	}
	if o.Sync.Mode == SyncInterval && o.Sync.Interval <= 0 {
		return fmt.Errorf("logstore: interval fsync policy needs a positive interval")
	}
	if o.FS == nil {
		o.FS = OSFS{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = time.Second
	}
	if o.RetentionCheckInterval <= 0 {
		o.RetentionCheckInterval = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CacheWindow == 0 {
		o.CacheWindow = DefaultCacheWindow
	}
	if o.RecoveryParallelism <= 0 {
		o.RecoveryParallelism = 4
	}
	if o.ProducerIDExpiration <= 0 {
		o.ProducerIDExpiration = 24 * time.Hour
	}
	return nil
}
