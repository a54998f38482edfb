package logstore

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the log's Prometheus metrics. Per-topic sizes are computed at
// scrape time by the Log's collector rather than kept up to date on every
// append.
type metrics struct {
	appendedRecords  *prometheus.CounterVec
	appendedBytes    *prometheus.CounterVec
	retentionDeleted *prometheus.CounterVec
	duplicates       *prometheus.CounterVec
	fsyncDuration    prometheus.Histogram
	recoveryDuration prometheus.Gauge
	corruptions      prometheus.Counter
	truncatedBytes   prometheus.Counter
	checkpointErrors prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		appendedRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_log_appended_records_total", Help: "Records appended to the log.",
		}, []string{"topic"}),
		appendedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_log_appended_bytes_total", Help: "Bytes of record batches appended to the log.",
		}, []string{"topic"}),
		retentionDeleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_log_retention_deleted_segments_total", Help: "Segments deleted by retention.",
		}, []string{"topic"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_log_duplicate_batches_total", Help: "Idempotent batches retried by their producer and answered with the original offsets instead of being stored again.",
		}, []string{"topic"}),
		fsyncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_log_fsync_duration_seconds", Help: "Time taken by fsync of log segments.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		recoveryDuration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_log_recovery_duration_seconds", Help: "Time the last open of the log took to recover.",
		}),
		corruptions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_log_corruption_events_total", Help: "Damaged batches found on recovery or read (quarantined or refused).",
		}),
		truncatedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_log_recovery_truncated_bytes_total", Help: "Bytes of torn, unacknowledged tails cut off by recovery.",
		}),
		checkpointErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sluice_log_checkpoint_errors_total", Help: "Failures writing the recovery checkpoint.",
		}),
	}
}

var (
	segmentsDesc = prometheus.NewDesc("sluice_log_segments", "Segment files per topic.", []string{"topic"}, nil)
	sizeDesc     = prometheus.NewDesc("sluice_log_size_bytes", "Bytes stored per topic.", []string{"topic"}, nil)
	failedDesc   = prometheus.NewDesc("sluice_log_failed_partitions", "Partitions refusing writes after a write or fsync error.", nil, nil)
)

// topicStats holds a topic's counters, resolved once so that appends do not
// look labels up.
type topicStats struct {
	appendedRecords prometheus.Counter
	appendedBytes   prometheus.Counter
	deleted         prometheus.Counter
	duplicates      prometheus.Counter
}

func (m *metrics) forTopic(name string) *topicStats {
	return &topicStats{
		appendedRecords: m.appendedRecords.WithLabelValues(name),
		appendedBytes:   m.appendedBytes.WithLabelValues(name),
		deleted:         m.retentionDeleted.WithLabelValues(name),
		duplicates:      m.duplicates.WithLabelValues(name),
	}
}

func (m *metrics) dropTopic(name string) {
	m.appendedRecords.DeleteLabelValues(name)
	m.appendedBytes.DeleteLabelValues(name)
	m.retentionDeleted.DeleteLabelValues(name)
	m.duplicates.DeleteLabelValues(name)
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.appendedRecords, m.appendedBytes, m.retentionDeleted, m.duplicates,
		m.fsyncDuration, m.recoveryDuration, m.corruptions, m.truncatedBytes, m.checkpointErrors}
}

// logCollector reports per-topic segment counts and sizes at scrape time.
type logCollector struct{ l *Log }

func (c logCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- segmentsDesc
	ch <- sizeDesc
	ch <- failedDesc
}

func (c logCollector) Collect(ch chan<- prometheus.Metric) {
	failed := 0
	for _, t := range c.l.topicList() {
		segs, size := 0, int64(0)
		for _, p := range t.parts {
			info := p.Info()
			segs += info.Segments
			size += info.SizeBytes
			if info.Err != nil {
				failed++
			}
		}
		ch <- prometheus.MustNewConstMetric(segmentsDesc, prometheus.GaugeValue, float64(segs), t.spec.Name)
		ch <- prometheus.MustNewConstMetric(sizeDesc, prometheus.GaugeValue, float64(size), t.spec.Name)
	}
	ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.GaugeValue, float64(failed))
}
