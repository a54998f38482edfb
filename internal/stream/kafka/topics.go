package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/topic"
)

// CreateTopic implements stream.Log. The name is checked here, by Kafka's
// own rules; the partition count and the configuration are the brokers' to
// accept or refuse (INVALID_CONFIG, INVALID_PARTITIONS and the like map to
// stream.ErrInvalid). Config keys are passed as given: a cluster accepts
// every Kafka topic config, not only those the embedded log knows. The
// replication factor is Options.ReplicationFactor.
func (l *Log) CreateTopic(ctx context.Context, name string, partitions int32, config map[string]string) (stream.TopicInfo, error) {
	if err := topic.ValidateName(name); err != nil {
		return stream.TopicInfo{}, mapErr(fmt.Errorf("create topic: %w", err))
	}
	if partitions < 1 {
		return stream.TopicInfo{}, fmt.Errorf("create topic %q: %w: %d partitions, want at least 1", name, stream.ErrInvalid, partitions)
	}
	cfg := make(map[string]*string, len(config))
	for k, v := range config {
		cfg[k] = kmsg.StringPtr(v)
	}
	resp, err := l.adm.CreateTopic(ctx, partitions, l.opts.ReplicationFactor, cfg, name)
	if err != nil {
		return stream.TopicInfo{}, mapErr(fmt.Errorf("create topic %q: %w%s", name, err, brokerSays(resp.ErrMessage)))
	}
	l.forget(name)
	var ti stream.TopicInfo
	_ = l.settle(ctx, func() (bool, error) {
		got, err := l.DescribeTopic(ctx, name)
		if err != nil {
			return false, err
		}
		ti = got
		return len(got.Partitions) == int(partitions) && overridden(got, sortedKeys(config), nil), nil
	})
	if ti.Name == "" {
		// The topic exists but no broker describes it yet: answer with
		// what the create response told us rather than fail a create
		// that succeeded.
		ti = stream.TopicInfo{Name: name, ID: resp.ID, Config: map[string]string{}, Overrides: map[string]string{}}
		for k, v := range config {
			ti.Config[k], ti.Overrides[k] = v, v
		}
		for p := range partitions {
			ti.Partitions = append(ti.Partitions, stream.PartitionInfo{Partition: p})
		}
	}
	return ti, nil
}

// overridden reports whether ti overrides every key of set and none of
// unset.
func overridden(ti stream.TopicInfo, set, unset []string) bool {
	for _, k := range set {
		if _, ok := ti.Overrides[k]; !ok {
			return false
		}
	}
	for _, k := range unset {
		if _, ok := ti.Overrides[k]; ok {
			return false
		}
	}
	return true
}

// DeleteTopic implements stream.Log. The group coordinators drop the
// topic's committed offsets themselves.
func (l *Log) DeleteTopic(ctx context.Context, name string) error {
	if err := topic.ValidateName(name); err != nil {
		return fmt.Errorf("delete topic: %w: %w", stream.ErrUnknownTopic, err)
	}
	resp, err := l.adm.DeleteTopic(ctx, name)
	if err != nil {
		return mapErr(fmt.Errorf("delete topic %q: %w%s", name, err, brokerSays(resp.ErrMessage)))
	}
	l.forget(name)
	_ = l.settle(ctx, func() (bool, error) {
		md, err := l.metadata(ctx, []string{name})
		if err != nil {
			return false, err
		}
		for _, t := range md.Topics {
			if t.Topic != nil && *t.Topic == name && !missing(t.ErrorCode) {
				return false, nil
			}
		}
		return true, nil
	})
	return nil
}

// ListTopics implements stream.Log. Kafka's internal topics
// (__consumer_offsets, __transaction_state) are left out.
func (l *Log) ListTopics(ctx context.Context) ([]stream.TopicInfo, error) {
	md, err := l.metadata(ctx, nil)
	if err != nil {
		return nil, err
	}
	return l.describe(ctx, md, true)
}

// DescribeTopic implements stream.Log.
//
// Kafka does not report a topic's creation time, so CreatedAt is zero.
// Partition sizes come from DescribeLogDirs, as reported by each
// partition's leader; they are zero when the cluster does not answer it
// (it needs DESCRIBE on the cluster).
func (l *Log) DescribeTopic(ctx context.Context, name string) (stream.TopicInfo, error) {
	if err := topic.ValidateName(name); err != nil {
		return stream.TopicInfo{}, fmt.Errorf("describe topic: %w: %w", stream.ErrUnknownTopic, err)
	}
	md, err := l.metadata(ctx, []string{name})
	if err != nil {
		return stream.TopicInfo{}, err
	}
	ts, err := l.describe(ctx, md, false)
	if err != nil {
		return stream.TopicInfo{}, err
	}
	for _, ti := range ts {
		if ti.Name == name {
			return ti, nil
		}
	}
	return stream.TopicInfo{}, fmt.Errorf("describe topic: %w: %q", stream.ErrUnknownTopic, name)
}

// describe completes the topics of a metadata answer with their offsets,
// configuration and sizes, sorted by name. Topics deleted meanwhile are
// left out, as are internal topics when all is set.
func (l *Log) describe(ctx context.Context, md *kmsg.MetadataResponse, all bool) ([]stream.TopicInfo, error) {
	infos := map[string]*stream.TopicInfo{}
	leaders := map[string][]int32{}
	var names []string
	var set kadm.TopicsSet
	for _, t := range md.Topics {
		if t.Topic == nil || missing(t.ErrorCode) || all && t.IsInternal {
			continue
		}
		name := *t.Topic
		// A topic whose leaders are still being elected is described
		// all the same; any other topic error fails the call.
		if t.ErrorCode != 0 && t.ErrorCode != kerr.LeaderNotAvailable.Code {
			return nil, mapErr(fmt.Errorf("describe topic %q: %w", name, kerr.ErrorForCode(t.ErrorCode)))
		}
		n := partitionCount(t)
		ti := &stream.TopicInfo{Name: name, ID: t.TopicID, Config: map[string]string{}, Overrides: map[string]string{},
			Partitions: make([]stream.PartitionInfo, n)}
		ls := make([]int32, n)
		for i := range ti.Partitions {
			ti.Partitions[i].Partition = int32(i)
			ls[i] = -1
			set.Add(name, int32(i))
		}
		for _, p := range t.Partitions {
			if p.Partition >= 0 {
				ls[p.Partition] = p.Leader
			}
		}
		infos[name], leaders[name] = ti, ls
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, nil
	}

	var (
		wg                       sync.WaitGroup
		starts, ends             kadm.ListedOffsets
		cfgs                     kadm.ResourceConfigs
		dirs                     kadm.DescribedAllLogDirs
		startErr, endErr, cfgErr error
	)
	wg.Go(func() { starts, startErr = l.adm.ListStartOffsets(ctx, names...) })
	wg.Go(func() { ends, endErr = l.adm.ListEndOffsets(ctx, names...) })
	wg.Go(func() { cfgs, cfgErr = l.adm.DescribeTopicConfigs(ctx, names...) })
	// Sizes are best effort, so they get less time: an error leaves
	// them at zero. DescribeLogDirs goes to every broker, and a broker
	// that does not answer must not hold up the rest.
	wg.Go(func() {
		ctx, cancel := context.WithTimeout(ctx, logDirsTimeout)
		defer cancel()
		dirs, _ = l.adm.DescribeAllLogDirs(ctx, set)
	})
	wg.Wait()
	if err := errors.Join(startErr, endErr, cfgErr); err != nil {
		return nil, mapErr(fmt.Errorf("describe topics: %w", err))
	}

	gone := map[string]bool{}
	// check records a topic deleted since the metadata answer, and fails
	// on any other error.
	check := func(name string, err error, what string) (bool, error) {
		switch {
		case err == nil:
			return true, nil
		case missingErr(err):
			gone[name] = true
			return false, nil
		}
		return false, mapErr(fmt.Errorf("describe topic %q: %s: %w", name, what, err))
	}
	for _, lo := range []struct {
		offsets kadm.ListedOffsets
		set     func(*stream.PartitionInfo, int64)
	}{
		{starts, func(p *stream.PartitionInfo, o int64) { p.LogStartOffset = o }},
		{ends, func(p *stream.PartitionInfo, o int64) { p.HighWatermark = o }},
	} {
		for name, ps := range lo.offsets {
			ti := infos[name]
			if ti == nil {
				continue
			}
			for p, o := range ps {
				if ok, err := check(name, o.Err, fmt.Sprintf("list offsets of partition %d", p)); err != nil {
					return nil, err
				} else if ok && p >= 0 && int(p) < len(ti.Partitions) {
					lo.set(&ti.Partitions[p], o.Offset)
				}
			}
		}
	}
	for _, rc := range cfgs {
		ti := infos[rc.Name]
		if ti == nil {
			continue
		}
		if ok, err := check(rc.Name, rc.Err, "describe configs"+brokerSays(rc.ErrMessage)); !ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		for _, c := range rc.Configs {
			if c.Value == nil || c.Sensitive {
				continue // nothing to show
			}
			ti.Config[c.Key] = *c.Value
			if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
				ti.Overrides[c.Key] = *c.Value
			}
		}
	}
	sizeFromLeader := map[string]map[int32]bool{}
	for _, ds := range dirs {
		for _, d := range ds {
			if d.Err != nil {
				continue
			}
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				ti := infos[p.Topic]
				if ti == nil || p.IsFuture || p.Partition < 0 || int(p.Partition) >= len(ti.Partitions) {
					return
				}
				pi := &ti.Partitions[p.Partition]
				// The leader's copy is the partition's size; another
				// replica's stands in only while the leader's is unknown.
				switch {
				case p.Broker == leaders[p.Topic][p.Partition]:
					pi.SizeBytes = p.Size
					if sizeFromLeader[p.Topic] == nil {
						sizeFromLeader[p.Topic] = map[int32]bool{}
					}
					sizeFromLeader[p.Topic][p.Partition] = true
				case !sizeFromLeader[p.Topic][p.Partition]:
					pi.SizeBytes = max(pi.SizeBytes, p.Size)
				}
			})
		}
	}

	slices.Sort(names)
	out := make([]stream.TopicInfo, 0, len(names))
	for _, name := range names {
		if !gone[name] {
			out = append(out, *infos[name])
		}
	}
	return out, nil
}

// logDirsTimeout bounds the DescribeLogDirs that sizes come from.
const logDirsTimeout = 5 * time.Second

// AlterTopic implements stream.Log. Kafka changes configuration
// (IncrementalAlterConfigs) and partitions (CreatePartitions) in separate
// requests, so AlterTopic first has the brokers validate both, then
// applies the configuration, then the partitions; if adding partitions
// still fails, it restores the previous overrides of the keys it changed.
// Partitions cannot be taken back once added, which is why they come last.
// Another client altering the same topic at the same moment can still
// interleave with this.
func (l *Log) AlterTopic(ctx context.Context, name string, ch stream.TopicChange) (stream.TopicInfo, error) {
	cur, err := l.DescribeTopic(ctx, name)
	if err != nil {
		return stream.TopicInfo{}, err
	}
	n := int32(len(cur.Partitions))
	if ch.Partitions < 0 || ch.Partitions != 0 && ch.Partitions < n {
		return stream.TopicInfo{}, fmt.Errorf("alter topic %q: %w: has %d partitions, cannot shrink to %d", name, stream.ErrInvalid, n, ch.Partitions)
	}
	grow := ch.Partitions > n

	unset := slices.Clone(ch.Delete)
	slices.Sort(unset)
	unset = slices.Compact(unset)
	var set []string
	var ops []kadm.AlterConfig
	for _, k := range sortedKeys(ch.Set) {
		// Removing a key wins over setting it, as in the embedded log;
		// Kafka refuses a request that names a key twice.
		if _, ok := slices.BinarySearch(unset, k); !ok {
			set = append(set, k)
			ops = append(ops, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kmsg.StringPtr(ch.Set[k])})
		}
	}
	for _, k := range unset {
		ops = append(ops, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
	}

	if len(ops) > 0 {
		if err := l.alterConfigs(ctx, name, ops, true); err != nil {
			return stream.TopicInfo{}, err
		}
	}
	if grow {
		if err := l.updatePartitions(ctx, name, ch.Partitions, true); err != nil {
			return stream.TopicInfo{}, err
		}
	}
	if len(ops) > 0 {
		if err := l.alterConfigs(ctx, name, ops, false); err != nil {
			return stream.TopicInfo{}, err
		}
	}
	if grow {
		if err := l.updatePartitions(ctx, name, ch.Partitions, false); err != nil {
			if len(ops) > 0 {
				if rerr := l.alterConfigs(ctx, name, undo(ops, cur.Overrides), false); rerr != nil {
					err = fmt.Errorf("%w (restoring the configuration also failed: %v)", err, rerr)
				}
			}
			return stream.TopicInfo{}, err
		}
		l.forget(name)
	}

	want := max(ch.Partitions, n)
	ti := cur
	_ = l.settle(ctx, func() (bool, error) {
		got, err := l.DescribeTopic(ctx, name)
		if err != nil {
			return false, err
		}
		ti = got
		return int32(len(got.Partitions)) == want && overridden(got, set, unset), nil
	})
	return ti, nil
}

// undo returns the operations that put back the overrides ops changed.
func undo(ops []kadm.AlterConfig, prev map[string]string) []kadm.AlterConfig {
	out := make([]kadm.AlterConfig, 0, len(ops))
	for _, op := range ops {
		if v, ok := prev[op.Name]; ok {
			out = append(out, kadm.AlterConfig{Op: kadm.SetConfig, Name: op.Name, Value: kmsg.StringPtr(v)})
		} else {
			out = append(out, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: op.Name})
		}
	}
	return out
}

// alterConfigs applies, or with validate only checks, config operations
// on one topic.
func (l *Log) alterConfigs(ctx context.Context, name string, ops []kadm.AlterConfig, validate bool) error {
	alter := l.adm.AlterTopicConfigs
	if validate {
		alter = l.adm.ValidateAlterTopicConfigs
	}
	rs, err := alter(ctx, ops, name)
	if err == nil {
		var r kadm.AlterConfigsResponse
		r, err = rs.On(name, nil)
		if err == nil && r.Err != nil {
			err = fmt.Errorf("%w%s", r.Err, brokerSays(r.ErrMessage))
		}
	}
	if err != nil {
		return mapErr(fmt.Errorf("alter topic %q: configuration: %w", name, err))
	}
	return nil
}

// updatePartitions raises, or with validate only checks raising, a
// topic's partition count to n.
func (l *Log) updatePartitions(ctx context.Context, name string, n int32, validate bool) error {
	update := l.adm.UpdatePartitions
	if validate {
		update = l.adm.ValidateUpdatePartitions
	}
	rs, err := update(ctx, int(n), name)
	if err == nil {
		var r kadm.CreatePartitionsResponse
		r, err = rs.On(name, nil)
		if err == nil && r.Err != nil {
			err = fmt.Errorf("%w%s", r.Err, brokerSays(r.ErrMessage))
		}
	}
	if err != nil {
		return mapErr(fmt.Errorf("alter topic %q: partitions: %w", name, err))
	}
	return nil
}
