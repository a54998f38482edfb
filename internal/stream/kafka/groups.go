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
