package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// KafkaSuiteOptions configures KafkaSuite. Zero values take the defaults
// in brackets.
type KafkaSuiteOptions struct {
	KafkaTarget
	// Produce holds the generator settings every phase shares (producers,
	// acks, linger, compression, batch bytes, buffered records,
	// partitions, duration or records); its RecordBytes, Rate,
	// FsyncBaseline, Runs, CPUProfile and Out are set by each phase.
	Produce KafkaProduceOptions
	// LargeRecordBytes is the record size of the bandwidth phase, which
	// is compared with the raw fsync baseline [1024].
	LargeRecordBytes int
	// SmallRecordBytes is the record size of the records/s phases:
	// produce, consume and constant rate [100].
	SmallRecordBytes int
	// Consume holds the consume phase's settings; its Fill takes the
	// generator settings of Produce, with Consume.Fill.Records records
	// [10,000,000] of SmallRecordBytes.
	Consume KafkaConsumeOptions
	// RateFraction is the constant load of the latency phase as a
	// fraction of the median small-record produce rate measured in the
	// same run [0.5].
	RateFraction float64
	// Runs is the number of runs of every phase [3].
	Runs int
	// Out receives the Markdown report [io.Discard].
	Out io.Writer
}

func (o *KafkaSuiteOptions) setDefaults() error {
	if o.LargeRecordBytes <= 0 {
		o.LargeRecordBytes = 1024
	}
	if o.SmallRecordBytes <= 0 {
		o.SmallRecordBytes = 100
	}
	if o.RateFraction == 0 {
		o.RateFraction = 0.5
	}
	if o.RateFraction < 0 || o.RateFraction > 1 {
		return fmt.Errorf("rate fraction %v: want a fraction of the maximum rate in (0, 1]", o.RateFraction)
	}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	o.Produce.KafkaTarget, o.Produce.Runs, o.Produce.Out = o.KafkaTarget, o.Runs, o.Out
	o.Produce.Rate, o.Produce.FsyncBaseline, o.Produce.CPUProfile = 0, false, nil
	o.Produce.RecordBytes = o.SmallRecordBytes
	if err := o.Produce.setDefaults(); err != nil {
		return err
	}
	records := o.Consume.Fill.Records
	o.Consume.Fill = o.Produce
	o.Consume.Fill.Records = records
	o.Consume.KafkaTarget, o.Consume.Runs, o.Consume.Out, o.Consume.CPUProfile = o.KafkaTarget, o.Runs, o.Out, nil
	return o.Consume.setDefaults()
}

// KafkaSuiteReport holds the phases of KafkaSuite.
type KafkaSuiteReport struct {
	Large, Small, Consume, Rate *KafkaReport
	// TargetRate is the constant load of the latency phase, records/s.
	TargetRate float64
}

// KafkaSuite runs, on one broker: large-record produce with the raw fsync
// baseline in the same runs; small-record produce; small-record consume
// of a pre-filled topic; and a constant small-record load at
// o.RateFraction of the measured maximum, for its latency. It prints a
// Markdown report to o.Out, ending with a summary of the four figures.
func KafkaSuite(ctx context.Context, o KafkaSuiteOptions) (*KafkaSuiteReport, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	rep := &KafkaSuiteReport{}
	err := withKafkaTarget(ctx, o.KafkaTarget, func(ctx context.Context, b *kafkaBroker) error {
		w := o.Out
		printKafkaHeader(w, "sluice bench kafka", b, o.Fsync.String())
		var err error

		large := o.Produce
		large.RecordBytes, large.FsyncBaseline = o.LargeRecordBytes, true
		fmt.Fprintf(w, "\n## Produce %d-byte records, with the raw fsync baseline\n\n- generator: %s\n- baseline: %d MiB written sequentially to one file in the scratch directory, 1 MiB a write, each followed by fdatasync, half before and half after each run\n\n",
			large.RecordBytes, large.describe(), large.FsyncBaselineBytes>>20)
		if rep.Large, err = produceRuns(ctx, b, large, "bench-large"); err != nil {
			return fmt.Errorf("produce %d-byte records: %w", large.RecordBytes, err)
		}
		printProduceTable(w, large, rep.Large)

		small := o.Produce
		fmt.Fprintf(w, "\n## Produce %d-byte records\n\n- generator: %s\n\n", small.RecordBytes, small.describe())
		if rep.Small, err = produceRuns(ctx, b, small, "bench-small"); err != nil {
			return fmt.Errorf("produce %d-byte records: %w", small.RecordBytes, err)
		}
		printProduceTable(w, small, rep.Small)

		fmt.Fprintf(w, "\n## Consume %d-byte records\n\n- fill: %s\n- consumers: %s\n\n", o.Consume.Fill.RecordBytes, o.Consume.Fill.describe(), o.Consume.describe())
		if rep.Consume, err = consumeRuns(ctx, b, o.Consume, "bench-consume"); err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		printConsumeTable(w, o.Consume, rep.Consume)

		rate := o.Produce
		rep.TargetRate = o.RateFraction * rep.Small.Median(KafkaRun.RecordsPerSec)
		rate.Rate = max(rep.TargetRate, 1)
		fmt.Fprintf(w, "\n## Constant rate: %.0f %% of the %d-byte maximum above\n\n- generator: %s\n\n", o.RateFraction*100, rate.RecordBytes, rate.describe())
		if rep.Rate, err = produceRuns(ctx, b, rate, "bench-rate"); err != nil {
			return fmt.Errorf("constant-rate produce: %w", err)
		}
		printProduceTable(w, rate, rep.Rate)

		printSuiteSummary(w, o, rep)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rep, nil
}

func perRun(r *KafkaReport, f func(KafkaRun) string) string {
	s := make([]string, len(r.Runs))
	for i, run := range r.Runs {
		s[i] = f(run)
	}
	return strings.Join(s, ", ")
}

func printSuiteSummary(w io.Writer, o KafkaSuiteOptions, rep *KafkaSuiteReport) {
	mbs := func(r KafkaRun) string { return fmt.Sprintf("%.1f", r.MBPerSec()) }
	recs := func(r KafkaRun) string { return groupThousands(r.RecordsPerSec()) }
	fmt.Fprintf(w, "\n## Summary\n\n| figure (medians over %d runs) | median | per run |\n|---|---|---|\n", o.Runs)
	fmt.Fprintf(w, "| produce %d-byte records, acks=%s, MB/s | %.1f | %s |\n", o.LargeRecordBytes, o.Produce.Acks,
		rep.Large.Median(KafkaRun.MBPerSec), perRun(rep.Large, mbs))
	fmt.Fprintf(w, "| raw sequential write+fdatasync, MB/s | %.1f | %s |\n", rep.Large.Median(func(r KafkaRun) float64 { return r.RawFsync })/1e6,
		perRun(rep.Large, func(r KafkaRun) string { return fmt.Sprintf("%.1f", r.RawFsync/1e6) }))
	fmt.Fprintf(w, "| **produce / raw fsync** | **%.2f** | %s |\n", rep.Large.Median(KafkaRun.FsyncRatio),
		perRun(rep.Large, func(r KafkaRun) string { return fmt.Sprintf("%.2f", r.FsyncRatio()) }))
	fmt.Fprintf(w, "| **produce %d-byte records, acks=%s, records/s** | **%s** | %s |\n", o.SmallRecordBytes, o.Produce.Acks,
		groupThousands(rep.Small.Median(KafkaRun.RecordsPerSec)), perRun(rep.Small, recs))
	fmt.Fprintf(w, "| **consume %d-byte records, records/s** | **%s** | %s |\n", o.SmallRecordBytes,
		groupThousands(rep.Consume.Median(KafkaRun.RecordsPerSec)), perRun(rep.Consume, recs))
	fmt.Fprintf(w, "| **p99 produce latency at %s records/s** (%.0f %% of the maximum) | **%s** | %s |\n", groupThousands(rep.TargetRate), o.RateFraction*100,
		roundLatency(rep.Rate.medianDuration(func(r KafkaRun) time.Duration { return r.P99 })),
		perRun(rep.Rate, func(r KafkaRun) string { return roundLatency(r.P99) }))
	fmt.Fprintf(w, "| achieved rate of the constant-rate runs, records/s | %s | %s |\n",
		groupThousands(rep.Rate.Median(KafkaRun.RecordsPerSec)), perRun(rep.Rate, recs))
}
