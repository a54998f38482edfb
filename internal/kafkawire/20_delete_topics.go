package kafkawire

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics (key 20): versions 0-6.
//
// Behaviour:
//   - Topics are named (v0-5: TopicNames; v6: Topics with a name) or, from
//     v6, given by topic ID; each is deleted with its data and committed
//     offsets, and has its own error code (and message, v5+).
//   - Unknown names get UNKNOWN_TOPIC_OR_PARTITION, unknown IDs
//     UNKNOWN_TOPIC_ID (with a null name, as in Kafka). v6 answers with
//     both the name and the ID.
//   - Deletion is complete when the response is sent; TimeoutMillis is not
//     needed.

func (s *Server) handleDeleteTopics(rc *request, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	targets := req.Topics
	if req.Version < 6 {
		targets = make([]kmsg.DeleteTopicsRequestTopic, len(req.TopicNames))
		for i, name := range req.TopicNames {
			targets[i] = kmsg.NewDeleteTopicsRequestTopic()
			targets[i].Topic = strPtr(name)
		}
	}
	var byID map[[16]byte]string
	for _, rt := range targets {
		t := kmsg.NewDeleteTopicsResponseTopic()
		t.Topic, t.TopicID = rt.Topic, rt.TopicID
		var code int16
		var err error
		name := ""
		switch {
		case rt.Topic != nil && *rt.Topic != "":
			name = *rt.Topic
		case rt.TopicID == [16]byte{}:
			code, err = kerr.InvalidRequest.Code, errors.New("neither a topic name nor a topic ID")
		default:
			if byID == nil {
				if byID, err = s.topicNamesByID(rc); err != nil {
					code = errorCode(err, kerr.InvalidRequest.Code)
					break
				}
			}
			var ok bool
			if name, ok = byID[rt.TopicID]; !ok {
				// The name is unknown, so null, as Kafka answers it.
				code, err = kerr.UnknownTopicID.Code, fmt.Errorf("no topic has ID %x", rt.TopicID)
				t.Topic = nil
				break
			}
			t.Topic = strPtr(name)
		}
		if code == 0 {
			if !s.authorize(rc, opDelete, resTopic, name) {
				code, err = kerr.TopicAuthorizationFailed.Code, errors.New("not authorized to delete the topic")
			} else if ti, derr := s.log.DescribeTopic(rc.ctx, name); derr != nil {
				code, err = errorCode(derr, kerr.InvalidRequest.Code), derr
			} else {
				t.TopicID = ti.ID
				if err = s.log.DeleteTopic(rc.ctx, name); err != nil {
					code = errorCode(err, kerr.InvalidRequest.Code)
				} else {
					s.logger.Info("kafka: deleted topic", "topic", name, "client_id", rc.clientID)
				}
			}
		}
		if code != 0 {
			t.ErrorCode = rc.note(code)
			msg := s.errorMessage(rc, "delete topic", code, err) // logs server errors
			if req.Version >= 5 {
				t.ErrorMessage = msg
			}
		}
		resp.Topics = append(resp.Topics, t)
	}
	return resp, nil
}

// topicNamesByID maps topic IDs to names.
func (s *Server) topicNamesByID(rc *request) (map[[16]byte]string, error) {
	all, err := s.log.ListTopics(rc.ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[[16]byte]string, len(all))
	for _, t := range all {
		m[t.ID] = t.Name
	}
	return m, nil
}
