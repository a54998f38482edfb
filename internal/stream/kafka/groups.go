package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-dev/sluice/internal/stream"
)

// CommitOffsets implements stream.Log with an OffsetCommit request to the
// group's coordinator, which writes the offsets of one request together.
// Every topic and partition is checked against fresh metadata first, so an
// unknown one fails the call before anything is stored.
//
// Kafka takes offsets from outside a group (generation -1, no member ID)
// only while the group has no members: committing for a group that is
// consuming fails with stream.ErrInvalid. The commit time is the
// coordinator's; GroupOffset.CommitTime is not sent.
func (l *Log) CommitOffsets(ctx context.Context, group string, offsets []stream.GroupOffset) error {
	if len(offsets) == 0 {
		return nil
	}
	var topics []string
	for _, o := range offsets {
		topics = append(topics, o.Topic)
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	md, err := l.metadata(ctx, topics)
	if err != nil {
		return fmt.Errorf("commit offsets for group %q: %w", group, err)
	}
	counts := map[string]int{}
	for _, t := range md.Topics {
		switch {
		case t.Topic == nil || missing(t.ErrorCode):
		case t.ErrorCode == 0 || t.ErrorCode == kerr.LeaderNotAvailable.Code:
			counts[*t.Topic] = partitionCount(t)
		default:
			return mapErr(fmt.Errorf("commit offsets for group %q: topic %q: %w", group, *t.Topic, kerr.ErrorForCode(t.ErrorCode)))
		}
	}
	var os kadm.Offsets
	for _, o := range offsets {
		n, ok := counts[o.Topic]
		switch {
		case !ok:
			return fmt.Errorf("commit offsets for group %q: %w: %q", group, stream.ErrUnknownTopic, o.Topic)
		case o.Partition < 0 || int(o.Partition) >= n:
			return fmt.Errorf("commit offsets for group %q: %w: %s/%d: the topic has %d partitions", group, stream.ErrUnknownPartition, o.Topic, o.Partition, n)
		}
		os.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata})
	}
	rs, err := l.adm.CommitOffsets(ctx, group, os)
	if err == nil {
		err = rs.Error()
	}
	if err != nil {
		return mapErr(fmt.Errorf("commit offsets for group %q: %w%s", group, err, groupHint(err)))
	}
	return nil
}

// groupHint explains the errors Kafka gives for offsets committed from
// outside a group that has members.
func groupHint(err error) string {
	for _, e := range []error{kerr.UnknownMemberID, kerr.IllegalGeneration, kerr.RebalanceInProgress, kerr.FencedInstanceID,
		kerr.StaleMemberEpoch, kerr.NonEmptyGroup} {
		if errors.Is(err, e) {
			return " (the group has active members; Kafka changes its offsets only while it has none)"
		}
	}
	return ""
}

// FetchOffsets implements stream.Log with an OffsetFetch request for all of
// the group's partitions. Kafka does not return commit times, so
// CommitTime is zero.
func (l *Log) FetchOffsets(ctx context.Context, group string) ([]stream.GroupOffset, error) {
	rs, err := l.adm.FetchOffsets(ctx, group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil, nil
	}
	if err == nil {
		err = rs.Error()
	}
	if err != nil {
		return nil, mapErr(fmt.Errorf("fetch offsets of group %q: %w", group, err))
	}
	var out []stream.GroupOffset
	rs.Each(func(o kadm.OffsetResponse) {
		if o.At < 0 {
			return // listed, never committed
		}
		out = append(out, stream.GroupOffset{Topic: o.Topic, Partition: o.Partition, Offset: o.At,
			LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata})
	})
	slices.SortFunc(out, func(a, b stream.GroupOffset) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	})
	return out, nil
}

// ListGroups implements stream.Log with ListGroups on every broker. Kafka
// lists every group its coordinators know: those with committed offsets,
// and also those with members that have committed none yet.
func (l *Log) ListGroups(ctx context.Context) ([]string, error) {
	gs, err := l.adm.ListGroups(ctx)
	if err != nil {
		return nil, mapErr(fmt.Errorf("list groups: %w", err))
	}
	return gs.Groups(), nil
}

// DeleteGroup implements stream.Log with DeleteGroups. A group that does
// not exist is not an error; one with members is stream.ErrInvalid.
func (l *Log) DeleteGroup(ctx context.Context, group string) error {
	r, err := l.adm.DeleteGroup(ctx, group)
	if err == nil || errors.Is(err, kerr.GroupIDNotFound) {
		return nil
	}
	return mapErr(fmt.Errorf("delete group %q: %w%s%s", group, err, brokerSays(r.ErrMessage), groupHint(err)))
}

// DeleteOffsets implements stream.Log with OffsetDelete. Kafka refuses the
// partitions of topics the group's members are subscribed to
// (GROUP_SUBSCRIBED_TO_TOPIC), deleting the others; that is reported as
// stream.ErrInvalid. A group Kafka does not know has nothing to delete.
func (l *Log) DeleteOffsets(ctx context.Context, group string, partitions []stream.TopicPartitions) error {
	set := kadm.TopicsSet{}
	for _, tp := range partitions {
		set.Add(tp.Topic, tp.Partitions...)
	}
	rs, err := l.adm.DeleteOffsets(ctx, group, set)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return nil
	}
	if err == nil {
		err = rs.Error()
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, kerr.GroupSubscribedToTopic):
		return fmt.Errorf("delete offsets of group %q: %w: %w", group, stream.ErrInvalid, err)
	}
	return mapErr(fmt.Errorf("delete offsets of group %q: %w", group, err))
}

// DescribeGroups implements stream.Log with ListGroups (for all groups)
// and DescribeGroups. Kafka reports a group without members as Empty while
// it has committed offsets and as Dead once it has none, as the contract
// asks.
func (l *Log) DescribeGroups(ctx context.Context, groups []string) ([]stream.GroupDescription, error) {
	names := groups
	if len(names) == 0 {
		listed, err := l.adm.ListGroups(ctx)
		if err != nil {
			return nil, mapErr(fmt.Errorf("list groups: %w", err))
		}
		names = listed.Groups()
		if len(names) == 0 {
			return nil, nil
		}
	}
	described, err := l.adm.DescribeGroups(ctx, names...)
	if err != nil {
		return nil, mapErr(fmt.Errorf("describe groups: %w", err))
	}
	out := make([]stream.GroupDescription, 0, len(names))
	for _, name := range names {
		d, ok := described[name]
		switch {
		case !ok, errors.Is(d.Err, kerr.GroupIDNotFound):
			out = append(out, stream.GroupDescription{Group: name, State: stream.GroupDead})
			continue
		case d.Err != nil:
			return nil, mapErr(fmt.Errorf("describe group %q: %w%s", name, d.Err, brokerSays(d.ErrMessage)))
		}
		gd := stream.GroupDescription{Group: name, State: d.State, ProtocolType: d.ProtocolType, Protocol: d.Protocol, Generation: -1}
		for _, m := range d.Members {
			gm := stream.GroupMember{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost}
			if m.InstanceID != nil {
				gm.InstanceID = *m.InstanceID
			}
			if c, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range c.Topics {
					gm.Assigned = append(gm.Assigned, stream.TopicPartitions{Topic: t.Topic, Partitions: t.Partitions})
				}
			}
			gd.Members = append(gd.Members, gm)
		}
		slices.SortFunc(gd.Members, func(a, b stream.GroupMember) int { return strings.Compare(a.MemberID, b.MemberID) })
		out = append(out, gd)
	}
	return out, nil
}
