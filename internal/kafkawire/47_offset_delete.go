package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/group"
	"github.com/sluice-dev/sluice/internal/stream"
)

// OffsetDelete (key 47): version 0.
//
// Behaviour:
//   - Deletes a group's committed offsets for the partitions named
//     (stream.Log.DeleteOffsets), all eligible partitions at once.
//   - A consumer group with members keeps the offsets of the topics a
//     member is subscribed to (per the consumer protocol metadata it
//     joined with): those partitions get GROUP_SUBSCRIBED_TO_TOPIC, and
//     the others are deleted. A group with members of another protocol
//     type gets NON_EMPTY_GROUP.
//   - GROUP_ID_NOT_FOUND for a group with neither members nor offsets;
//     UNKNOWN_TOPIC_OR_PARTITION for partitions that do not exist.

func (s *Server) handleOffsetDelete(rc *request, req *kmsg.OffsetDeleteRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	code, d := s.offsetDeleteGroup(rc, req.Group)
	if code != 0 {
		resp.ErrorCode = rc.note(code)
		return resp, nil
	}
	var eligible []stream.TopicPartitions
	var outs []*kmsg.OffsetDeleteResponseTopicPartition
	resp.Topics = make([]kmsg.OffsetDeleteResponseTopic, len(req.Topics))
	for i, rt := range req.Topics {
		t := &resp.Topics[i]
		*t = kmsg.NewOffsetDeleteResponseTopic()
		t.Topic = rt.Topic
		t.Partitions = make([]kmsg.OffsetDeleteResponseTopicPartition, len(rt.Partitions))
		var topicCode int16
		var partitions int32
		switch {
		case !s.authorize(rc, opRead, resTopic, rt.Topic):
			topicCode = kerr.TopicAuthorizationFailed.Code
		case len(d.Members) > 0 && d.SubscribedTo(rt.Topic):
			topicCode = kerr.GroupSubscribedToTopic.Code
		default:
			ti, err := s.log.DescribeTopic(rc.ctx, rt.Topic)
			if err != nil {
				topicCode = errorCode(err, kerr.InvalidRequest.Code)
				s.errorMessage(rc, "offset delete", topicCode, err)
			}
			partitions = int32(len(ti.Partitions))
		}
		tp := stream.TopicPartitions{Topic: rt.Topic}
		for j, rp := range rt.Partitions {
			p := &t.Partitions[j]
			*p = kmsg.NewOffsetDeleteResponseTopicPartition()
			p.Partition = rp.Partition
			switch {
			case topicCode != 0:
				p.ErrorCode = topicCode
			case rp.Partition < 0 || rp.Partition >= partitions:
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				tp.Partitions = append(tp.Partitions, rp.Partition)
				outs = append(outs, p)
			}
		}
		if len(tp.Partitions) > 0 {
			eligible = append(eligible, tp)
		}
	}
	if len(eligible) > 0 {
		if err := s.log.DeleteOffsets(rc.ctx, req.Group, eligible); err != nil {
			code := errorCode(err, kerr.GroupSubscribedToTopic.Code)
			s.errorMessage(rc, "offset delete", code, err)
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

// offsetDeleteGroup checks the group of an OffsetDelete and describes it.
func (s *Server) offsetDeleteGroup(rc *request, name string) (int16, group.Description) {
	switch {
	case name == "":
		return kerr.InvalidGroupID.Code, group.Description{}
	case !s.authorize(rc, opDelete, resGroup, name):
		return kerr.GroupAuthorizationFailed.Code, group.Description{}
	}
	d, tracked := s.groups.Describe(name)
	if tracked && len(d.Members) > 0 {
		if d.ProtocolType != group.ConsumerProtocolType {
			return kerr.NonEmptyGroup.Code, d
		}
		return 0, d
	}
	offsets, err := s.log.FetchOffsets(rc.ctx, name)
	switch {
	case err != nil:
		code := errorCode(err, kerr.InvalidRequest.Code)
		s.errorMessage(rc, "offset delete", code, err)
		return code, d
	case len(offsets) == 0:
		return kerr.GroupIDNotFound.Code, d
	}
	return 0, d
}
