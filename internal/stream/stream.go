// Package stream is the seam between Sluice's services (HTTP ingestion,
// pipelines, mirroring, the console) and the log they run on: the embedded
// log in --data-dir, or an Apache Kafka cluster. Services are written once,
// against Log; the implementations map their own errors onto this package's.
package stream

import (
	"context"
	"errors"
	"time"
)

// Log is a partitioned, replayable log with consumer-group offsets.
// Implementations are safe for concurrent use. Every error wraps one of this
// package's sentinel errors when one applies, so callers map errors to HTTP
// statuses or Kafka codes without knowing the implementation.
type Log interface {
	// CreateTopic creates a topic with the given partition count and config
	// overrides (Kafka-style keys). ErrTopicExists if the name is taken,
	// ErrInvalid for a bad name, count or config.
	CreateTopic(ctx context.Context, name string, partitions int32, config map[string]string) (TopicInfo, error)
	// DeleteTopic deletes a topic, its data and its committed offsets.
	DeleteTopic(ctx context.Context, name string) error
	// ListTopics describes every topic, sorted by name.
	ListTopics(ctx context.Context) ([]TopicInfo, error)
	// DescribeTopic describes one topic; ErrUnknownTopic if there is none.
	DescribeTopic(ctx context.Context, name string) (TopicInfo, error)
	// AlterTopic sets and removes config overrides (removed keys return to
	// their defaults) and, when partitions is above the current count,
	// adds partitions. It applies all of it or none.
	AlterTopic(ctx context.Context, name string, change TopicChange) (TopicInfo, error)

	// Produce appends one RecordBatch v2 to a partition and returns once
	// it is acknowledged under the log's durability policy. The batch's
	// header and CRC are checked; ErrInvalid or ErrTooLarge if they fail.
	// Produce may rewrite the batch's baseOffset field in place.
	//
	// A batch with a producer ID (producerId >= 0: an idempotent
	// producer's, from Kafka's InitProducerId) is checked against that
	// producer's sequence in the partition, as Kafka does: a retry of one
	// of its last five batches is not stored again and returns the
	// original result (offsets and LogAppendTime); a sequence that does not
	// follow its last batch is ErrOutOfOrderSequence; an epoch older than
	// its current one is ErrProducerFenced. A producer the log does not
	// know (new, or forgotten after producer.id.expiration.ms) may start
	// at any sequence.
	Produce(ctx context.Context, topic string, partition int32, batch []byte) (ProduceResult, error)
	// Fetch returns whole batches from offset on (see FetchRequest). When
	// the partition holds nothing at offset yet, it waits up to MaxWait
	// for data and then returns an empty result. ErrOffsetOutOfRange when
	// offset is below the log start or above the high watermark.
	Fetch(ctx context.Context, req FetchRequest) (FetchResult, error)
	// ListOffset resolves a position: Earliest, Latest, or a timestamp in
	// Unix milliseconds, which gives the first offset whose record
	// timestamp is at or after it (the high watermark when none is).
	ListOffset(ctx context.Context, topic string, partition int32, at int64) (int64, error)
	// DeleteRecords moves the partition's log start offset up to before
	// (HighWatermark, -1, for everything) and returns the new log start
	// offset, as Kafka's DeleteRecords does: reads below it get
	// ErrOffsetOutOfRange from then on, and the space is reclaimed. The
	// change is durable when DeleteRecords returns. A before at or below the
	// current log start changes nothing; one above the high watermark, or
	// negative other than -1, is ErrOffsetOutOfRange.
	DeleteRecords(ctx context.Context, topic string, partition int32, before int64) (int64, error)

	// CommitOffsets stores a group's offsets atomically. ErrUnknownTopic
	// or ErrUnknownPartition if any names a partition that does not exist,
	// in which case none is stored.
	CommitOffsets(ctx context.Context, group string, offsets []GroupOffset) error
	// FetchOffsets returns a group's committed offsets, sorted by topic and
	// partition; none (and no error) for a group that has committed none.
	FetchOffsets(ctx context.Context, group string) ([]GroupOffset, error)
	// ListGroups returns the groups that have committed offsets, sorted.
	ListGroups(ctx context.Context) ([]string, error)
	// DeleteGroup forgets a group's committed offsets.
	DeleteGroup(ctx context.Context, group string) error
	// DeleteOffsets forgets a group's committed offsets for the given
	// partitions, atomically; partitions without a commit are skipped. It
	// fails with ErrInvalid, deleting nothing, if the group has live
	// members subscribed to one of the topics (Kafka's
	// GROUP_SUBSCRIBED_TO_TOPIC), since they would commit it again.
	DeleteOffsets(ctx context.Context, group string, partitions []TopicPartitions) error
	// DescribeGroups describes the named groups, in the order given, or
	// with nil or empty groups every group that has committed offsets or
	// live members, sorted by name. A group without live members is
	// "Empty" when it has committed offsets, else "Dead" (a name nobody
	// uses). Live members are those of Kafka-protocol consumers (JoinGroup);
	// an implementation without a coordinator reports none.
	DescribeGroups(ctx context.Context, groups []string) ([]GroupDescription, error)
}

// Positions for ListOffset, as in Kafka's ListOffsets.
const (
	Latest   int64 = -1
	Earliest int64 = -2
)

// HighWatermark is DeleteRecords' "everything up to the high watermark".
const HighWatermark int64 = -1

// TopicInfo describes a topic.
type TopicInfo struct {
	Name string
	// ID is the topic's UUID (Kafka topic IDs, KIP-516).
	ID [16]byte
	// Config is the full configuration, defaults included; Overrides only
	// what was set explicitly.
	Config     map[string]string
	Overrides  map[string]string
	Partitions []PartitionInfo
	CreatedAt  time.Time
}

// PartitionInfo describes a partition.
type PartitionInfo struct {
	Partition      int32
	LogStartOffset int64
	HighWatermark  int64
	SizeBytes      int64
}

// TopicChange is what AlterTopic changes.
type TopicChange struct {
	Set    map[string]string
	Delete []string
	// Partitions, when above the current count, is the new count.
	Partitions int32
}

// StagedProducer is implemented by logs that can split Produce in two: the
// append, which orders the batch, and the wait for its acknowledgement. The
// Kafka listener uses it to read a connection's next produce request while
// the previous one waits for its fsync, so that one connection's requests
// share fsyncs instead of queueing behind each other.
type StagedProducer interface {
	// ProduceStaged does what Produce does, in two steps. It appends the
	// batch, ordered after the batches of every Produce and ProduceStaged
	// call on the partition that returned before it, and returns; the
	// batch slice may then be reused. wait blocks until the batch is
	// acknowledged under the log's durability policy and returns
	// Produce's result and error; the caller must call it exactly once.
	// An error from ProduceStaged itself means nothing was appended.
	ProduceStaged(ctx context.Context, topic string, partition int32, batch []byte) (wait func(context.Context) (ProduceResult, error), err error)
}

// ProduceResult describes an acknowledged batch.
type ProduceResult struct {
	BaseOffset int64
	LastOffset int64
	// LogAppendTime is the time the log stamped on the batch, for topics
	// with message.timestamp.type=LogAppendTime, else -1.
	LogAppendTime int64
}

// FetchRequest asks for batches of one partition.
type FetchRequest struct {
	Topic     string
	Partition int32
	Offset    int64
	// MaxBytes bounds the result, except that the first batch is returned
	// whole even when it is larger, so a reader always makes progress.
	MaxBytes int
	// MaxWait is how long to wait when there is nothing at Offset yet.
	MaxWait time.Duration
	// Buf, if it has the capacity, is reused for the result's Batches.
	Buf []byte
}

// FetchResult holds whole RecordBatch v2 batches. The first batch holds
// the offset asked for but may start before it; readers skip records below
// it.
type FetchResult struct {
	Batches        []byte
	HighWatermark  int64
	LogStartOffset int64
	// NextOffset is where the next fetch should start.
	NextOffset int64
}

// GroupOffset is a committed consumer-group position: the next offset the
// group will read.
type GroupOffset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  time.Time
}

// GroupDescription describes a consumer group's live membership.
type GroupDescription struct {
	Group string
	// State is Kafka's name for it: Empty, PreparingRebalance,
	// CompletingRebalance, Stable or Dead.
	State string
	// ProtocolType is "consumer" for consumers; Protocol the partition
	// assignor the members agreed on (set while Stable).
	ProtocolType string
	Protocol     string
	// Generation is -1 when the implementation cannot tell (Kafka's
	// DescribeGroups does not say).
	Generation int32
	Members    []GroupMember
}

// GroupMember is a live member of a group.
type GroupMember struct {
	MemberID string
	// InstanceID is a static member's group.instance.id, else empty.
	InstanceID string
	ClientID   string
	ClientHost string
	// Assigned are the partitions the leader assigned it, decoded from
	// the consumer protocol's assignment; none for other protocol types
	// or before the group is Stable.
	Assigned []TopicPartitions
}

// TopicPartitions names partitions of one topic.
type TopicPartitions struct {
	Topic      string
	Partitions []int32
}

// Group states of GroupDescription.State, as Kafka names them.
const (
	GroupEmpty  = "Empty"
	GroupDead   = "Dead"
	GroupStable = "Stable"
)

// Sentinel errors every implementation maps its errors onto.
var (
	ErrUnknownTopic     = errors.New("unknown topic")
	ErrUnknownPartition = errors.New("unknown partition")
	ErrTopicExists      = errors.New("topic already exists")
	ErrOffsetOutOfRange = errors.New("offset out of range")
	ErrInvalid          = errors.New("invalid request")
	ErrTooLarge         = errors.New("too large")
	ErrCorrupt          = errors.New("corrupt data")
	// ErrUnavailable reports a log that cannot serve the request now: a
	// partition refusing writes after a disk error, a closed log, an
	// unreachable cluster.
	ErrUnavailable = errors.New("log unavailable")
	// ErrOutOfOrderSequence reports an idempotent batch whose sequence
	// number does not follow its producer's last batch in the partition
	// (Kafka's OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrProducerFenced reports an idempotent batch from an older epoch of
	// its producer than the partition has seen: another instance took the
	// producer over (Kafka's INVALID_PRODUCER_EPOCH for produce).
	ErrProducerFenced = errors.New("producer fenced")
)
