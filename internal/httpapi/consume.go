package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
)

// Consume (native):
//
//	GET /v1/topics/{topic}/partitions/{partition}/records
//	    ?offset=N|earliest|latest|@<RFC 3339>|@<Unix ms>   default earliest
//	    &max_records=1..10000                              default 1000
//	    &max_bytes=1..67108864                             default 4 MiB
//	    &timeout_ms=0..30000                               default 0
//	    &encoding=auto|base64                              default auto
//
//	-> 200 {"records": [{"partition", "offset", "timestamp", "key", "value", "headers"}, ...],
//	        "next_offset": N, "high_watermark": H}
//
// Records are read from offset on; when there are none yet the request
// waits up to timeout_ms for some and then answers with none (a long poll).
// max_bytes bounds both what is read from the log and the size of the
// records in the answer, except that the first record is always returned
// whole, so a reader always makes progress. next_offset is where to read
// next: after the last record returned, or past records that are not
// returned to clients (transaction markers). Records are rendered as
// recordjson.go describes.
//
// Errors: 400 a parameter that does not parse, 422 one out of bounds, or an
// offset outside [log start, high watermark] (the message gives the range),
// 404 an unknown topic or partition.

// Bounds and defaults of the consume parameters.
const (
	defaultMaxRecords   = 1000
	maxMaxRecords       = 10000
	defaultConsumeBytes = 4 << 20
	maxConsumeBytes     = 64 << 20
	maxPollWait         = 30 * time.Second
)

func (a *API) registerConsume(mux *http.ServeMux) {
	a.handle(mux, "GET /v1/topics/{topic}/partitions/{partition}/records", a.consumeRecords)
}

// consumeParams are the consume endpoint's query parameters.
type consumeParams struct {
	offset     offsetSpec
	maxRecords int
	maxBytes   int
	wait       time.Duration
	encoding   valueEncoding
}

func parseConsumeQuery(q url.Values) (consumeParams, error) {
	p := consumeParams{offset: offsetSpec{kind: specEarliest}}
	var err error
	if s := q.Get("offset"); s != "" {
		if p.offset, err = parseOffsetSpec("offset", s); err != nil {
			return p, err
		}
	}
	if p.maxRecords, err = intParam(q, "max_records", defaultMaxRecords, 1, maxMaxRecords); err != nil {
		return p, err
	}
	if p.maxBytes, err = intParam(q, "max_bytes", defaultConsumeBytes, 1, maxConsumeBytes); err != nil {
		return p, err
	}
	ms, err := intParam(q, "timeout_ms", 0, 0, int(maxPollWait/time.Millisecond))
	if err != nil {
		return p, err
	}
	p.wait = time.Duration(ms) * time.Millisecond
	switch e := q.Get("encoding"); e {
	case "", "auto":
	case "base64":
		p.encoding = encodingBase64
	default:
		return p, errorf(http.StatusUnprocessableEntity, "encoding: %q is not an encoding; want auto or base64", e)
	}
	return p, nil
}

// intParam returns the integer query parameter name, def when it is absent:
// 400 if it is not an integer, 422 if it is outside [lo, hi].
func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, errorf(http.StatusUnprocessableEntity, "%s: %s is out of range; want %d to %d", name, s, lo, hi)
		}
		return 0, errorf(http.StatusBadRequest, "%s: %q is not an integer", name, s)
	}
	if n < int64(lo) || n > int64(hi) {
		return 0, errorf(http.StatusUnprocessableEntity, "%s: %d is out of range; want %d to %d", name, n, lo, hi)
	}
	return int(n), nil
}

// parsePartition parses a {partition} path segment. A number that is not a
// partition of the topic is left for the log to refuse with a 404.
func parsePartition(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, errorf(http.StatusBadRequest, "partition: %q is not a partition number", s)
	}
	return int32(n), nil
}

func (a *API) consumeRecords(w http.ResponseWriter, r *http.Request) error {
	topic := r.PathValue("topic")
	partition, err := parsePartition(r.PathValue("partition"))
	if err != nil {
		return err
	}
	p, err := parseConsumeQuery(r.URL.Query())
	if err != nil {
		return err
	}
	ctx := r.Context()
	offset, err := p.offset.resolve(ctx, a.log, topic, partition)
	if err != nil {
		return err
	}
	pctx, cancel, closing := a.cons.pollContext(ctx)
	defer cancel()

	out := append(make([]byte, 0, 4096), `{"records":[`...)
	start, n := len(out), 0
	res, err := a.readRecords(pctx, topic, partition, offset, readLimits{maxRecords: p.maxRecords, maxBytes: p.maxBytes, wait: p.wait},
		func(rec *record.Record) bool {
			mark := len(out)
			if n > 0 {
				out = append(out, ',')
			}
			out = appendNativeRecord(out, partition, rec, p.encoding)
			if n > 0 && len(out)-start > p.maxBytes {
				out = out[:mark]
				return false
			}
			n++
			return true
		})
	switch {
	case err == nil:
	case closing() && errors.Is(err, context.Canceled):
		// The API is closing: answer the long poll with what it has.
		if res.hwm, err = a.log.ListOffset(ctx, topic, partition, stream.Latest); err != nil {
			return err
		}
	case errors.Is(err, stream.ErrOffsetOutOfRange):
		return a.offsetOutOfRange(ctx, topic, partition, offset, err)
	default:
		return err
	}
	out = append(out, `],"next_offset":`...)
	out = strconv.AppendInt(out, res.next, 10)
	out = append(out, `,"high_watermark":`...)
	out = strconv.AppendInt(out, res.hwm, 10)
	out = append(out, "}\n"...)
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	return nil
}

// offsetOutOfRange describes err, the log's refusal of offset, with the
// partition's valid range.
func (a *API) offsetOutOfRange(ctx context.Context, topic string, partition int32, offset int64, err error) error {
	ti, derr := a.log.DescribeTopic(ctx, topic)
	if derr != nil {
		return err
	}
	for _, p := range ti.Partitions {
		if p.Partition == partition {
			return errorf(http.StatusUnprocessableEntity,
				"offset %d is out of range for %s/%d: it holds offsets %d to %d (the high watermark, where a read waits for new records)",
				offset, topic, partition, p.LogStartOffset, p.HighWatermark)
		}
	}
	return err
}

// readLimits bound one partition read.
type readLimits struct {
	maxRecords int
	// maxBytes bounds the batches fetched from the log (the first is
	// always returned whole); emit bounds what it renders itself.
	maxBytes int
	// wait is how long to wait for records when there are none yet.
	wait time.Duration
}

// readResult is where a partition read ended.
type readResult struct {
	// next is the offset to read from next: after the last record handed
	// to emit, or past the records skipped.
	next     int64
	hwm      int64
	logStart int64
	count    int
}

// errStopRead stops DecodeBatch once a read has what it needs.
var errStopRead = errors.New("read complete")

// readRecords reads a partition from offset on and hands emit each record
// clients see, in offset order: not the records of a batch below offset
// (a fetch may start mid-batch) nor control records (transaction markers).
// emit renders the record at once (its bytes are valid only during the
// call) and returns false if it does not take it, which ends the read
// before that record; it must take the first. The read ends after
// lim.maxRecords records, or after the batches of one fetch. When a fetch
// finds nothing it waits up to lim.wait; when a fetch finds only records
// that are skipped, the read goes on from past them until lim.wait is up.
//
// On error the result still says how far the read got.
func (a *API) readRecords(ctx context.Context, topic string, partition int32, offset int64, lim readLimits, emit func(*record.Record) bool) (readResult, error) {
	res := readResult{next: offset}
	deadline := time.Now().Add(lim.wait)
	for {
		from := res.next
		fr, err := a.log.Fetch(ctx, stream.FetchRequest{Topic: topic, Partition: partition, Offset: from,
			MaxBytes: lim.maxBytes, MaxWait: max(time.Until(deadline), 0)})
		if err != nil {
			return res, err
		}
		res.hwm, res.logStart = fr.HighWatermark, fr.LogStartOffset
		if len(fr.Batches) == 0 {
			return res, nil
		}
		stopped := false
		for b := fr.Batches; len(b) > 0 && !stopped; {
			h, err := record.ParseHeader(b)
			if err == nil && h.Size() > len(b) {
				err = fmt.Errorf("%w: batch of %d bytes, %d fetched", record.ErrMalformed, h.Size(), len(b))
			}
			if err != nil {
				return res, fmt.Errorf("read %s/%d at offset %d: %w", topic, partition, res.next, err)
			}
			batch := b[:h.Size()]
			b = b[h.Size():]
			_, err = a.cons.codecs.DecodeBatch(batch, record.DecodeLimits{}, func(rec record.Record) error {
				if rec.Offset < from || rec.Control {
					return nil
				}
				if res.count >= lim.maxRecords || !emit(&rec) {
					stopped = true
					return errStopRead
				}
				res.count++
				res.next = rec.Offset + 1
				return nil
			})
			if err != nil && !errors.Is(err, errStopRead) {
				return res, fmt.Errorf("read %s/%d: decode the batch at offset %d: %w", topic, partition, h.BaseOffset, err)
			}
			if !stopped {
				res.next = max(res.next, h.NextOffset())
			}
		}
		if res.count > 0 || stopped || res.next <= from || !time.Now().Before(deadline) {
			return res, nil
		}
	}
}
