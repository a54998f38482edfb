package kafkawire

import (
	"fmt"
	"net"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/topic"
)

// DescribeConfigs (key 32): versions 0-4.
//
// Behaviour:
//   - Topics (resource type 2): the topic's full configuration from
//     stream.TopicInfo: keys in Overrides with source DYNAMIC_TOPIC_CONFIG,
//     the others DEFAULT_CONFIG (IsDefault in v0). Unknown topics get
//     UNKNOWN_TOPIC_OR_PARTITION. None is read-only or sensitive.
//   - The broker (type 4, named by this node's ID, or "" for the cluster
//     default): the settings clients and tools look for (advertised
//     listener, auto-creation, default partitions and replication factor,
//     request and fetch limits) as read-only STATIC_BROKER_CONFIG, and the
//     topic defaults under their broker names (log.retention.ms, ...) as
//     DEFAULT_CONFIG. Another broker ID gets INVALID_REQUEST.
//   - Broker loggers (type 8): an empty list. Other types: INVALID_REQUEST.
//   - ConfigNames filters (unknown names are left out); a null or empty
//     list means every config, as in Kafka. Synonyms (v1+, when asked
//     for) list the value's own source and, for a topic override, the
//     broker default it overrides; types (v3+) are given; documentation
//     is not.

// topicConfigTypes are the types of the topic keys, and brokerSynonyms the
// broker-level keys that hold their defaults.
func topicConfigTypes() map[string]kmsg.ConfigType {
	return map[string]kmsg.ConfigType{
		topic.KeyRetentionMs:        kmsg.ConfigTypeLong,
		topic.KeyRetentionBytes:     kmsg.ConfigTypeLong,
		topic.KeySegmentBytes:       kmsg.ConfigTypeInt,
		topic.KeySegmentMs:          kmsg.ConfigTypeLong,
		topic.KeyMaxMessageBytes:    kmsg.ConfigTypeInt,
		topic.KeyIndexIntervalBytes: kmsg.ConfigTypeInt,
		topic.KeyCleanupPolicy:      kmsg.ConfigTypeList,
		topic.KeyTimestampType:      kmsg.ConfigTypeString,
	}
}

func brokerSynonyms() map[string]string {
	return map[string]string{
		topic.KeyRetentionMs:        "log.retention.ms",
		topic.KeyRetentionBytes:     "log.retention.bytes",
		topic.KeySegmentBytes:       "log.segment.bytes",
		topic.KeySegmentMs:          "log.roll.ms",
		topic.KeyMaxMessageBytes:    "message.max.bytes",
		topic.KeyIndexIntervalBytes: "log.index.interval.bytes",
		topic.KeyCleanupPolicy:      "log.cleanup.policy",
		topic.KeyTimestampType:      "log.message.timestamp.type",
	}
}

// configEntry is one configuration value before it is encoded.
type configEntry struct {
	name, value string
	source      kmsg.ConfigSource
	typ         kmsg.ConfigType
	readOnly    bool
	// defaultName and defaultValue are the broker default a topic
	// override overrides, listed as its second synonym.
	defaultName, defaultValue string
}

func (s *Server) handleDescribeConfigs(rc *request, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		r := kmsg.NewDescribeConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []configEntry
		var code int16
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if !s.authorize(rc, opDescribeConfigs, resTopic, rr.ResourceName) {
				code, err = kerr.TopicAuthorizationFailed.Code, fmt.Errorf("not authorized to describe topic %q", rr.ResourceName)
				break
			}
			entries, err = s.topicConfigs(rc, rr.ResourceName)
			code = errorCode(err, kerr.InvalidRequest.Code)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(s.opts.NodeID)) {
				code, err = kerr.InvalidRequest.Code, fmt.Errorf("unknown broker %q; this is broker %d", rr.ResourceName, s.opts.NodeID)
				break
			}
			if !s.authorize(rc, opDescribeConfigs, resCluster, "") {
				code, err = kerr.ClusterAuthorizationFailed.Code, fmt.Errorf("not authorized to describe broker configs")
				break
			}
			entries = s.brokerConfigs(rc)
		case kmsg.ConfigResourceTypeBrokerLogger:
		default:
			code, err = kerr.InvalidRequest.Code, fmt.Errorf("resource type %d is not supported", rr.ResourceType)
		}
		if code != 0 {
			r.ErrorCode = rc.note(code)
			r.ErrorMessage = s.errorMessage(rc, "describe configs", code, err)
			resp.Resources = append(resp.Resources, r)
			continue
		}
		want := map[string]bool{}
		for _, n := range rr.ConfigNames {
			want[n] = true
		}
		for _, e := range entries {
			// Kafka lists everything for an empty list as for a null
			// one (ConfigHelperUtils), and clients rely on it.
			if len(rr.ConfigNames) > 0 && !want[e.name] {
				continue
			}
			r.Configs = append(r.Configs, e.encode(req.IncludeSynonyms))
		}
		resp.Resources = append(resp.Resources, r)
	}
	return resp, nil
}

func (e configEntry) encode(synonyms bool) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name, c.Value, c.ReadOnly, c.Source, c.ConfigType = e.name, strPtr(e.value), e.readOnly, e.source, e.typ
	c.IsDefault = e.source == kmsg.ConfigSourceDefaultConfig
	if synonyms {
		syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		syn.Name, syn.Value, syn.Source = e.name, strPtr(e.value), e.source
		c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
		if e.defaultName != "" {
			d := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
			d.Name, d.Value, d.Source = e.defaultName, strPtr(e.defaultValue), kmsg.ConfigSourceDefaultConfig
			c.ConfigSynonyms = append(c.ConfigSynonyms, d)
		}
	}
	return c
}

// topicConfigs lists a topic's configuration, sorted by key.
func (s *Server) topicConfigs(rc *request, name string) ([]configEntry, error) {
	ti, err := s.log.DescribeTopic(rc.ctx, name)
	if err != nil {
		return nil, err
	}
	types, syn, defaults := topicConfigTypes(), brokerSynonyms(), topic.DefaultConfig().Map()
	out := make([]configEntry, 0, len(ti.Config))
	for k, v := range ti.Config {
		e := configEntry{name: k, value: v, source: kmsg.ConfigSourceDefaultConfig, typ: types[k]}
		if _, ok := ti.Overrides[k]; ok {
			e.source = kmsg.ConfigSourceDynamicTopicConfig
			e.defaultName, e.defaultValue = syn[k], defaults[k]
		}
		if e.typ == 0 {
			e.typ = kmsg.ConfigTypeString
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// brokerConfigs lists what the broker reports about itself, sorted by key.
func (s *Server) brokerConfigs(rc *request) []configEntry {
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	static := func(name, value string, typ kmsg.ConfigType) configEntry {
		return configEntry{name: name, value: value, source: kmsg.ConfigSourceStaticBrokerConfig, typ: typ, readOnly: true}
	}
	node := itoa(int64(s.opts.NodeID))
	listener := "PLAINTEXT://" + net.JoinHostPort(rc.c.adv.host, strconv.Itoa(int(rc.c.adv.port)))
	out := []configEntry{
		static("broker.id", node, kmsg.ConfigTypeInt),
		static("node.id", node, kmsg.ConfigTypeInt),
		static("advertised.listeners", listener, kmsg.ConfigTypeList),
		static("auto.create.topics.enable", strconv.FormatBool(s.opts.AutoCreateTopics), kmsg.ConfigTypeBoolean),
		static("num.partitions", itoa(int64(s.opts.DefaultPartitions)), kmsg.ConfigTypeInt),
		static("default.replication.factor", "1", kmsg.ConfigTypeShort),
		static("min.insync.replicas", "1", kmsg.ConfigTypeInt),
		static("socket.request.max.bytes", itoa(int64(s.opts.MaxRequestBytes)), kmsg.ConfigTypeInt),
		static("max.connections", itoa(int64(s.opts.MaxConnections)), kmsg.ConfigTypeInt),
		static("connections.max.idle.ms", itoa(s.opts.IdleTimeout.Milliseconds()), kmsg.ConfigTypeLong),
		static("fetch.max.bytes", itoa(int64(s.opts.FetchMaxBytes)), kmsg.ConfigTypeInt),
		static("offset.metadata.max.bytes", itoa(maxOffsetMetadata), kmsg.ConfigTypeInt),
	}
	types, defaults := topicConfigTypes(), topic.DefaultConfig().Map()
	for k, name := range brokerSynonyms() {
		out = append(out, configEntry{name: name, value: defaults[k], source: kmsg.ConfigSourceDefaultConfig, typ: types[k], readOnly: true})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}
