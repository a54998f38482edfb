package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/sluice-dev/sluice/internal/client"
	"github.com/sluice-dev/sluice/internal/units"
)

// maxLineBytes bounds one line of produce's input: the server's default
// request body limit, which no single record can pass anyway.
const maxLineBytes = 64 << 20

type produceOptions struct {
	format       string
	key          string
	keySet       bool // --key was given, perhaps empty
	partition    int32
	headers      []string
	batchRecords int
	batchBytes   string
	linger       time.Duration
	verbose      bool
}

func newProduceCommand() *cobra.Command {
	var cc clientConfig
	var o produceOptions
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records read from stdin, one per line",
		Long: `Produce records read from stdin, one record per line.

--format text (the default): each line is a record's value, stored as exactly
the bytes of the line (without its line ending): "hello" is stored as the five
bytes hello, and {"a": 1} as those eight bytes, spaces included. Every line
is a record, empty ones too.

--format json (or ndjson): each line is a record object of the HTTP API:
{"key": "...", "value": <any JSON>, "value_base64": "...", "headers": {...},
"partition": N, "timestamp": <Unix ms>}; a JSON value is stored as its compact
encoding. Blank lines are skipped. --key, --partition and --header fill in
what a record object does not say.

Lines are sent in batches of --batch-records records or --batch-bytes bytes,
whichever comes first, one request at a time while the next batch is read;
a partial batch is sent once its first line has waited --linger. Each
request is all or nothing: when the server refuses a record, nothing of its
batch is written, and the error names the line. Unkeyed records are spread
over the partitions; keyed ones go where Kafka's default partitioner puts
their key.

A summary goes to stderr (to stdout as JSON with --output json); -v also
prints each record's partition and offset to stdout.`,
		Example: `  seq 1 10000 | sluice produce orders
  sluice produce orders --key user-42 < events.txt
  sluice produce orders -f json <<'EOF'
  {"key": "user-42", "value": {"total": 12.5}, "headers": {"source": "cli"}}
  EOF`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.keySet = cmd.Flags().Changed("key")
			cl, err := cc.client()
			if err != nil {
				return err
			}
			return runProduce(cmd.Context(), cl, args[0], o, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr(), cc.json())
		},
	}
	cc.addServerFlag(cmd)
	cc.addOutputFlag(cmd)
	f := cmd.Flags()
	f.StringVarP(&o.format, "format", "f", "text", "input format: text (each line is a value), json or ndjson (each line is a record object)")
	f.StringVarP(&o.key, "key", "k", "", "key of every record (json: of those without one)")
	f.Int32VarP(&o.partition, "partition", "p", -1, "partition of every record (json: of those without one); -1 chooses by key, or spreads unkeyed records")
	f.StringArrayVarP(&o.headers, "header", "H", nil, "a header of every record, name=value (repeatable)")
	f.IntVar(&o.batchRecords, "batch-records", 500, "most records per request")
	f.StringVar(&o.batchBytes, "batch-bytes", "1MiB", "most bytes per request body (a larger single line is sent alone)")
	f.DurationVar(&o.linger, "linger", 100*time.Millisecond, "longest a line waits for its batch to fill before the batch is sent")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "print each record's partition and offset to stdout")
	return cmd
}

// produceBatch is one request's worth of records: an NDJSON body.
type produceBatch struct {
	body []byte
	// lines holds the input line number of each record.
	lines []int
	// first is when the batch got its first record.
	first time.Time
}

// produceEncoder turns input lines into NDJSON record objects.
type produceEncoder struct {
	json bool
	// prefix opens a text record's object with the fixed fields.
	prefix []byte
	// fixed holds the fixed fields for json records, as JSON values.
	fixed   map[string]json.RawMessage
	headers map[string]string
	scratch bytes.Buffer
}

func newProduceEncoder(o produceOptions) (*produceEncoder, error) {
	e := &produceEncoder{}
	switch o.format {
	case "text":
	case "json", "ndjson":
		e.json = true
	default:
		return nil, fmt.Errorf("--format %q: want text, json or ndjson", o.format)
	}
	if o.partition < -1 {
		return nil, fmt.Errorf("--partition %d: want a partition number, or -1", o.partition)
	}
	headers, err := parseKeyValues("--header", o.headers)
	if err != nil {
		return nil, err
	}
	e.headers = headers
	e.fixed = map[string]json.RawMessage{}
	if o.keySet {
		if !utf8.ValidString(o.key) {
			return nil, errors.New("--key: not valid UTF-8")
		}
		e.fixed["key"], _ = json.Marshal(o.key)
	}
	if o.partition >= 0 {
		e.fixed["partition"] = json.RawMessage(strconv.FormatInt(int64(o.partition), 10))
	}
	if len(headers) > 0 {
		e.fixed["headers"], _ = json.Marshal(headers)
	}
	e.prefix = append(e.prefix, '{')
	for _, k := range []string{"key", "partition", "headers"} {
		if v, ok := e.fixed[k]; ok {
			e.prefix = append(e.prefix, `"`+k+`":`...)
			e.prefix = append(append(e.prefix, v...), ',')
		}
	}
	return e, nil
}

// estimate bounds the bytes encode adds for line, give or take the fixed
// fields of a json record.
func (e *produceEncoder) estimate(line []byte) int {
	return len(e.prefix) + 4*((len(line)+2)/3) + 24
}

// skip reports whether a line holds no record.
func (e *produceEncoder) skip(line []byte) bool {
	return e.json && len(bytes.TrimSpace(line)) == 0
}

// encode appends the record object of one line, and a newline, to dst.
func (e *produceEncoder) encode(dst, line []byte) ([]byte, error) {
	if e.json {
		line = bytes.TrimSpace(line)
		if len(e.fixed) == 0 {
			return append(append(dst, line...), '\n'), nil
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(line, &m); err != nil || m == nil {
			return dst, errors.New("not a JSON record object")
		}
		for k, v := range e.fixed {
			switch k {
			case "key":
				if _, ok := m["key_base64"]; ok {
					continue
				}
			case "headers":
				if h, ok := m["headers"]; ok && string(h) != "null" {
					var hm map[string]json.RawMessage
					if err := json.Unmarshal(h, &hm); err != nil {
						return dst, errors.New(`"headers" is not a JSON object`)
					}
					for name, value := range e.headers {
						if _, ok := hm[name]; !ok {
							hm[name], _ = json.Marshal(value)
						}
					}
					m["headers"], _ = json.Marshal(hm)
					continue
				}
			}
			if _, ok := m[k]; !ok {
				m[k] = v
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			return dst, err
		}
		return append(append(dst, b...), '\n'), nil
	}
	dst = append(dst, e.prefix...)
	if e.compactJSON(line) {
		// The server stores a JSON value as its compact encoding, which
		// for this line is the line itself.
		dst = append(dst, `"value":`...)
		dst = append(dst, line...)
	} else {
		dst = append(dst, `"value_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, line)
		dst = append(dst, '"')
	}
	return append(dst, "}\n"...), nil
}

// compactJSON reports whether line is a JSON value other than null whose
// compact encoding is line itself.
func (e *produceEncoder) compactJSON(line []byte) bool {
	if len(line) == 0 || !strings.ContainsRune(`{["-0123456789tf`, rune(line[0])) {
		return false
	}
	if !json.Valid(line) || !utf8.Valid(line) {
		return false
	}
	e.scratch.Reset()
	if json.Compact(&e.scratch, line) != nil {
		return false
	}
	return bytes.Equal(e.scratch.Bytes(), line)
}

// produceStats is what a produce run did.
type produceStats struct {
	Topic      string                 `json:"topic"`
	Records    int64                  `json:"records"`
	Requests   int64                  `json:"requests"`
	Seconds    float64                `json:"seconds"`
	Partitions []producePartitionStat `json:"partitions"`
	byPart     map[int32]*producePartitionStat
}

type producePartitionStat struct {
	Partition   int32 `json:"partition"`
	Records     int64 `json:"records"`
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
}

func (s *produceStats) add(offs []client.RecordOffset) {
	s.Requests++
	s.Records += int64(len(offs))
	for _, o := range offs {
		p := s.byPart[o.Partition]
		if p == nil {
			p = &producePartitionStat{Partition: o.Partition, FirstOffset: o.Offset, LastOffset: o.Offset}
			s.byPart[o.Partition] = p
		}
		p.Records++
		p.FirstOffset = min(p.FirstOffset, o.Offset)
		p.LastOffset = max(p.LastOffset, o.Offset)
	}
}

func runProduce(ctx context.Context, cl *client.Client, topic string, o produceOptions, in io.Reader, stdout, stderr io.Writer, jsonOut bool) error {
	enc, err := newProduceEncoder(o)
	if err != nil {
		return err
	}
	if o.batchRecords < 1 {
		return fmt.Errorf("--batch-records %d: want at least 1", o.batchRecords)
	}
	batchBytes, err := units.ParseByteSize(o.batchBytes, 1, 1<<30)
	if err != nil {
		return fmt.Errorf("--batch-bytes %w", err)
	}
	if o.linger <= 0 {
		o.linger = time.Millisecond
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan *produceBatch, 1)
	readErr := make(chan error, 1)
	go func() {
		// Reading stdin cannot be interrupted: when sending fails, this
		// goroutine is left blocked in Read until the process exits.
		readErr <- readBatches(ctx, in, enc, o.batchRecords, int(batchBytes), o.linger, batches)
	}()

	start := time.Now()
	stats := &produceStats{Topic: topic, byPart: map[int32]*producePartitionStat{}}
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	for b := range batches {
		offs, err := cl.ProduceNDJSON(ctx, topic, bytes.NewReader(b.body))
		if err == nil && len(offs) != len(b.lines) {
			err = fmt.Errorf("the server answered %d offsets for %d records", len(offs), len(b.lines))
		}
		if err != nil {
			cancel()
			return produceError(topic, b, stats.Records, clientError(err))
		}
		stats.add(offs)
		if o.verbose {
			for _, off := range offs {
				if jsonOut {
					fmt.Fprintf(out, "{\"partition\":%d,\"offset\":%d}\n", off.Partition, off.Offset)
				} else {
					fmt.Fprintf(out, "partition %d offset %d\n", off.Partition, off.Offset)
				}
			}
			if err := out.Flush(); err != nil {
				return err
			}
		}
	}
	if err := <-readErr; err != nil {
		return fmt.Errorf("%w (%d records before it were produced)", err, stats.Records)
	}
	stats.Seconds = time.Since(start).Seconds()
	for _, p := range stats.byPart {
		stats.Partitions = append(stats.Partitions, *p)
	}
	slices.SortFunc(stats.Partitions, func(a, b producePartitionStat) int { return int(a.Partition - b.Partition) })
	if stats.Partitions == nil {
		stats.Partitions = []producePartitionStat{}
	}
	if jsonOut && !o.verbose {
		return writeJSON(out, stats)
	}
	fmt.Fprintf(stderr, "produced %d records to %s in %d requests (%.2fs)\n", stats.Records, topic, stats.Requests, stats.Seconds)
	return nil
}

// produceError says which lines a failed request held, translating the
// server's "record N: ..." into the line it came from.
func produceError(topic string, b *produceBatch, before int64, err error) error {
	var ce *client.Error
	where := fmt.Sprintf("lines %d-%d", b.lines[0], b.lines[len(b.lines)-1])
	if len(b.lines) == 1 {
		where = fmt.Sprintf("line %d", b.lines[0])
	}
	if errors.As(err, &ce) {
		if rest, ok := strings.CutPrefix(ce.Message, "record "); ok {
			num, msg, ok := strings.Cut(rest, ": ")
			if i, aerr := strconv.Atoi(num); ok && aerr == nil && i >= 0 && i < len(b.lines) {
				where = fmt.Sprintf("line %d", b.lines[i])
				err = &client.Error{StatusCode: ce.StatusCode, Code: ce.Code, Message: msg}
			}
		}
	}
	return fmt.Errorf("produce to %s, %s: %w; nothing of that request was written (%d records before it were)", topic, where, err, before)
}

// readBatches reads lines from in, encodes them into batches of at most
// maxRecs records and about maxBytes bytes, and sends the batches on out,
// which it closes at the end of the input. A batch that is not full is
// sent once its first line has waited linger.
func readBatches(ctx context.Context, in io.Reader, enc *produceEncoder, maxRecs, maxBytes int, linger time.Duration, out chan<- *produceBatch) error {
	defer close(out)
	var (
		mu  sync.Mutex
		cur *produceBatch
	)
	send := func(b *produceBatch) bool {
		select {
		case out <- b:
			return true
		case <-ctx.Done():
			return false
		}
	}
	// The flusher sends batches that waited too long. A batch taken by
	// the reader is sent before the reader adds lines again, so batches
	// leave in input order.
	stopCh := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(max(linger/2, time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-stopCh:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			mu.Lock()
			b := cur
			if b != nil && time.Since(b.first) >= linger {
				cur = nil
			} else {
				b = nil
			}
			mu.Unlock()
			if b != nil && !send(b) {
				return
			}
		}
	})
	// stopFlusher waits for a send in progress, which the caller's
	// receiving lets finish.
	stopFlusher := sync.OnceFunc(func() {
		close(stopCh)
		wg.Wait()
	})
	defer stopFlusher()
	// fail drops the batch being filled, so that nothing after a bad
	// line is sent.
	fail := func(err error) error {
		mu.Lock()
		cur = nil
		mu.Unlock()
		return err
	}

	r := bufio.NewReaderSize(in, 256<<10)
	var long []byte // a line longer than the reader's buffer
	lineNo := 0
	for {
		chunk, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(chunk) > maxLineBytes {
				return fail(fmt.Errorf("line %d is longer than %s", lineNo+1, units.FormatByteSize(maxLineBytes)))
			}
			long = append(long, chunk...)
			continue
		}
		if err != nil && err != io.EOF {
			return fail(fmt.Errorf("read line %d: %w", lineNo+1, err))
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = long[:0]
		}
		if len(line) == 0 && err == io.EOF {
			break
		}
		lineNo++
		line = bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r"))
		if !enc.skip(line) {
			mu.Lock()
			if cur != nil && len(cur.body)+enc.estimate(line) > maxBytes {
				b := cur
				cur = nil
				mu.Unlock()
				if !send(b) {
					return ctx.Err()
				}
				mu.Lock()
			}
			if cur == nil {
				cur = &produceBatch{body: make([]byte, 0, min(maxBytes+len(line)*2, 4<<20)), first: time.Now()}
			}
			body, eerr := enc.encode(cur.body, line)
			if eerr != nil {
				mu.Unlock()
				return fail(fmt.Errorf("line %d: %w", lineNo, eerr))
			}
			cur.body = body
			cur.lines = append(cur.lines, lineNo)
			var full *produceBatch
			if len(cur.lines) >= maxRecs || len(cur.body) >= maxBytes {
				full, cur = cur, nil
			}
			mu.Unlock()
			if full != nil && !send(full) {
				return ctx.Err()
			}
		}
		if err == io.EOF {
			break
		}
	}
	stopFlusher()
	mu.Lock()
	b := cur
	cur = nil
	mu.Unlock()
	if b != nil && !send(b) {
		return ctx.Err()
	}
	return nil
}
