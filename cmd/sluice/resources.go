package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/client"
	"github.com/sluice-dev/sluice/internal/resource"
)

// errChanges is diff's "something would change": exit code 1, no message.
var errChanges = &exitError{code: 1}

// exitError ends the command with a code and, when msg is set, a message.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// readResources parses and validates the files and directories of -f
// locally, so that errors name the user's file, line and column, and
// returns them as one stream of JSON documents for the server: the
// schemaFile references of validate processors are read here and sent
// inline, since the server cannot read the user's files.
func readResources(paths []string) ([]byte, int, error) {
	if len(paths) == 0 {
		return nil, 0, errors.New("-f: name at least one file or directory of resource documents")
	}
	rs, err := resource.ParseFiles(paths...)
	if err != nil {
		return nil, 0, err
	}
	var buf bytes.Buffer
	for i, r := range rs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := resource.Marshal(r, "json")
		if err != nil {
			return nil, 0, err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	return buf.Bytes(), len(rs), nil
}

func newApplyCommand() *cobra.Command {
	var cc clientConfig
	var files []string
	var prune, dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR",
		Short: "Create or update topics and pipelines from resource files",
		Long: `Create or update the topics and pipelines that YAML resource files declare
(apiVersion: sluice.dev/v1, kind: Topic or Pipeline), idempotently: applying
the same files again changes nothing. A directory is read whole (*.yaml,
*.yml, *.json). The files are validated here first; every problem is reported
with its file, line and column.

With --prune, pipelines, and topics applied earlier, that the files no longer
declare are deleted. ${VAR} references in specs are kept as written and
resolved by the server, from its environment, when a pipeline starts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			docs, _, err := readResources(files)
			if err != nil {
				return err
			}
			cl, err := cc.client()
			if err != nil {
				return err
			}
			changes, err := cl.Apply(cmd.Context(), docs, dryRun, prune)
			if err != nil {
				return clientError(err)
			}
			return printChanges(cmd.OutOrStdout(), &cc, changes, dryRun)
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "resource file or directory (repeatable)")
	cmd.Flags().BoolVar(&prune, "prune", false, "delete pipelines, and topics applied earlier, that the files no longer declare")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would change without changing it")
	cc.addServerFlag(cmd)
	cc.addOutputFlag(cmd)
	return cmd
}

func newDiffCommand() *cobra.Command {
	var cc clientConfig
	var files []string
	var prune bool
	cmd := &cobra.Command{
		Use:   "diff -f FILE|DIR",
		Short: "Show what apply would change; exit 1 when something would",
		Long: `Show what sluice apply -f would change on the server, resource by resource,
with the lines of each spec that differ. The exit code is 0 when nothing
would change and 1 when something would (2 on errors), for CI checks that the
server matches a Git repository.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Errors exit 2: 1 means "something would change".
			fail := func(err error) error { return &exitError{code: 2, msg: err.Error()} }
			docs, _, err := readResources(files)
			if err != nil {
				return fail(err)
			}
			cl, err := cc.client()
			if err != nil {
				return fail(err)
			}
			changes, err := cl.Apply(cmd.Context(), docs, true, prune)
			if err != nil {
				return fail(clientError(err))
			}
			if err := printChanges(cmd.OutOrStdout(), &cc, changes, true); err != nil {
				return fail(err)
			}
			for _, c := range changes {
				if c.Action != resource.ActionUnchanged {
					return errChanges
				}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVarP(&files, "filename", "f", nil, "resource file or directory (repeatable)")
	cmd.Flags().BoolVar(&prune, "prune", false, "also show the deletions apply --prune would make")
	cc.addServerFlag(cmd)
	cc.addOutputFlag(cmd)
	return cmd
}

func printChanges(w io.Writer, cc *clientConfig, changes []client.Change, dryRun bool) error {
	if cc.json() {
		if changes == nil {
			changes = []client.Change{}
		}
		return writeJSON(w, map[string]any{"changes": changes})
	}
	verb := map[string]string{
		resource.ActionCreate: "created", resource.ActionUpdate: "updated",
		resource.ActionDelete: "deleted", resource.ActionUnchanged: "unchanged",
	}
	if dryRun {
		verb = map[string]string{
			resource.ActionCreate: "would be created", resource.ActionUpdate: "would be updated",
			resource.ActionDelete: "would be deleted", resource.ActionUnchanged: "unchanged",
		}
	}
	for _, c := range changes {
		fmt.Fprintf(w, "%s/%s %s\n", strings.ToLower(c.Kind), c.Name, verb[c.Action])
		if c.Diff != "" && c.Action == resource.ActionUpdate {
			for _, line := range strings.Split(strings.TrimRight(c.Diff, "\n"), "\n") {
				fmt.Fprintf(w, "    %s\n", line)
			}
		}
	}
	return nil
}

func newGetCommand() *cobra.Command {
	var cc clientConfig
	var format string
	cmd := &cobra.Command{
		Use:   "get pipelines|pipeline NAME|topics",
		Short: "List pipelines or topics, or print one pipeline's spec",
		Long: `List pipelines (with their state, lag and last error) or topics. With
-o yaml or -o json, print the resources as documents that sluice apply takes
back (literal secrets are masked; ${VAR} references are shown as written).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch format {
			case "text", "yaml", "json":
			default:
				return fmt.Errorf("-o %q: want text, yaml or json", format)
			}
			cl, err := cc.client()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			switch args[0] {
			case "pipelines", "pipeline", "pl":
				var ps []client.Pipeline
				if len(args) == 2 {
					p, err := cl.GetPipeline(cmd.Context(), args[1])
					if err != nil {
						return clientError(err)
					}
					ps = []client.Pipeline{*p}
				} else if ps, err = cl.ListPipelines(cmd.Context()); err != nil {
					return clientError(err)
				}
				if format == "text" {
					t := newTable(w, "NAME", "STATE", "SOURCE", "LAG", "WRITTEN", "ERROR")
					for _, p := range ps {
						t.row(p.Name, p.Status.State, sourceOf(p.Spec), p.Status.Lag, p.Status.RecordsWritten, orDash(firstLine(p.Status.Error)))
					}
					return t.flush()
				}
				specs := make([]json.RawMessage, len(ps))
				for i, p := range ps {
					specs[i] = p.Spec
				}
				return writeDocuments(w, format, specs)
			case "topics", "topic":
				if len(args) != 1 {
					return errors.New("get topics takes no name; see sluice topic describe")
				}
				ts, err := cl.ListTopics(cmd.Context())
				if err != nil {
					return clientError(err)
				}
				if format == "text" {
					t := newTable(w, "NAME", "PARTITIONS")
					for _, tp := range ts {
						t.row(tp.Name, len(tp.Partitions))
					}
					return t.flush()
				}
				docs := make([]json.RawMessage, len(ts))
				for i, tp := range ts {
					d := resource.Topic{APIVersion: resource.APIVersion, Kind: resource.KindTopic,
						Metadata: resource.Metadata{Name: tp.Name},
						Spec:     resource.TopicSpec{Partitions: int32(len(tp.Partitions)), Config: tp.Overrides}}
					if docs[i], err = json.Marshal(d); err != nil {
						return err
					}
				}
				return writeDocuments(w, format, docs)
			}
			return fmt.Errorf("%q: want pipelines or topics", args[0])
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "text", "output format: text, yaml or json")
	cc.addServerFlag(cmd)
	return cmd
}

// writeDocuments writes JSON documents as a YAML stream or a JSON array.
func writeDocuments(w io.Writer, format string, docs []json.RawMessage) error {
	if format == "json" {
		if docs == nil {
			docs = []json.RawMessage{}
		}
		return writeJSON(w, docs)
	}
	for i, d := range docs {
		if i > 0 {
			fmt.Fprintln(w, "---")
		}
		b, err := yaml.JSONToYAML(d)
		if err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func sourceOf(spec json.RawMessage) string {
	var s struct {
		Spec struct {
			Source struct {
				Topic string `json:"topic"`
			} `json:"source"`
		} `json:"spec"`
	}
	_ = json.Unmarshal(spec, &s)
	return orDash(s.Spec.Source.Topic)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

func newDeleteCommand() *cobra.Command {
	var cc clientConfig
	cmd := &cobra.Command{
		Use:   "delete pipeline NAME",
		Short: "Delete a pipeline (its committed offsets stay, as a consumer group)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "pipeline" && args[0] != "pipelines" {
				return fmt.Errorf("%q: want pipeline (topics are deleted with sluice topic delete)", args[0])
			}
			cl, err := cc.client()
			if err != nil {
				return err
			}
			if err := cl.DeletePipeline(cmd.Context(), args[1]); err != nil {
				return clientError(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pipeline/%s deleted\n", args[1])
			return nil
		},
	}
	cc.addServerFlag(cmd)
	return cmd
}

func newPipelineCommand() *cobra.Command {
	var cc clientConfig
	cmd := &cobra.Command{
		Use:   "pipeline",
		Short: "Pause, resume and describe pipelines",
	}
	cc.addServerFlag(cmd)
	cc.addOutputFlag(cmd)
	action := func(use, short string, fn func(*client.Client, *cobra.Command, string) (*client.Pipeline, error)) *cobra.Command {
		return &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				cl, err := cc.client()
				if err != nil {
					return err
				}
				p, err := fn(cl, cmd, args[0])
				if err != nil {
					return clientError(err)
				}
				return describePipeline(cmd.OutOrStdout(), &cc, p)
			},
		}
	}
	cmd.AddCommand(
		action("pause", "Stop a pipeline, keeping its checkpoints", func(cl *client.Client, cmd *cobra.Command, name string) (*client.Pipeline, error) {
			return cl.PausePipeline(cmd.Context(), name)
		}),
		action("resume", "Start a paused pipeline, or restart a failed one", func(cl *client.Client, cmd *cobra.Command, name string) (*client.Pipeline, error) {
			return cl.ResumePipeline(cmd.Context(), name)
		}),
		action("describe", "Show a pipeline's state, last error, positions and counts", func(cl *client.Client, cmd *cobra.Command, name string) (*client.Pipeline, error) {
			return cl.GetPipeline(cmd.Context(), name)
		}),
	)
	return cmd
}

func describePipeline(w io.Writer, cc *clientConfig, p *client.Pipeline) error {
	if cc.json() {
		return writeJSON(w, p)
	}
	s := p.Status
	t := newTable(w)
	t.row("PIPELINE", p.Name)
	t.row("SOURCE", sourceOf(p.Spec))
	t.row("STATE", s.State)
	if s.Error != "" {
		t.row("ERROR", s.Error)
		t.row("ERROR-TIME", s.ErrorTime.Format("2006-01-02T15:04:05Z07:00"))
		t.row("ATTEMPT", s.Attempt)
	}
	if !s.RetryAt.IsZero() {
		t.row("RETRY-AT", s.RetryAt.Format("2006-01-02T15:04:05Z07:00"))
	}
	if b := s.Batch; b != nil {
		if b.Run != 0 {
			t.row("RUN", b.Run)
		}
		if !b.NextRunAt.IsZero() {
			t.row("NEXT-RUN", b.NextRunAt.UTC().Format(time.RFC3339))
		}
		if !b.LastSuccessAt.IsZero() {
			t.row("LAST-SUCCESS", b.LastSuccessAt.UTC().Format(time.RFC3339))
		}
	}
	t.row("LAG", s.Lag)
	t.row("READ", s.RecordsRead)
	t.row("WRITTEN", s.RecordsWritten)
	t.row("DROPPED", s.RecordsDropped)
	t.row("DEAD-LETTERED", s.RecordsDeadLettered)
	t.row("IN-FLIGHT", humanBytes(s.InFlightBytes))
	if ws := s.Window; ws != nil {
		wm := "(none yet)"
		if !ws.Watermark.IsZero() {
			wm = ws.Watermark.Format("2006-01-02T15:04:05.000Z07:00")
		}
		t.row("WATERMARK", wm)
		t.row("OPEN-WINDOWS", ws.OpenWindows)
		t.row("WINDOW-STATE", humanBytes(ws.StateBytes))
		t.row("LATE-DROPPED", ws.LateRecords)
		if !ws.LastCheckpoint.IsZero() {
			t.row("CHECKPOINT", ws.LastCheckpoint.Format("2006-01-02T15:04:05Z07:00"))
		}
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(s.Positions) > 0 {
		fmt.Fprintln(w)
		pt := newTable(w, "TOPIC", "PARTITION", "COMMITTED")
		for _, pos := range s.Positions {
			pt.row(pos.Topic, pos.Partition, pos.Offset)
		}
		return pt.flush()
	}
	return nil
}
