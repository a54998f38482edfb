// Command sluice is Sluice's single binary: the server (sluice serve) and,
// as they land, the client commands that talk to its HTTP API.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().ExecuteContext(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "sluice: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sluice",
		Short: "Sluice: a streaming data pipeline in one binary",
		Long: `Sluice is a streaming data pipeline in one binary: records go into a durable,
partitioned log on local disk, with no external services to run.`,
		// Errors are printed once, on one line, by main; usage only on request.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.AddCommand(newServeCommand(), newBenchCommand(), newVersionCommand())
	root.AddCommand(newTopicCommand(), newProduceCommand(), newConsumeCommand(), newGroupCommand())
	return root
}
