package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/pipeline"
)

// withPipelines serves a pipeline manager over the environment's log; it
// writes stdout sinks to io.Discard and is closed when the test ends.
func withPipelines(t *testing.T, e *testEnv) *pipeline.Manager {
	t.Helper()
	mgr, err := pipeline.New(pipeline.Options{Log: e.log, Registerer: prometheus.NewRegistry(), Stdout: discard{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		_ = mgr.Close(cctx)
		cancel()
	})
	api, err := New(e.log, Options{Pipelines: mgr, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux)
	e.handler = mux
	return mgr
}

// waitSucceeded follows a run through GET .../runs/{id} until it
// succeeded.
func waitSucceeded(t *testing.T, e *testEnv, name string, id int) pipeline.Run {
	t.Helper()
	var run pipeline.Run
	deadline := time.Now().Add(20 * time.Second)
	for run.State != pipeline.RunSucceeded {
		if time.Now().After(deadline) {
			t.Fatalf("run %d did not succeed: %+v", id, run)
		}
		time.Sleep(10 * time.Millisecond)
		e.must(http.StatusOK, http.MethodGet, fmt.Sprintf("/v1/pipelines/%s/runs/%d", name, id), "", &run)
	}
	return run
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// TestRunsAPI: POST .../runs starts a batch pipeline's run and answers it
// with its range; GET lists and follows runs; the errors are 404, 409 and
// 422 with the JSON error body.
func TestRunsAPI(t *testing.T) {
	lake := t.TempDir() // before the manager, whose cleanup must run first
	e := newTestEnv(t)
	withPipelines(t, e)
	e.createTopic("clicks", 2, nil)
	e.values("clicks", 0, 1000, `{"n":1}`, `{"n":2}`)
	e.values("clicks", 1, 1000, `{"n":3}`)
	spec := `apiVersion: sluice.dev/v1
kind: Pipeline
metadata: {name: lake}
spec:
  mode: batch
  source: {topic: clicks}
  sink: {parquet: {path: ` + lake + `}}
`
	e.must(http.StatusCreated, http.MethodPut, "/v1/pipelines/lake", spec, nil, "Content-Type", "application/yaml")

	var run pipeline.Run
	e.must(http.StatusAccepted, http.MethodPost, "/v1/pipelines/lake/runs", "", &run)
	if run.ID != 1 || run.Kind != pipeline.RunManual || run.State != pipeline.RunRunning || len(run.Ranges) != 2 ||
		run.Ranges[0] != (pipeline.PartitionRange{Partition: 0, From: 0, To: 2}) || run.Ranges[1] != (pipeline.PartitionRange{Partition: 1, From: 0, To: 1}) {
		t.Fatalf("got run %+v, want run 1, manual, running, [0,2) and [0,1)", run)
	}
	run = waitSucceeded(t, e, "lake", 1)
	if run.RecordsWritten != 3 || run.EndedAt.IsZero() {
		t.Fatalf("got run %+v, want 3 records written and an end", run)
	}
	files, _ := filepath.Glob(filepath.Join(lake, "lake-batch-"+run.Output+"-*.parquet"))
	if len(files) != 1 {
		entries, _ := os.ReadDir(lake)
		t.Fatalf("got files %v in the lake (%v), want one named for the run", files, entries)
	}

	var bf pipeline.Run
	e.must(http.StatusAccepted, http.MethodPost, "/v1/pipelines/lake/runs", `{"from": "0=1", "to": "0=2"}`, &bf)
	if bf.ID != 2 || bf.Kind != pipeline.RunBackfill || bf.From != "0=1" || len(bf.Ranges) != 1 {
		t.Fatalf("got run %+v, want backfill 2 of partition 0", bf)
	}
	waitSucceeded(t, e, "lake", 2)
	var list struct{ Runs []pipeline.Run }
	e.must(http.StatusOK, http.MethodGet, "/v1/pipelines/lake/runs", "", &list)
	if len(list.Runs) != 2 || list.Runs[0].ID != 2 || list.Runs[1].ID != 1 {
		t.Fatalf("got runs %+v, want 2 then 1", list.Runs)
	}

	for _, tc := range []struct {
		method, path, body string
		status             int
		msg                string
	}{
		{http.MethodPost, "/v1/pipelines/nope/runs", "", http.StatusNotFound, "pipeline not found: nope"},
		{http.MethodGet, "/v1/pipelines/nope/runs", "", http.StatusNotFound, "pipeline not found: nope"},
		{http.MethodGet, "/v1/pipelines/lake/runs/99", "", http.StatusNotFound, "run not found: run 99 of lake"},
		{http.MethodGet, "/v1/pipelines/lake/runs/x", "", http.StatusBadRequest, `run "x": want a run number`},
		{http.MethodPost, "/v1/pipelines/lake/runs", `{"from": "soon"}`, http.StatusUnprocessableEntity, `invalid run: from: "soon"`},
		{http.MethodPost, "/v1/pipelines/lake/runs", `{"to": "0=99"}`, http.StatusUnprocessableEntity, "partition 0 ends at 99"},
		{http.MethodPost, "/v1/pipelines/lake/runs", `{"form": "earliest"}`, http.StatusBadRequest, "form"},
	} {
		r := e.do(tc.method, tc.path, tc.body)
		if r.status != tc.status || !strings.Contains(r.errBody(t).Message, tc.msg) {
			t.Errorf("%s %s %s: got %d %s, want %d with %q", tc.method, tc.path, tc.body, r.status, r.body, tc.status, tc.msg)
		}
	}
}

// TestRunsAPIConflict: a run asked for while another is in progress gets
// 409, and a stream pipeline's runs 422.
func TestRunsAPIConflict(t *testing.T) {
	// The sink's path is below a file: every attempt fails, with a long
	// backoff, so the run stays in progress. The directory is made before
	// the manager, whose cleanup must run first.
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t)
	withPipelines(t, e)
	e.createTopic("clicks", 1, nil)
	e.values("clicks", 0, 1000, `{"n":1}`)
	spec := `apiVersion: sluice.dev/v1
kind: Pipeline
metadata: {name: stuck}
spec:
  mode: batch
  source: {topic: clicks}
  sink: {parquet: {path: ` + filepath.Join(blocker, "lake") + `}}
  retry: {initialBackoff: 1m, maxBackoff: 1m, maxAttempts: 5}
---
apiVersion: sluice.dev/v1
kind: Pipeline
metadata: {name: live}
spec:
  source: {topic: clicks}
  sink: {stdout: {}}
`
	e.must(http.StatusOK, http.MethodPost, "/v1/apply", spec, nil, "Content-Type", "application/yaml")
	e.must(http.StatusAccepted, http.MethodPost, "/v1/pipelines/stuck/runs", "", nil)
	r := e.do(http.MethodPost, "/v1/pipelines/stuck/runs", "")
	if r.status != http.StatusConflict || !strings.Contains(r.errBody(t).Message, "cannot start a run: run 1 of stuck is") {
		t.Fatalf("second run: got %d %s, want 409 naming run 1", r.status, r.body)
	}
	r = e.do(http.MethodPost, "/v1/pipelines/live/runs", "")
	if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.errBody(t).Message, "live is a stream pipeline") {
		t.Fatalf("run of a stream pipeline: got %d %s, want 422", r.status, r.body)
	}
}
