package kafka

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/topic"
)

// mappedError keeps an error's message and makes it match the stream
// sentinel it maps to as well as the error itself: errors.Is finds both
// stream.ErrUnknownTopic and kerr.UnknownTopicOrPartition in it.
type mappedError struct {
	kind error
	err  error
}

func (e *mappedError) Error() string   { return e.err.Error() }
func (e *mappedError) Unwrap() []error { return []error{e.kind, e.err} }

// sentinels are the stream errors mapErr maps onto.
var sentinels = [...]error{stream.ErrUnknownTopic, stream.ErrUnknownPartition, stream.ErrTopicExists,
	stream.ErrOffsetOutOfRange, stream.ErrInvalid, stream.ErrTooLarge, stream.ErrCorrupt, stream.ErrUnavailable,
	stream.ErrOutOfOrderSequence, stream.ErrProducerFenced}

// mapErr maps Kafka's errors, franz-go's and this package's own checks onto
// the stream sentinels, in one place. Context errors and authorization
// failures, which no sentinel describes, are returned as they are.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return err // already mapped
		}
	}
	if kind := kindOf(err); kind != nil {
		return &mappedError{kind: kind, err: err}
	}
	return err
}

func kindOf(err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil
	case errors.Is(err, record.ErrTooLarge):
		return stream.ErrTooLarge
	case errors.Is(err, topic.ErrInvalid), errors.Is(err, record.ErrMalformed), errors.Is(err, record.ErrChecksum):
		return stream.ErrInvalid
	}
	if ke, ok := errors.AsType[*kerr.Error](err); ok {
		return kindOfCode(ke)
	}
	// Not an answer from Kafka: the connection or the client failed
	// (refused, reset, timed out, closed).
	return stream.ErrUnavailable
}

// kindOfCode maps a Kafka error code.
func kindOfCode(ke *kerr.Error) error {
	switch ke {
	case kerr.UnknownTopicOrPartition, kerr.UnknownTopicID, kerr.InconsistentTopicID:
		return stream.ErrUnknownTopic
	case kerr.TopicAlreadyExists:
		return stream.ErrTopicExists
	case kerr.OffsetOutOfRange:
		return stream.ErrOffsetOutOfRange
	case kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.OffsetMetadataTooLarge:
		return stream.ErrTooLarge
	case kerr.OutOfOrderSequenceNumber:
		return stream.ErrOutOfOrderSequence
	case kerr.InvalidProducerEpoch, kerr.ProducerFenced:
		return stream.ErrProducerFenced
	case
		// A batch the broker refused.
		kerr.CorruptMessage, kerr.InvalidRecord, kerr.InvalidTimestamp, kerr.UnsupportedCompressionType,
		kerr.UnsupportedForMessageFormat, kerr.InvalidRequiredAcks, kerr.InvalidFetchSize,
		kerr.DuplicateSequenceNumber, kerr.InvalidTxnState, kerr.InvalidProducerIDMapping, kerr.UnknownProducerID,
		// A topic change the controller refused.
		kerr.InvalidTopicException, kerr.InvalidPartitions, kerr.InvalidReplicationFactor,
		kerr.InvalidReplicaAssignment, kerr.InvalidConfig, kerr.InvalidRequest, kerr.PolicyViolation,
		kerr.TopicDeletionDisabled, kerr.UnsupportedVersion,
		// A group operation the coordinator refused, most often because
		// the group has members.
		kerr.InvalidGroupID, kerr.InvalidCommitOffsetSize, kerr.NonEmptyGroup, kerr.UnknownMemberID,
		kerr.IllegalGeneration, kerr.RebalanceInProgress, kerr.FencedInstanceID, kerr.StaleMemberEpoch,
		kerr.GroupIDNotFound:
		return stream.ErrInvalid
	case kerr.ClusterAuthorizationFailed, kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed,
		kerr.TransactionalIDAuthorizationFailed, kerr.SaslAuthenticationFailed:
		return nil
	}
	if ke.Retriable {
		// Leaders, coordinators or replicas not available, storage
		// errors, timeouts: the cluster cannot serve this now.
		return stream.ErrUnavailable
	}
	return nil
}

// missing reports a metadata topic error code that means there is no such
// topic.
func missing(code int16) bool {
	switch code {
	case kerr.UnknownTopicOrPartition.Code, kerr.UnknownTopicID.Code, kerr.InvalidTopicException.Code:
		return true
	}
	return false
}

// missingErr is missing for an error.
func missingErr(err error) bool {
	ke, ok := errors.AsType[*kerr.Error](err)
	return ok && missing(ke.Code)
}

// brokerSays formats the message a broker sent with an error code, if any.
func brokerSays[S string | *string](msg S) string {
	var s string
	switch m := any(msg).(type) {
	case string:
		s = m
	case *string:
		if m != nil {
			s = *m
		}
	}
	if s == "" {
		return ""
	}
	return ": " + s
}
