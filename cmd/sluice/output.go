package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/client"
)

// Where the client commands find the server when neither --server nor
// SLUICE_SERVER says.
const (
	defaultServer = "http://127.0.0.1:8080"
	serverEnv     = "SLUICE_SERVER"
)

// clientConfig holds the flags the client commands (topic, produce,
// consume, group) share.
type clientConfig struct {
	server string
	// output is "text" or "json", for the commands that have --output.
	output string
}

// addServerFlag adds --server to cmd and its subcommands.
func (c *clientConfig) addServerFlag(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.server, "server", "",
		"base URL of the Sluice HTTP API (default "+defaultServer+") ["+serverEnv+"]")
}

// addOutputFlag adds --output to cmd and its subcommands.
func (c *clientConfig) addOutputFlag(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.output, "output", "text", "output format: text (tables for people) or json (for scripts)")
}

// client returns a client for the server that --server, SLUICE_SERVER or
// the default names, after checking --output.
func (c *clientConfig) client() (*client.Client, error) {
	if c.output != "" && c.output != "text" && c.output != "json" {
		return nil, fmt.Errorf("--output %q: want text or json", c.output)
	}
	server, from := c.server, "--server"
	if server == "" {
		server, from = os.Getenv(serverEnv), serverEnv
	}
	if server == "" {
		server, from = defaultServer, "default"
	}
	cl, err := client.New(server, client.WithUserAgent("sluice/"+currentBuild().Version))
	if err != nil {
		return nil, fmt.Errorf("%w (set by %s)", err, from)
	}
	return cl, nil
}

func (c *clientConfig) json() bool { return c.output == "json" }

// clientError adds a hint to errors that mean the server could not be
// reached.
func clientError(err error) error {
	var re *client.RequestError
	if errors.As(err, &re) && errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w (is sluice serve running there? set --server or %s)", err, serverEnv)
	}
	return err
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes aligned columns for people.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(toAny(header)...)
	}
	return t
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// row writes one row; each value is formatted with %v.
func (t *table) row(cols ...any) {
	for i, c := range cols {
		if i > 0 {
			io.WriteString(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	io.WriteString(t.tw, "\n")
}

func (t *table) flush() error { return t.tw.Flush() }

// humanBytes writes n bytes in B, KiB, MiB, GiB or TiB.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}

// parseKeyValues parses key=value pairs, as -c and --set take them.
func parseKeyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want key=value", flag, kv)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s: key %q given twice", flag, k)
		}
		out[k] = v
	}
	return out, nil
}

// parsePosition parses a position as the CLI takes it (-o of consume,
// --to of group seek): start|earliest|oldest, end|latest|newest, an
// offset, or @ followed by an RFC 3339 time or Unix milliseconds.
func parsePosition(flag, s string) (client.Pos, error) {
	switch strings.ToLower(s) {
	case "start", "earliest", "oldest", "beginning":
		return client.Earliest, nil
	case "end", "latest", "newest":
		return client.Latest, nil
	}
	p, err := client.ParsePos(s)
	if err != nil {
		return client.Pos{}, fmt.Errorf("%s %q: want start, end, an offset, or @<RFC 3339 time or Unix milliseconds>", flag, s)
	}
	return p, nil
}
