package kafkawire

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/topic"
)

// Metadata (key 3): versions 0-12.
//
// Behaviour:
//   - Brokers: this node only, at the advertised address; it is also the
//     controller (v1+). ClusterID (v2+) is Options.ClusterID or the ID kept
//     in the store.
//   - Topics: all of them for a null list (v1+) or an empty one (v0); none
//     for an empty list from v1. Requested topics come back in request
//     order; topics may be named by ID from v10 (UNKNOWN_TOPIC_ID when no
//     topic has it).
//   - Every partition is led by this node with leader epoch 0 (v7+);
//     replicas and ISR are [this node]; no offline replicas (v5+).
//   - Topic IDs (v10+) are the topics' UUIDs, stable for a topic's life.
//   - An unknown topic is created with DefaultPartitions partitions when
//     Options.AutoCreateTopics is set and the client allows it
//     (AllowAutoTopicCreation, v4+; implied before v4) and is returned at
//     once, without the LEADER_NOT_AVAILABLE round Kafka needs; an invalid
//     name gets INVALID_TOPIC_EXCEPTION. Otherwise an unknown topic gets
//     UNKNOWN_TOPIC_OR_PARTITION.
//   - Authorized operations (v8+) are reported when asked for: everything,
//     until ACLs land; INT32_MIN otherwise.

// Kafka ACL operation codes, for the authorized-operations bitfields.
const (
	aclRead            = 3
	aclWrite           = 4
	aclCreate          = 5
	aclDelete          = 6
	aclAlter           = 7
	aclDescribe        = 8
	aclClusterAction   = 9
	aclDescribeConfigs = 10
	aclAlterConfigs    = 11
	aclIdempotentWrite = 12
)

const (
	topicOperations = 1<<aclRead | 1<<aclWrite | 1<<aclCreate | 1<<aclDelete | 1<<aclAlter |
		1<<aclDescribe | 1<<aclDescribeConfigs | 1<<aclAlterConfigs
	clusterOperations = 1<<aclCreate | 1<<aclAlter | 1<<aclDescribe | 1<<aclClusterAction |
		1<<aclDescribeConfigs | 1<<aclAlterConfigs | 1<<aclIdempotentWrite
)

func (s *Server) handleMetadata(rc *request, req *kmsg.MetadataRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	b := kmsg.NewMetadataResponseBroker()
	b.NodeID, b.Host, b.Port = s.opts.NodeID, rc.c.adv.host, rc.c.adv.port
	resp.Brokers = []kmsg.MetadataResponseBroker{b}
	resp.ClusterID = strPtr(s.clusterID)
	resp.ControllerID = s.opts.NodeID
	if req.Version >= 8 && req.Version <= 10 && req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = clusterOperations
	}
	withOps := req.Version >= 8 && req.IncludeTopicAuthorizedOperations

	if req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0) {
		topics, err := s.log.ListTopics(rc.ctx)
		if err != nil {
			return nil, fmt.Errorf("metadata: list topics: %w", err)
		}
		for i := range topics {
			if s.authorize(rc, opDescribe, resTopic, topics[i].Name) {
				resp.Topics = append(resp.Topics, s.metadataTopic(&topics[i], withOps))
			}
		}
		return resp, nil
	}

	allowCreate := s.opts.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)
	var byID map[[16]byte]*stream.TopicInfo // built on first use
	for _, rt := range req.Topics {
		if rt.Topic == nil || (*rt.Topic == "" && rt.TopicID != [16]byte{}) {
			t := kmsg.NewMetadataResponseTopic()
			t.TopicID = rt.TopicID
			if byID == nil {
				all, err := s.log.ListTopics(rc.ctx)
				if err != nil {
					return nil, fmt.Errorf("metadata: list topics: %w", err)
				}
				byID = make(map[[16]byte]*stream.TopicInfo, len(all))
				for i := range all {
					byID[all[i].ID] = &all[i]
				}
			}
			ti, ok := byID[rt.TopicID]
			if !ok || rt.TopicID == [16]byte{} || !s.authorize(rc, opDescribe, resTopic, ti.Name) {
				t.ErrorCode = rc.note(kerr.UnknownTopicID.Code)
				resp.Topics = append(resp.Topics, t)
				continue
			}
			resp.Topics = append(resp.Topics, s.metadataTopic(ti, withOps))
			continue
		}
		name := *rt.Topic
		if !s.authorize(rc, opDescribe, resTopic, name) {
			t := kmsg.NewMetadataResponseTopic()
			t.Topic, t.ErrorCode = strPtr(name), rc.note(kerr.TopicAuthorizationFailed.Code)
			resp.Topics = append(resp.Topics, t)
			continue
		}
		ti, err := s.log.DescribeTopic(rc.ctx, name)
		if errors.Is(err, stream.ErrUnknownTopic) && allowCreate && s.authorize(rc, opCreate, resTopic, name) {
			ti, err = s.autoCreate(rc, name)
		}
		if err != nil {
			t := kmsg.NewMetadataResponseTopic()
			t.Topic = strPtr(name)
			if errors.Is(err, stream.ErrInvalid) {
				t.ErrorCode = rc.note(kerr.InvalidTopicException.Code)
			} else {
				t.ErrorCode = rc.note(errorCode(err, kerr.InvalidRequest.Code))
				if t.ErrorCode != kerr.UnknownTopicOrPartition.Code {
					s.errorMessage(rc, "metadata", t.ErrorCode, err) // logs server errors
				}
			}
			resp.Topics = append(resp.Topics, t)
			continue
		}
		resp.Topics = append(resp.Topics, s.metadataTopic(&ti, withOps))
	}
	return resp, nil
}

// autoCreate creates a topic a Metadata request asked about. A name that is
// not valid fails with stream.ErrInvalid; a topic created concurrently is
// described.
func (s *Server) autoCreate(rc *request, name string) (stream.TopicInfo, error) {
	if err := topic.ValidateName(name); err != nil {
		return stream.TopicInfo{}, fmt.Errorf("%w: %v", stream.ErrInvalid, err)
	}
	ti, err := s.log.CreateTopic(rc.ctx, name, s.opts.DefaultPartitions, nil)
	if errors.Is(err, stream.ErrTopicExists) {
		return s.log.DescribeTopic(rc.ctx, name)
	}
	if err == nil {
		s.logger.Info("kafka: auto-created topic", "topic", name, "partitions", s.opts.DefaultPartitions,
			"client_id", rc.clientID)
	}
	return ti, err
}

// metadataTopic describes a topic led entirely by this node.
func (s *Server) metadataTopic(ti *stream.TopicInfo, withOps bool) kmsg.MetadataResponseTopic {
	t := kmsg.NewMetadataResponseTopic()
	t.Topic, t.TopicID = strPtr(ti.Name), ti.ID
	if withOps {
		t.AuthorizedOperations = topicOperations
	}
	node := []int32{s.opts.NodeID}
	t.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(ti.Partitions))
	for i, p := range ti.Partitions {
		mp := kmsg.NewMetadataResponseTopicPartition()
		mp.Partition, mp.Leader, mp.LeaderEpoch = p.Partition, s.opts.NodeID, 0
		mp.Replicas, mp.ISR, mp.OfflineReplicas = node, node, []int32{}
		t.Partitions[i] = mp
	}
	return t
}
