// Package httpapi is Sluice's HTTP API: topic administration, produce and
// consume (native JSON and Kafka REST Proxy v2 compatible), and consumer-
// group offsets. It is written against stream.Log, so it serves the same
// API over the embedded log and over a Kafka cluster. Errors are mapped to
// HTTP statuses in one place (errors.go).
package httpapi

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-dev/sluice/internal/stream"
)

// Options configures the API. Every field has a default.
type Options struct {
	// MaxBodyBytes bounds a request body; larger ones get 413 before the
	// excess is read. Default 64 MiB.
	MaxBodyBytes int64
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Registerer receives the API's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now defaults to time.Now.
	Now func() time.Time
	// ConsumerInstanceTimeout is how long a Kafka REST Proxy v2 consumer
	// instance may stay idle before it is removed from its group (REST
	// Proxy's consumer.instance.timeout.ms). Default 5 minutes.
	ConsumerInstanceTimeout time.Duration
	// MaxConsumerInstances bounds the REST Proxy v2 consumer instances
	// alive at once, over all groups. Default 1000.
	MaxConsumerInstances int
	// Pipelines, when set, is served under /v1/pipelines and /v1/apply.
	Pipelines Pipelines
}

// DefaultMaxBodyBytes is the default request body limit.
const DefaultMaxBodyBytes = 64 << 20

// API serves the HTTP API over a stream.Log.
type API struct {
	log     stream.Log
	opts    Options
	metrics *metrics
	prod    producer   // the produce path's caches and pools (produce.go)
	cons    *consumers // group members and consume state (members.go)
}

// New returns the API over log.
func New(log stream.Log, opts Options) (*API, error) {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ConsumerInstanceTimeout <= 0 {
		opts.ConsumerInstanceTimeout = DefaultConsumerInstanceTimeout
	}
	if opts.MaxConsumerInstances <= 0 {
		opts.MaxConsumerInstances = DefaultMaxConsumerInstances
	}
	a := &API{log: log, opts: opts, metrics: newMetrics()}
	a.cons = newConsumers(opts)
	a.metrics.groupLag.lag = a.groupLag
	if opts.Registerer != nil {
		if err := a.metrics.register(opts.Registerer); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Close ends the long polls in flight (they answer with what they have)
// and makes new ones return at once, so that a server shutting down does
// not wait for them. The API keeps serving other requests. It starts no
// goroutines and holds nothing else to release.
func (a *API) Close() error {
	a.cons.close()
	return nil
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
	a.registerTopics(mux)
	a.registerProduce(mux)
	a.registerConsume(mux)
	a.registerGroups(mux)
	a.registerRESTProxyConsumers(mux)
	a.registerPipelines(mux)
}

// handlerFunc is an API handler: it writes its response on success and
// returns an error, which handle answers in the one JSON error shape.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers fn for pattern (a net/http ServeMux pattern with a
// method, such as "GET /v1/topics/{topic}"), counting requests and timing
// them under the pattern as the route label.
func (a *API) handle(mux *http.ServeMux, pattern string, fn handlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if err := fn(sw, r); err != nil {
			a.writeError(sw, r, err)
		}
		a.metrics.observe(pattern, sw.status, time.Since(start))
	})
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Flush lets long-polling and streaming handlers flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
