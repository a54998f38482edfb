package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/client"
	"github.com/sluice-dev/sluice/internal/logstore"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/server"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/stream/embedded"
)

// HTTPProduceOptions configures HTTPProduce. Zero values take the
// defaults in brackets.
type HTTPProduceOptions struct {
	// Server is the base URL of a running server to load; "" starts one
	// in this process on 127.0.0.1:0, in a directory under Dir.
	Server string
	// Dir holds the data directories of the embedded server and of the
	// in-process run [a new temporary directory].
	Dir string
	// Fsync is the durability policy of the embedded server and of the
	// in-process run [always]. Against Server, set it to what that server
	// uses, or the ratio compares different things.
	Fsync logstore.SyncPolicy
	// Connections is the number of concurrent HTTP connections, each
	// sending one request at a time; the in-process run has as many
	// writers [8].
	Connections int
	// RecordsPerRequest is the records of each request [500].
	RecordsPerRequest int
	// ValueBytes is each record's value size: a JSON string of that many
	// bytes, quotes included, stored as those bytes [200].
	ValueBytes int
	// Partitions is the partition count of the benchmark topic [4].
	Partitions int
	// Duration is how long each run lasts [10s], unless Requests is set.
	Duration time.Duration
	// Requests, when above zero, is how many requests each run makes in
	// all, instead of running for Duration.
	Requests int
	// Runs is how many times both runs are made, alternating which goes
	// first (the disk of a shared machine favours whichever comes second);
	// medians are reported [3].
	Runs int
	// Out receives the report [io.Discard].
	Out io.Writer
}

func (o *HTTPProduceOptions) setDefaults() error {
	if o.Connections <= 0 {
		o.Connections = 8
	}
	if o.RecordsPerRequest <= 0 {
		o.RecordsPerRequest = 500
	}
	if o.ValueBytes == 0 {
		o.ValueBytes = 200
	}
	if o.ValueBytes < 2 {
		return fmt.Errorf("value bytes %d: a JSON string takes at least 2 bytes", o.ValueBytes)
	}
	if o.Partitions <= 0 {
		o.Partitions = 4
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return nil
}

// ProduceRun is what one produce run achieved.
type ProduceRun struct {
	Requests   int64
	Records    int64
	ValueBytes int64 // bytes of record values
	BodyBytes  int64 // bytes of request bodies (HTTP only)
	Elapsed    time.Duration
	// Latencies of every request (in process: of every request's worth of
	// appends), sorted.
	Latencies []time.Duration
}

// RecordsPerSec is the produce rate.
func (r ProduceRun) RecordsPerSec() float64 { return float64(r.Records) / r.Elapsed.Seconds() }

// ValueMBPerSec is the rate of record values, in MB (10^6 bytes) per second.
func (r ProduceRun) ValueMBPerSec() float64 { return float64(r.ValueBytes) / 1e6 / r.Elapsed.Seconds() }

// Percentile returns the latency below which a fraction q of requests
// completed.
func (r ProduceRun) Percentile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Latencies))+0.5) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

// HTTPProduceReport holds the runs of HTTPProduce.
type HTTPProduceReport struct {
	Runs []ProducePair
}

// ProducePair is one HTTP run and the in-process run beside it.
type ProducePair struct {
	HTTP, InProcess ProduceRun
}

// Ratio is the HTTP produce rate over the in-process one.
func (p ProducePair) Ratio() float64 { return p.HTTP.RecordsPerSec() / p.InProcess.RecordsPerSec() }

// Ratio is the median over the runs of the HTTP produce rate over the
// in-process one.
func (r *HTTPProduceReport) Ratio() float64 {
	return r.median(func(p ProducePair) float64 { return p.Ratio() })
}

func (r *HTTPProduceReport) median(f func(ProducePair) float64) float64 {
	xs := make([]float64, len(r.Runs))
	for i, p := range r.Runs {
		xs[i] = f(p)
	}
	return Median(xs)
}

// HTTPProduce measures produce over HTTP (POST /v1/topics/{topic}/records
// with pre-built JSON bodies, over keep-alive connections) against the
// in-process append rate of the same records in the same run: the records
// framed with record.Codecs.AppendBatch and appended with
// stream.Log.Produce on the embedded log, by as many writers, spread over
// as many partitions in the same way. Each of o.Runs rounds makes both
// runs, each on a new topic, alternating which goes first. It prints a
// Markdown report to o.Out. It is a measurement, not a test: it fails only
// when producing does.
func HTTPProduce(ctx context.Context, o HTTPProduceOptions) (*HTTPProduceReport, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "sluice-bench-http-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		o.Dir = d
	}
	values := benchValues(o.Connections, o.RecordsPerRequest, o.ValueBytes)

	target := o.Server
	if target == "" {
		srv, err := server.New(server.Options{
			DataDir:   filepath.Join(o.Dir, "http"),
			HTTPAddr:  "127.0.0.1:0",
			KafkaAddr: "127.0.0.1:0",
			Fsync:     o.Fsync,
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			return nil, err
		}
		if err := srv.Start(ctx); err != nil {
			return nil, fmt.Errorf("start server: %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		target = "http://" + srv.Addr().String()
	}
	env, err := OpenEnv(ctx, filepath.Join(o.Dir, "inproc"), o.Fsync)
	if err != nil {
		return nil, err
	}
	defer env.Close()
	inproc := stream.Log(embedded.New(env.Log, env.Meta))

	printHTTPHeader(o, target)
	rep := &HTTPProduceReport{}
	for i := 0; i < o.Runs; i++ {
		var p ProducePair
		httpRun := func() (err error) {
			if p.HTTP, err = httpProduce(ctx, o, target, values); err != nil {
				return fmt.Errorf("HTTP run against %s: %w", target, err)
			}
			return nil
		}
		inRun := func() (err error) {
			if p.InProcess, err = inProcessProduce(ctx, o, inproc, fmt.Sprintf("bench-inproc-%d", i), values); err != nil {
				return fmt.Errorf("in-process run: %w", err)
			}
			return nil
		}
		first, second := inRun, httpRun
		if i%2 == 1 {
			first, second = httpRun, inRun
		}
		if err := first(); err != nil {
			return nil, err
		}
		if err := second(); err != nil {
			return nil, err
		}
		rep.Runs = append(rep.Runs, p)
		fmt.Fprintf(o.Out, "- run %d: HTTP %s records/s, in process %s records/s, HTTP / in process %.2f\n", i+1,
			groupThousands(p.HTTP.RecordsPerSec()), groupThousands(p.InProcess.RecordsPerSec()), p.Ratio())
	}
	printHTTPReport(o, rep)
	return rep, nil
}

// benchValues returns each connection's record values: JSON strings of
// size bytes, quotes included, of letters that differ from record to
// record.
func benchValues(conns, recs, size int) [][][]byte {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	out := make([][][]byte, conns)
	for c := range out {
		out[c] = make([][]byte, recs)
		for i := range out[c] {
			v := make([]byte, size)
			v[0], v[size-1] = '"', '"'
			x := uint32(c*1000003+i)*2654435761 + 1
			for j := 1; j < size-1; j++ {
				x ^= x << 13
				x ^= x >> 17
				x ^= x << 5
				v[j] = letters[x%uint32(len(letters))]
			}
			out[c][i] = v
		}
	}
	return out
}

// runLoop runs fn from each of n workers until the run is over: after
// requests calls in all when requests > 0, else after d. fn returns the
// error that stops the run. It returns the latencies of every call, sorted,
// and the elapsed time.
func runLoop(ctx context.Context, n, requests int, d time.Duration, fn func(ctx context.Context, worker int) error) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		left     atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	left.Store(int64(requests))
	lat := make([][]time.Duration, n)
	start := time.Now()
	deadline := start.Add(d)
	for w := 0; w < n; w++ {
		wg.Go(func() {
			for ctx.Err() == nil {
				if requests > 0 {
					if left.Add(-1) < 0 {
						return
					}
				} else if time.Now().After(deadline) {
					return
				}
				t := time.Now()
				if err := fn(ctx, w); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return all, elapsed, firstErr
}

func httpProduce(ctx context.Context, o HTTPProduceOptions, base string, values [][][]byte) (ProduceRun, error) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        o.Connections,
		MaxIdleConnsPerHost: o.Connections,
		MaxConnsPerHost:     o.Connections,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	cl, err := client.New(base, client.WithHTTPClient(hc))
	if err != nil {
		return ProduceRun{}, err
	}
	topic := fmt.Sprintf("bench-http-%d", time.Now().UnixNano())
	if _, err := cl.CreateTopic(ctx, topic, int32(o.Partitions), nil); err != nil {
		return ProduceRun{}, err
	}
	defer cl.DeleteTopic(context.WithoutCancel(ctx), topic)

	// Pre-built bodies, one per connection.
	bodies := make([][]byte, o.Connections)
	for c := range bodies {
		b := []byte(`{"records":[`)
		for i, v := range values[c] {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(append(append(b, `{"value":`...), v...), '}')
		}
		bodies[c] = append(b, "]}"...)
	}
	url := cl.BaseURL() + "/v1/topics/" + topic + "/records"
	var reqs, bodyBytes atomic.Int64
	lat, elapsed, err := runLoop(ctx, o.Connections, o.Requests, o.Duration, func(ctx context.Context, c int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[c]))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			return fmt.Errorf("produce: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(b))
		}
		// Read the answer to its end, so the connection is reused.
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		reqs.Add(1)
		bodyBytes.Add(int64(len(bodies[c])))
		return nil
	})
	if err != nil {
		return ProduceRun{}, err
	}
	run := ProduceRun{Requests: reqs.Load(), Records: reqs.Load() * int64(o.RecordsPerRequest),
		ValueBytes: reqs.Load() * int64(o.RecordsPerRequest*o.ValueBytes), BodyBytes: bodyBytes.Load(),
		Elapsed: elapsed, Latencies: lat}
	// Every acknowledged record must be in the log.
	t, err := cl.DescribeTopic(ctx, topic)
	if err != nil {
		return ProduceRun{}, err
	}
	var n int64
	for _, p := range t.Partitions {
		n += p.HighWatermark - p.LogStartOffset
	}
	if n != run.Records {
		return ProduceRun{}, fmt.Errorf("the topic holds %d records; %d were acknowledged", n, run.Records)
	}
	return run, nil
}

// inProcessProduce appends the records of the HTTP requests on the
// embedded log, the way the produce handler does once it has decoded a
// request: spread over the partitions round-robin, each partition's
// records framed as one batch and the partitions produced concurrently.
func inProcessProduce(ctx context.Context, o HTTPProduceOptions, log stream.Log, topic string, values [][][]byte) (ProduceRun, error) {
	if _, err := log.CreateTopic(ctx, topic, int32(o.Partitions), nil); err != nil {
		return ProduceRun{}, err
	}
	var (
		codecs record.Codecs
		rr     stream.RoundRobin
		reqs   atomic.Int64
	)
	// Per writer: the records by partition, and a batch buffer per
	// partition.
	type writer struct {
		parts [][]record.Record
		bufs  [][]byte
	}
	ws := make([]writer, o.Connections)
	for i := range ws {
		ws[i] = writer{parts: make([][]record.Record, o.Partitions), bufs: make([][]byte, o.Partitions)}
	}
	lat, elapsed, err := runLoop(ctx, o.Connections, o.Requests, o.Duration, func(ctx context.Context, c int) error {
		w := &ws[c]
		now := time.Now().UnixMilli()
		for p := range w.parts {
			w.parts[p] = w.parts[p][:0]
		}
		for _, v := range values[c] {
			p := rr.Next(int32(o.Partitions))
			w.parts[p] = append(w.parts[p], record.Record{Value: v, Timestamp: now})
		}
		var wg sync.WaitGroup
		errs := make([]error, o.Partitions)
		for p := range w.parts {
			if len(w.parts[p]) == 0 {
				continue
			}
			wg.Go(func() {
				b, err := codecs.AppendBatch(w.bufs[p][:0], w.parts[p], record.BatchOptions{})
				if err != nil {
					errs[p] = err
					return
				}
				w.bufs[p] = b
				_, errs[p] = log.Produce(ctx, topic, int32(p), b)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		reqs.Add(1)
		return nil
	})
	if err != nil {
		return ProduceRun{}, err
	}
	return ProduceRun{Requests: reqs.Load(), Records: reqs.Load() * int64(o.RecordsPerRequest),
		ValueBytes: reqs.Load() * int64(o.RecordsPerRequest*o.ValueBytes), Elapsed: elapsed, Latencies: lat}, nil
}

func printHTTPHeader(o HTTPProduceOptions, target string) {
	w := o.Out
	host, _ := os.Hostname()
	fmt.Fprintf(w, "# sluice bench produce --http\n\nhost %s, %s/%s, %d CPUs, Go %s, %s\n\n", host, runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	where := "embedded in this process, " + target
	if o.Server != "" {
		where = target + " (with its own fsync policy; the in-process runs use the one below)"
	}
	run := o.Duration.String()
	if o.Requests > 0 {
		run = fmt.Sprintf("%d requests", o.Requests)
	}
	fmt.Fprintf(w, "- server: %s\n- fsync=%s, %d connections (in process: %d writers), %d records per request, %d-byte JSON string values, %d partitions, %s per run, %d runs of each\n",
		where, o.Fsync, o.Connections, o.Connections, o.RecordsPerRequest, o.ValueBytes, o.Partitions, run, o.Runs)
}

func printHTTPReport(o HTTPProduceOptions, rep *HTTPProduceReport) {
	w := o.Out
	fmt.Fprintf(w, "\n| medians over %d runs | records/s | MB/s (values) | requests/s | p50 | p99 |\n|---|---|---|---|---|---|\n", len(rep.Runs))
	row := func(name string, get func(ProducePair) ProduceRun) {
		med := func(f func(ProduceRun) float64) float64 {
			return rep.median(func(p ProducePair) float64 { return f(get(p)) })
		}
		dur := func(f func(ProduceRun) time.Duration) string {
			return roundLatency(time.Duration(med(func(r ProduceRun) float64 { return float64(f(r)) })))
		}
		fmt.Fprintf(w, "| %s | %s | %.1f | %.0f | %s | %s |\n", name,
			groupThousands(med(ProduceRun.RecordsPerSec)), med(ProduceRun.ValueMBPerSec),
			med(func(r ProduceRun) float64 { return float64(r.Requests) / r.Elapsed.Seconds() }),
			dur(func(r ProduceRun) time.Duration { return r.Percentile(0.5) }),
			dur(func(r ProduceRun) time.Duration { return r.Percentile(0.99) }))
	}
	row("HTTP: POST /v1/topics/{topic}/records", func(p ProducePair) ProduceRun { return p.HTTP })
	row("in process: AppendBatch + stream.Log.Produce", func(p ProducePair) ProduceRun { return p.InProcess })
	fmt.Fprintf(w, "\n**HTTP / in process: %.2f** (median of the runs' ratios; HTTP request bodies: %.1f MB/s)\n", rep.Ratio(),
		rep.median(func(p ProducePair) float64 { return float64(p.HTTP.BodyBytes) / 1e6 / p.HTTP.Elapsed.Seconds() }))
}

// groupThousands writes n rounded, with commas between thousands.
func groupThousands(n float64) string {
	s := fmt.Sprintf("%.0f", n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func roundLatency(d time.Duration) string {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}
