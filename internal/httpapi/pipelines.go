package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/sluice-dev/sluice/internal/pipeline"
	"github.com/sluice-dev/sluice/internal/resource"
)

// Pipelines and declarative resources:
//
//	GET    /v1/pipelines                  -> 200 {"pipelines": [pipeline, ...]}
//	GET    /v1/pipelines/{name}           -> 200 {"name", "spec", "status"}
//	PUT    /v1/pipelines/{name}           a Pipeline document (YAML or JSON) -> 201 created, 200 updated or unchanged
//	DELETE /v1/pipelines/{name}           -> 204
//	POST   /v1/pipelines/{name}/pause     -> 200 pipeline
//	POST   /v1/pipelines/{name}/resume    -> 200 pipeline (restarts a failed one)
//	POST   /v1/pipelines/{name}/runs      {"from"?, "to"?} or no body -> 202 run (a batch pipeline's run, started)
//	GET    /v1/pipelines/{name}/runs      -> 200 {"runs": [run, ...]} newest first
//	GET    /v1/pipelines/{name}/runs/{id} -> 200 run
//	POST   /v1/apply[?dry_run=true][&prune=true]
//	                                      resource documents (YAML, --- separated) -> 200 {"changes": [...]}
//
// Specs are answered as stored, with literal secrets (a password in a
// DSN) masked; ${VAR} references are resolved by the server when a
// pipeline starts and never stored expanded. Invalid documents get 422
// with every problem, each with its line and column.

// Pipelines is the pipeline runtime the API manages (pipeline.Manager).
type Pipelines interface {
	Put(ctx context.Context, p *resource.Pipeline) (bool, error)
	Get(name string) (pipeline.Pipeline, error)
	List() []pipeline.Pipeline
	Delete(ctx context.Context, name string) error
	Pause(ctx context.Context, name string) error
	Resume(ctx context.Context, name string) error
	Apply(ctx context.Context, rs []resource.Resource, opts pipeline.ApplyOptions) ([]resource.Change, error)
	StartRun(ctx context.Context, name string, req pipeline.RunRequest) (pipeline.Run, error)
	Runs(name string) ([]pipeline.Run, error)
	GetRun(name string, id int64) (pipeline.Run, error)
}

func (a *API) registerPipelines(mux *http.ServeMux) {
	if a.opts.Pipelines == nil {
		return
	}
	a.handle(mux, "GET /v1/pipelines", a.listPipelines)
	a.handle(mux, "GET /v1/pipelines/{name}", a.getPipeline)
	a.handle(mux, "PUT /v1/pipelines/{name}", a.putPipeline)
	a.handle(mux, "DELETE /v1/pipelines/{name}", a.deletePipeline)
	a.handle(mux, "POST /v1/pipelines/{name}/pause", a.pipelineAction(Pipelines.Pause))
	a.handle(mux, "POST /v1/pipelines/{name}/resume", a.pipelineAction(Pipelines.Resume))
	a.handle(mux, "POST /v1/pipelines/{name}/runs", a.startRun)
	a.handle(mux, "GET /v1/pipelines/{name}/runs", a.listRuns)
	a.handle(mux, "GET /v1/pipelines/{name}/runs/{id}", a.getRun)
	a.handle(mux, "POST /v1/apply", a.apply)
}

// startRun starts a batch pipeline's run. The answer is the run as
// recorded, its range resolved; it executes in the background, and GET
// .../runs/{id} follows it.
func (a *API) startRun(w http.ResponseWriter, r *http.Request) error {
	var req pipeline.RunRequest
	if _, err := readBody(w, r, &req, true, mediaJSON); err != nil {
		return err
	}
	run, err := a.opts.Pipelines.StartRun(r.Context(), r.PathValue("name"), req)
	if err != nil {
		return pipelineError(err)
	}
	writeJSON(w, mediaJSON, http.StatusAccepted, run)
	return nil
}

func (a *API) listRuns(w http.ResponseWriter, r *http.Request) error {
	runs, err := a.opts.Pipelines.Runs(r.PathValue("name"))
	if err != nil {
		return pipelineError(err)
	}
	writeJSON(w, mediaJSON, http.StatusOK, map[string]any{"runs": runs})
	return nil
}

func (a *API) getRun(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return errorf(http.StatusBadRequest, "run %q: want a run number", r.PathValue("id"))
	}
	run, err := a.opts.Pipelines.GetRun(r.PathValue("name"), id)
	if err != nil {
		return pipelineError(err)
	}
	writeJSON(w, mediaJSON, http.StatusOK, run)
	return nil
}

// pipelineJSON is a pipeline as the API answers it.
type pipelineJSON struct {
	Name   string             `json:"name"`
	Spec   *resource.Pipeline `json:"spec"`
	Status pipeline.Status    `json:"status"`
}

func toPipelineJSON(p pipeline.Pipeline) pipelineJSON {
	return pipelineJSON{Name: p.Spec.Metadata.Name, Spec: resource.Redact(&p.Spec), Status: p.Status}
}

func (a *API) listPipelines(w http.ResponseWriter, r *http.Request) error {
	ps := a.opts.Pipelines.List()
	out := make([]pipelineJSON, len(ps))
	for i, p := range ps {
		out[i] = toPipelineJSON(p)
	}
	writeJSON(w, mediaJSON, http.StatusOK, map[string]any{"pipelines": out})
	return nil
}

func (a *API) getPipeline(w http.ResponseWriter, r *http.Request) error {
	p, err := a.opts.Pipelines.Get(r.PathValue("name"))
	if err != nil {
		return pipelineError(err)
	}
	writeJSON(w, mediaJSON, http.StatusOK, toPipelineJSON(p))
	return nil
}

func (a *API) putPipeline(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	rs, err := a.readResources(r, "PUT /v1/pipelines/"+name)
	if err != nil {
		return err
	}
	if len(rs) != 1 || rs[0].GetKind() != resource.KindPipeline {
		return errorf(http.StatusUnprocessableEntity, "want one Pipeline document, got %d documents", len(rs))
	}
	p := rs[0].(*resource.Pipeline)
	if p.Metadata.Name != name {
		return errorf(http.StatusUnprocessableEntity, "metadata.name %q does not match the pipeline %q of the path", p.Metadata.Name, name)
	}
	_, getErr := a.opts.Pipelines.Get(name)
	changed, err := a.opts.Pipelines.Put(r.Context(), p)
	if err != nil {
		return pipelineError(err)
	}
	got, err := a.opts.Pipelines.Get(name)
	if err != nil {
		return pipelineError(err)
	}
	status := http.StatusOK
	if changed && errors.Is(getErr, pipeline.ErrNotFound) {
		status = http.StatusCreated
	}
	writeJSON(w, mediaJSON, status, toPipelineJSON(got))
	return nil
}

func (a *API) deletePipeline(w http.ResponseWriter, r *http.Request) error {
	if err := a.opts.Pipelines.Delete(r.Context(), r.PathValue("name")); err != nil {
		return pipelineError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *API) pipelineAction(fn func(Pipelines, context.Context, string) error) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		name := r.PathValue("name")
		if err := fn(a.opts.Pipelines, r.Context(), name); err != nil {
			return pipelineError(err)
		}
		p, err := a.opts.Pipelines.Get(name)
		if err != nil {
			return pipelineError(err)
		}
		writeJSON(w, mediaJSON, http.StatusOK, toPipelineJSON(p))
		return nil
	}
}

// changeJSON is one change of an apply.
type changeJSON struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"`
	Diff   string `json:"diff,omitempty"`
}

func (a *API) apply(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var opts pipeline.ApplyOptions
	for _, f := range []struct {
		name string
		dst  *bool
	}{{"dry_run", &opts.DryRun}, {"prune", &opts.Prune}} {
		if v := q.Get(f.name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errorf(http.StatusBadRequest, "%s=%q: want true or false", f.name, v)
			}
			*f.dst = b
		}
	}
	rs, err := a.readResources(r, "POST /v1/apply")
	if err != nil {
		return err
	}
	changes, err := a.opts.Pipelines.Apply(r.Context(), rs, opts)
	if err != nil {
		return pipelineError(err)
	}
	out := make([]changeJSON, len(changes))
	for i, c := range changes {
		out[i] = changeJSON{Kind: c.Kind, Name: c.Name, Action: c.Action, Diff: c.Text}
	}
	writeJSON(w, mediaJSON, http.StatusOK, map[string]any{"changes": out})
	return nil
}

// readResources reads and validates the resource documents of a body.
func (a *API) readResources(r *http.Request, name string) ([]resource.Resource, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, min(a.opts.MaxBodyBytes, resource.MaxInputBytes)))
	if err != nil {
		if isMaxBytes(err) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "resource documents over %d bytes", min(a.opts.MaxBodyBytes, resource.MaxInputBytes))
		}
		return nil, err
	}
	rs, err := resource.Parse(name, body, resource.ParseOptions{})
	if err != nil {
		return nil, &Error{Status: http.StatusUnprocessableEntity, Message: err.Error()}
	}
	return rs, nil
}

// pipelineError maps the pipeline runtime's errors to statuses.
func pipelineError(err error) error {
	switch {
	case errors.Is(err, pipeline.ErrNotFound), errors.Is(err, pipeline.ErrRunNotFound):
		return &Error{Status: http.StatusNotFound, Message: err.Error()}
	case errors.Is(err, pipeline.ErrInvalid), errors.Is(err, pipeline.ErrBadRun):
		return &Error{Status: http.StatusUnprocessableEntity, Message: err.Error()}
	case errors.Is(err, pipeline.ErrRunConflict):
		return &Error{Status: http.StatusConflict, Message: err.Error()}
	}
	return err
}
