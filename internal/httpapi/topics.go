package httpapi

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/sluice-dev/sluice/internal/stream"
)

// Topic administration:
//
//	POST   /v1/topics            {"name", "partitions", "config"} -> 201 topic
//	GET    /v1/topics            -> 200 {"topics": [topic, ...]}, sorted by name
//	GET    /v1/topics/{topic}    -> 200 topic
//	PATCH  /v1/topics/{topic}    {"config", "delete_config", "partitions"} -> 200 topic
//	DELETE /v1/topics/{topic}    -> 204, no body
//
// A topic is answered as
//
//	{"name": "orders", "id": "<uuid>", "created_at": "<RFC 3339>",
//	 "config": {every key, defaults included}, "overrides": {what was set},
//	 "partitions": [{"partition", "log_start_offset", "high_watermark", "size_bytes"}, ...]}
//
// Errors: 404 unknown topic, 409 a topic of that name exists, 422 an invalid
// name, partition count or configuration, 400 a malformed body.

func (a *API) registerTopics(mux *http.ServeMux) {
	a.handle(mux, "POST /v1/topics", a.createTopic)
	a.handle(mux, "GET /v1/topics", a.listTopics)
	a.handle(mux, "GET /v1/topics/{topic}", a.describeTopic)
	a.handle(mux, "PATCH /v1/topics/{topic}", a.alterTopic)
	a.handle(mux, "DELETE /v1/topics/{topic}", a.deleteTopic)
}

// topicJSON is a topic as the API answers it.
type topicJSON struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	CreatedAt  string            `json:"created_at,omitempty"`
	Config     map[string]string `json:"config"`
	Overrides  map[string]string `json:"overrides"`
	Partitions []partitionJSON   `json:"partitions"`
}

type partitionJSON struct {
	Partition      int32 `json:"partition"`
	LogStartOffset int64 `json:"log_start_offset"`
	HighWatermark  int64 `json:"high_watermark"`
	SizeBytes      int64 `json:"size_bytes"`
}

func newTopicJSON(t stream.TopicInfo) topicJSON {
	out := topicJSON{
		Name:       t.Name,
		ID:         formatUUID(t.ID),
		Config:     t.Config,
		Overrides:  t.Overrides,
		Partitions: make([]partitionJSON, len(t.Partitions)),
	}
	if !t.CreatedAt.IsZero() {
		out.CreatedAt = t.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	if out.Config == nil {
		out.Config = map[string]string{}
	}
	if out.Overrides == nil {
		out.Overrides = map[string]string{}
	}
	for i, p := range t.Partitions {
		out.Partitions[i] = partitionJSON{Partition: p.Partition, LogStartOffset: p.LogStartOffset,
			HighWatermark: p.HighWatermark, SizeBytes: p.SizeBytes}
	}
	return out
}

// formatUUID writes a topic ID in the canonical 8-4-4-4-12 form.
func formatUUID(id [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
}

// configValue is a config value in a request: a string, or a number or
// boolean taken as the text it is written as ({"retention.ms": 86400000}
// sets "86400000").
type configValue string

func (v *configValue) UnmarshalJSON(b []byte) error {
	switch {
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = configValue(s)
	case string(b) == "true" || string(b) == "false" || len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9'):
		*v = configValue(b)
	default:
		return errorf(http.StatusUnprocessableEntity, "config values must be strings, numbers or booleans, not %s", b)
	}
	return nil
}

func configMap(in map[string]configValue) map[string]string {
	if in == nil {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = string(v)
	}
	return out
}

// createTopicRequest is the body of POST /v1/topics. Partitions defaults
// to 1; config holds Kafka-style overrides.
type createTopicRequest struct {
	Name       string                 `json:"name"`
	Partitions *int64                 `json:"partitions"`
	Config     map[string]configValue `json:"config"`
}

func (a *API) createTopic(w http.ResponseWriter, r *http.Request) error {
	var req createTopicRequest
	if _, err := readBody(w, r, &req, false, mediaJSON); err != nil {
		return err
	}
	partitions := int64(1)
	if req.Partitions != nil {
		partitions = *req.Partitions
	}
	if partitions < 1 || partitions > math.MaxInt32 {
		return errorf(http.StatusUnprocessableEntity, "partitions is %d; want a positive number", partitions)
	}
	t, err := a.log.CreateTopic(r.Context(), req.Name, int32(partitions), configMap(req.Config))
	if err != nil {
		return err
	}
	a.prod.forget(t.Name, true)
	w.Header().Set("Location", "/v1/topics/"+url.PathEscape(t.Name))
	writeJSON(w, mediaJSON, http.StatusCreated, newTopicJSON(t))
	return nil
}

func (a *API) listTopics(w http.ResponseWriter, r *http.Request) error {
	ts, err := a.log.ListTopics(r.Context())
	if err != nil {
		return err
	}
	out := struct {
		Topics []topicJSON `json:"topics"`
	}{Topics: make([]topicJSON, len(ts))}
	for i, t := range ts {
		out.Topics[i] = newTopicJSON(t)
	}
	writeJSON(w, mediaJSON, http.StatusOK, out)
	return nil
}

func (a *API) describeTopic(w http.ResponseWriter, r *http.Request) error {
	t, err := a.log.DescribeTopic(r.Context(), r.PathValue("topic"))
	if err != nil {
		return err
	}
	writeJSON(w, mediaJSON, http.StatusOK, newTopicJSON(t))
	return nil
}

// alterTopicRequest is the body of PATCH /v1/topics/{topic}:
//
//	{"config": {"retention.ms": "3600000"}, "delete_config": ["retention.bytes"], "partitions": 12}
//
// config sets overrides, delete_config removes them (the keys return to
// their defaults), partitions, when given, is the new partition count,
// which may grow but not shrink (the current count is accepted and changes
// nothing). Every field is optional; the change is applied whole or not at
// all.
type alterTopicRequest struct {
	Config       map[string]configValue `json:"config"`
	DeleteConfig []string               `json:"delete_config"`
	Partitions   *int64                 `json:"partitions"`
}

func (a *API) alterTopic(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("topic")
	var req alterTopicRequest
	if _, err := readBody(w, r, &req, false, mediaJSON); err != nil {
		return err
	}
	change := stream.TopicChange{Set: configMap(req.Config), Delete: req.DeleteConfig}
	for _, k := range req.DeleteConfig {
		if _, ok := req.Config[k]; ok {
			return errorf(http.StatusUnprocessableEntity, "config key %q is both set and deleted", k)
		}
	}
	if req.Partitions != nil {
		n := *req.Partitions
		if n < 1 || n > math.MaxInt32 {
			return errorf(http.StatusUnprocessableEntity, "partitions is %d; want a positive number", n)
		}
		change.Partitions = int32(n)
	}
	t, err := a.log.AlterTopic(r.Context(), name, change)
	if err != nil {
		return err
	}
	a.prod.forget(name, false)
	writeJSON(w, mediaJSON, http.StatusOK, newTopicJSON(t))
	return nil
}

func (a *API) deleteTopic(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("topic")
	if err := a.log.DeleteTopic(r.Context(), name); err != nil {
		return err
	}
	a.prod.forget(name, true)
	w.WriteHeader(http.StatusNoContent)
	return nil
}
