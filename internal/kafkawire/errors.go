package kafkawire

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// This file is the one place where errors become Kafka error codes.
//
//	stream.ErrUnknownTopic        UNKNOWN_TOPIC_OR_PARTITION
//	stream.ErrUnknownPartition    UNKNOWN_TOPIC_OR_PARTITION
//	stream.ErrTopicExists         TOPIC_ALREADY_EXISTS
//	stream.ErrOffsetOutOfRange    OFFSET_OUT_OF_RANGE
//	stream.ErrTooLarge            MESSAGE_TOO_LARGE
//	stream.ErrInvalid             what the API says: INVALID_RECORD for
//	                              Produce (CORRUPT_MESSAGE when the batch
//	                              framing or CRC is bad), INVALID_REQUEST,
//	                              INVALID_CONFIG, ... elsewhere
//	stream.ErrOutOfOrderSequence  OUT_OF_ORDER_SEQUENCE_NUMBER
//	stream.ErrProducerFenced      INVALID_PRODUCER_EPOCH (what Kafka 2.7+
//	                              answers a produce from a stale epoch)
//	stream.ErrCorrupt             KAFKA_STORAGE_ERROR
//	stream.ErrUnavailable         KAFKA_STORAGE_ERROR
//	context cancelled or expired  REQUEST_TIMED_OUT
//	anything else                 UNKNOWN_SERVER_ERROR
//
// ErrUnavailable maps to KAFKA_STORAGE_ERROR rather than NOT_ENOUGH_REPLICAS:
// the embedded log reports it for a partition that refuses writes after a
// disk error, or for a log that is closing, and there are no replicas to be
// short of. Both codes are retriable; KAFKA_STORAGE_ERROR also makes clients
// refresh metadata, which is right after a restart. Stored data that fails
// its checks (ErrCorrupt) is a broker-side disk problem too.
//
// Messages (ErrorMessage fields) carry the error text for errors the client
// caused; errors of the server are logged here and reported with Kafka's
// generic description, so that file paths stay on the server.

// errorCode maps err to a Kafka error code. invalid is the code for
// stream.ErrInvalid in the caller's context.
func errorCode(err error, invalid int16) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, stream.ErrUnknownTopic), errors.Is(err, stream.ErrUnknownPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, stream.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, stream.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, stream.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, stream.ErrProducerFenced):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, stream.ErrTooLarge), errors.Is(err, record.ErrTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, stream.ErrInvalid):
		return invalid
	case errors.Is(err, stream.ErrCorrupt), errors.Is(err, stream.ErrUnavailable):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// produceErrorCode maps an error of appending a produced batch. Bad framing
// or a bad CRC is CORRUPT_MESSAGE, as in Kafka (retriable: the bytes may have
// been damaged on the way); other invalid batches are INVALID_RECORD.
func produceErrorCode(err error) int16 {
	if errors.Is(err, record.ErrChecksum) || errors.Is(err, record.ErrMalformed) {
		return kerr.CorruptMessage.Code
	}
	return errorCode(err, kerr.InvalidRecord.Code)
}

// clientFault lists the codes whose messages may carry the error's text.
func clientFault(code int16) bool {
	switch code {
	case kerr.UnknownTopicOrPartition.Code, kerr.TopicAlreadyExists.Code, kerr.OffsetOutOfRange.Code,
		kerr.MessageTooLarge.Code, kerr.CorruptMessage.Code, kerr.InvalidRecord.Code,
		kerr.InvalidRequest.Code, kerr.InvalidConfig.Code, kerr.InvalidTopicException.Code,
		kerr.InvalidPartitions.Code, kerr.InvalidReplicationFactor.Code,
		kerr.InvalidReplicaAssignment.Code, kerr.UnsupportedVersion.Code, kerr.UnknownTopicID.Code,
		kerr.InvalidRequiredAcks.Code, kerr.OffsetMetadataTooLarge.Code, kerr.InvalidGroupID.Code,
		kerr.OutOfOrderSequenceNumber.Code, kerr.InvalidProducerEpoch.Code,
		kerr.TopicAuthorizationFailed.Code, kerr.GroupAuthorizationFailed.Code,
		kerr.ClusterAuthorizationFailed.Code, kerr.TransactionalIDAuthorizationFailed.Code:
		return true
	}
	return false
}

// kafkaError maps err to a code (see errorCode) and the message to report.
// Errors of the server are logged.
func (s *Server) kafkaError(rc *request, op string, err error, invalid int16) (int16, *string) {
	code := errorCode(err, invalid)
	return code, s.errorMessage(rc, op, code, err)
}

// errorMessage is the ErrorMessage for an error mapped to code.
func (s *Server) errorMessage(rc *request, op string, code int16, err error) *string {
	if err == nil {
		return nil
	}
	if clientFault(code) {
		msg := err.Error()
		return &msg
	}
	if code != kerr.RequestTimedOut.Code {
		s.logger.Error("kafka request failed", "op", op, "client_id", rc.clientID,
			"remote", rc.c.remote, "code", errorName(code), "err", err)
	}
	e, _ := kerr.ErrorForCode(code).(*kerr.Error)
	if e == nil {
		return nil
	}
	msg := e.Description
	return &msg
}

// strPtr returns a pointer to a copy of v.
func strPtr(v string) *string { return &v }
