package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/bench"
)

func newBenchCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Sluice on this machine, against baselines measured in the same run",
	}
	cmd.AddCommand(newBenchLogCommand(), newBenchLogFillCommand())
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
