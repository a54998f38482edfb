package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/client"
)

// consumeWait is how long each fetch of a following consume waits for
// records (a long poll).
const consumeWait = 5 * time.Second

type consumeOptions struct {
	offset     string
	num        int64
	group      string
	format     string
	partitions []int32
	noFollow   bool
	maxRecords int
}

func newConsumeCommand() *cobra.Command {
	var cc clientConfig
	var o consumeOptions
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print a topic's records, following new ones",
		Long: `Print a topic's records, and follow new ones as they are produced, until -n
records have been printed or the command is interrupted (SIGINT or SIGTERM
stops it cleanly, with exit code 0). Every partition (or those of -p) is
read at once, each in order; records of different partitions interleave.

-o says where to start: start (the log start), end (only records produced
from now on), an offset, or @ followed by an RFC 3339 time or Unix
milliseconds (the first record at or after it). A position that retention
has deleted since starts over from -o.

With -g GROUP, partitions where the group has committed an offset start
there (-o applies to the others), and the group's offsets are committed as
records are printed, after they are written out: a record is committed
only once printed, so a record may be printed twice after a crash but never
skipped. On exit the position of every partition read is committed, so the
group's lag covers all of them.

-f json (the default) prints one JSON object per record: topic, partition,
offset, timestamp (Unix ms), key (or key_base64 when not UTF-8), value (as
JSON when it parses as JSON, else value_base64) and headers. -f text prints
each value's bytes followed by a newline, so text produced with
"sluice produce" comes back as it went in.`,
		Example: `  sluice consume orders -n 10
  sluice consume orders -o @2024-05-01T12:00:00Z -f text
  sluice consume orders -g billing`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := cc.client()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return clientError(runConsume(ctx, cl, args[0], o, cmd.OutOrStdout()))
		},
	}
	cc.addServerFlag(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.offset, "offset", "o", "start", "where to start: start, end, an offset, or @<RFC 3339 time or Unix ms>")
	f.Int64VarP(&o.num, "num", "n", 0, "stop after printing this many records (0: no limit)")
	f.StringVarP(&o.group, "group", "g", "", "consumer group whose committed offsets to start from and commit to")
	f.StringVarP(&o.format, "format", "f", "json", "output: json (one object per record) or text (each value on its own line)")
	f.Int32SliceVarP(&o.partitions, "partitions", "p", nil, "partitions to read, comma-separated; none means all")
	f.BoolVar(&o.noFollow, "no-follow", false, "stop at the end of each partition instead of waiting for new records")
	f.IntVar(&o.maxRecords, "max-records", 1000, "most records per fetch request")
	return cmd
}

// consumePart is the state of one partition being read.
type consumePart struct {
	partition int32
	// from is where the next fetch starts.
	from client.Pos
	// known says next is a real offset; it is not until the first fetch
	// of a time position has resolved it.
	known bool
	next  int64
	// hwm is the last high watermark seen, for --no-follow.
	hwm int64
}

// fetched is one fetch's answer, from the partition fetcher to the
// printer.
type fetched struct {
	partition int32
	res       *client.FetchResult
	err       error
}

func runConsume(ctx context.Context, cl *client.Client, topic string, o consumeOptions, stdout io.Writer) error {
	if o.format != "json" && o.format != "text" {
		return fmt.Errorf("-f %q: want json or text", o.format)
	}
	if o.num < 0 {
		return fmt.Errorf("-n %d: want a number of records, or 0 for no limit", o.num)
	}
	if o.maxRecords < 1 {
		return fmt.Errorf("--max-records %d: want at least 1", o.maxRecords)
	}
	reset, err := parsePosition("-o", o.offset)
	if err != nil {
		return err
	}
	tp, err := cl.DescribeTopic(ctx, topic)
	if err != nil {
		return err
	}
	parts, err := consumeParts(tp, o.partitions, reset)
	if err != nil {
		return err
	}
	if o.group != "" {
		committed, err := cl.FetchOffsets(ctx, o.group)
		if err != nil {
			return fmt.Errorf("offsets of group %s: %w", o.group, err)
		}
		for _, c := range committed {
			if c.Topic != topic {
				continue
			}
			for _, p := range parts {
				if p.partition == c.Partition {
					p.from, p.known, p.next = client.Offset(c.Offset), true, c.Offset
				}
			}
		}
	}

	c := &consumer{cl: cl, topic: topic, o: o, reset: reset, parts: parts}
	return c.run(ctx, stdout)
}

// consumeParts returns the partitions to read with their start positions
// under -o; start and end are resolved to offsets from the topic's
// description, so that their positions are known (and committed) even
// before the first fetch answers.
func consumeParts(tp *client.Topic, want []int32, pos client.Pos) ([]*consumePart, error) {
	var parts []*consumePart
	for _, p := range tp.Partitions {
		if len(want) > 0 && !slices.Contains(want, p.Partition) {
			continue
		}
		cp := &consumePart{partition: p.Partition, from: pos, hwm: p.HighWatermark}
		switch pos {
		case client.Earliest:
			cp.known, cp.next = true, p.LogStartOffset
		case client.Latest:
			cp.known, cp.next = true, p.HighWatermark
		default:
			if n, ok := posOffset(pos); ok {
				cp.known, cp.next = true, n
			}
		}
		if cp.known {
			cp.from = client.Offset(cp.next)
		}
		parts = append(parts, cp)
	}
	for _, w := range want {
		if !slices.ContainsFunc(parts, func(p *consumePart) bool { return p.partition == w }) {
			return nil, fmt.Errorf("-p: topic %s has no partition %d (it has %d)", tp.Name, w, len(tp.Partitions))
		}
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions", tp.Name)
	}
	return parts, nil
}

// posOffset returns the offset of a position that is one.
func posOffset(p client.Pos) (int64, bool) {
	n, err := strconv.ParseInt(p.String(), 10, 64)
	return n, err == nil && n >= 0
}

// consumer runs one consume: a fetcher per partition and the printer,
// which owns the output and the group commits.
type consumer struct {
	cl    *client.Client
	topic string
	o     consumeOptions
	reset client.Pos
	parts []*consumePart

	// Owned by the printer.
	out     *bufio.Writer
	line    []byte
	scratch bytes.Buffer
	enc     *json.Encoder // writes to scratch
}

func (c *consumer) run(ctx context.Context, stdout io.Writer) error {
	fctx, stopFetching := context.WithCancel(ctx)
	defer stopFetching()
	results := make(chan fetched, len(c.parts))
	var wg sync.WaitGroup
	for _, p := range c.parts {
		start := *p
		wg.Go(func() { c.fetch(fctx, start, results) })
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	defer func() {
		stopFetching()
		for range results {
		}
	}()

	// pos holds, per partition, the position to commit: past the last
	// record printed, or where reading started.
	pos := map[int32]int64{}
	for _, p := range c.parts {
		if p.known {
			pos[p.partition] = p.next
		}
	}
	dirty := false
	lastCommit := time.Now()
	commit := func(ctx context.Context) error {
		if c.o.group == "" || !dirty {
			return nil
		}
		offs := make([]client.GroupOffset, 0, len(pos))
		for _, p := range c.parts {
			if n, ok := pos[p.partition]; ok {
				offs = append(offs, client.GroupOffset{Topic: c.topic, Partition: p.partition, Offset: n})
			}
		}
		if len(offs) == 0 {
			return nil
		}
		if err := c.cl.CommitOffsets(ctx, c.o.group, offs); err != nil {
			return fmt.Errorf("commit offsets of group %s: %w", c.o.group, err)
		}
		dirty, lastCommit = false, time.Now()
		return nil
	}
	// A final commit (of what was printed, even after an error or a
	// signal) gets a context of its own.
	finish := func(err error) error {
		if ferr := c.flush(); ferr != nil && err == nil {
			err = ferr
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if cerr := commit(cctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return err
	}
	if c.o.group != "" {
		// Commit the start positions at once, so that the group covers
		// every partition read even if nothing is printed.
		dirty = true
		if err := commit(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}

	c.out = bufio.NewWriterSize(stdout, 64<<10)
	var printed int64
	for {
		var f fetched
		var ok bool
		select {
		case f, ok = <-results:
		case <-ctx.Done():
			// Interrupted: not an error.
			return finish(nil)
		}
		if !ok {
			return finish(nil) // every partition reached its end (--no-follow)
		}
		if f.err != nil {
			if ctx.Err() != nil {
				return finish(nil)
			}
			return finish(fmt.Errorf("consume %s/%d: %w", c.topic, f.partition, f.err))
		}
		recs := f.res.Records
		all := true
		if c.o.num > 0 && printed+int64(len(recs)) > c.o.num {
			recs, all = recs[:c.o.num-printed], false
		}
		for i := range recs {
			if err := c.print(&recs[i]); err != nil {
				return finish(err)
			}
		}
		printed += int64(len(recs))
		switch {
		case all:
			pos[f.partition] = f.res.NextOffset
		case len(recs) > 0:
			pos[f.partition] = recs[len(recs)-1].Offset + 1
		}
		dirty = dirty || len(recs) > 0 || all
		if c.o.num > 0 && printed >= c.o.num {
			return finish(nil)
		}
		// Flush and commit when nothing else is waiting, or at least
		// every second under a steady stream.
		if len(results) == 0 || time.Since(lastCommit) > time.Second {
			if err := c.flush(); err != nil {
				return finish(err)
			}
			if err := commit(ctx); err != nil {
				if ctx.Err() != nil {
					return finish(nil)
				}
				return finish(err)
			}
		}
	}
}

// fetch reads one partition, sending each answer with records (and the
// first, which resolves a time position) to results, until ctx is done,
// an error, or with --no-follow the partition's end.
func (c *consumer) fetch(ctx context.Context, p consumePart, results chan<- fetched) {
	wait := consumeWait
	if c.o.noFollow {
		wait = 0
	}
	first := true
	for {
		if c.o.noFollow && p.known && p.next >= p.hwm {
			return
		}
		res, err := c.cl.Consume(ctx, c.topic, p.partition, p.from, client.FetchOptions{
			MaxRecords: c.o.maxRecords, Wait: wait, Base64: c.o.format == "text"})
		if err != nil && isOutOfRange(err) && c.reset != p.from {
			// Retention deleted the records at the position since (or a
			// committed offset points past the log): start over from -o.
			p.from, p.known = c.reset, false
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				select {
				case results <- fetched{partition: p.partition, err: err}:
				case <-ctx.Done():
				}
			}
			return
		}
		p.from, p.known, p.next, p.hwm = client.Offset(res.NextOffset), true, res.NextOffset, res.HighWatermark
		if len(res.Records) > 0 || first {
			select {
			case results <- fetched{partition: p.partition, res: res}:
			case <-ctx.Done():
				return
			}
		}
		first = false
		if c.o.noFollow && len(res.Records) == 0 {
			return
		}
	}
}

func isOutOfRange(err error) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.StatusCode == http.StatusUnprocessableEntity &&
		strings.Contains(ce.Message, "out of range")
}

// print writes one record: with -f text its value's bytes and a newline;
// with -f json the API's record object with the topic first, the value as
// the server wrote it (JSON values as stored, not re-encoded). As in the
// API, a null key or value leaves its field out.
func (c *consumer) print(r *client.Record) error {
	if c.o.format == "text" {
		c.out.Write(r.ValueBytes())
		return c.out.WriteByte('\n')
	}
	b := append(c.line[:0], `{"topic":`...)
	b = c.appendJSON(b, c.topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, r.Timestamp, 10)
	switch {
	case r.Key != nil:
		b = c.appendJSON(append(b, `,"key":`...), *r.Key)
	case r.KeyBase64 != nil:
		b = c.appendJSON(append(b, `,"key_base64":`...), r.KeyBase64)
	}
	switch {
	case r.ValueBase64 != nil:
		b = c.appendJSON(append(b, `,"value_base64":`...), r.ValueBase64)
	case r.Value != nil:
		b = append(append(b, `,"value":`...), r.Value...)
	}
	headers := r.Headers
	if headers == nil {
		headers = map[string]*string{}
	}
	b = c.appendJSON(append(b, `,"headers":`...), headers)
	if r.HeadersBase64 != nil {
		b = c.appendJSON(append(b, `,"headers_base64":`...), r.HeadersBase64)
	}
	b = append(b, "}\n"...)
	c.line = b
	_, err := c.out.Write(b)
	return err
}

// appendJSON appends v's JSON encoding, without escaping HTML.
func (c *consumer) appendJSON(dst []byte, v any) []byte {
	c.scratch.Reset()
	if c.enc == nil {
		c.enc = json.NewEncoder(&c.scratch)
		c.enc.SetEscapeHTML(false)
	}
	_ = c.enc.Encode(v) // strings, bytes and maps of them always encode
	return append(dst, bytes.TrimSuffix(c.scratch.Bytes(), []byte("\n"))...)
}

func (c *consumer) flush() error {
	if c.out == nil {
		return nil
	}
	return c.out.Flush()
}
