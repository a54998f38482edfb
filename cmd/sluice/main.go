// Command sluice is Sluice's single binary: the server (sluice serve) and,
// as they land, the client commands that talk to its HTTP API.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCommand().ExecuteContext(context.Background()); err != nil {
		code := 1
		if ee, ok := errors.AsType[*exitError](err); ok {
			code = ee.code
		}
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "sluice: "+strings.ReplaceAll(msg, "\n", "; "))
		}
		os.Exit(code)
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
	root.AddCommand(newApplyCommand(), newDiffCommand(), newGetCommand(), newDeleteCommand(), newPipelineCommand())
	root.AddCommand(newRunCommand(), newRunsCommand())
	return root
}
