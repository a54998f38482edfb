package pipeline

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the pipelines' Prometheus metrics, labelled by pipeline
// name (never by record key or partition). Stages are source, process and
// sink; outcomes say what became of the records there.
type metrics struct {
	records    *prometheus.CounterVec
	batch      *prometheus.HistogramVec
	endToEnd   *prometheus.HistogramVec
	lag        *prometheus.GaugeVec
	deadLetter *prometheus.CounterVec
	state      *prometheus.GaugeVec
	inFlight   *prometheus.GaugeVec
	stateBytes *prometheus.GaugeVec
	watermark  *prometheus.GaugeVec

	// Batch pipelines' runs.
	batchRuns        *prometheus.CounterVec
	batchDuration    *prometheus.HistogramVec
	batchLastSuccess *prometheus.GaugeVec
}

// Record outcomes, by stage.
const (
	outcomeRead       = "read"        // source
	outcomeKept       = "kept"        // process
	outcomeDropped    = "dropped"     // process: a filter or dedupe dropped it
	outcomeFailed     = "failed"      // process or sink: the record's own fault
	outcomeWritten    = "written"     // sink
	outcomeDeadLetter = "dead_letter" // process or sink: stored in the dead-letter topic
	outcomeLate       = "late"        // window: behind the watermark, dropped as configured
	outcomeEmitted    = "emitted"     // window: a result record
)

// Outcomes of batch runs' attempts.
const (
	runOutcomeSucceeded = "succeeded"
	runOutcomeRetried   = "retried" // the attempt failed; the run is attempted again
	runOutcomeFailed    = "failed"  // the run gave up; the pipeline is failed
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_pipeline_records_total",
			Help: "Records through each pipeline stage (source, process, sink), by outcome.",
		}, []string{"pipeline", "stage", "outcome"}),
		batch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_pipeline_batch_duration_seconds",
			Help:    "Time to deliver one batch to the sink and commit its checkpoint, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"pipeline"}),
		endToEnd: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_pipeline_end_to_end_latency_seconds",
			Help:    "From a record's timestamp to the sink's acknowledgement of its batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 16),
		}, []string{"pipeline"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_pipeline_lag_records",
			Help: "Records in the source topic that the pipeline has not committed yet, over all partitions.",
		}, []string{"pipeline"}),
		deadLetter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_pipeline_dead_letter_records_total",
			Help: "Records stored in the pipeline's dead-letter topic.",
		}, []string{"pipeline"}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_pipeline_state",
			Help: "1 for the state each pipeline is in (starting, running, retrying, paused, failed), 0 for the others.",
		}, []string{"pipeline", "state"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_pipeline_in_flight_bytes",
			Help: "Bytes of records a pipeline holds between its source and its sink.",
		}, []string{"pipeline"}),
		stateBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_pipeline_state_bytes",
			Help: "Estimated bytes of a windowed pipeline's open windows; the pipeline fails at its maxStateBytes.",
		}, []string{"pipeline"}),
		watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_pipeline_watermark_seconds",
			Help: "A windowed pipeline's watermark, in Unix seconds: windows ending at or before it are closed.",
		}, []string{"pipeline"}),
		batchRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_batch_runs_total",
			Help: "Attempts of batch pipelines' runs, by outcome: succeeded, retried (the attempt failed and the run is attempted again), failed (the run gave up).",
		}, []string{"pipeline", "outcome"}),
		batchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sluice_batch_run_duration_seconds",
			Help:    "Time from the start of a batch run to its success, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.1, 3, 12),
		}, []string{"pipeline"}),
		batchLastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_batch_last_success_timestamp_seconds",
			Help: "When the last run of a batch pipeline succeeded, in Unix seconds.",
		}, []string{"pipeline"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.records, m.batch, m.endToEnd, m.lag, m.deadLetter, m.state, m.inFlight,
			m.stateBytes, m.watermark, m.batchRuns, m.batchDuration, m.batchLastSuccess} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// forget removes a deleted pipeline's series.
func (m *metrics) forget(name string) {
	l := prometheus.Labels{"pipeline": name}
	m.records.DeletePartialMatch(l)
	m.batch.DeletePartialMatch(l)
	m.endToEnd.DeletePartialMatch(l)
	m.lag.DeletePartialMatch(l)
	m.deadLetter.DeletePartialMatch(l)
	m.state.DeletePartialMatch(l)
	m.inFlight.DeletePartialMatch(l)
	m.stateBytes.DeletePartialMatch(l)
	m.watermark.DeletePartialMatch(l)
	m.batchRuns.DeletePartialMatch(l)
	m.batchDuration.DeletePartialMatch(l)
	m.batchLastSuccess.DeletePartialMatch(l)
}

// setState sets the state gauge of a pipeline: one state 1, the rest 0.
func (m *metrics) setState(name, state string) {
	for _, s := range allStates() {
		v := 0.0
		if s == state {
			v = 1
		}
		m.state.WithLabelValues(name, s).Set(v)
	}
}
