package client

import (
	"context"
	"net/http"
	"time"
)

// Topic is a topic as the API describes it.
type Topic struct {
	Name      string    `json:"name"`
	ID        string    `json:"id,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// Config holds every configuration key, defaults included; Overrides
	// only the keys set explicitly.
	Config     map[string]string `json:"config"`
	Overrides  map[string]string `json:"overrides,omitempty"`
	Partitions []Partition       `json:"partitions"`
}

// Partition describes one partition of a topic.
type Partition struct {
	Partition      int32 `json:"partition"`
	LogStartOffset int64 `json:"log_start_offset"`
	HighWatermark  int64 `json:"high_watermark"`
	SizeBytes      int64 `json:"size_bytes"`
}

// CreateTopic creates a topic with the given number of partitions (0 for
// the server's default) and configuration overrides (Kafka-style keys such
// as retention.ms). A topic that exists already is an *Error with status
// 409.
func (c *Client) CreateTopic(ctx context.Context, name string, partitions int32, config map[string]string) (*Topic, error) {
	in := struct {
		Name       string            `json:"name"`
		Partitions int32             `json:"partitions,omitempty"`
		Config     map[string]string `json:"config,omitempty"`
	}{name, partitions, config}
	var t Topic
	if err := c.do(ctx, request{method: http.MethodPost, path: "/v1/topics", in: in, out: &t}); err != nil {
		return nil, err
	}
	return &t, nil
}

// ListTopics describes every topic, sorted by name.
func (c *Client) ListTopics(ctx context.Context) ([]Topic, error) {
	var out struct {
		Topics []Topic `json:"topics"`
	}
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/topics", out: &out}); err != nil {
		return nil, err
	}
	return out.Topics, nil
}

// DescribeTopic describes one topic; an unknown one is an *Error with
// status 404.
func (c *Client) DescribeTopic(ctx context.Context, name string) (*Topic, error) {
	var t Topic
	if err := c.do(ctx, request{method: http.MethodGet, path: "/v1/topics/" + escape(name), out: &t}); err != nil {
		return nil, err
	}
	return &t, nil
}

// TopicChange is what AlterTopic changes: it is applied whole or not at
// all.
type TopicChange struct {
	// Set sets configuration overrides.
	Set map[string]string
	// Delete removes overrides; the keys return to their defaults.
	Delete []string
	// Partitions, when above zero, is the new partition count, which may
	// grow but not shrink.
	Partitions int32
}

// AlterTopic changes a topic's configuration or partition count and
// returns the topic as it is afterwards.
func (c *Client) AlterTopic(ctx context.Context, name string, ch TopicChange) (*Topic, error) {
	in := struct {
		Config       map[string]string `json:"config,omitempty"`
		DeleteConfig []string          `json:"delete_config,omitempty"`
		Partitions   int32             `json:"partitions,omitempty"`
	}{ch.Set, ch.Delete, ch.Partitions}
	var t Topic
	if err := c.do(ctx, request{method: http.MethodPatch, path: "/v1/topics/" + escape(name), in: in, out: &t}); err != nil {
		return nil, err
	}
	return &t, nil
}

// DeleteTopic deletes a topic with its data and committed offsets.
func (c *Client) DeleteTopic(ctx context.Context, name string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: "/v1/topics/" + escape(name)})
}
