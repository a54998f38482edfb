package kafkawire

import (
	"fmt"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/topic"
)

// AlterConfigs (key 33): versions 0-2, the legacy API that Kafka deprecates
// for IncrementalAlterConfigs (44) and that older tools and Sarama still
// send.
//
// Behaviour:
//   - Topics (resource type 2): the listed configs become the topic's whole
//     set of overrides; every override not listed is removed, so its key
//     returns to its default. It is one stream.Log.AlterTopic call
//     (TopicChange{Set, Delete}), applied together or not at all.
//     ValidateOnly checks the result and changes nothing, as in key 44.
//   - Errors, per resource, as in key 44: INVALID_REQUEST for a resource
//     named twice (every entry of it), a key named twice or a null value;
//     UNKNOWN_TOPIC_OR_PARTITION; INVALID_CONFIG with the log's message;
//     TOPIC_AUTHORIZATION_FAILED.
//   - The broker (type 4): as in key 44, INVALID_REQUEST for any config
//     (broker settings are flags), success for none.
//   - Other types, broker loggers included (Kafka serves them only through
//     key 44): INVALID_REQUEST.

func (s *Server) handleAlterConfigs(rc *request, req *kmsg.AlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	seen := make(map[configResource]int, len(req.Resources))
	for _, rr := range req.Resources {
		seen[configResource{rr.ResourceType, rr.ResourceName}]++
	}
	resp.Resources = make([]kmsg.AlterConfigsResponseResource, len(req.Resources))
	for i := range req.Resources {
		rr := &req.Resources[i]
		r := &resp.Resources[i]
		*r = kmsg.NewAlterConfigsResponseResource()
		r.ResourceType, r.ResourceName = rr.ResourceType, rr.ResourceName
		code, err := s.alterResource(rc, rr, seen, req.ValidateOnly)
		if code != 0 {
			r.ErrorCode = rc.note(code)
			r.ErrorMessage = s.errorMessage(rc, "alter configs", code, err)
		}
	}
	return resp, nil
}

func (s *Server) alterResource(rc *request, rr *kmsg.AlterConfigsRequestResource, seen map[configResource]int, validateOnly bool) (int16, error) {
	if n := seen[configResource{rr.ResourceType, rr.ResourceName}]; n > 1 {
		return kerr.InvalidRequest.Code, fmt.Errorf("resource %q (type %d) appears %d times in the request; each may appear once", rr.ResourceName, rr.ResourceType, n)
	}
	if rr.ResourceType != kmsg.ConfigResourceTypeTopic && rr.ResourceType != kmsg.ConfigResourceTypeBroker {
		return kerr.InvalidRequest.Code, fmt.Errorf("resource type %d is not supported by AlterConfigs; topics and brokers are", rr.ResourceType)
	}
	if code, err := s.authorizeAlterConfigs(rc, rr.ResourceType, rr.ResourceName); code != 0 {
		return code, err
	}
	names := make([]string, len(rr.Configs))
	var nulls []string
	for i, c := range rr.Configs {
		names[i] = c.Name
		if c.Value == nil {
			nulls = append(nulls, c.Name)
		}
	}
	if err := checkConfigNames(names, nulls); err != nil {
		return kerr.InvalidRequest.Code, err
	}
	if rr.ResourceType == kmsg.ConfigResourceTypeBroker {
		return s.alterBrokerConfigs(rr.ResourceName, names)
	}

	ti, err := s.log.DescribeTopic(rc.ctx, rr.ResourceName)
	if err != nil {
		return errorCode(err, kerr.InvalidRequest.Code), err
	}
	ch := stream.TopicChange{Set: make(map[string]string, len(rr.Configs))}
	for _, c := range rr.Configs {
		ch.Set[c.Name] = *c.Value
	}
	// Every key not listed is deleted, not only the current overrides:
	// an override another client adds between DescribeTopic and AlterTopic
	// is then still replaced, as the API promises.
	del := map[string]bool{}
	for _, k := range topic.Keys() {
		del[k] = true
	}
	for k := range ti.Overrides {
		del[k] = true
	}
	for k := range ch.Set {
		delete(del, k)
	}
	ch.Delete = slices.Sorted(maps.Keys(del))
	return s.alterTopicConfigs(rc, ti, ch, validateOnly)
}
