package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/client"
)

func newGroupCommand() *cobra.Command {
	var cc clientConfig
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List and describe consumer groups, and move their offsets",
	}
	cc.addServerFlag(cmd)
	cc.addOutputFlag(cmd)
	cmd.AddCommand(newGroupListCommand(&cc), newGroupDescribeCommand(&cc), newGroupSeekCommand(&cc), newGroupDeleteCommand(&cc))
	return cmd
}

func newGroupListCommand(cc *clientConfig) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups with their state, members and total lag",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := cc.client()
			if err != nil {
				return err
			}
			gs, err := cl.ListGroups(cmd.Context())
			if err != nil {
				return clientError(err)
			}
			if cc.json() {
				if gs == nil {
					gs = []client.GroupSummary{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"groups": gs})
			}
			t := newTable(cmd.OutOrStdout(), "GROUP", "STATE", "MEMBERS", "LAG")
			for _, g := range gs {
				t.row(g.Group, orDash(g.State), g.Members, g.Lag)
			}
			return t.flush()
		},
	}
}

func newGroupDescribeCommand(cc *clientConfig) *cobra.Command {
	return &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's committed offsets and lag per partition",
		Long: `Show a group's committed offset in each partition it has committed, the log
end offset (the high watermark) and the lag between them, with the member
the partition is assigned to, if any.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := cc.client()
			if err != nil {
				return err
			}
			g, err := cl.DescribeGroup(cmd.Context(), args[0])
			if err != nil {
				return clientError(err)
			}
			w := cmd.OutOrStdout()
			if cc.json() {
				return writeJSON(w, g)
			}
			t := newTable(w)
			t.row("GROUP", g.Group)
			t.row("STATE", orDash(g.State))
			t.row("MEMBERS", len(g.Members))
			t.row("TOTAL-LAG", g.Lag)
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(w)
			t = newTable(w, "TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "MEMBER")
			for _, p := range g.Partitions {
				t.row(p.Topic, p.Partition, orDashInt(p.CommittedOffset), p.LogEndOffset, orDashInt(p.Lag), orDash(p.Member))
			}
			if err := t.flush(); err != nil {
				return err
			}
			if len(g.Members) > 0 {
				fmt.Fprintln(w)
				t = newTable(w, "MEMBER", "KIND", "INSTANCE", "CLIENT", "HOST", "PARTITIONS", "LAST-SEEN")
				for _, m := range g.Members {
					lastSeen := "-"
					if !m.LastSeen.IsZero() {
						lastSeen = m.LastSeen.Local().Format(time.RFC3339)
					}
					t.row(m.MemberID, orDash(m.Kind), orDash(m.InstanceID), orDash(m.ClientID), orDash(m.ClientHost), len(m.Partitions), lastSeen)
				}
				return t.flush()
			}
			return nil
		},
	}
}

func newGroupSeekCommand(cc *clientConfig) *cobra.Command {
	var to, topic string
	var partitions []int32
	cmd := &cobra.Command{
		Use:   "seek GROUP --to POSITION --topic TOPIC",
		Short: "Move a group's committed offsets in a topic",
		Long: `Move a group's committed offsets in every partition of a topic (or those of
-p): to the start or the end of each partition, to an offset (clamped to each
partition's range), or to the first record at or after a time (@ followed by
an RFC 3339 time or Unix milliseconds). The server refuses while the group
has active members.`,
		Example: `  sluice group seek billing --topic orders --to start
  sluice group seek billing --topic orders --to @2024-05-01T12:00:00Z`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pos, err := parsePosition("--to", to)
			if err != nil {
				return err
			}
			if topic == "" {
				return fmt.Errorf("--topic: which topic's offsets to move?")
			}
			cl, err := cc.client()
			if err != nil {
				return err
			}
			offs, err := cl.Seek(cmd.Context(), args[0], topic, pos, partitions...)
			if err != nil {
				return clientError(err)
			}
			if cc.json() {
				if offs == nil {
					offs = []client.GroupOffset{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"offsets": offs})
			}
			t := newTable(cmd.OutOrStdout(), "TOPIC", "PARTITION", "OFFSET")
			for _, o := range offs {
				t.row(o.Topic, o.Partition, o.Offset)
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "start, end, an offset, or @<RFC 3339 time or Unix ms>")
	cmd.Flags().StringVar(&topic, "topic", "", "the topic whose offsets to move")
	cmd.Flags().Int32SliceVarP(&partitions, "partitions", "p", nil, "partitions to move, comma-separated; none means all")
	_ = cmd.MarkFlagRequired("to")
	_ = cmd.MarkFlagRequired("topic")
	return cmd
}

func newGroupDeleteCommand(cc *clientConfig) *cobra.Command {
	return &cobra.Command{
		Use:   "delete GROUP...",
		Short: "Forget groups' committed offsets",
		Long:  `Forget groups' committed offsets. The server refuses while a group has active members.`,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := cc.client()
			if err != nil {
				return err
			}
			var deleted []string
			for _, g := range args {
				if err := cl.DeleteGroup(cmd.Context(), g); err != nil {
					if len(deleted) > 0 {
						return fmt.Errorf("delete %s: %w (deleted before it: %v)", g, clientError(err), deleted)
					}
					return clientError(err)
				}
				deleted = append(deleted, g)
				if !cc.json() {
					fmt.Fprintf(cmd.OutOrStdout(), "deleted group %s\n", g)
				}
			}
			if cc.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"deleted": deleted})
			}
			return nil
		},
	}
}

func orDashInt(n *int64) string {
	if n == nil {
		return "-"
	}
	return strconv.FormatInt(*n, 10)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
