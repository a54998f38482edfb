package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the server's HTTP handler: the routes of Routes, with the
// mux's own "404 page not found" and "405 method not allowed" answers
// replaced by JSON errors. The HTTP API (internal/httpapi) joins the same
// mux once Start has opened the log; until then, requests for paths the mux
// does not know yet get 503 rather than 404.
func (s *Server) Handler() http.Handler {
	return jsonMuxErrors(s.routes(), func() bool { return !s.apiServing.Load() })
}

// routes returns the server's one mux, building it on first use.
func (s *Server) routes() *http.ServeMux {
	s.muxOnce.Do(func() { s.mux = s.Routes() })
	return s.mux
}

// Routes builds the HTTP routing, the one place that says which handler
// serves which path, except for the HTTP API's routes, which Start adds
// (see httpapi.API.Register) once the log is open.
func (s *Server) Routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealthz)
	mux.HandleFunc("GET /readyz", s.handleReadyz)
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(s.reg,
		promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(s.logger.Handler(), slog.LevelError),
			Registry: s.reg,
		})))
	return mux
}

// handleHealthz answers liveness probes: the process is up and serving
// HTTP, whatever the state of its components.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz answers readiness probes: 200 once start-up has finished and
// every component is healthy, otherwise 503 with the reasons.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if reasons := s.notReady(); len(reasons) > 0 {
		writeError(w, http.StatusServiceUnavailable, strings.Join(reasons, "; "))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// notReady returns why the server is not ready, or nothing if it is.
func (s *Server) notReady() []string {
	s.mu.Lock()
	p, checks := s.phase, s.checks
	s.mu.Unlock()
	switch p {
	case phaseNew, phaseStarting:
		return []string{"starting up"}
	case phaseStopping, phaseStopped:
		return []string{"shutting down"}
	}
	var reasons []string
	for _, c := range checks {
		if err := c.fn(); err != nil {
			reasons = append(reasons, c.name+": "+oneLine(err))
		}
	}
	return reasons
}

// errorBody is the JSON shape of every HTTP error response.
type errorBody struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{ErrorCode: status, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{ErrorCode: status, Message: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// jsonMuxErrors serves requests that match no route in the JSON error shape.
// It asks the mux what it would do; for the cases where the mux answers by
// itself (not found, method not allowed, path redirects) it lets the mux's
// handler choose status and headers, then writes the body as JSON. While
// starting reports true, a path the mux does not know is answered 503: its
// route may not have been added yet.
func jsonMuxErrors(mux *http.ServeMux, starting func() bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &headerRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status < 400 {
			// A redirect to the cleaned path: pass it on unchanged.
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
			return
		}
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if rec.status == http.StatusNotFound && starting() {
			writeError(w, http.StatusServiceUnavailable, "starting up: the HTTP API is not serving yet; retry shortly")
			return
		}
		msg := strings.ToLower(http.StatusText(rec.status))
		switch rec.status {
		case http.StatusNotFound:
			msg = "no such endpoint: " + r.URL.Path
		case http.StatusMethodNotAllowed:
			msg = "method " + r.Method + " not allowed on " + r.URL.Path + "; allowed: " + rec.header.Get("Allow")
		}
		writeError(w, rec.status, msg)
	})
}

// headerRecorder keeps a handler's status and headers and drops its body.
type headerRecorder struct {
	header http.Header
	status int
}

func (r *headerRecorder) Header() http.Header { return r.header }

func (r *headerRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *headerRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return len(b), nil
}
