package resource

import (
	"github.com/sluice-dev/sluice/internal/connector/file"
	"github.com/sluice-dev/sluice/internal/connector/parquet"
	"github.com/sluice-dev/sluice/internal/connector/postgres"
	"github.com/sluice-dev/sluice/internal/process"
	"github.com/sluice-dev/sluice/internal/units"
)

// APIVersion is the only apiVersion this Sluice reads.
const APIVersion = "sluice.dev/v1"

// Kinds of resource.
const (
	KindPipeline = "Pipeline"
	KindTopic    = "Topic"
)

// Metadata names a resource.
type Metadata struct {
	Name   string            `json:"name" yaml:"name"`
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// Topic declares a topic.
type Topic struct {
	APIVersion string    `json:"apiVersion" yaml:"apiVersion"`
	Kind       string    `json:"kind" yaml:"kind"`
	Metadata   Metadata  `json:"metadata" yaml:"metadata"`
	Spec       TopicSpec `json:"spec" yaml:"spec"`

	origin string // see Origin
}

// TopicSpec is a topic's partition count and config overrides (Kafka keys:
// retention.ms, cleanup.policy, ...).
type TopicSpec struct {
	Partitions int32             `json:"partitions" yaml:"partitions"`
	Config     map[string]string `json:"config,omitempty" yaml:"config,omitempty"`
}

// Pipeline declares a pipeline.
type Pipeline struct {
	APIVersion string       `json:"apiVersion" yaml:"apiVersion"`
	Kind       string       `json:"kind" yaml:"kind"`
	Metadata   Metadata     `json:"metadata" yaml:"metadata"`
	Spec       PipelineSpec `json:"spec" yaml:"spec"`

	origin string // see Origin
}

// PipelineSpec is what a pipeline reads, does and writes.
type PipelineSpec struct {
	// Mode is "stream" (the default: the source is read as it grows) or
	// "batch" (runs read a bounded range of offsets each, on Schedule or
	// on demand).
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Schedule starts a batch pipeline's runs: a cron line of five fields
	// or a descriptor such as @hourly or @every 15m (see ParseSchedule).
	// Without one a batch pipeline runs only when asked.
	Schedule   string           `json:"schedule,omitempty" yaml:"schedule,omitempty"`
	Source     Source           `json:"source" yaml:"source"`
	Processors []process.Config `json:"processors,omitempty" yaml:"processors,omitempty"`
	Sink       Sink             `json:"sink" yaml:"sink"`
	// Delivery is "at-least-once" (the default) or "exactly-once" (sinks
	// that store offsets with the data: postgres).
	Delivery   string      `json:"delivery,omitempty" yaml:"delivery,omitempty"`
	Batch      Batch       `json:"batch,omitzero" yaml:"batch,omitempty"`
	Retry      Retry       `json:"retry,omitzero" yaml:"retry,omitempty"`
	DeadLetter *DeadLetter `json:"deadLetter,omitempty" yaml:"deadLetter,omitempty"`
	// Paused pipelines keep their checkpoints but read nothing; a paused
	// batch pipeline starts no run of its own, but runs when asked.
	Paused bool `json:"paused,omitempty" yaml:"paused,omitempty"`
}

// Delivery modes.
const (
	AtLeastOnce = "at-least-once"
	ExactlyOnce = "exactly-once"
)

// Source is the topic a pipeline consumes.
type Source struct {
	Topic string `json:"topic" yaml:"topic"`
	// StartFrom is where a pipeline without a checkpoint starts:
	// "earliest" (the default, as Kafka Connect's sinks do) or "latest".
	StartFrom string `json:"startFrom,omitempty" yaml:"startFrom,omitempty"`
	// Group is the consumer group whose offsets are the checkpoints of an
	// at-least-once pipeline (default: the pipeline's name). A batch
	// pipeline commits the end of each completed run to it, for lag.
	Group string `json:"group,omitempty" yaml:"group,omitempty"`

	// From and To bound each run of a batch pipeline, [From, To): From is
	// "lastRun" (the default: where the last completed run ended, or the
	// earliest offset for the first run), "earliest" or an RFC 3339 time;
	// To is "latest" (the default: the end of each partition when the run
	// starts) or an RFC 3339 time. A time means the first offset whose
	// record timestamp is at or after it.
	From string `json:"from,omitempty" yaml:"from,omitempty"`
	To   string `json:"to,omitempty" yaml:"to,omitempty"`
	// FromOffsets and ToOffsets give explicit offsets instead, partition
	// number -> offset; a run then reads only the partitions named.
	FromOffsets map[string]int64 `json:"fromOffsets,omitempty" yaml:"fromOffsets,omitempty"`
	ToOffsets   map[string]int64 `json:"toOffsets,omitempty" yaml:"toOffsets,omitempty"`
}

// Sink is where a pipeline writes. Exactly one field is set.
type Sink struct {
	Postgres *postgres.Config `json:"postgres,omitempty" yaml:"postgres,omitempty"`
	Parquet  *parquet.Config  `json:"parquet,omitempty" yaml:"parquet,omitempty"`
	File     *file.Config     `json:"file,omitempty" yaml:"file,omitempty"`
	Topic    *TopicSink       `json:"topic,omitempty" yaml:"topic,omitempty"`
	Stdout   *StdoutSink      `json:"stdout,omitempty" yaml:"stdout,omitempty"`
}

// TopicSink writes to another topic. Keys are kept, or replaced by the
// key a map processor set.
type TopicSink struct {
	Name string `json:"name" yaml:"name"`
}

// StdoutSink writes JSON Lines to the server's standard output.
type StdoutSink struct {
	// Format is as in the file sink: "value" or "record".
	Format string `json:"format,omitempty" yaml:"format,omitempty"`
}

// Batch bounds a sink write (defaults 5000 records, 4MiB, 200ms).
type Batch struct {
	MaxRecords int            `json:"maxRecords,omitempty" yaml:"maxRecords,omitempty"`
	MaxBytes   units.ByteSize `json:"maxBytes,omitempty" yaml:"maxBytes,omitempty"`
	MaxWait    units.Duration `json:"maxWait,omitempty" yaml:"maxWait,omitempty"`
}

// Retry is the backoff of failed sink writes (defaults 100ms, 30s, 10
// attempts). After MaxAttempts the pipeline is failed.
type Retry struct {
	InitialBackoff units.Duration `json:"initialBackoff,omitempty" yaml:"initialBackoff,omitempty"`
	MaxBackoff     units.Duration `json:"maxBackoff,omitempty" yaml:"maxBackoff,omitempty"`
	MaxAttempts    int            `json:"maxAttempts,omitempty" yaml:"maxAttempts,omitempty"`
}

// DeadLetter names the topic that takes the records a processor or the
// sink refused, with the error in headers.
type DeadLetter struct {
	Topic string `json:"topic" yaml:"topic"`
}
