package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/client"
)

func newTopicCommand() *cobra.Command {
	var cc clientConfig
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe, alter and delete topics",
	}
	cc.addServerFlag(cmd)
	cc.addOutputFlag(cmd)
	cmd.AddCommand(
		newTopicCreateCommand(&cc),
		newTopicListCommand(&cc),
		newTopicDescribeCommand(&cc),
		newTopicAlterConfigCommand(&cc),
		newTopicAddPartitionsCommand(&cc),
		newTopicDeleteCommand(&cc),
	)
	return cmd
}

func newTopicCreateCommand(cc *clientConfig) *cobra.Command {
	var partitions int32
	var configs []string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic",
		Example: `  sluice topic create orders -p 6 -c retention.ms=86400000
  sluice topic create audit -c cleanup.policy=compact -c segment.bytes=67108864`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			config, err := parseKeyValues("-c", configs)
			if err != nil {
				return err
			}
			if partitions < 0 || cmd.Flags().Changed("partitions") && partitions == 0 {
				return fmt.Errorf("-p %d: want a positive number of partitions", partitions)
			}
			cl, err := cc.client()
			if err != nil {
				return err
			}
			t, err := cl.CreateTopic(cmd.Context(), args[0], partitions, config)
			if err != nil {
				return clientError(err)
			}
			if cc.json() {
				return writeJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created topic %s with %d partitions\n", t.Name, len(t.Partitions))
			return nil
		},
	}
	cmd.Flags().Int32VarP(&partitions, "partitions", "p", 0, "number of partitions (default 1)")
	cmd.Flags().StringArrayVarP(&configs, "config", "c", nil, "a configuration override, key=value (repeatable)")
	return cmd
}

func newTopicListCommand(cc *clientConfig) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := cc.client()
			if err != nil {
				return err
			}
			ts, err := cl.ListTopics(cmd.Context())
			if err != nil {
				return clientError(err)
			}
			if cc.json() {
				if ts == nil {
					ts = []client.Topic{}
				}
				return writeJSON(cmd.OutOrStdout(), map[string]any{"topics": ts})
			}
			t := newTable(cmd.OutOrStdout(), "NAME", "PARTITIONS", "RECORDS", "SIZE")
			for _, tp := range ts {
				var size, recs int64
				for _, p := range tp.Partitions {
					size += p.SizeBytes
					recs += p.HighWatermark - p.LogStartOffset
				}
				t.row(tp.Name, len(tp.Partitions), recs, humanBytes(size))
			}
			return t.flush()
		},
	}
}

func newTopicDescribeCommand(cc *clientConfig) *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a topic's configuration and partitions",
		Long: `Show a topic's configuration (every key, defaults included; SOURCE says
which were set explicitly) and, per partition, the log start offset, the high
watermark (the offset the next record will get) and the size on disk.
RECORDS is the high watermark less the log start offset.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := cc.client()
			if err != nil {
				return err
			}
			tp, err := cl.DescribeTopic(cmd.Context(), args[0])
			if err != nil {
				return clientError(err)
			}
			w := cmd.OutOrStdout()
			if cc.json() {
				return writeJSON(w, tp)
			}
			t := newTable(w)
			t.row("NAME", tp.Name)
			if tp.ID != "" {
				t.row("ID", tp.ID)
			}
			if !tp.CreatedAt.IsZero() {
				t.row("CREATED", tp.CreatedAt.Local().Format(time.RFC3339))
			}
			t.row("PARTITIONS", len(tp.Partitions))
			if err := t.flush(); err != nil {
				return err
			}

			fmt.Fprintln(w)
			t = newTable(w, "CONFIG", "VALUE", "SOURCE")
			keys := make([]string, 0, len(tp.Config))
			for k := range tp.Config {
				keys = append(keys, k)
			}
			for k := range tp.Overrides {
				if _, ok := tp.Config[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			for _, k := range keys {
				v, source := tp.Config[k], "default"
				if o, ok := tp.Overrides[k]; ok {
					v, source = o, "override"
				}
				t.row(k, v, source)
			}
			if err := t.flush(); err != nil {
				return err
			}

			fmt.Fprintln(w)
			t = newTable(w, "PARTITION", "LOG-START", "HIGH-WATERMARK", "RECORDS", "SIZE")
			for _, p := range tp.Partitions {
				t.row(p.Partition, p.LogStartOffset, p.HighWatermark, p.HighWatermark-p.LogStartOffset, humanBytes(p.SizeBytes))
			}
			return t.flush()
		},
	}
}

func newTopicAlterConfigCommand(cc *clientConfig) *cobra.Command {
	var set, del []string
	cmd := &cobra.Command{
		Use:   "alter-config NAME",
		Short: "Set or delete a topic's configuration overrides",
		Long: `Set or delete a topic's configuration overrides; a deleted key returns to its
default. The change is applied whole or not at all.`,
		Example: `  sluice topic alter-config orders --set retention.ms=3600000 --delete retention.bytes`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			setMap, err := parseKeyValues("--set", set)
			if err != nil {
				return err
			}
			if len(setMap) == 0 && len(del) == 0 {
				return fmt.Errorf("nothing to change: give --set key=value or --delete key")
			}
			for _, k := range del {
				if _, ok := setMap[k]; ok {
					return fmt.Errorf("key %q is both set and deleted", k)
				}
			}
			cl, err := cc.client()
			if err != nil {
				return err
			}
			tp, err := cl.AlterTopic(cmd.Context(), args[0], client.TopicChange{Set: setMap, Delete: del})
			if err != nil {
				return clientError(err)
			}
			if cc.json() {
				return writeJSON(cmd.OutOrStdout(), tp)
			}
			t := newTable(cmd.OutOrStdout(), "CONFIG", "VALUE", "CHANGE")
			keys := make([]string, 0, len(setMap))
			for k := range setMap {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				t.row(k, tp.Config[k], "set")
			}
			for _, k := range del {
				t.row(k, tp.Config[k], "deleted (default)")
			}
			return t.flush()
		},
	}
	cmd.Flags().StringArrayVar(&set, "set", nil, "set an override, key=value (repeatable)")
	cmd.Flags().StringArrayVar(&del, "delete", nil, "delete an override, returning the key to its default (repeatable)")
	return cmd
}

func newTopicAddPartitionsCommand(cc *clientConfig) *cobra.Command {
	var num int32
	cmd := &cobra.Command{
		Use:   "add-partitions NAME --num N",
		Short: "Add partitions to a topic",
		Long: `Add partitions to a topic. Keyed records go to murmur2(key) % partitions, so
adding partitions moves where new records with an existing key go.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if num <= 0 {
				return fmt.Errorf("--num %d: want a positive number of partitions to add", num)
			}
			cl, err := cc.client()
			if err != nil {
				return err
			}
			tp, err := cl.DescribeTopic(cmd.Context(), args[0])
			if err != nil {
				return clientError(err)
			}
			before := int32(len(tp.Partitions))
			tp, err = cl.AlterTopic(cmd.Context(), args[0], client.TopicChange{Partitions: before + num})
			if err != nil {
				return clientError(err)
			}
			if cc.json() {
				return writeJSON(cmd.OutOrStdout(), tp)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "topic %s has %d partitions (was %d)\n", tp.Name, len(tp.Partitions), before)
			return nil
		},
	}
	cmd.Flags().Int32VarP(&num, "num", "n", 0, "number of partitions to add")
	return cmd
}

func newTopicDeleteCommand(cc *clientConfig) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete topics with their data and committed offsets",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := cc.client()
			if err != nil {
				return err
			}
			var deleted []string
			for _, name := range args {
				if err := cl.DeleteTopic(cmd.Context(), name); err != nil {
					if len(deleted) > 0 {
						return fmt.Errorf("delete %s: %w (deleted before it: %v)", name, clientError(err), deleted)
					}
					return clientError(err)
				}
				deleted = append(deleted, name)
				if !cc.json() {
					fmt.Fprintf(cmd.OutOrStdout(), "deleted topic %s\n", name)
				}
			}
			if cc.json() {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"deleted": deleted})
			}
			return nil
		},
	}
}
