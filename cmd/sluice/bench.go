package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/bench"
	"github.com/sluice-dev/sluice/internal/logstore"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Sluice on this machine, against baselines measured in the same run",
	}
	cmd.AddCommand(newBenchLogCommand(), newBenchLogFillCommand(), newBenchProduceCommand())
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
	var useHTTP bool
	var fsync string
	cmd := &cobra.Command{
		Use:   "produce --http",
		Short: "Benchmark produce over the HTTP API against in-process appends of the same records",
		Long: `Benchmark produce over the HTTP API: --connections keep-alive connections each
send pre-built JSON requests of --records-per-request records with
--value-bytes-byte JSON string values, one request at a time, for --duration
(or --requests requests in all). The server is started in this process on
127.0.0.1 in a scratch directory with --fsync, unless --server names one.

In the same run, the same records are appended in process (framed with the
batch encoder and appended through the log's produce call, by as many
writers, over as many partitions) as a baseline. Each of --runs rounds
makes both runs on new topics, alternating which goes first; the report
gives the medians of records/s, MB/s of values, p50 and p99 request
latency for both, and of the ratio of the HTTP rate to the in-process one. Output is Markdown, as
recorded in docs/benchmarks.md. Nothing passes or fails on speed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !useHTTP {
				return fmt.Errorf("want --http: produce over the HTTP API is the only transport measured so far")
			}
			pol, err := logstore.ParseSyncPolicy(fsync)
			if err != nil {
				return fmt.Errorf("--fsync: %w", err)
			}
			o.Fsync = pol
			o.Out = cmd.OutOrStdout()
			_, err = bench.HTTPProduce(cmd.Context(), o)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&useHTTP, "http", false, "produce over the HTTP API (POST /v1/topics/{topic}/records)")
	f.StringVar(&o.Server, "server", "", "base URL of a running server to load (default: start one in this process)")
	f.StringVar(&o.Dir, "dir", "", "scratch directory for the data (default: a new temporary directory)")
	f.StringVar(&fsync, "fsync", "always", "fsync policy of the embedded server and of the in-process run: always, never or interval:<duration>")
	f.IntVar(&o.Connections, "connections", 8, "concurrent HTTP connections (and in-process writers)")
	f.IntVar(&o.RecordsPerRequest, "records-per-request", 500, "records per request")
	f.IntVar(&o.ValueBytes, "value-bytes", 200, "bytes of each record's value, a JSON string (quotes included)")
	f.IntVar(&o.Partitions, "partitions", 4, "partitions of the benchmark topic")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long each run (HTTP, in process) lasts")
	f.IntVar(&o.Requests, "requests", 0, "requests per run in all, instead of --duration")
	f.IntVar(&o.Runs, "runs", 3, "rounds of both runs, alternating which goes first; medians are reported")
	return cmd
}
