package kafkawire

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
)

// OffsetCommit (key 8): versions 2-9.
//
// Behaviour:
//   - Offsets are stored with stream.Log.CommitOffsets: all valid partitions
//     of a request in one atomic commit, with their leader epoch (v6+) and
//     metadata; the commit time is the server's.
//   - For groups with members, the generation, member ID and instance ID
//     must be current (see checkCommit): ILLEGAL_GENERATION,
//     UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, or REBALANCE_IN_PROGRESS
//     while the group awaits its assignments; a valid commit counts as a
//     heartbeat. Commits from outside group management (generation -1:
//     simple consumers, tools) are accepted for groups without members.
//   - Per-partition errors: INVALID_GROUP_ID for an empty group;
//     UNKNOWN_TOPIC_OR_PARTITION for partitions that do not exist (the
//     others are still committed); OFFSET_METADATA_TOO_LARGE for metadata
//     above 4096 bytes (Kafka's offset.metadata.max.bytes); a storage error
//     fails every partition of the commit.
//   - RetentionTimeMillis (v2-4) is ignored: committed offsets live as long
//     as their group and topic.

// maxOffsetMetadata is Kafka's default offset.metadata.max.bytes.
const maxOffsetMetadata = 4096

func (s *Server) handleOffsetCommit(rc *request, req *kmsg.OffsetCommitRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	var groupCode int16
	switch {
	case req.Group == "":
		groupCode = kerr.InvalidGroupID.Code
	case !s.authorize(rc, opRead, resGroup, req.Group):
		groupCode = kerr.GroupAuthorizationFailed.Code
	default:
		groupCode = s.checkCommit(req.Group, req.Generation, req.MemberID, req.InstanceID)
	}

	var offsets []stream.GroupOffset
	var outs []*kmsg.OffsetCommitResponseTopicPartition
	resp.Topics = make([]kmsg.OffsetCommitResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := &resp.Topics[i]
		*t = kmsg.NewOffsetCommitResponseTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.OffsetCommitResponseTopicPartition, len(rt.Partitions))
		topicCode := groupCode
		var partitions int32
		if topicCode == 0 {
			if !s.authorize(rc, opRead, resTopic, rt.Topic) {
				topicCode = kerr.TopicAuthorizationFailed.Code
			} else if ti, err := s.log.DescribeTopic(rc.ctx, rt.Topic); err != nil {
				topicCode = errorCode(err, kerr.InvalidRequest.Code)
				s.errorMessage(rc, "offset commit", topicCode, err) // logs server errors
			} else {
				partitions = int32(len(ti.Partitions))
			}
		}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			p := &t.Partitions[j]
			*p = kmsg.NewOffsetCommitResponseTopicPartition()
			p.Partition = rp.Partition
			switch {
			case topicCode != 0:
				p.ErrorCode = topicCode
			case rp.Partition < 0 || rp.Partition >= partitions:
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case rp.Metadata != nil && len(*rp.Metadata) > maxOffsetMetadata:
				p.ErrorCode = kerr.OffsetMetadataTooLarge.Code
			default:
				o := stream.GroupOffset{Topic: rt.Topic, Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: -1}
				if req.Version >= 6 {
					o.LeaderEpoch = rp.LeaderEpoch
				}
				if rp.Metadata != nil {
					o.Metadata = *rp.Metadata
				}
				offsets = append(offsets, o)
				outs = append(outs, p)
			}
		}
	}
	if len(offsets) > 0 {
		if err := s.log.CommitOffsets(rc.ctx, req.Group, offsets); err != nil {
			code := errorCode(err, kerr.InvalidRequest.Code)
			s.errorMessage(rc, fmt.Sprintf("offset commit for group %q", req.Group), code, err)
			for _, p := range outs {
				p.ErrorCode = code
			}
		}
	}
	for i := range resp.Topics {
		for j := range resp.Topics[i].Partitions {
			rc.note(resp.Topics[i].Partitions[j].ErrorCode)
		}
	}
	return resp, nil
}
