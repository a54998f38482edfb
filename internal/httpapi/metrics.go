package httpapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the API's Prometheus metrics. Route labels are the registered
// patterns, never raw paths, so cardinality stays bounded.
type metrics struct {
	requests        *prometheus.CounterVec
	duration        *prometheus.HistogramVec
	producedRecords *prometheus.CounterVec
	groupLag        *lagCollector // computed at scrape time (groups.go)
}

func newMetrics() *metrics {
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_http_requests_total", Help: "HTTP API requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_http_request_duration_seconds", Help: "HTTP API request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		producedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_produced_records_total", Help: "Records produced over HTTP, by topic.",
		}, []string{"topic"}),
		groupLag: newLagCollector(),
	}
}

func (m *metrics) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.producedRecords, m.groupLag} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}
