package kafkawire

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-dev/sluice/internal/group"
)

// metrics are the server's Prometheus metrics. Labels stay low-cardinality:
// the API name, and the error: "none", a Kafka error name such as
// UNKNOWN_TOPIC_OR_PARTITION (the first error a response carries), or one of
// request_too_large, malformed_request, unsupported_version and
// internal_error for requests that closed the connection.
type metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	connections prometheus.Gauge
	rejected    prometheus.Counter

	// Per-API children resolved once, for the common case.
	ok  []prometheus.Counter
	dur []prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, apis []*api, groups *group.Coordinator) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_kafka_requests_total",
			Help: "Kafka protocol requests served, by API and by the first error code of the response.",
		}, []string{"api", "error"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_kafka_request_duration_seconds",
			Help:    "Time to serve a Kafka protocol request, from decoded request to encoded response.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 14), // 100µs to ~15s
		}, []string{"api"}),
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_kafka_connections",
			Help: "Open Kafka protocol connections.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_kafka_connections_rejected_total",
			Help: "Kafka protocol connections closed on accept because MaxConnections were open.",
		}),
		ok:  make([]prometheus.Counter, len(apis)),
		dur: make([]prometheus.Observer, len(apis)),
	}
	for _, a := range apis {
		if a != nil {
			m.ok[a.key] = m.requests.WithLabelValues(a.name, "none")
			m.dur[a.key] = m.duration.WithLabelValues(a.name)
		}
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.connections, m.rejected, newGroupCollector(groups)} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// request counts a request that ended before its handler ran.
func (m *metrics) request(api, errName string) {
	m.requests.WithLabelValues(api, errName).Inc()
}

// observe counts a served request and its duration.
func (m *metrics) observe(a *api, rc *request, err error, d time.Duration) {
	m.dur[a.key].Observe(d.Seconds())
	switch {
	case errors.Is(err, errPanic):
		m.request(a.name, "internal_error")
	case rc.code != 0:
		m.request(a.name, errorName(rc.code))
	default:
		m.ok[a.key].Inc()
	}
}

// errorName is the Kafka name of an error code.
func errorName(code int16) string {
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && e.Code == code {
		return e.Message
	}
	return "UNKNOWN_SERVER_ERROR"
}

// groupCollector reports the coordinator's groups when Prometheus scrapes:
// sluice_group_members and sluice_group_rebalances_total, by group. Reading
// them at scrape time needs no bookkeeping on every join, and a group the
// coordinator forgets (deleted, or left without members) disappears from
// the next scrape. The rebalance count starts again when a group forms
// anew, which Prometheus reads as a counter reset.
type groupCollector struct {
	groups     *group.Coordinator
	members    *prometheus.Desc
	rebalances *prometheus.Desc
}

func newGroupCollector(g *group.Coordinator) *groupCollector {
	return &groupCollector{groups: g,
		members: prometheus.NewDesc("sluice_group_members",
			"Members of a consumer group that uses the Kafka group protocol.", []string{"group"}, nil),
		rebalances: prometheus.NewDesc("sluice_group_rebalances_total",
			"Completed rebalances (generations) of a consumer group since it last formed.", []string{"group"}, nil),
	}
}

func (c *groupCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.members
	ch <- c.rebalances
}

func (c *groupCollector) Collect(ch chan<- prometheus.Metric) {
	for _, d := range c.groups.List() {
		ch <- prometheus.MustNewConstMetric(c.members, prometheus.GaugeValue, float64(len(d.Members)), d.Group)
		ch <- prometheus.MustNewConstMetric(c.rebalances, prometheus.CounterValue, float64(d.Rebalances), d.Group)
	}
}
