package kafkawire

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/topic"
)

// IncrementalAlterConfigs (key 44): versions 0-1.
//
// Behaviour:
//   - Topics (resource type 2): the operations on one topic become one
//     stream.Log.AlterTopic call (TopicChange{Set, Delete}), so they are
//     applied together or not at all. SET sets a value; DELETE removes an
//     override, so the key returns to its default; APPEND and SUBTRACT
//     (list-valued keys only: cleanup.policy) add the comma-separated
//     values not yet in the current value (the override, else the
//     default), or remove them, as Kafka does. APPEND or SUBTRACT on
//     another key is INVALID_CONFIG.
//   - ValidateOnly checks the resulting overrides with the topic package's
//     rules (the embedded log's) and changes nothing.
//   - Errors, per resource: INVALID_REQUEST for a resource named twice
//     (every entry of it), a key named twice in one resource, a null value
//     for anything but DELETE, or an unknown operation;
//     UNKNOWN_TOPIC_OR_PARTITION; INVALID_CONFIG with the log's message
//     for a key or value it refuses; TOPIC_AUTHORIZATION_FAILED without
//     ALTER_CONFIGS on the topic.
//   - The broker (type 4, named by this node's ID, or "" for the cluster
//     default): Sluice's broker settings are flags of sluice serve, read at
//     start-up, so none can be changed dynamically. A resource that changes
//     any gets INVALID_REQUEST naming them, which is what Kafka answers for
//     a broker config it cannot update dynamically; one that changes none
//     succeeds. Another broker ID gets INVALID_REQUEST;
//     CLUSTER_AUTHORIZATION_FAILED without ALTER_CONFIGS on the cluster.
//   - Broker loggers (type 8): INVALID_REQUEST unless empty, since the
//     log level is a flag too. Other types: INVALID_REQUEST.
//   - APPEND and SUBTRACT start from the value the topic had when the
//     request was read: a concurrent change to the same key between that
//     read and the update can be lost, as with any read-modify-write over
//     stream.Log, which has no compare-and-set.

func (s *Server) handleIncrementalAlterConfigs(rc *request, req *kmsg.IncrementalAlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	seen := make(map[configResource]int, len(req.Resources))
	for _, rr := range req.Resources {
		seen[configResource{rr.ResourceType, rr.ResourceName}]++
	}
	resp.Resources = make([]kmsg.IncrementalAlterConfigsResponseResource, len(req.Resources))
	for i := range req.Resources {
		rr := &req.Resources[i]
		r := &resp.Resources[i]
		*r = kmsg.NewIncrementalAlterConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		code, err := s.incrementalAlterResource(rc, rr, seen, req.ValidateOnly)
		if code != 0 {
			r.ErrorCode = rc.note(code)
			r.ErrorMessage = s.errorMessage(rc, "incremental alter configs", code, err)
		}
	}
	return resp, nil
}

// configResource identifies a resource of either AlterConfigs API.
type configResource struct {
	typ  kmsg.ConfigResourceType
	name string
}

func (s *Server) incrementalAlterResource(rc *request, rr *kmsg.IncrementalAlterConfigsRequestResource, seen map[configResource]int, validateOnly bool) (int16, error) {
	if n := seen[configResource{rr.ResourceType, rr.ResourceName}]; n > 1 {
		return kerr.InvalidRequest.Code, fmt.Errorf("resource %q (type %d) appears %d times in the request; each may appear once", rr.ResourceName, rr.ResourceType, n)
	}
	if code, err := s.authorizeAlterConfigs(rc, rr.ResourceType, rr.ResourceName); code != 0 {
		return code, err
	}
	names := make([]string, len(rr.Configs))
	var nulls []string
	for i, c := range rr.Configs {
		names[i] = c.Name
		if c.Value == nil && c.Op != kmsg.IncrementalAlterConfigOpDelete {
			nulls = append(nulls, c.Name)
		}
	}
	if err := checkConfigNames(names, nulls); err != nil {
		return kerr.InvalidRequest.Code, err
	}
	switch rr.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		return s.incrementalAlterTopic(rc, rr, validateOnly)
	case kmsg.ConfigResourceTypeBroker:
		return s.alterBrokerConfigs(rr.ResourceName, names)
	case kmsg.ConfigResourceTypeBrokerLogger:
		if len(names) == 0 {
			return 0, nil
		}
		return kerr.InvalidRequest.Code, errors.New("log levels cannot be changed at runtime: Sluice's is the --log-level flag of sluice serve")
	}
	return kerr.InvalidRequest.Code, fmt.Errorf("resource type %d is not supported", rr.ResourceType)
}

// authorizeAlterConfigs asks for ALTER_CONFIGS on a topic, or on the
// cluster for broker resources, as Kafka does. Other resource types pass
// here and are refused by the caller.
func (s *Server) authorizeAlterConfigs(rc *request, typ kmsg.ConfigResourceType, name string) (int16, error) {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if !s.authorize(rc, opAlterConfigs, resTopic, name) {
			return kerr.TopicAuthorizationFailed.Code, fmt.Errorf("not authorized to alter the configs of topic %q", name)
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !s.authorize(rc, opAlterConfigs, resCluster, "") {
			return kerr.ClusterAuthorizationFailed.Code, errors.New("not authorized to alter broker configs")
		}
	}
	return 0, nil
}

// checkConfigNames refuses, as Kafka does before looking at the resource, a
// key named twice and a null value where a value is needed.
func checkConfigNames(names, nulls []string) error {
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if seen[n] {
			return fmt.Errorf("config %q appears more than once for the resource", n)
		}
		seen[n] = true
	}
	if len(nulls) > 0 {
		return fmt.Errorf("null value for config %s", strings.Join(nulls, ", "))
	}
	return nil
}

func (s *Server) incrementalAlterTopic(rc *request, rr *kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) (int16, error) {
	ti, err := s.log.DescribeTopic(rc.ctx, rr.ResourceName)
	if err != nil {
		return errorCode(err, kerr.InvalidRequest.Code), err
	}
	types := topicConfigTypes()
	ch := stream.TopicChange{Set: map[string]string{}}
	for _, c := range rr.Configs {
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			ch.Set[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			ch.Delete = append(ch.Delete, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if types[c.Name] != kmsg.ConfigTypeList {
				return kerr.InvalidConfig.Code, fmt.Errorf("%s on config %q: only list-valued configs (%s) can be appended to or subtracted from; use SET",
					c.Op, c.Name, strings.Join(listKeys(types), ", "))
			}
			if c.Op == kmsg.IncrementalAlterConfigOpAppend {
				ch.Set[c.Name] = appendList(ti.Config[c.Name], *c.Value)
			} else {
				ch.Set[c.Name] = subtractList(ti.Config[c.Name], *c.Value)
			}
		default:
			return kerr.InvalidRequest.Code, fmt.Errorf("config %q: unknown operation %d", c.Name, c.Op)
		}
	}
	return s.alterTopicConfigs(rc, ti, ch, validateOnly)
}

// alterTopicConfigs checks, or unless validateOnly applies, one topic's
// change; both AlterConfigs APIs end here.
func (s *Server) alterTopicConfigs(rc *request, ti stream.TopicInfo, ch stream.TopicChange, validateOnly bool) (int16, error) {
	if validateOnly {
		if err := checkTopicChange(ti, ch); err != nil {
			return kerr.InvalidConfig.Code, err
		}
		return 0, nil
	}
	if len(ch.Set) == 0 && len(ch.Delete) == 0 {
		return 0, nil
	}
	// The log validates the whole change before applying any of it; its
	// message is the one the client sees.
	if _, err := s.log.AlterTopic(rc.ctx, ti.Name, ch); err != nil {
		return errorCode(err, kerr.InvalidConfig.Code), err
	}
	var removed []string // the overrides deleted, not every key AlterConfigs names
	for _, k := range ch.Delete {
		if _, ok := ti.Overrides[k]; ok {
			removed = append(removed, k)
		}
	}
	s.logger.Info("kafka: altered topic configs", "topic", ti.Name, "set", slices.Sorted(maps.Keys(ch.Set)),
		"removed", removed, "client_id", rc.clientID)
	return 0, nil
}

// checkTopicChange checks what AlterTopic would make of ti's overrides
// with the topic package's rules, which are the embedded log's, for
// ValidateOnly: stream.Log has no dry run. Its messages read as the
// embedded log's do.
func checkTopicChange(ti stream.TopicInfo, ch stream.TopicChange) error {
	known := topic.Keys()
	over := map[string]string{}
	for k, v := range ti.Overrides {
		if slices.Contains(known, k) {
			over[k] = v
		}
	}
	for k, v := range ch.Set {
		over[k] = v
	}
	for _, k := range ch.Delete {
		if !slices.Contains(known, k) {
			return fmt.Errorf("alter topic %q: %w: unknown config key %q", ti.Name, topic.ErrInvalid, k)
		}
		delete(over, k)
	}
	if _, err := topic.DefaultConfig().Apply(over); err != nil {
		return fmt.Errorf("alter topic %q: %w", ti.Name, err)
	}
	return nil
}

// alterBrokerConfigs answers a broker resource of either AlterConfigs API.
// Every broker setting is a flag, so a change to any is refused with the
// code Kafka gives a config it cannot update dynamically.
func (s *Server) alterBrokerConfigs(name string, keys []string) (int16, error) {
	if name != "" && name != strconv.Itoa(int(s.opts.NodeID)) {
		return kerr.InvalidRequest.Code, fmt.Errorf("unknown broker %q; this is broker %d", name, s.opts.NodeID)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	keys = slices.Clone(keys)
	slices.Sort(keys)
	return kerr.InvalidRequest.Code, fmt.Errorf("cannot update these configs dynamically: %s: Sluice's broker settings are flags of sluice serve, read at start-up; restart it with new flags instead",
		strings.Join(keys, ", "))
}

// listKeys returns the list-valued keys, sorted.
func listKeys(types map[string]kmsg.ConfigType) []string {
	var out []string
	for k, t := range types {
		if t == kmsg.ConfigTypeList {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// splitList splits a list value; an empty value is an empty list.
func splitList(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// appendList adds to cur the values of add that it does not hold yet, as
// Kafka's APPEND does.
func appendList(cur, add string) string {
	out := splitList(cur)
	old := len(out)
	for _, v := range splitList(add) {
		if !slices.Contains(out[:old], v) {
			out = append(out, v)
		}
	}
	return strings.Join(out, ",")
}

// subtractList removes from cur one occurrence of each value of sub, as
// Kafka's SUBTRACT (a list difference) does.
func subtractList(cur, sub string) string {
	out := splitList(cur)
	for _, v := range splitList(sub) {
		if i := slices.Index(out, v); i >= 0 {
			out = slices.Delete(out, i, i+1)
		}
	}
	return strings.Join(out, ",")
}
