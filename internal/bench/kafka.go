package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaProduceOptions configures KafkaProduce: a franz-go load generator
// of Producers clients. Zero values take the defaults in brackets, which
// configure it for throughput: a weak generator hides a slow broker.
type KafkaProduceOptions struct {
	KafkaTarget
	// Records, when above zero, is how many records each run produces in
	// all, instead of running for Duration.
	Records int64
	// Duration is how long each run produces [10s]. Records still
	// buffered when it ends are flushed and counted.
	Duration time.Duration
	// RecordBytes is each record's value size; records have no key and
	// values from a PRNG, incompressible [1024].
	RecordBytes int
	// Producers is the number of franz-go clients producing at once, each
	// from its own goroutine [4].
	Producers int
	// Acks is "all" (or -1), "leader" (or 1) or "none" (or 0) [all].
	// Below all, idempotent writes are off, as franz-go requires.
	Acks string
	// Linger is how long a partition's batch waits for more records
	// [5ms]; negative means none.
	Linger time.Duration
	// Compression is none, gzip, snappy, lz4 or zstd [none].
	Compression string
	// BatchBytes is the largest batch a client builds
	// (ProducerBatchMaxBytes) [1 MiB].
	BatchBytes int
	// BufferedRecords is how many records a client buffers before
	// producing blocks (MaxBufferedRecords) [16384].
	BufferedRecords int
	// Partitions is the partition count of each run's new topic [6].
	Partitions int
	// Rate, when above zero, is a constant load in records per second in
	// all, spread evenly over the producers. Each record's latency is
	// measured from the time it was meant to be sent, not from when the
	// generator got round to it, so that a stalled broker is charged for
	// every record it held up (no coordinated omission).
	Rate float64
	// FsyncBaseline makes every run also measure the raw sequential
	// write+fdatasync bandwidth in Dir (RawFsync, 1 MiB writes), half
	// just before the run and half just after, and report the produce
	// bandwidth as a ratio to it.
	FsyncBaseline bool
	// FsyncBaselineBytes is how much the baseline writes a run [256 MiB].
	FsyncBaselineBytes int64
	// Runs is the number of runs; medians are reported [3].
	Runs int
	// CPUProfile, if set, receives a CPU profile of this process over the
	// measured runs (not start-up); see ProfileLabel.
	CPUProfile io.Writer
	// Out receives the Markdown report [io.Discard].
	Out io.Writer
}

func (o *KafkaProduceOptions) setDefaults() error {
	if o.Records < 0 {
		return fmt.Errorf("records %d: want a positive count, or 0 to run for a duration", o.Records)
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.RecordBytes == 0 {
		o.RecordBytes = 1024
	}
	if o.RecordBytes < 0 || o.RecordBytes > 64<<20 {
		return fmt.Errorf("record bytes %d: want 1 to 64 MiB", o.RecordBytes)
	}
	if o.Producers <= 0 {
		o.Producers = 4
	}
	if o.Acks == "" {
		o.Acks = "all"
	}
	if _, err := parseAcks(o.Acks); err != nil {
		return err
	}
	if o.Linger == 0 {
		o.Linger = 5 * time.Millisecond
	}
	if o.Linger < 0 {
		o.Linger = 0
	}
	if o.Compression == "" {
		o.Compression = "none"
	}
	if _, err := parseCompression(o.Compression); err != nil {
		return err
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 1 << 20
	}
	if o.BatchBytes > 64<<20 {
		return fmt.Errorf("batch bytes %d: at most 64 MiB", o.BatchBytes)
	}
	if o.BufferedRecords <= 0 {
		o.BufferedRecords = 16384
	}
	if o.Partitions <= 0 {
		o.Partitions = 6
	}
	if o.Rate < 0 {
		return fmt.Errorf("rate %v: want records per second above 0, or 0 for as fast as possible", o.Rate)
	}
	if o.FsyncBaselineBytes <= 0 {
		o.FsyncBaselineBytes = 256 << 20
	}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return nil
}

func parseAcks(s string) (kgo.Acks, error) {
	switch strings.ToLower(s) {
	case "all", "-1":
		return kgo.AllISRAcks(), nil
	case "leader", "1":
		return kgo.LeaderAck(), nil
	case "none", "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, fmt.Errorf("acks %q: want all (-1), leader (1) or none (0)", s)
}

func parseCompression(s string) (kgo.CompressionCodec, error) {
	switch strings.ToLower(s) {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", s)
}

// KafkaRun is what one produce or consume run achieved.
type KafkaRun struct {
	Records int64
	Bytes   int64 // bytes of record values
	Elapsed time.Duration
	// P50, P99 and P999 are produce latencies, from the record's (intended)
	// send time to its promise; zero for consume runs.
	P50, P99, P999 time.Duration
	// RawFsync is the raw write+fdatasync bandwidth in bytes/s measured in
	// the same run, when asked for.
	RawFsync float64
}

// RecordsPerSec is the run's rate in records.
func (r KafkaRun) RecordsPerSec() float64 { return float64(r.Records) / r.Elapsed.Seconds() }

// MBPerSec is the run's rate of record values in MB (10^6 bytes) a second.
func (r KafkaRun) MBPerSec() float64 { return float64(r.Bytes) / 1e6 / r.Elapsed.Seconds() }

// FsyncRatio is the produce bandwidth over the raw fsync baseline, or 0
// without one.
func (r KafkaRun) FsyncRatio() float64 {
	if r.RawFsync <= 0 {
		return 0
	}
	return float64(r.Bytes) / r.Elapsed.Seconds() / r.RawFsync
}

// KafkaReport holds the runs of one Kafka benchmark.
type KafkaReport struct {
	Runs []KafkaRun
}

// Median returns the median of f over the runs.
func (r *KafkaReport) Median(f func(KafkaRun) float64) float64 {
	xs := make([]float64, len(r.Runs))
	for i, run := range r.Runs {
		xs[i] = f(run)
	}
	return Median(xs)
}

func (r *KafkaReport) medianDuration(f func(KafkaRun) time.Duration) time.Duration {
	return time.Duration(r.Median(func(run KafkaRun) float64 { return float64(f(run)) }))
}

// KafkaProduce produces to a new topic of o.Partitions partitions per run
// from o.Producers franz-go clients and prints a Markdown report of
// records/s, MB/s and latency percentiles, medians over o.Runs, to o.Out.
// It is a measurement, not a test: it fails only when producing does, or
// when the topic does not hold every acknowledged record.
func KafkaProduce(ctx context.Context, o KafkaProduceOptions) (*KafkaReport, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	var rep *KafkaReport
	err := withKafkaTarget(ctx, o.KafkaTarget, func(ctx context.Context, b *kafkaBroker) error {
		printKafkaHeader(o.Out, "sluice bench produce --kafka", b, o.Fsync.String())
		fmt.Fprintf(o.Out, "- generator: %s\n\n", o.describe())
		var err error
		rep, err = produceRuns(ctx, b, o, "bench-produce")
		if err != nil {
			return err
		}
		printProduceTable(o.Out, o, rep)
		return nil
	})
	return rep, err
}

// withKafkaTarget starts t, runs fn with the generator's profile label,
// and stops t.
func withKafkaTarget(ctx context.Context, t KafkaTarget, fn func(context.Context, *kafkaBroker) error) (err error) {
	b, err := startKafkaTarget(ctx, t)
	if err != nil {
		return err
	}
	defer func() {
		if serr := b.stop(); err == nil && serr != nil {
			err = fmt.Errorf("stop broker: %w", serr)
		}
	}()
	pprof.Do(ctx, pprof.Labels(ProfileLabel, ProfileLabelGenerator), func(ctx context.Context) {
		err = fn(ctx, b)
	})
	return err
}

// startProfile starts a CPU profile into w, if w is set; the caller calls
// the returned stop.
func startProfile(w io.Writer) (func(), error) {
	if w == nil {
		return func() {}, nil
	}
	if err := pprof.StartCPUProfile(w); err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return pprof.StopCPUProfile, nil
}

func produceRuns(ctx context.Context, b *kafkaBroker, o KafkaProduceOptions, topicPrefix string) (*KafkaReport, error) {
	pool := newValuePool(o.RecordBytes, o.BatchBytes, uint64(time.Now().UnixNano()))
	stopProfile, err := startProfile(o.CPUProfile)
	if err != nil {
		return nil, err
	}
	defer stopProfile()
	rep := &KafkaReport{}
	for i := 0; i < o.Runs; i++ {
		topic := fmt.Sprintf("%s-%d-%d", topicPrefix, time.Now().UnixNano(), i)
		// The baseline brackets the run, half before and half after, so
		// that it measures the disk as it was around the run (a shared
		// disk drifts, and whichever runs second tends to be favoured).
		var rawSeconds float64
		baseline := func(n int64) error {
			if !o.FsyncBaseline || n <= 0 {
				return nil
			}
			raw, err := RawFsync(b.dir, mib, n)
			if err != nil {
				return fmt.Errorf("raw fsync baseline: %w", err)
			}
			rawSeconds += float64(n) / raw
			return nil
		}
		half := o.FsyncBaselineBytes / 2 / int64(mib) * int64(mib)
		if err := baseline(half); err != nil {
			return nil, err
		}
		run, err := produceOnce(ctx, b, o, topic, pool, true)
		if err != nil {
			return nil, err
		}
		if err := baseline(o.FsyncBaselineBytes - half); err != nil {
			return nil, err
		}
		if o.FsyncBaseline {
			run.RawFsync = float64(o.FsyncBaselineBytes) / rawSeconds
		}
		rep.Runs = append(rep.Runs, run)
		fmt.Fprintf(o.Out, "- run %d: %s\n", i+1, describeProduceRun(run))
	}
	return rep, nil
}

func describeProduceRun(r KafkaRun) string {
	s := fmt.Sprintf("%s records/s, %.1f MB/s, p50 %s, p99 %s, p99.9 %s", groupThousands(r.RecordsPerSec()), r.MBPerSec(),
		roundLatency(r.P50), roundLatency(r.P99), roundLatency(r.P999))
	if r.RawFsync > 0 {
		s += fmt.Sprintf("; raw write+fdatasync %.1f MB/s; produce / raw %.2f", r.RawFsync/1e6, r.FsyncRatio())
	}
	return s
}

func (o KafkaProduceOptions) describe() string {
	load := "as fast as the broker takes it"
	if o.Rate > 0 {
		load = fmt.Sprintf("constant rate %s records/s in all", groupThousands(o.Rate))
	}
	run := o.Duration.String()
	if o.Records > 0 {
		run = fmt.Sprintf("%s records", groupThousands(float64(o.Records)))
	}
	return fmt.Sprintf("franz-go %s, %d producer clients, acks=%s, linger %s, batches up to %d bytes, %d buffered records each, compression %s, %d-byte incompressible values without keys, %d partitions, %s, %s per run, %d runs",
		franzVersion(), o.Producers, o.Acks, o.Linger, o.BatchBytes, o.BufferedRecords, o.Compression, o.RecordBytes, o.Partitions, load, run, o.Runs)
}

// kafkaClientOpts are the options every client of the generator shares.
func kafkaClientOpts(b *kafkaBroker) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(b.brokers...),
		kgo.ClientID("sluice-bench"),
		kgo.RetryTimeout(30 * time.Second),
		// Requests of up to BatchBytes from several partitions, and fetches
		// of up to 50 MiB, must fit.
		kgo.BrokerMaxWriteBytes(256 << 20),
		kgo.BrokerMaxReadBytes(256 << 20),
	}
}

// createBenchTopic creates topic with partitions partitions, room for
// batches of batchBytes, and the broker's default replication.
func createBenchTopic(ctx context.Context, adm *kadm.Client, topic string, partitions, batchBytes int) error {
	maxMsg := strconv.Itoa(max(batchBytes+64<<10, 1<<20+12))
	resp, err := adm.CreateTopic(ctx, int32(partitions), -1, map[string]*string{"max.message.bytes": &maxMsg}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

func deleteBenchTopic(ctx context.Context, adm *kadm.Client, topic string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	resp, err := adm.DeleteTopic(ctx, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("delete topic %s: %w", topic, err)
	}
	return nil
}

// topicRecords returns the records topic holds and its end offsets.
func topicRecords(ctx context.Context, adm *kadm.Client, topic string) (int64, map[int32]int64, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, nil, fmt.Errorf("list end offsets: %w", err)
	}
	if err := errors.Join(starts.Error(), ends.Error()); err != nil {
		return 0, nil, fmt.Errorf("list offsets: %w", err)
	}
	var n int64
	end := map[int32]int64{}
	ends.Each(func(lo kadm.ListedOffset) {
		s, _ := starts.Lookup(lo.Topic, lo.Partition)
		n += lo.Offset - s.Offset
		end[lo.Partition] = lo.Offset
	})
	return n, end, nil
}

// producer is one client of a produce run and what its promises saw.
// Promises of one client run serially, so only acked and bytes, read
// while the run goes on, need to be atomic.
type producer struct {
	cl    *kgo.Client
	hist  latencyHist
	acked atomic.Int64
	bytes atomic.Int64
	// free recycles records once their promise has run, so that the
	// generator does not allocate one per record.
	free sync.Pool
}

// clockEvery is how many records share one reading of the clock on the
// producing side: reading it for every record took a seventh of the
// generator's CPU on a 2-core VM, and a record is stamped at most
// clockEvery records' worth of producing (microseconds) early or late,
// against latencies of milliseconds.
const clockEvery = 16

// paceQuantum is the shortest sleep of a constant-rate producer. At
// hundreds of thousands of records a second a producer is a few
// microseconds ahead of its schedule after almost every record; sleeping
// each time meant about 75,000 wake-ups a second per producer, and the
// timers and goroutine switches took a third of the generator's CPU on a
// 2-core VM, CPU the broker beside it then lacked (docs/benchmarks.md).
// Sleeping in quanta sends bursts of a few hundred records instead; the
// records of a burst count their latency from their intended times, so
// the quantum adds to the measured latency (up to its length), never
// hides any.
const paceQuantum = 250 * time.Microsecond

// clockTick is the resolution of the promises' clock: a record's latency
// is off by at most half of it, against latencies of milliseconds.
const clockTick = 200 * time.Microsecond

// produceOnce makes one produce run on a new topic. With cleanup it
// deletes the topic after checking that it holds every acknowledged
// record; without, it leaves it for a consume run.
func produceOnce(ctx context.Context, b *kafkaBroker, o KafkaProduceOptions, topic string, pool *valuePool, cleanup bool) (KafkaRun, error) {
	acks, _ := parseAcks(o.Acks)
	codec, _ := parseCompression(o.Compression)
	popts := append(kafkaClientOpts(b),
		kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(acks),
		kgo.ProducerLinger(o.Linger),
		kgo.ProducerBatchMaxBytes(int32(o.BatchBytes)),
		kgo.MaxBufferedRecords(o.BufferedRecords),
		kgo.ProducerBatchCompression(codec),
		kgo.RecordRetries(10),
	)
	if acks != kgo.AllISRAcks() {
		popts = append(popts, kgo.DisableIdempotentWrite())
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prods := make([]*producer, o.Producers)
	for i := range prods {
		cl, err := kgo.NewClient(popts...)
		if err != nil {
			return KafkaRun{}, fmt.Errorf("kafka client: %w", err)
		}
		defer cl.Close()
		prods[i] = &producer{cl: cl}
	}
	adm := kadm.NewClient(prods[0].cl)
	if err := createBenchTopic(ctx, adm, topic, o.Partitions, o.BatchBytes); err != nil {
		return KafkaRun{}, err
	}
	// Connect, load metadata and get a producer ID before the clock
	// starts, with one record per client.
	var warm int64
	for i, p := range prods {
		cur := pool.cursor(i, len(prods))
		if err := p.cl.ProduceSync(ctx, &kgo.Record{Value: cur.next()}).FirstErr(); err != nil {
			return KafkaRun{}, fmt.Errorf("produce to %s: %w", topic, err)
		}
		warm++
	}

	var (
		once     sync.Once
		firstErr error
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	perProducer := func(i int) int64 {
		if o.Records <= 0 {
			return -1
		}
		n := o.Records / int64(o.Producers)
		if int64(i) < o.Records%int64(o.Producers) {
			n++
		}
		return n
	}
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(o.Duration)
	// The promises read a coarse clock: reading the real one for every
	// record costs too much CPU (see clockEvery), and reading it every
	// clockEvery promises would stamp the first ones of a response with
	// the time of the response before, hiding part of their latency.
	var clock atomic.Int64 // time since start, every clockTick
	clockDone := make(chan struct{})
	defer close(clockDone)
	go func() {
		t := time.NewTicker(clockTick)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				clock.Store(int64(time.Since(start)))
			case <-clockDone:
				return
			}
		}
	}()
	for i, p := range prods {
		cur := pool.cursor(i, len(prods))
		n := perProducer(i)
		var interval float64 // ns between records at a constant rate
		if o.Rate > 0 {
			interval = 1e9 * float64(o.Producers) / o.Rate
		}
		promise := func(r *kgo.Record, err error) {
			doneAt := start.Add(time.Duration(clock.Load()) + clockTick/2)
			if err != nil {
				if ctx.Err() == nil {
					fail(fmt.Errorf("produce to %s: %w", topic, err))
				}
			} else {
				p.hist.record(doneAt.Sub(r.Timestamp))
				p.acked.Add(1)
				p.bytes.Add(int64(len(r.Value)))
			}
			*r = kgo.Record{}
			p.free.Put(r)
		}
		wg.Go(func() {
			var now time.Time
			// One timer for all the waits: at a constant rate a producer
			// waits tens of thousands of times a second.
			wake := time.NewTimer(time.Hour)
			defer wake.Stop()
			for k := int64(0); n < 0 || k < n; k++ {
				if k%clockEvery == 0 {
					now = time.Now()
				}
				t := now
				if interval > 0 {
					t = start.Add(time.Duration(float64(k) * interval))
					if n < 0 && !t.Before(deadline) {
						return
					}
					if t.After(now) {
						now = time.Now()
					}
					if d := t.Sub(now); d > 0 {
						// Sleep at least paceQuantum, and send the records
						// whose time came meanwhile at once, stamped with
						// their intended times (as after any oversleep).
						wake.Reset(max(d, paceQuantum))
						select {
						case <-wake.C:
						case <-ctx.Done():
							return
						}
						now = time.Now()
					}
				} else if n < 0 && !now.Before(deadline) {
					return
				}
				if ctx.Err() != nil {
					return
				}
				r, _ := p.free.Get().(*kgo.Record)
				if r == nil {
					r = new(kgo.Record)
				}
				r.Value, r.Timestamp = cur.next(), t
				p.cl.Produce(ctx, r, promise)
			}
		})
	}
	wg.Wait()
	for _, p := range prods {
		if err := p.cl.Flush(ctx); err != nil && firstErr == nil {
			fail(fmt.Errorf("flush: %w", err))
		}
	}
	elapsed := time.Since(start)
	if firstErr != nil {
		return KafkaRun{}, firstErr
	}
	var hist latencyHist
	run := KafkaRun{Elapsed: elapsed}
	for _, p := range prods {
		hist.merge(&p.hist)
		run.Records += p.acked.Load()
		run.Bytes += p.bytes.Load()
	}
	run.P50, run.P99, run.P999 = hist.percentile(0.5), hist.percentile(0.99), hist.percentile(0.999)
	if o.Records > 0 && run.Records != o.Records {
		return KafkaRun{}, fmt.Errorf("%d records acknowledged, want %d", run.Records, o.Records)
	}
	if acks != kgo.NoAck() {
		// Every acknowledged record must be in the topic.
		held, _, err := topicRecords(ctx, adm, topic)
		if err != nil {
			return KafkaRun{}, err
		}
		if held != run.Records+warm {
			return KafkaRun{}, fmt.Errorf("topic %s holds %d records; %d were acknowledged", topic, held, run.Records+warm)
		}
	}
	if cleanup {
		if err := deleteBenchTopic(ctx, adm, topic); err != nil {
			return KafkaRun{}, err
		}
	}
	return run, nil
}

func printKafkaHeader(w io.Writer, title string, b *kafkaBroker, fsync string) {
	printTitle(w, title)
	fmt.Fprintf(w, "- broker: %s\n", b.desc)
	if !strings.Contains(b.desc, "fsync=") {
		fmt.Fprintf(w, "- fsync policy reported for it: %s\n", fsync)
	}
	fmt.Fprintf(w, "- scratch directory (raw fsync baseline): %s\n", b.dir)
}

func printProduceTable(w io.Writer, o KafkaProduceOptions, rep *KafkaReport) {
	fmt.Fprintf(w, "\n| produce, medians over %d runs | records/s | MB/s (values) | p50 | p99 | p99.9 |\n|---|---|---|---|---|---|\n", len(rep.Runs))
	fmt.Fprintf(w, "| %d-byte records, %d producers, acks=%s | %s | %.1f | %s | %s | %s |\n", o.RecordBytes, o.Producers, o.Acks,
		groupThousands(rep.Median(KafkaRun.RecordsPerSec)), rep.Median(KafkaRun.MBPerSec),
		roundLatency(rep.medianDuration(func(r KafkaRun) time.Duration { return r.P50 })),
		roundLatency(rep.medianDuration(func(r KafkaRun) time.Duration { return r.P99 })),
		roundLatency(rep.medianDuration(func(r KafkaRun) time.Duration { return r.P999 })))
	if o.FsyncBaseline {
		fmt.Fprintf(w, "| raw sequential 1 MiB write+fdatasync, one file | | %.1f | | | |\n", rep.Median(func(r KafkaRun) float64 { return r.RawFsync })/1e6)
		fmt.Fprintf(w, "\n**produce / raw fsync: %.2f** (median of the runs' ratios)\n", rep.Median(KafkaRun.FsyncRatio))
	}
}

// franzVersion is the franz-go version built in, for the report.
func franzVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/twmb/franz-go" {
				return d.Version
			}
		}
	}
	return "(unknown version)"
}

// printTitle writes a report's title and the machine it was measured on.
func printTitle(w io.Writer, title string) {
	host, _ := os.Hostname()
	fmt.Fprintf(w, "# %s\n\nhost %s, %s/%s, %d CPUs, %s, %s\n\n", title, host, runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format(time.RFC3339))
}
