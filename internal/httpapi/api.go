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
}

// DefaultMaxBodyBytes is the default request body limit.
const DefaultMaxBodyBytes = 64 << 20

// API serves the HTTP API over a stream.Log.
type API struct {
	log  stream.Log
	opts Options
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
	a := &API{log: log, opts: opts}
	return a, nil
}

// Register adds the API's routes to mux.
func (a *API) Register(mux *http.ServeMux) {
}
