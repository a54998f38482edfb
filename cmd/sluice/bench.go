package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/sluice-dev/sluice/internal/bench"
	"github.com/sluice-dev/sluice/internal/logstore"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Sluice on this machine, against baselines measured in the same run",
	}
	cmd.AddCommand(newBenchLogCommand(), newBenchLogFillCommand(), newBenchProduceCommand(), newBenchConsumeCommand(),
		newBenchKafkaCommand(), newBenchPipelineCommand(), newBenchWindowCommand())
	return cmd
}

func newBenchWindowCommand() *cobra.Command {
	var o bench.WindowOptions
	cmd := &cobra.Command{
		Use:   "window",
		Short: "Benchmark windowed aggregation: the state, the processor, and topic to PostgreSQL",
		Long: `Benchmark windowed aggregation: tumbling windows of a minute, count() and
sum() by key over --keys keys. Each of --runs runs times --events events
added to the window state alone and through the window processor's
expressions on parsed records, both on one core (GOMAXPROCS=1), and with
--postgres, --e2e-events JSON events from a topic of an embedded log
through a windowed pipeline into PostgreSQL with upsert (a table
sluice_bench_window, created and dropped). It reports events/s, medians,
and the state's bytes per key. Nothing passes or fails on speed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Out = cmd.OutOrStdout()
			return bench.Window(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DSN, "postgres", "", "PostgreSQL DSN of the end-to-end phase (postgres://user@host:port/db)")
	f.IntVar(&o.Keys, "keys", 10_000, "group keys")
	f.IntVar(&o.Events, "events", 10_000_000, "events of the in-process phases")
	f.IntVar(&o.E2EEvents, "e2e-events", 1_000_000, "events of the end-to-end phase")
	f.IntVar(&o.Runs, "runs", 3, "runs; medians are reported")
	f.StringVar(&o.Dir, "dir", "", "scratch directory (default: a new temporary directory)")
	return cmd
}

func newBenchPipelineCommand() *cobra.Command {
	var o bench.PipelineOptions
	var cpuprofile string
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Benchmark pipelines: topic to PostgreSQL (against a raw COPY) and to Parquet",
		Long: `Benchmark pipelines. Each of --runs runs fills a topic of an embedded log
with --records JSON records of about --record-bytes bytes, then times, in
turn: a raw pgx CopyFrom of the same rows, already decoded, in batches of
--batch-records (the ceiling for a COPY-based sink); the same records
through a pipeline into PostgreSQL in insert mode, at-least-once and then
exactly-once; and, with --parquet, through a pipeline into Parquet files. A
pipeline phase ends when its committed positions reach the end of the topic.
The report gives records/s and the peak heap of each phase, and the ratios
to the raw COPY. --postgres names the database (tables sluice_bench_* are
created and dropped); without it only Parquet is measured. Nothing passes or
fails on speed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.DSN == "" && !o.Parquet {
				return fmt.Errorf("want --postgres DSN, --parquet or both")
			}
			o.Out = cmd.OutOrStdout()
			return withCPUProfile(cpuprofile, &o.CPUProfile, func() error {
				_, err := bench.Pipeline(cmd.Context(), o)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of this process over the runs to this file")
	f.StringVar(&o.DSN, "postgres", "", "PostgreSQL DSN to write to (postgres://user@host:port/db)")
	f.BoolVar(&o.Parquet, "parquet", false, "also measure a pipeline into Parquet files in the scratch directory")
	f.IntVar(&o.Records, "records", 1_000_000, "records in the source topic")
	f.IntVar(&o.RecordBytes, "record-bytes", 200, "bytes of each JSON record")
	f.IntVar(&o.Partitions, "partitions", 4, "partitions of the source topic")
	f.IntVar(&o.BatchRecords, "batch-records", 5000, "records per sink batch (the pipelines' batch.maxRecords)")
	f.IntVar(&o.Runs, "runs", 3, "runs; medians are reported")
	f.StringVar(&o.Dir, "dir", "", "scratch directory (default: a new temporary directory)")
	return cmd
}

func newBenchLogCommand() *cobra.Command {
	var o bench.SuiteOptions
	var dir string
	var fsyncMiB, inProcMiB, reopenGiB int64
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Benchmark the embedded log: durable appends vs raw fdatasync, in-process appends and reads, reopen after SIGKILL",
		Long: `Benchmark the embedded log. Every figure is a median over --runs runs; durable
append bandwidth is reported as a ratio to the raw sequential write+fdatasync
bandwidth of the same disk, measured in the same run. The reopen test fills
--reopen-gib GiB from a child process, SIGKILLs it mid-write and times the
next open. Output is Markdown, as recorded in docs/benchmarks.md.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				d, err := os.MkdirTemp("", "sluice-bench-*")
				if err != nil {
					return err
				}
				defer os.RemoveAll(d)
				dir = d
			}
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			o.Dir = dir
			o.FsyncBytes = fsyncMiB << 20
			o.InProcessBytes = inProcMiB << 20
			o.ReopenBytes = reopenGiB << 30
			o.FillCommand = []string{exe, "bench", "log-fill"}
			o.Out = cmd.OutOrStdout()
			return bench.Suite(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "scratch directory on the disk to measure (default: a new temporary directory)")
	f.IntVar(&o.Runs, "runs", 5, "runs per measurement")
	f.Int64Var(&fsyncMiB, "fsync-mib", 64, "MiB written per durable-append run (raw and log each)")
	f.Int64Var(&inProcMiB, "inproc-mib", 1024, "MiB written per in-process append run")
	f.Int64Var(&reopenGiB, "reopen-gib", 10, "GiB filled before the SIGKILL of the reopen test (0 skips it)")
	return cmd
}

// newBenchLogFillCommand is the child process of the reopen test.
func newBenchLogFillCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "log-fill DIR BYTES",
		Hidden: true,
		Args:   cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil {
				return fmt.Errorf("bytes: %w", err)
			}
			return bench.Fill(cmd.Context(), args[0], n, cmd.OutOrStdout())
		},
	}
}

func newBenchProduceCommand() *cobra.Command {
	var o bench.HTTPProduceOptions
	var k bench.KafkaProduceOptions
	var useHTTP, useKafka bool
	var fsync, brokers, cpuprofile string
	var inProcess bool
	var baselineMiB int64
	cmd := &cobra.Command{
		Use:   "produce --http | --kafka",
		Short: "Benchmark produce over the HTTP API or the Kafka protocol",
		Long: `Benchmark produce.

With --http: --connections keep-alive connections each send pre-built JSON
requests of --records-per-request records with --value-bytes-byte JSON
string values, one request at a time, for --duration (or --requests
requests in all). The server is started in this process on 127.0.0.1 in a
scratch directory with --fsync, unless --server names one. In the same
run, the same records are appended in process (framed with the batch
encoder and appended through the log's produce call, by as many writers,
over as many partitions) as a baseline. Each of --runs rounds makes both
runs on new topics, alternating which goes first; the report gives the
medians of records/s, MB/s of values, p50 and p99 request latency for
both, and of the ratio of the HTTP rate to the in-process one.

With --kafka: --producers franz-go clients produce --record-bytes-byte
incompressible values without keys to a new topic of --partitions
partitions, for --duration (or --records records in all), as fast as the
broker takes them or at a constant --rate (latency then counts from each
record's intended send time). The broker is sluice serve (this binary) in
a process of its own over a scratch directory with --fsync (in this
process with --in-process), unless --brokers names one. --fsync-baseline also measures, in the same runs, the
raw write+fdatasync bandwidth of the scratch directory's disk and reports
the ratio. The report gives records/s, MB/s of values and p50, p99 and
p99.9 produce latency, per run and as medians over --runs.

Output is Markdown, as recorded in docs/benchmarks.md. Nothing passes or
fails on speed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if useHTTP == useKafka {
				return fmt.Errorf("want one of --http and --kafka")
			}
			pol, err := logstore.ParseSyncPolicy(fsync)
			if err != nil {
				return fmt.Errorf("--fsync: %w", err)
			}
			if useHTTP {
				if err := onlyWith(cmd, "--kafka", "brokers", "records", "record-bytes", "producers", "acks", "linger",
					"compression", "batch-bytes", "buffered-records", "rate", "fsync-baseline", "fsync-baseline-mib", "cpuprofile"); err != nil {
					return err
				}
				o.Fsync = pol
				o.Partitions, o.Duration, o.Runs = k.Partitions, k.Duration, k.Runs
				o.Out = cmd.OutOrStdout()
				_, err = bench.HTTPProduce(cmd.Context(), o)
				return err
			}
			if err := onlyWith(cmd, "--http", "server", "connections", "records-per-request", "value-bytes", "requests"); err != nil {
				return err
			}
			k.Dir, k.Fsync, k.Brokers = o.Dir, pol, splitBrokers(brokers)
			if k.Exec, err = benchExec(inProcess, k.Brokers); err != nil {
				return err
			}
			k.FsyncBaselineBytes = baselineMiB << 20
			k.Out = cmd.OutOrStdout()
			return withCPUProfile(cpuprofile, &k.CPUProfile, func() error {
				_, err := bench.KafkaProduce(cmd.Context(), k)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&useHTTP, "http", false, "produce over the HTTP API (POST /v1/topics/{topic}/records)")
	f.BoolVar(&useKafka, "kafka", false, "produce over the Kafka protocol with franz-go clients")
	f.StringVar(&o.Server, "server", "", "--http: base URL of a running server to load (default: start one in this process)")
	f.StringVar(&o.Dir, "dir", "", "scratch directory for the data (default: a new temporary directory)")
	f.StringVar(&fsync, "fsync", "always", "fsync policy of the embedded server (and of the in-process run): always, never or interval:<duration>")
	f.IntVar(&o.Connections, "connections", 8, "--http: concurrent HTTP connections (and in-process writers)")
	f.IntVar(&o.RecordsPerRequest, "records-per-request", 500, "--http: records per request")
	f.IntVar(&o.ValueBytes, "value-bytes", 200, "--http: bytes of each record's value, a JSON string (quotes included)")
	f.IntVar(&o.Requests, "requests", 0, "--http: requests per run in all, instead of --duration")
	f.IntVar(&k.Partitions, "partitions", 0, "partitions of the benchmark topic (default 4 with --http, 6 with --kafka)")
	f.DurationVar(&k.Duration, "duration", 10*time.Second, "how long each run lasts")
	f.IntVar(&k.Runs, "runs", 3, "runs (with --http, rounds of both runs, alternating which goes first); medians are reported")
	kafkaTargetFlags(f, &brokers, &inProcess)
	kafkaGeneratorFlags(f, &k, 1024)
	f.Int64Var(&k.Records, "records", 0, "--kafka: records per run in all, instead of --duration")
	f.Float64Var(&k.Rate, "rate", 0, "--kafka: constant load in records/s in all (default: as fast as possible)")
	f.BoolVar(&k.FsyncBaseline, "fsync-baseline", false, "--kafka: also measure raw write+fdatasync bandwidth in --dir in each run and report the ratio")
	f.Int64Var(&baselineMiB, "fsync-baseline-mib", 256, "--kafka: MiB the raw fsync baseline writes a run")
	f.StringVar(&cpuprofile, "cpuprofile", "", "--kafka: write a CPU profile of this process over the measured runs to this file")
	return cmd
}

func newBenchConsumeCommand() *cobra.Command {
	var o bench.KafkaConsumeOptions
	var useKafka bool
	var fsync, brokers, cpuprofile string
	var inProcess bool
	cmd := &cobra.Command{
		Use:   "consume --kafka",
		Short: "Benchmark consuming over the Kafka protocol",
		Long: `Benchmark consuming over the Kafka protocol: a new topic of --partitions
partitions is filled with --records records of --record-bytes incompressible
bytes by the produce generator (same flags as bench produce --kafka), then
read whole from its start by --consumers franz-go clients, the partitions
assigned to them round-robin without a group: once untimed, which brings
the topic into the page cache when it fits in memory, then --runs times.
The broker is sluice serve (this binary) in a process of its own over a
scratch directory with --fsync (in this process with --in-process),
unless --brokers names one. The report gives records/s and MB/s
of values, per run and as medians. Nothing passes or fails on speed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !useKafka {
				return fmt.Errorf("want --kafka: consuming over the Kafka protocol is the only transport measured so far")
			}
			pol, err := logstore.ParseSyncPolicy(fsync)
			if err != nil {
				return fmt.Errorf("--fsync: %w", err)
			}
			o.Fsync, o.Brokers = pol, splitBrokers(brokers)
			if o.Exec, err = benchExec(inProcess, o.Brokers); err != nil {
				return err
			}
			o.Out = cmd.OutOrStdout()
			return withCPUProfile(cpuprofile, &o.CPUProfile, func() error {
				_, err := bench.KafkaConsume(cmd.Context(), o)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&useKafka, "kafka", false, "consume over the Kafka protocol with franz-go clients")
	f.StringVar(&o.Dir, "dir", "", "scratch directory for the data (default: a new temporary directory)")
	f.StringVar(&fsync, "fsync", "always", "fsync policy of the embedded server: always, never or interval:<duration>")
	kafkaTargetFlags(f, &brokers, &inProcess)
	kafkaGeneratorFlags(f, &o.Fill, 100)
	f.Int64Var(&o.Fill.Records, "records", 10_000_000, "records the topic is filled with")
	f.IntVar(&o.Fill.Partitions, "partitions", 6, "partitions of the benchmark topic")
	f.IntVar(&o.Consumers, "consumers", 3, "franz-go clients consuming at once")
	f.IntVar(&o.FetchMaxBytes, "fetch-max-bytes", 50<<20, "largest fetch response a client asks for")
	f.IntVar(&o.FetchMaxPartitionBytes, "fetch-max-partition-bytes", 8<<20, "largest part of a fetch response one partition may take")
	f.IntVar(&o.Runs, "runs", 3, "runs over the filled topic; medians are reported")
	f.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of this process over the consume runs (not the fill) to this file")
	return cmd
}

func newBenchKafkaCommand() *cobra.Command {
	var o bench.KafkaSuiteOptions
	var fsync, brokers string
	var inProcess bool
	var baselineMiB int64
	cmd := &cobra.Command{
		Use:   "kafka",
		Short: "Benchmark the Kafka listener: the four figures of docs/benchmarks.md in one run",
		Long: `Benchmark the Kafka listener on one broker, in one run:

 1. produce --large-record-bytes records, with the raw write+fdatasync
    bandwidth of the scratch directory's disk measured in the same runs,
    and the ratio;
 2. produce --small-record-bytes records: records/s;
 3. consume a topic of --consume-records such records: records/s;
 4. produce such records at a constant --rate-fraction of the median rate
    of 2, with latency from each record's intended send time: p99.

The generator flags are those of bench produce --kafka and apply to every
phase. The broker is sluice serve (this binary) in a process of its own
over a scratch directory with --fsync (in this process with --in-process),
unless --brokers names one. Output is
Markdown, as recorded in docs/benchmarks.md. Nothing passes or fails on
speed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pol, err := logstore.ParseSyncPolicy(fsync)
			if err != nil {
				return fmt.Errorf("--fsync: %w", err)
			}
			o.Fsync, o.Brokers = pol, splitBrokers(brokers)
			if o.Exec, err = benchExec(inProcess, o.Brokers); err != nil {
				return err
			}
			o.Produce.FsyncBaselineBytes = baselineMiB << 20
			o.Out = cmd.OutOrStdout()
			_, err = bench.KafkaSuite(cmd.Context(), o)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "scratch directory for the data and the fsync baseline (default: a new temporary directory)")
	f.StringVar(&fsync, "fsync", "always", "fsync policy of the embedded server: always, never or interval:<duration>")
	kafkaTargetFlags(f, &brokers, &inProcess)
	kafkaGeneratorFlags(f, &o.Produce, 0)
	f.IntVar(&o.Produce.Partitions, "partitions", 6, "partitions of the benchmark topics")
	f.DurationVar(&o.Produce.Duration, "duration", 10*time.Second, "how long each produce run lasts")
	f.Int64Var(&o.Produce.Records, "records", 0, "records per produce run in all, instead of --duration")
	f.IntVar(&o.LargeRecordBytes, "large-record-bytes", 1024, "record size of the bandwidth phase")
	f.IntVar(&o.SmallRecordBytes, "small-record-bytes", 100, "record size of the records/s phases")
	f.Int64Var(&o.Consume.Fill.Records, "consume-records", 10_000_000, "records the consume phase's topic is filled with")
	f.IntVar(&o.Consume.Consumers, "consumers", 3, "franz-go clients consuming at once")
	f.Float64Var(&o.RateFraction, "rate-fraction", 0.5, "constant load of the latency phase, as a fraction of the measured maximum")
	f.Int64Var(&baselineMiB, "fsync-baseline-mib", 256, "MiB the raw fsync baseline writes a run")
	f.IntVar(&o.Runs, "runs", 3, "runs of every phase; medians are reported")
	return cmd
}

func kafkaTargetFlags(f *pflag.FlagSet, brokers *string, inProcess *bool) {
	f.StringVar(brokers, "brokers", "", "host:port[,host:port...] of a running Sluice or Kafka to load (default: start sluice serve, this binary, in a process of its own)")
	f.BoolVar(inProcess, "in-process", false, "run the broker in this process instead, so that --cpuprofile covers it too (labelled sluice_bench=server)")
}

// benchExec is the binary the Kafka benchmarks run `serve` from: this
// one, found as it was invoked (so that a test binary standing in for
// sluice is found as sluice), or "" for a broker in this process.
func benchExec(inProcess bool, brokers []string) (string, error) {
	if inProcess || len(brokers) > 0 {
		return "", nil
	}
	if exe, err := exec.LookPath(os.Args[0]); err == nil {
		return filepath.Abs(exe)
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this binary to run the broker from (or pass --in-process): %w", err)
	}
	return exe, nil
}

// kafkaGeneratorFlags registers the produce generator's settings; a
// recordBytes of 0 leaves --record-bytes out.
func kafkaGeneratorFlags(f *pflag.FlagSet, o *bench.KafkaProduceOptions, recordBytes int) {
	if recordBytes > 0 {
		f.IntVar(&o.RecordBytes, "record-bytes", recordBytes, "bytes of each record's value (no key)")
	}
	f.IntVar(&o.Producers, "producers", 4, "franz-go clients producing at once")
	f.StringVar(&o.Acks, "acks", "all", "acks: all (-1), leader (1) or none (0)")
	f.DurationVar(&o.Linger, "linger", 5*time.Millisecond, "how long a partition's batch waits for more records")
	f.StringVar(&o.Compression, "compression", "none", "compression: none, gzip, snappy, lz4 or zstd")
	f.IntVar(&o.BatchBytes, "batch-bytes", 1<<20, "largest batch a client builds")
	f.IntVar(&o.BufferedRecords, "buffered-records", 16384, "records a client buffers before producing blocks")
}

func splitBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// onlyWith fails if any of the named flags was set: they apply only with
// the other transport.
func onlyWith(cmd *cobra.Command, other string, names ...string) error {
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			return fmt.Errorf("--%s applies only with %s", n, other)
		}
	}
	return nil
}

// withCPUProfile creates path, if set, points *w at it for fn, and closes
// it after.
func withCPUProfile(path string, w *io.Writer, fn func() error) error {
	if path == "" {
		return fn()
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--cpuprofile: %w", err)
	}
	*w = f
	err = fn()
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("--cpuprofile: %w", cerr)
	}
	return err
}
