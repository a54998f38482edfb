package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Pipeline is a pipeline as GET /v1/pipelines/{name} describes it: its
// spec as stored (secrets masked) and what it is doing.
type Pipeline struct {
	Name   string          `json:"name"`
	Spec   json.RawMessage `json:"spec"`
	Status PipelineStatus  `json:"status"`
}

// PipelineStatus is a pipeline's state, last error and progress.
type PipelineStatus struct {
	State               string     `json:"state"`
	Error               string     `json:"error,omitempty"`
	ErrorTime           time.Time  `json:"error_time,omitzero"`
	Attempt             int        `json:"attempt,omitempty"`
	RetryAt             time.Time  `json:"retry_at,omitzero"`
	Positions           []Position `json:"positions"`
	Lag                 int64      `json:"lag"`
	RecordsRead         int64      `json:"records_read"`
	RecordsWritten      int64      `json:"records_written"`
	RecordsDropped      int64      `json:"records_dropped"`
	RecordsDeadLettered int64      `json:"records_dead_lettered"`
	InFlightBytes       int64      `json:"in_flight_bytes"`
	StartedAt           time.Time  `json:"started_at,omitzero"`
	// Window is set for a pipeline with a window processor.
	Window *WindowStatus `json:"window,omitempty"`
	// Batch is set for batch pipelines.
	Batch *BatchStatus `json:"batch,omitempty"`
}

// WindowStatus is what a windowed pipeline's window holds.
type WindowStatus struct {
	Watermark      time.Time `json:"watermark,omitzero"`
	OpenWindows    int       `json:"open_windows"`
	StateBytes     int64     `json:"state_bytes"`
	LateRecords    int64     `json:"late_records"`
	LastCheckpoint time.Time `json:"last_checkpoint,omitzero"`
}

// BatchStatus is what a batch pipeline's runs are doing.
type BatchStatus struct {
	Run           int64     `json:"run,omitempty"`
	NextRunAt     time.Time `json:"next_run_at,omitzero"`
	LastSuccessAt time.Time `json:"last_success_at,omitzero"`
}

// Position is the next offset a pipeline reads in one source partition.
type Position struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// Change is one resource that an apply creates, updates, deletes or
// leaves alone.
type Change struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"`
	Diff   string `json:"diff,omitempty"`
}

// ListPipelines lists every pipeline, sorted by name.
func (c *Client) ListPipelines(ctx context.Context) ([]Pipeline, error) {
	var out struct {
		Pipelines []Pipeline `json:"pipelines"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: "/v1/pipelines", out: &out})
	return out.Pipelines, err
}

// GetPipeline describes one pipeline.
func (c *Client) GetPipeline(ctx context.Context, name string) (*Pipeline, error) {
	var out Pipeline
	if err := c.do(ctx, request{method: http.MethodGet, path: pipelinePath(name), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeletePipeline stops a pipeline and deletes its spec.
func (c *Client) DeletePipeline(ctx context.Context, name string) error {
	return c.do(ctx, request{method: http.MethodDelete, path: pipelinePath(name)})
}

// PausePipeline pauses a pipeline; ResumePipeline starts it again, or
// restarts it after it failed.
func (c *Client) PausePipeline(ctx context.Context, name string) (*Pipeline, error) {
	return c.pipelineAction(ctx, name, "pause")
}

// ResumePipeline starts a paused or failed pipeline.
func (c *Client) ResumePipeline(ctx context.Context, name string) (*Pipeline, error) {
	return c.pipelineAction(ctx, name, "resume")
}

func (c *Client) pipelineAction(ctx context.Context, name, action string) (*Pipeline, error) {
	var out Pipeline
	if err := c.do(ctx, request{method: http.MethodPost, path: pipelinePath(name) + "/" + action, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// Apply sends resource documents (YAML, several separated by ---) to POST
// /v1/apply and returns what changed, or with dryRun what would. With
// prune, resources applied earlier that the documents no longer declare
// are deleted.
func (c *Client) Apply(ctx context.Context, docs []byte, dryRun, prune bool) ([]Change, error) {
	q := url.Values{}
	if dryRun {
		q.Set("dry_run", "true")
	}
	if prune {
		q.Set("prune", "true")
	}
	var out struct {
		Changes []Change `json:"changes"`
	}
	err := c.do(ctx, request{method: http.MethodPost, path: "/v1/apply", query: q,
		body: bytes.NewReader(docs), contentType: "application/yaml", out: &out, timeout: 2 * time.Minute})
	return out.Changes, err
}

func pipelinePath(name string) string { return "/v1/pipelines/" + escape(name) }

// Run is one run of a batch pipeline, as POST and GET
// /v1/pipelines/{name}/runs answer it.
type Run struct {
	Pipeline            string           `json:"pipeline"`
	ID                  int64            `json:"id"`
	Kind                string           `json:"kind"`
	State               string           `json:"state"`
	From                string           `json:"from"`
	To                  string           `json:"to"`
	Topic               string           `json:"topic"`
	Ranges              []PartitionRange `json:"ranges"`
	Output              string           `json:"output"`
	Attempt             int              `json:"attempt"`
	StartedAt           time.Time        `json:"started_at"`
	EndedAt             time.Time        `json:"ended_at,omitzero"`
	RecordsRead         int64            `json:"records_read"`
	RecordsWritten      int64            `json:"records_written"`
	RecordsDeadLettered int64            `json:"records_dead_lettered"`
	Error               string           `json:"error,omitempty"`
}

// PartitionRange is the offsets [From, To) of one partition a run reads.
type PartitionRange struct {
	Partition int32 `json:"partition"`
	From      int64 `json:"from"`
	To        int64 `json:"to"`
}

// Run states that end a run's attempts until the pipeline restarts.
const (
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// StartRun starts a run of a batch pipeline and returns it with its range
// resolved. Empty from and to run the spec's range; either set makes a
// backfill (lastRun, earliest, latest, an RFC 3339 time or
// "partition=offset,...").
func (c *Client) StartRun(ctx context.Context, name, from, to string) (*Run, error) {
	var out Run
	in := map[string]string{}
	if from != "" {
		in["from"] = from
	}
	if to != "" {
		in["to"] = to
	}
	if err := c.do(ctx, request{method: http.MethodPost, path: pipelinePath(name) + "/runs", in: in, out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListRuns lists a pipeline's runs, newest first.
func (c *Client) ListRuns(ctx context.Context, name string) ([]Run, error) {
	var out struct {
		Runs []Run `json:"runs"`
	}
	err := c.do(ctx, request{method: http.MethodGet, path: pipelinePath(name) + "/runs", out: &out})
	return out.Runs, err
}

// GetRun returns one run of a pipeline.
func (c *Client) GetRun(ctx context.Context, name string, id int64) (*Run, error) {
	var out Run
	if err := c.do(ctx, request{method: http.MethodGet, path: pipelinePath(name) + "/runs/" + strconv.FormatInt(id, 10), out: &out}); err != nil {
		return nil, err
	}
	return &out, nil
}
