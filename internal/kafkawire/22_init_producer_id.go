package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerId (key 22): versions 0-4.
//
// Behaviour:
//   - An idempotent producer (null TransactionalID) gets a new producer ID
//     with epoch 0, from a counter kept durably in Options.Store (see
//     producerIDs), so that IDs are never reused, across restarts too. A
//     producer that asks to bump its epoch (v3+, ProducerID/ProducerEpoch
//     set, KIP-360) also gets a new ID with epoch 0, as Kafka answers
//     idempotent producers: Kafka bumps epochs in place only for
//     transactional IDs, which are not supported. The old ID's sequence
//     state in each partition is left to expire; the new ID starts fresh,
//     at sequence 0, on every partition.
//   - Transactions are not supported: a non-null TransactionalID gets
//     INVALID_REQUEST (a fatal error clients report as such, unlike
//     COORDINATOR_NOT_AVAILABLE, which they would retry forever).
//   - A failure to store the counter gets KAFKA_STORAGE_ERROR (retriable).
//   - TransactionTimeoutMillis is ignored.

func (s *Server) handleInitProducerID(rc *request, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil:
		resp.ErrorCode = rc.note(kerr.InvalidRequest.Code)
		s.logger.Info("kafka: refused a transactional producer; transactions are not supported",
			"transactional_id", *req.TransactionalID, "client_id", rc.clientID)
		return resp, nil
	case !s.authorize(rc, opIdempotentWrite, resCluster, ""):
		resp.ErrorCode = rc.note(kerr.ClusterAuthorizationFailed.Code)
		return resp, nil
	}
	id, err := s.pids.allocate()
	if err != nil {
		resp.ErrorCode = rc.note(kerr.KafkaStorageError.Code)
		s.logger.Error("kafka: cannot allocate a producer id", "err", err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
