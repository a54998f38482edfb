package kafkawire

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/topic"
)

// CreatePartitions (key 37): versions 0-3.
//
// Behaviour:
//   - Each topic's partition count is raised to Count with
//     stream.Log.AlterTopic, or with ValidateOnly only checked; each topic
//     has its own error code and message.
//   - Errors: INVALID_REQUEST for a topic named twice in one request (every
//     entry of it); UNKNOWN_TOPIC_OR_PARTITION; INVALID_PARTITIONS for a
//     count not above the current one or above 10,000;
//     INVALID_REPLICA_ASSIGNMENT unless an assignment, when given, has one
//     entry per new partition and each is [this node];
//     TOPIC_AUTHORIZATION_FAILED without ALTER on the topic.
//   - The new partitions exist when the response is sent; TimeoutMillis
//     is not needed.

func (s *Server) handleCreatePartitions(rc *request, req *kmsg.CreatePartitionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	resp.Topics = make([]kmsg.CreatePartitionsResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := &resp.Topics[i]
		*t = kmsg.NewCreatePartitionsResponseTopic()
		t.Topic = rt.Topic
		var code int16
		var err error
		switch {
		case seen[rt.Topic] > 1:
			code, err = kerr.InvalidRequest.Code, fmt.Errorf("topic %q appears %d times in the request", rt.Topic, seen[rt.Topic])
		case !s.authorize(rc, opAlter, resTopic, rt.Topic):
			code, err = kerr.TopicAuthorizationFailed.Code, errors.New("not authorized to alter the topic")
		default:
			code, err = s.createPartitions(rc, rt, req.ValidateOnly)
		}
		if code != 0 {
			t.ErrorCode = rc.note(code)
			t.ErrorMessage = s.errorMessage(rc, "create partitions", code, err)
		}
	}
	return resp, nil
}

// createPartitions checks and (unless validateOnly) applies one topic's
// new partition count.
func (s *Server) createPartitions(rc *request, rt *kmsg.CreatePartitionsRequestTopic, validateOnly bool) (int16, error) {
	ti, err := s.log.DescribeTopic(rc.ctx, rt.Topic)
	if err != nil {
		return errorCode(err, kerr.InvalidRequest.Code), err
	}
	cur := int32(len(ti.Partitions))
	switch {
	case rt.Count < cur:
		return kerr.InvalidPartitions.Code, fmt.Errorf("topic %q has %d partitions, which is more than the requested %d; partitions cannot be removed", rt.Topic, cur, rt.Count)
	case rt.Count == cur:
		return kerr.InvalidPartitions.Code, fmt.Errorf("topic %q already has %d partitions", rt.Topic, cur)
	case rt.Count > topic.MaxPartitions:
		return kerr.InvalidPartitions.Code, fmt.Errorf("%d partitions: at most %d", rt.Count, topic.MaxPartitions)
	}
	if rt.Assignment != nil {
		if len(rt.Assignment) != int(rt.Count-cur) {
			return kerr.InvalidReplicaAssignment.Code, fmt.Errorf("%d assignments for %d new partitions", len(rt.Assignment), rt.Count-cur)
		}
		for k, a := range rt.Assignment {
			if len(a.Replicas) != 1 || a.Replicas[0] != s.opts.NodeID {
				return kerr.InvalidReplicaAssignment.Code, fmt.Errorf("new partition %d: replicas %v; the only broker is %d", cur+int32(k), a.Replicas, s.opts.NodeID)
			}
		}
	}
	if validateOnly {
		return 0, nil
	}
	if _, err := s.log.AlterTopic(rc.ctx, rt.Topic, stream.TopicChange{Partitions: rt.Count}); err != nil {
		return errorCode(err, kerr.InvalidPartitions.Code), err
	}
	s.logger.Info("kafka: added partitions", "topic", rt.Topic, "from", cur, "to", rt.Count, "client_id", rc.clientID)
	return 0, nil
}
