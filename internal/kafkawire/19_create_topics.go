package kafkawire

import (
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/topic"
)

// CreateTopics (key 19): versions 0-7.
//
// Behaviour:
//   - Each topic is checked, then created (or only checked, with
//     ValidateOnly, v1+), with its own error code and message (v1+):
//     INVALID_REQUEST for a name given twice in one request (every entry of
//     it) or for both a partition count and an assignment;
//     INVALID_TOPIC_EXCEPTION for a bad name;
//     INVALID_PARTITIONS for a count of 0, below -1 or above 10,000;
//     INVALID_REPLICATION_FACTOR for anything but 1 or -1 (one broker);
//     INVALID_REPLICA_ASSIGNMENT unless every partition 0..n-1 is assigned
//     to [this node]; INVALID_CONFIG for a null config value (as Kafka's
//     controller answers it) or a key or value the log refuses;
//     TOPIC_ALREADY_EXISTS.
//   - NumPartitions and ReplicationFactor -1 (v4+, KIP-464) mean the
//     defaults: Options.DefaultPartitions and 1.
//   - v5+ answers with the partition count, replication factor and the full
//     configuration (source DYNAMIC_TOPIC_CONFIG for what was set,
//     DEFAULT_CONFIG for the rest); v7+ with the topic ID.
//   - TimeoutMillis is not needed: creation is complete when the response
//     is sent.

func (s *Server) handleCreateTopics(rc *request, req *kmsg.CreateTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := make(map[string]int, len(req.Topics))
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	resp.Topics = make([]kmsg.CreateTopicsResponseTopic, len(req.Topics))
	for i := range req.Topics {
		rt := &req.Topics[i]
		t := &resp.Topics[i]
		*t = kmsg.NewCreateTopicsResponseTopic()
		t.Topic = rt.Topic
		var code int16
		var err error
		if seen[rt.Topic] > 1 {
			code, err = kerr.InvalidRequest.Code, fmt.Errorf("topic %q appears %d times in the request", rt.Topic, seen[rt.Topic])
		} else if !s.authorize(rc, opCreate, resTopic, rt.Topic) {
			code, err = kerr.TopicAuthorizationFailed.Code, errors.New("not authorized to create the topic")
		} else {
			code, err = s.createTopic(rc, rt, req.ValidateOnly, t)
		}
		if code != 0 {
			t.ErrorCode = rc.note(code)
			t.ErrorMessage = s.errorMessage(rc, "create topic", code, err)
			t.NumPartitions, t.ReplicationFactor, t.Configs = -1, -1, nil
		}
		if req.Version < 1 {
			t.ErrorMessage = nil
		}
	}
	return resp, nil
}

// createTopic checks and creates (unless validateOnly) one topic, filling
// t on success.
func (s *Server) createTopic(rc *request, rt *kmsg.CreateTopicsRequestTopic, validateOnly bool, t *kmsg.CreateTopicsResponseTopic) (int16, error) {
	if err := topic.ValidateName(rt.Topic); err != nil {
		return kerr.InvalidTopicException.Code, err
	}
	partitions := rt.NumPartitions
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return kerr.InvalidRequest.Code, errors.New("a replica assignment requires numPartitions and replicationFactor -1")
		}
		if err := s.checkAssignment(rt.ReplicaAssignment); err != nil {
			return kerr.InvalidReplicaAssignment.Code, err
		}
		partitions = int32(len(rt.ReplicaAssignment))
	}
	if partitions == -1 {
		partitions = s.opts.DefaultPartitions
	}
	if partitions < 1 || partitions > topic.MaxPartitions {
		return kerr.InvalidPartitions.Code, fmt.Errorf("%d partitions: want 1 to %d (or -1 for the default)", rt.NumPartitions, topic.MaxPartitions)
	}
	if rf := rt.ReplicationFactor; rf != -1 && rf != 1 {
		if rf > 1 {
			return kerr.InvalidReplicationFactor.Code, fmt.Errorf("replication factor %d is larger than the 1 available broker", rf)
		}
		return kerr.InvalidReplicationFactor.Code, fmt.Errorf("replication factor %d: want 1 (or -1 for the default)", rf)
	}
	overrides := make(map[string]string, len(rt.Configs))
	for _, c := range rt.Configs {
		if c.Value == nil {
			// INVALID_CONFIG, as Kafka's controller answers it (older
			// ZooKeeper brokers said INVALID_REQUEST).
			return kerr.InvalidConfig.Code, fmt.Errorf("config %q has a null value", c.Name)
		}
		overrides[c.Name] = *c.Value
	}
	cfg, err := topic.DefaultConfig().Apply(overrides)
	if err != nil {
		return kerr.InvalidConfig.Code, err
	}
	if _, err := s.log.DescribeTopic(rc.ctx, rt.Topic); err == nil {
		return kerr.TopicAlreadyExists.Code, fmt.Errorf("topic %q already exists", rt.Topic)
	} else if !errors.Is(err, stream.ErrUnknownTopic) {
		return errorCode(err, kerr.InvalidRequest.Code), err
	}

	info := stream.TopicInfo{Name: rt.Topic, Config: cfg.Map(), Overrides: overrides}
	if !validateOnly {
		if info, err = s.log.CreateTopic(rc.ctx, rt.Topic, partitions, overrides); err != nil {
			return errorCode(err, kerr.InvalidConfig.Code), err
		}
		s.logger.Info("kafka: created topic", "topic", rt.Topic, "partitions", partitions, "client_id", rc.clientID)
	}
	t.TopicID = info.ID
	t.NumPartitions, t.ReplicationFactor = partitions, 1
	t.Configs = createTopicsConfigs(info)
	return 0, nil
}

// checkAssignment accepts only the assignment a one-node cluster can have:
// partitions 0..n-1, each on this node alone.
func (s *Server) checkAssignment(as []kmsg.CreateTopicsRequestTopicReplicaAssignment) error {
	seen := make([]bool, len(as))
	for _, a := range as {
		if a.Partition < 0 || int(a.Partition) >= len(as) || seen[a.Partition] {
			return fmt.Errorf("partition %d: assignments must cover partitions 0 to %d once each", a.Partition, len(as)-1)
		}
		seen[a.Partition] = true
		if len(a.Replicas) != 1 || a.Replicas[0] != s.opts.NodeID {
			return fmt.Errorf("partition %d: replicas %v; the only broker is %d", a.Partition, a.Replicas, s.opts.NodeID)
		}
	}
	return nil
}

// createTopicsConfigs lists a topic's configuration for CreateTopics v5+.
func createTopicsConfigs(info stream.TopicInfo) []kmsg.CreateTopicsResponseTopicConfig {
	keys := make([]string, 0, len(info.Config))
	for k := range info.Config {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]kmsg.CreateTopicsResponseTopicConfig, len(keys))
	for i, k := range keys {
		c := kmsg.NewCreateTopicsResponseTopicConfig()
		c.Name, c.Value = k, strPtr(info.Config[k])
		c.Source = int8(kmsg.ConfigSourceDefaultConfig)
		if _, ok := info.Overrides[k]; ok {
			c.Source = int8(kmsg.ConfigSourceDynamicTopicConfig)
		}
		out[i] = c
	}
	return out
}
