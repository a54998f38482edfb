// Package embedded implements stream.Log on Sluice's own log and metadata
// store, for a single server with no external services.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/sluice-dev/sluice/internal/group"
	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/meta"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/topic"
)

// Log is stream.Log over a logstore.Log and the meta.Store that is its
// catalog. It does not own them: the caller closes them.
type Log struct {
	log    *logstore.Log
	meta   *meta.Store
	groups *group.Coordinator // live members; nil for none
}

var _ stream.Log = (*Log)(nil)

// New returns the embedded implementation. m must be the catalog l was
// opened with.
func New(l *logstore.Log, m *meta.Store, opts ...Option) *Log {
	e := &Log{log: l, meta: m}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Option configures a Log.
type Option func(*Log)

// WithGroups gives the Log the group coordinator of the Kafka listener, so
// that DescribeGroups reports live members and DeleteGroup and
// DeleteOffsets refuse to pull offsets from under them. Without it the
// Log knows no live members.
func WithGroups(c *group.Coordinator) Option { return func(e *Log) { e.groups = c } }

// CreateTopic implements stream.Log.
func (e *Log) CreateTopic(ctx context.Context, name string, partitions int32, config map[string]string) (stream.TopicInfo, error) {
	if _, err := e.log.CreateTopic(ctx, name, partitions, config); err != nil {
		return stream.TopicInfo{}, mapErr(err)
	}
	return e.DescribeTopic(ctx, name)
}

// DeleteTopic implements stream.Log. The catalog drops the topic's
// committed offsets in the same transaction as the topic.
func (e *Log) DeleteTopic(ctx context.Context, name string) error {
	return mapErr(e.log.DeleteTopic(ctx, name))
}

// ListTopics implements stream.Log.
func (e *Log) ListTopics(ctx context.Context) ([]stream.TopicInfo, error) {
	ts := e.log.Topics()
	out := make([]stream.TopicInfo, len(ts))
	for i, t := range ts {
		out[i] = topicInfo(t)
	}
	return out, nil
}

// DescribeTopic implements stream.Log.
func (e *Log) DescribeTopic(ctx context.Context, name string) (stream.TopicInfo, error) {
	t, err := e.log.Topic(name)
	if err != nil {
		return stream.TopicInfo{}, mapErr(err)
	}
	return topicInfo(t), nil
}

func topicInfo(t logstore.TopicInfo) stream.TopicInfo {
	ti := stream.TopicInfo{Name: t.Spec.Name, ID: t.Spec.ID, Config: t.Config.Map(),
		Overrides: map[string]string{}, CreatedAt: t.Spec.CreatedAt}
	for k, v := range t.Spec.Config {
		ti.Overrides[k] = v
	}
	for _, p := range t.Partitions {
		ti.Partitions = append(ti.Partitions, stream.PartitionInfo{Partition: p.Partition,
			LogStartOffset: p.LogStartOffset, HighWatermark: p.HighWatermark, SizeBytes: p.SizeBytes})
	}
	return ti
}

// AlterTopic implements stream.Log. The new configuration and partition
// count are validated before anything changes.
func (e *Log) AlterTopic(ctx context.Context, name string, ch stream.TopicChange) (stream.TopicInfo, error) {
	cur, err := e.log.Topic(name)
	if err != nil {
		return stream.TopicInfo{}, mapErr(err)
	}
	over := map[string]string{}
	for k, v := range cur.Spec.Config {
		over[k] = v
	}
	for k, v := range ch.Set {
		over[k] = v
	}
	for _, k := range ch.Delete {
		if !validKey(k) {
			return stream.TopicInfo{}, mapErr(fmt.Errorf("alter topic %q: %w: unknown config key %q", name, topic.ErrInvalid, k))
		}
		delete(over, k)
	}
	spec := cur.Spec
	spec.Config = over
	if ch.Partitions != 0 {
		spec.Partitions = ch.Partitions
	}
	if err := spec.Validate(); err != nil {
		return stream.TopicInfo{}, mapErr(fmt.Errorf("alter topic %q: %w", name, err))
	}
	if ch.Partitions != 0 && ch.Partitions < cur.Spec.Partitions {
		return stream.TopicInfo{}, mapErr(fmt.Errorf("alter topic %q: %w: has %d partitions, cannot shrink to %d",
			name, topic.ErrInvalid, cur.Spec.Partitions, ch.Partitions))
	}
	if _, err := e.log.AlterTopicConfig(ctx, name, over); err != nil {
		return stream.TopicInfo{}, mapErr(err)
	}
	if ch.Partitions > cur.Spec.Partitions {
		if _, err := e.log.AddPartitions(ctx, name, ch.Partitions); err != nil {
			return stream.TopicInfo{}, mapErr(err)
		}
	}
	return e.DescribeTopic(ctx, name)
}

func validKey(k string) bool {
	for _, known := range topic.Keys() {
		if k == known {
			return true
		}
	}
	return false
}

// Produce implements stream.Log.
func (e *Log) Produce(ctx context.Context, topicName string, partition int32, batch []byte) (stream.ProduceResult, error) {
	p, err := e.log.Partition(topicName, partition)
	if err != nil {
		return stream.ProduceResult{}, mapErr(err)
	}
	res, err := p.Append(ctx, batch)
	if err != nil {
		return stream.ProduceResult{}, mapErr(err)
	}
	return produceResult(res), nil
}

var _ stream.StagedProducer = (*Log)(nil)

// ProduceStaged implements stream.StagedProducer with the log's Write and
// Durable, the two halves of Append.
func (e *Log) ProduceStaged(ctx context.Context, topicName string, partition int32, batch []byte) (func(context.Context) (stream.ProduceResult, error), error) {
	p, err := e.log.Partition(topicName, partition)
	if err != nil {
		return nil, mapErr(err)
	}
	res, err := p.Write(batch)
	if err != nil {
		return nil, mapErr(err)
	}
	return func(ctx context.Context) (stream.ProduceResult, error) {
		if err := p.Durable(ctx, res); err != nil {
			return stream.ProduceResult{}, mapErr(err)
		}
		return produceResult(res), nil
	}, nil
}

func produceResult(res logstore.AppendResult) stream.ProduceResult {
	return stream.ProduceResult{BaseOffset: res.BaseOffset, LastOffset: res.LastOffset, LogAppendTime: res.LogAppendTime}
}

// Fetch implements stream.Log.
func (e *Log) Fetch(ctx context.Context, req stream.FetchRequest) (stream.FetchResult, error) {
	p, err := e.log.Partition(req.Topic, req.Partition)
	if err != nil {
		return stream.FetchResult{}, mapErr(err)
	}
	res, err := p.Read(ctx, req.Offset, req.MaxBytes, req.Buf)
	if err == nil && len(res.Batches) == 0 && req.MaxWait > 0 {
		wctx, cancel := context.WithTimeout(ctx, req.MaxWait)
		werr := p.Wait(wctx, req.Offset)
		cancel()
		switch {
		case werr == nil:
			res, err = p.Read(ctx, req.Offset, req.MaxBytes, req.Buf)
		case errors.Is(werr, context.DeadlineExceeded) && ctx.Err() == nil:
			// Nothing arrived in time: an empty result, as Kafka's fetch.
		default:
			err = werr
		}
	}
	if err != nil {
		return stream.FetchResult{}, mapErr(err)
	}
	return stream.FetchResult{Batches: res.Batches, HighWatermark: res.HighWatermark,
		LogStartOffset: res.LogStartOffset, NextOffset: res.NextOffset}, nil
}

// ListOffset implements stream.Log.
func (e *Log) ListOffset(ctx context.Context, topicName string, partition int32, at int64) (int64, error) {
	p, err := e.log.Partition(topicName, partition)
	if err != nil {
		return 0, mapErr(err)
	}
	switch {
	case at == stream.Earliest:
		return p.Info().LogStartOffset, nil
	case at == stream.Latest:
		return p.HighWatermark(), nil
	case at < 0:
		return 0, mapErr(fmt.Errorf("list offset: %w: position %d", stream.ErrInvalid, at))
	}
	off, _, found, err := p.OffsetForTime(ctx, at)
	if err != nil {
		return 0, mapErr(err)
	}
	if !found {
		return p.HighWatermark(), nil
	}
	return off, nil
}

// DeleteRecords implements stream.Log.
func (e *Log) DeleteRecords(ctx context.Context, topicName string, partition int32, before int64) (int64, error) {
	p, err := e.log.Partition(topicName, partition)
	if err != nil {
		return 0, mapErr(err)
	}
	start, err := p.DeleteRecords(ctx, before)
	return start, mapErr(err)
}

// CommitOffsets implements stream.Log.
func (e *Log) CommitOffsets(ctx context.Context, group string, offsets []stream.GroupOffset) error {
	commits := make([]meta.OffsetCommit, len(offsets))
	for i, o := range offsets {
		if _, err := e.log.Partition(o.Topic, o.Partition); err != nil {
			return mapErr(fmt.Errorf("commit offsets for group %q: %w", group, err))
		}
		var ms int64
		if !o.CommitTime.IsZero() {
			ms = o.CommitTime.UnixMilli()
		}
		commits[i] = meta.OffsetCommit{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset,
			LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitMs: ms}
	}
	return mapErr(e.meta.CommitOffsets(group, commits))
}

// FetchOffsets implements stream.Log.
func (e *Log) FetchOffsets(ctx context.Context, group string) ([]stream.GroupOffset, error) {
	cs, err := e.meta.FetchOffsets(group)
	if err != nil {
		if errors.Is(err, meta.ErrNotFound) {
			return nil, nil
		}
		return nil, mapErr(err)
	}
	out := make([]stream.GroupOffset, len(cs))
	for i, c := range cs {
		out[i] = stream.GroupOffset{Topic: c.Topic, Partition: c.Partition, Offset: c.Offset,
			LeaderEpoch: c.LeaderEpoch, Metadata: c.Metadata, CommitTime: time.UnixMilli(c.CommitMs)}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}

// ListGroups implements stream.Log.
func (e *Log) ListGroups(ctx context.Context) ([]string, error) {
	gs, err := e.meta.Groups()
	return gs, mapErr(err)
}

// DeleteGroup implements stream.Log. A group with live members is
// refused with stream.ErrInvalid, as Kafka refuses it (NON_EMPTY_GROUP).
func (e *Log) DeleteGroup(ctx context.Context, group string) error {
	if e.groups != nil {
		if err := e.groups.Delete(group); err != nil {
			return fmt.Errorf("delete group %q: %w: it has active members (%w)", group, stream.ErrInvalid, err)
		}
	}
	err := e.meta.DeleteGroup(group)
	if errors.Is(err, meta.ErrNotFound) {
		return nil
	}
	return mapErr(err)
}

// DeleteOffsets implements stream.Log.
func (e *Log) DeleteOffsets(ctx context.Context, groupName string, partitions []stream.TopicPartitions) error {
	if e.groups != nil {
		if d, ok := e.groups.Describe(groupName); ok {
			for _, tp := range partitions {
				if len(d.Members) > 0 && d.SubscribedTo(tp.Topic) {
					return fmt.Errorf("delete offsets of group %q: %w: its members are subscribed to topic %q", groupName, stream.ErrInvalid, tp.Topic)
				}
			}
		}
	}
	m := make(map[string][]int32, len(partitions))
	for _, tp := range partitions {
		m[tp.Topic] = append(m[tp.Topic], tp.Partitions...)
	}
	return mapErr(e.meta.DeleteOffsets(groupName, m))
}

// DescribeGroups implements stream.Log: live members come from the
// coordinator given with WithGroups.
func (e *Log) DescribeGroups(ctx context.Context, groups []string) ([]stream.GroupDescription, error) {
	committed, err := e.meta.Groups()
	if err != nil {
		return nil, mapErr(err)
	}
	hasOffsets := make(map[string]bool, len(committed))
	for _, g := range committed {
		hasOffsets[g] = true
	}
	var live []group.Description
	if e.groups != nil {
		live = e.groups.List()
	}
	byName := make(map[string]group.Description, len(live))
	for _, d := range live {
		if len(d.Members) > 0 {
			byName[d.Group] = d
		}
	}
	names := groups
	if len(names) == 0 {
		names = committed
		for name := range byName {
			if !hasOffsets[name] {
				names = append(names, name)
			}
		}
		sort.Strings(names)
	}
	out := make([]stream.GroupDescription, 0, len(names))
	for _, name := range names {
		d, ok := byName[name]
		if !ok {
			state := stream.GroupDead
			if hasOffsets[name] {
				state = stream.GroupEmpty
			}
			out = append(out, stream.GroupDescription{Group: name, State: state})
			continue
		}
		gd := stream.GroupDescription{Group: name, State: string(d.State), ProtocolType: d.ProtocolType,
			Protocol: d.Protocol, Generation: d.Generation}
		for _, m := range d.Members {
			gm := stream.GroupMember{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, ClientHost: m.ClientHost}
			if d.ProtocolType == group.ConsumerProtocolType {
				for _, tp := range group.ConsumerAssignment(m.Assignment) {
					gm.Assigned = append(gm.Assigned, stream.TopicPartitions{Topic: tp.Topic, Partitions: tp.Partitions})
				}
			}
			gd.Members = append(gd.Members, gm)
		}
		out = append(out, gd)
	}
	return out, nil
}

// mappedError keeps an implementation error's message and makes it match
// the stream sentinel it maps to.
type mappedError struct {
	kind error
	err  error
}

func (e *mappedError) Error() string   { return e.err.Error() }
func (e *mappedError) Unwrap() []error { return []error{e.kind, e.err} }

// mapErr maps the log's and the metadata store's errors onto the stream
// sentinels, in one place.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	kinds := []struct {
		from []error
		to   error
	}{
		{[]error{logstore.ErrUnknownTopic, meta.ErrNotFound}, stream.ErrUnknownTopic},
		{[]error{logstore.ErrUnknownPartition}, stream.ErrUnknownPartition},
		{[]error{logstore.ErrTopicExists}, stream.ErrTopicExists},
		{[]error{logstore.ErrOffsetOutOfRange}, stream.ErrOffsetOutOfRange},
		{[]error{logstore.ErrOutOfOrderSequence}, stream.ErrOutOfOrderSequence},
		{[]error{logstore.ErrInvalidProducerEpoch}, stream.ErrProducerFenced},
		{[]error{record.ErrTooLarge}, stream.ErrTooLarge},
		{[]error{logstore.ErrCorrupt}, stream.ErrCorrupt},
		{[]error{topic.ErrInvalid, record.ErrMalformed, record.ErrChecksum, logstore.ErrInvalidPartitions, logstore.ErrInvalidRecord, meta.ErrInvalid}, stream.ErrInvalid},
		{[]error{logstore.ErrPartitionFailed, logstore.ErrClosed, meta.ErrClosed}, stream.ErrUnavailable},
	}
	for _, k := range kinds {
		if errors.Is(err, k.to) {
			return err // already mapped
		}
		for _, f := range k.from {
			if errors.Is(err, f) {
				return &mappedError{kind: k.to, err: err}
			}
		}
	}
	return err
}
