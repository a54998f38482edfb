package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/client"
)

// waitPoll is how often run --wait asks how the run is doing.
const waitPoll = 500 * time.Millisecond

func newRunCommand() *cobra.Command {
	var cc clientConfig
	var from, to string
	var wait bool
	cmd := &cobra.Command{
		Use:   "run PIPELINE",
		Short: "Start a run of a batch pipeline",
		Long: `Start a run of a batch pipeline (mode: batch) now. Without --from and --to it
reads the spec's range, as a scheduled run does, and moves lastRun: the next
run starts where it ended. With either, it is a backfill of that range (the
other end is the spec's), which leaves lastRun where it is.

--from takes lastRun, earliest, an RFC 3339 time or partition=offset pairs
(0=100,1=250); --to takes latest, a time or pairs. Pairs name the partitions
read. A time stands for the first offset whose record timestamp is at or
after it. The end of every partition is snapshotted when the run starts.

With --wait the command follows the run until it succeeds (exit 0) or fails
(exit 1). One run of a pipeline at a time: asking while one runs fails
(HTTP 409).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := cc.client()
			if err != nil {
				return err
			}
			name := args[0]
			run, err := cl.StartRun(cmd.Context(), name, from, to)
			if err != nil {
				return clientError(err)
			}
			w := cmd.OutOrStdout()
			if !cc.json() {
				fmt.Fprintf(w, "run %d of %s started (%s): %s %s\n", run.ID, name, run.Kind, run.Topic, formatRanges(run.Ranges))
			}
			if wait {
				if run, err = waitRun(cmd.Context(), cl, name, run.ID); err != nil {
					return clientError(err)
				}
			}
			if cc.json() {
				if err := writeJSON(w, run); err != nil {
					return err
				}
			} else if wait {
				fmt.Fprintf(w, "run %d of %s %s: %d records written, %d dead-lettered, in %s (%d attempts)\n",
					run.ID, name, run.State, run.RecordsWritten, run.RecordsDeadLettered, run.EndedAt.Sub(run.StartedAt).Round(time.Millisecond), run.Attempt)
			}
			if run.State == client.RunFailed {
				return &exitError{code: 1, msg: fmt.Sprintf("run %d of %s failed: %s", run.ID, name, run.Error)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "start of the range: lastRun, earliest, an RFC 3339 time or 0=100,1=250 (default: the spec's)")
	cmd.Flags().StringVar(&to, "to", "", "end of the range: latest, an RFC 3339 time or 0=200,1=300 (default: the spec's)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the run to succeed or fail")
	cc.addServerFlag(cmd)
	cmd.Flags().StringVarP(&cc.output, "output", "o", "text", "output format: text or json (the run)")
	return cmd
}

// waitRun polls a run until it has succeeded or failed.
func waitRun(ctx context.Context, cl *client.Client, name string, id int64) (*client.Run, error) {
	t := time.NewTicker(waitPoll)
	defer t.Stop()
	for {
		run, err := cl.GetRun(ctx, name, id)
		if err != nil {
			return nil, err
		}
		if run.State == client.RunSucceeded || run.State == client.RunFailed {
			return run, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func newRunsCommand() *cobra.Command {
	var cc clientConfig
	cmd := &cobra.Command{
		Use:   "runs PIPELINE",
		Short: "List the runs of a batch pipeline, newest first",
		Long: `List the runs of a batch pipeline, newest first: each run's number, kind
(scheduled, manual, backfill), start, duration, records written, range of
offsets (partition:from..to, to excluded), outcome and last error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := cc.client()
			if err != nil {
				return err
			}
			runs, err := cl.ListRuns(cmd.Context(), args[0])
			if err != nil {
				return clientError(err)
			}
			return printRuns(cmd.OutOrStdout(), &cc, runs, time.Now())
		},
	}
	cc.addServerFlag(cmd)
	cmd.Flags().StringVarP(&cc.output, "output", "o", "text", "output format: text or json")
	return cmd
}

func printRuns(w io.Writer, cc *clientConfig, runs []client.Run, now time.Time) error {
	if cc.json() {
		if runs == nil {
			runs = []client.Run{}
		}
		return writeJSON(w, map[string]any{"runs": runs})
	}
	t := newTable(w, "ID", "KIND", "STARTED", "DURATION", "RECORDS", "FROM..TO", "OUTCOME", "ERROR")
	for _, r := range runs {
		end := r.EndedAt
		if end.IsZero() {
			end = now
		}
		t.row(r.ID, r.Kind, r.StartedAt.UTC().Format(time.RFC3339), end.Sub(r.StartedAt).Round(time.Millisecond),
			r.RecordsWritten, formatRanges(r.Ranges), r.State, orDash(firstLine(r.Error)))
	}
	return t.flush()
}

// maxRangesShown bounds the partitions a range lists in a table.
const maxRangesShown = 4

// formatRanges writes ranges as "0:100..250 1:250..300", eliding those
// past the first few.
func formatRanges(ranges []client.PartitionRange) string {
	if len(ranges) == 0 {
		return "-"
	}
	var parts []string
	for i, r := range ranges {
		if i == maxRangesShown {
			parts = append(parts, "(+"+strconv.Itoa(len(ranges)-i)+" partitions)")
			break
		}
		parts = append(parts, fmt.Sprintf("%d:%d..%d", r.Partition, r.From, r.To))
	}
	return strings.Join(parts, " ")
}
