package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords (key 21): versions 0-2.
//
// Behaviour:
//   - Each partition's log start offset moves up to Offset with
//     stream.Log.DeleteRecords; -1 means the high watermark. The answer is
//     the new log start offset (LowWatermark). An offset at or below the
//     current log start changes nothing and answers the current one, as
//     Kafka does.
//   - The new log start is durable when the response is sent; TimeoutMillis
//     is not needed.
//   - Errors, per partition (LowWatermark -1): OFFSET_OUT_OF_RANGE for an
//     offset above the high watermark or negative other than -1;
//     UNKNOWN_TOPIC_OR_PARTITION; TOPIC_AUTHORIZATION_FAILED without DELETE
//     on the topic; KAFKA_STORAGE_ERROR when the partition refuses writes.

func (s *Server) handleDeleteRecords(rc *request, req *kmsg.DeleteRecordsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	resp.Topics = make([]kmsg.DeleteRecordsResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := &resp.Topics[i]
		*t = kmsg.NewDeleteRecordsResponseTopic()
		t.Topic = rt.Topic
		allowed := s.authorize(rc, opDelete, resTopic, rt.Topic)
		t.Partitions = make([]kmsg.DeleteRecordsResponseTopicPartition, len(rt.Partitions))
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			p := &t.Partitions[j]
			*p = kmsg.NewDeleteRecordsResponseTopicPartition()
			p.Partition, p.LowWatermark = rp.Partition, -1
			if !allowed {
				p.ErrorCode = rc.note(kerr.TopicAuthorizationFailed.Code)
				continue
			}
			start, err := s.log.DeleteRecords(rc.ctx, rt.Topic, rp.Partition, rp.Offset)
			if err != nil {
				code := errorCode(err, kerr.InvalidRequest.Code)
				p.ErrorCode = rc.note(code)
				if !clientFault(code) {
					s.errorMessage(rc, "delete records", code, err) // logs server errors
				}
				continue
			}
			p.LowWatermark = start
			s.logger.Info("kafka: deleted records", "topic", rt.Topic, "partition", rp.Partition,
				"log_start_offset", start, "client_id", rc.clientID)
		}
	}
	return resp, nil
}
