package client

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// GroupOffset is a consumer group's committed position in one partition:
// the next offset the group will read.
type GroupOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Metadata  string `json:"metadata,omitempty"`
	// CommitTime is when the offset was committed; set by FetchOffsets.
	CommitTime time.Time `json:"commit_time,omitzero"`
}

// CommitOffsets stores a group's offsets, all of them or none (an unknown
// topic or partition fails the whole commit).
func (c *Client) CommitOffsets(ctx context.Context, group string, offsets []GroupOffset) error {
	if len(offsets) == 0 {
		return errors.New("commit offsets: none to commit")
	}
	type wire struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		Offset    int64  `json:"offset"`
		Metadata  string `json:"metadata,omitempty"`
	}
	in := struct {
		Offsets []wire `json:"offsets"`
	}{make([]wire, len(offsets))}
	for i, o := range offsets {
		in.Offsets[i] = wire{o.Topic, o.Partition, o.Offset, o.Metadata}
	}
	return c.do(ctx, request{method: http.MethodPost, path: groupPath(group) + "/offsets", in: in})
}

// FetchOffsets returns a group's committed offsets, none for a group that
// has committed none.
func (c *Client) FetchOffsets(ctx context.Context, group string) ([]GroupOffset, error) {
	var out struct {
		Offsets []GroupOffset `json:"offsets"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: groupPath(group) + "/offsets", out: &out}); err != nil {
		return nil, err
	}
	return out.Offsets, nil
}

// GroupSummary is a group as ListGroups describes it.
type GroupSummary struct {
	Group   string `json:"group"`
	State   string `json:"state"`
	Members int    `json:"members"`
	// Lag is the sum over the group's partitions of the records between
	// its committed offset and the log end.
	Lag int64 `json:"lag"`
}

// ListGroups describes every group.
func (c *Client) ListGroups(ctx context.Context) ([]GroupSummary, error) {
	var out struct {
		Groups []GroupSummary `json:"groups"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/groups", out: &out}); err != nil {
		return nil, err
	}
	return out.Groups, nil
}

// Group is a group as DescribeGroup describes it.
type Group struct {
	Group string `json:"group"`
	// State is Kafka's name for it: "Stable" with active members, "Empty"
	// without.
	State string `json:"state"`
	// Lag is the sum of the partitions' lags.
	Lag        int64            `json:"lag"`
	Members    []Member         `json:"members"`
	Partitions []GroupPartition `json:"partitions"`
}

// Member is an active member of a group: a Kafka consumer on the Kafka
// listener (Kind "kafka") or a Kafka REST Proxy v2 consumer instance (Kind
// "rest_proxy").
type Member struct {
	Kind         string           `json:"kind"`
	MemberID     string           `json:"member_id"`
	InstanceID   string           `json:"instance_id,omitempty"`
	ClientID     string           `json:"client_id,omitempty"`
	ClientHost   string           `json:"client_host,omitempty"`
	Topics       []string         `json:"topics"`
	TopicPattern string           `json:"topic_pattern,omitempty"`
	Partitions   []TopicPartition `json:"partitions"`
	LastSeen     time.Time        `json:"last_seen,omitzero"`
}

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
}

// GroupPartition is a group's position in one partition: one it has
// committed, or one assigned to a member.
type GroupPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// CommittedOffset and Lag are nil for a partition assigned to a member
	// but never committed.
	CommittedOffset *int64 `json:"committed_offset"`
	LogStartOffset  int64  `json:"log_start_offset"`
	// LogEndOffset is the partition's high watermark.
	LogEndOffset int64  `json:"log_end_offset"`
	Lag          *int64 `json:"lag"`
	// Member is the member the partition is assigned to, if any.
	Member     string    `json:"member,omitempty"`
	Metadata   string    `json:"metadata,omitempty"`
	CommitTime time.Time `json:"commit_time,omitzero"`
}

// DescribeGroup describes a group: its members, and for every partition
// it has committed or has assigned to a member, the committed offset, the
// log end offset and the lag. A group with neither commits nor members is
// an *Error with status 404.
func (c *Client) DescribeGroup(ctx context.Context, group string) (*Group, error) {
	var g Group
	if err := c.do(ctx, request{method: http.MethodGet, path: groupPath(group), out: &g}); err != nil {
		return nil, err
	}
	return &g, nil
}

// DeleteGroup forgets a group's committed offsets. The server refuses (an
// *Error with status 409) while the group has active members.
func (c *Client) DeleteGroup(ctx context.Context, group string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: groupPath(group)})
}

// Seek commits, for a group, the offsets a position resolves to in the
// given partitions of topic (all of them when none are given), and returns
// them. An offset is clamped to each partition's range. The server refuses
// (an *Error with status 409) while the group has active members.
func (c *Client) Seek(ctx context.Context, group, topic string, to Pos, partitions ...int32) ([]GroupOffset, error) {
	if to.IsZero() {
		return nil, errors.New("seek: no position")
	}
	in := struct {
		To         Pos     `json:"to"`
		Topic      string  `json:"topic"`
		Partitions []int32 `json:"partitions,omitempty"`
	}{to, topic, partitions}
	var out struct {
		Offsets []GroupOffset `json:"offsets"`
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: groupPath(group) + "/seek", in: in, out: &out}); err != nil {
		return nil, err
	}
	return out.Offsets, nil
}

func groupPath(group string) string { return "/v1/groups/" + escape(group) }
