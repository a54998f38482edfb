package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/stream"
	"github.com/sluice-dev/sluice/internal/topic"
)

// Produce endpoints.
//
//	POST /v1/topics/{topic}/records                  native: application/json or application/x-ndjson
//	POST /topics/{topic}                             Kafka REST Proxy v2: json or binary embedded format
//	POST /topics/{topic}/partitions/{partition}      the same, every record to one partition
//
// A request is all or nothing as far as its input goes: the whole body is
// decoded and every record checked (size against the topic's
// max.message.bytes, base64, partition, field types) before any record is
// produced, and an invalid record fails the request with an error naming its
// index. Valid records are grouped by partition, each partition's records
// framed as few RecordBatch v2 batches as max.message.bytes allows, and the
// partitions produced concurrently; the answer comes once every batch is
// acknowledged under the log's durability policy, with the offsets in
// request order. Keyed records go to stream.KeyPartition (Kafka's default
// partitioner), unkeyed ones round-robin over the topic's partitions.
//
// The handlers reuse their buffers across requests (see producer): the
// records of a request live in a few large blocks, batches are built in pooled
// buffers, and the response is written without reflection.

func (a *API) registerProduce(mux *http.ServeMux) {
	a.handle(mux, "POST /v1/topics/{topic}/records", a.produceNative)
	a.handle(mux, "POST /topics/{topic}", a.rest(a.produceRESTProxy))
	a.handle(mux, "POST /topics/{topic}/partitions/{partition}", a.rest(a.produceRESTProxy))
}

// produceNative serves POST /v1/topics/{topic}/records.
//
// The body is {"records": [record, ...]} (Content-Type application/json,
// the default when there is none) or one record object per line
// (application/x-ndjson). A record object has:
//
//	key             string: the key's UTF-8 bytes; null or absent: no key
//	key_base64      string: a binary key, base64 (standard alphabet, padded)
//	value           any JSON, stored as its compact encoding; null or absent: a null value
//	value_base64    string: a binary value, base64
//	headers         {"name": "value", ...}: string values; null: a null header value
//	headers_base64  {"name": "base64", ...}: binary header values
//	partition       integer: the partition; absent: chosen by key, or round-robin
//	timestamp       integer: Unix milliseconds; absent: the time of the request
//
// The answer is 200 {"offsets": [{"partition": 3, "offset": 1207}, ...]},
// one per record, in request order.
func (a *API) produceNative(w http.ResponseWriter, r *http.Request) error {
	mt, err := mediaType(r)
	if err != nil {
		return err
	}
	var f bodyFormat
	switch mt {
	case "", mediaJSON:
		f = formatJSON
	case mediaNDJSON, "application/ndjson":
		f = formatNDJSON
	default:
		return errorf(http.StatusUnsupportedMediaType, "Content-Type %q is not supported; send %s or %s", mt, mediaJSON, mediaNDJSON)
	}
	name := r.PathValue("topic")
	p, res, err := a.produce(w, r, name, f, -1)
	if err != nil {
		return err
	}
	defer a.prod.putRequest(p)
	if err := res.firstErr(); err != nil {
		if ok := res.succeeded(); ok > 0 {
			return fmt.Errorf("%w (the records for %d other partitions were written; their offsets are not reported)", err, ok)
		}
		return err
	}
	out := append(p.out[:0], `{"offsets":[`...)
	for i := range p.recs {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"partition":`...)
		out = strconv.AppendInt(out, int64(p.recs[i].partition), 10)
		out = append(out, `,"offset":`...)
		out = strconv.AppendInt(out, p.recs[i].offset, 10)
		out = append(out, '}')
	}
	out = append(out, "]}\n"...)
	p.out = out
	writeRaw(w, mediaJSON, out)
	return nil
}

// produceRESTProxy serves the Kafka REST Proxy v2 produce endpoints,
// POST /topics/{topic} and POST /topics/{topic}/partitions/{partition}.
//
// The body is {"records": [{"key": ..., "value": ..., "partition": ...}]}
// in the json embedded format (application/vnd.kafka.json.v2+json: key and
// value are any JSON, each stored as its compact JSON encoding, so the key
// "a" is stored as the three bytes "a" with its quotes) or the binary one
// (application/vnd.kafka.binary.v2+json, or the format-less
// application/vnd.kafka.v2+json: base64 strings). key_schema,
// value_schema and their _id fields may be present but must be null.
//
// The answer is 200 {"key_schema_id": null, "value_schema_id": null,
// "offsets": [{"partition", "offset", "error_code", "error"}, ...]}, in
// application/vnd.kafka.v2+json, as REST Proxy gives it. When producing to
// some partitions fails after others succeeded, the records of the failed
// ones carry error_code 1 (or 2 when retrying may succeed) and a message,
// with null partition and offset. Errors are REST Proxy's: 40401 unknown
// topic, 40402 unknown partition, 42201 and 42202 invalid keys and values,
// 422 other invalid records, 415 an unsupported Content-Type.
func (a *API) produceRESTProxy(w http.ResponseWriter, r *http.Request) error {
	mt, err := mediaType(r)
	if err != nil {
		return err
	}
	var f bodyFormat
	switch mt {
	case mediaRESTJSON:
		f = formatRESTJSON
	case mediaRESTBinary, mediaRESTV2, "application/vnd.kafka+json", "application/vnd.kafka.binary+json":
		f = formatRESTBinary
	case "application/vnd.kafka.avro.v2+json", "application/vnd.kafka.protobuf.v2+json", "application/vnd.kafka.jsonschema.v2+json":
		return errorf(http.StatusUnsupportedMediaType,
			"Content-Type %q needs a schema registry, which Sluice does not have; send %s or %s", mt, mediaRESTJSON, mediaRESTBinary)
	default:
		return errorf(http.StatusUnsupportedMediaType, "Content-Type %q is not supported; send %s or %s", mt, mediaRESTJSON, mediaRESTBinary)
	}
	partition := int32(-1)
	if s := r.PathValue("partition"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: partition %q", stream.ErrUnknownPartition, s)
		}
		partition = int32(n)
	}
	p, res, err := a.produce(w, r, r.PathValue("topic"), f, partition)
	if err != nil {
		return err
	}
	defer a.prod.putRequest(p)
	if err := res.firstErr(); err != nil && res.succeeded() == 0 {
		return err
	}
	out := append(p.out[:0], `{"key_schema_id":null,"value_schema_id":null,"offsets":[`...)
	for i := range p.recs {
		rec := &p.recs[i]
		if i > 0 {
			out = append(out, ',')
		}
		if err := res.errs[rec.partition]; err != nil {
			code := 1 // REST Proxy: a non-retriable Kafka error
			if errors.Is(err, stream.ErrUnavailable) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				code = 2 // retriable
			}
			msg, _ := json.Marshal(err.Error())
			out = append(out, `{"partition":null,"offset":null,"error_code":`...)
			out = strconv.AppendInt(out, int64(code), 10)
			out = append(out, `,"error":`...)
			out = append(out, msg...)
			out = append(out, '}')
			continue
		}
		out = append(out, `{"partition":`...)
		out = strconv.AppendInt(out, int64(rec.partition), 10)
		out = append(out, `,"offset":`...)
		out = strconv.AppendInt(out, rec.offset, 10)
		out = append(out, `,"error_code":null,"error":null}`...)
	}
	out = append(out, "]}\n"...)
	p.out = out
	writeRaw(w, mediaRESTV2, out)
	return nil
}

func writeRaw(w http.ResponseWriter, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// produceResult says how producing each partition went.
type produceResult struct {
	// errs holds, by partition, the error producing to it; nil for a
	// partition that succeeded or had no records.
	errs map[int32]error
	ok   int // partitions that succeeded
}

func (r produceResult) succeeded() int { return r.ok }

// firstErr returns the error of the lowest failed partition, or nil.
func (r produceResult) firstErr() error {
	first := int32(-1)
	for p := range r.errs {
		if first < 0 || p < first {
			first = p
		}
	}
	if first < 0 {
		return nil
	}
	return r.errs[first]
}

// produce decodes r's body in format f and produces its records to topic
// (to partition, unless it is -1). A nil error means the body was valid and
// producing was attempted: the returned request holds the records with
// their partitions and offsets (for those whose partition succeeded), and
// the caller returns it with putRequest.
func (a *API) produce(w http.ResponseWriter, r *http.Request, name string, f bodyFormat, partition int32) (*produceRequest, produceResult, error) {
	ctx := r.Context()
	entry, t, err := a.prod.topic(ctx, a.log, name, a.opts.Now())
	if err != nil {
		return nil, produceResult{}, err
	}
	if partition >= t.partitions {
		return nil, produceResult{}, fmt.Errorf("%w: partition %d of topic %q, which has %d partitions", stream.ErrUnknownPartition, partition, name, t.partitions)
	}
	limit := a.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, produceResult{}, errorf(http.StatusRequestEntityTooLarge,
			"request body of %d bytes is larger than the limit of %d bytes", r.ContentLength, limit)
	}
	p := a.prod.getRequest()
	err = p.decode(http.MaxBytesReader(w, r.Body, limit), f, decodeLimits{
		topic:           name,
		partitions:      t.partitions,
		maxMessageBytes: t.maxMessageBytes,
		now:             a.opts.Now().UnixMilli(),
		partition:       partition,
	})
	if err != nil {
		a.prod.putRequest(p)
		return nil, produceResult{}, err
	}
	res := a.produceRecords(ctx, name, p, t, &entry.rr)
	if n := len(p.recs) - res.failedRecords(p); n > 0 {
		a.metrics.producedRecords.WithLabelValues(name).Add(float64(n))
	}
	return p, res, nil
}

func (r produceResult) failedRecords(p *produceRequest) int {
	if len(r.errs) == 0 {
		return 0
	}
	n := 0
	for i := range p.recs {
		if r.errs[p.recs[i].partition] != nil {
			n++
		}
	}
	return n
}

// produceRecords assigns the records their partitions, groups them by
// partition and produces each partition's records, the partitions
// concurrently.
func (a *API) produceRecords(ctx context.Context, name string, p *produceRequest, t topicLimits, rr *stream.RoundRobin) produceResult {
	n := int(t.partitions)
	// Count the records of each partition, then lay out their indices by
	// partition, in request order within each (a counting sort).
	p.starts = slices.Grow(p.starts[:0], n+1)[:n+1]
	clear(p.starts)
	for i := range p.recs {
		rec := &p.recs[i]
		if rec.partition < 0 {
			if rec.key.n >= 0 {
				rec.partition = stream.KeyPartition(p.bytes(rec.key), t.partitions)
			} else {
				rec.partition = rr.Next(t.partitions)
			}
		}
		p.starts[rec.partition+1]++
	}
	jobs := 0
	for i := 1; i <= n; i++ {
		if p.starts[i] > 0 {
			jobs++
		}
		p.starts[i] += p.starts[i-1]
	}
	p.order = slices.Grow(p.order[:0], len(p.recs))[:len(p.recs)]
	for i := range p.recs {
		part := p.recs[i].partition
		p.order[p.starts[part]] = int32(i)
		p.starts[part]++
	}
	// starts[part] is now where partition part ends; it starts where the
	// previous one ends.
	span := func(part int) []int32 {
		from := int32(0)
		if part > 0 {
			from = p.starts[part-1]
		}
		return p.order[from:p.starts[part]]
	}

	var res produceResult
	if jobs == 1 {
		part := p.recs[0].partition
		if err := a.producePartition(ctx, name, part, span(int(part)), p, t.maxMessageBytes); err != nil {
			res.errs = map[int32]error{part: err}
		} else {
			res.ok = 1
		}
		return res
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed map[int32]error
		ok     atomic.Int32
	)
	for part := 0; part < n; part++ {
		idx := span(part)
		if len(idx) == 0 {
			continue
		}
		wg.Go(func() {
			if err := a.producePartition(ctx, name, int32(part), idx, p, t.maxMessageBytes); err != nil {
				mu.Lock()
				if failed == nil {
					failed = map[int32]error{}
				}
				failed[int32(part)] = err
				mu.Unlock()
				return
			}
			ok.Add(1)
		})
	}
	wg.Wait()
	return produceResult{errs: failed, ok: int(ok.Load())}
}

// producePartition produces the records at idx, all of partition part, in
// order, in batches of at most maxBytes, and fills in their offsets.
func (a *API) producePartition(ctx context.Context, name string, part int32, idx []int32, p *produceRequest, maxBytes int) error {
	s := a.prod.getScratch()
	defer a.prod.putScratch(s)
	for len(idx) > 0 {
		// Take the records that fit in one batch. Their encoded sizes
		// depend on their timestamp and offset deltas within the batch.
		base := p.recs[idx[0]].timestamp
		size, k, nh := record.HeaderSize, 0, 0
		for ; k < len(idx); k++ {
			rec := &p.recs[idx[k]]
			n := recordSize(rec.timestamp-base, int32(k), rec.key.n, rec.value.n, p.hdrs[rec.hdrOff:rec.hdrOff+rec.hdrN])
			if k > 0 && size+n > maxBytes {
				break
			}
			size += n
			nh += int(rec.hdrN)
		}
		s.recs = s.recs[:0]
		s.hdrs = slices.Grow(s.hdrs[:0], nh) // never reallocated below: Headers alias it
		for _, i := range idx[:k] {
			rec := &p.recs[i]
			out := record.Record{Key: p.bytes(rec.key), Value: p.bytes(rec.value), Timestamp: rec.timestamp}
			if rec.hdrN > 0 {
				from := len(s.hdrs)
				for _, h := range p.hdrs[rec.hdrOff : rec.hdrOff+rec.hdrN] {
					s.hdrs = append(s.hdrs, record.RecordHeader{Key: h.key, Value: p.bytes(h.value)})
				}
				out.Headers = s.hdrs[from:len(s.hdrs):len(s.hdrs)]
			}
			s.recs = append(s.recs, out)
		}
		var err error
		if s.buf, err = a.prod.codecs.AppendBatch(s.buf[:0], s.recs, record.BatchOptions{}); err != nil {
			return fmt.Errorf("produce to %s/%d: %w", name, part, err)
		}
		res, err := a.log.Produce(ctx, name, part, s.buf)
		if err != nil {
			return fmt.Errorf("produce to %s/%d: %w", name, part, err)
		}
		for j, i := range idx[:k] {
			p.recs[i].offset = res.BaseOffset + int64(j)
		}
		idx = idx[k:]
	}
	return nil
}

// producer is the produce path's state: per-topic partitioning state and
// limits, the batch codecs and the pools of buffers requests reuse. The
// zero value is ready to use.
type producer struct {
	codecs  record.Codecs
	topics  sync.Map  // topic name -> *topicEntry
	reqs    sync.Pool // *produceRequest
	scratch sync.Pool // *batchScratch
}

// topicEntry is what the produce path keeps per topic.
type topicEntry struct {
	rr     stream.RoundRobin // spreads the topic's unkeyed records
	limits atomic.Pointer[topicLimits]
}

// topicLimits is what producing to a topic needs to know about it,
// remembered for topicCacheTTL so that a request does not describe the
// topic each time. The topic handlers forget it when they change a topic;
// changes made elsewhere (another server, kafka clients) are seen within
// the TTL, and the log enforces max.message.bytes itself in any case.
type topicLimits struct {
	partitions      int32
	maxMessageBytes int
	expires         time.Time
}

const topicCacheTTL = time.Second

// topic returns the produce state and limits of topic name.
func (pr *producer) topic(ctx context.Context, log stream.Log, name string, now time.Time) (*topicEntry, topicLimits, error) {
	v, ok := pr.topics.Load(name)
	if ok {
		if l := v.(*topicEntry).limits.Load(); l != nil && now.Before(l.expires) {
			return v.(*topicEntry), *l, nil
		}
	}
	info, err := log.DescribeTopic(ctx, name)
	if err != nil {
		if errors.Is(err, stream.ErrUnknownTopic) {
			pr.topics.Delete(name)
		}
		return nil, topicLimits{}, err
	}
	if len(info.Partitions) == 0 {
		return nil, topicLimits{}, fmt.Errorf("%w: topic %q has no partitions", stream.ErrUnavailable, name)
	}
	l := &topicLimits{partitions: int32(len(info.Partitions)), maxMessageBytes: int(topic.DefaultConfig().MaxMessageBytes),
		expires: now.Add(topicCacheTTL)}
	if n, err := strconv.Atoi(info.Config[topic.KeyMaxMessageBytes]); err == nil && n > 0 {
		l.maxMessageBytes = n
	}
	if !ok {
		v, _ = pr.topics.LoadOrStore(name, new(topicEntry))
	}
	e := v.(*topicEntry)
	e.limits.Store(l)
	return e, *l, nil
}

// forget drops what the producer remembers of a topic that was changed
// (deleted: drop it all).
func (pr *producer) forget(name string, deleted bool) {
	if deleted {
		pr.topics.Delete(name)
		return
	}
	if v, ok := pr.topics.Load(name); ok {
		v.(*topicEntry).limits.Store(nil)
	}
}

// Bounds on what pools keep, so that one huge request does not pin its
// buffers for every later small one.
const (
	maxPooledBytes   = 8 << 20
	maxPooledRecords = 1 << 16
)

func (pr *producer) getRequest() *produceRequest {
	if p, _ := pr.reqs.Get().(*produceRequest); p != nil {
		return p
	}
	return new(produceRequest)
}

func (pr *producer) putRequest(p *produceRequest) {
	if cap(p.recs) > maxPooledRecords || cap(p.out) > maxPooledBytes ||
		p.maxValue > decoderRetainLimit || cap(p.hdrs) > maxPooledRecords || len(p.starts) > maxPooledRecords {
		return
	}
	clear(p.hdrs) // drop the header keys
	p.reset()
	pr.reqs.Put(p)
}

// batchScratch is what producing one partition's batches reuses.
type batchScratch struct {
	recs []record.Record
	hdrs []record.RecordHeader
	buf  []byte
}

func (pr *producer) getScratch() *batchScratch {
	if s, _ := pr.scratch.Get().(*batchScratch); s != nil {
		return s
	}
	return new(batchScratch)
}

func (pr *producer) putScratch(s *batchScratch) {
	if cap(s.buf) > maxPooledBytes || cap(s.recs) > maxPooledRecords || cap(s.hdrs) > maxPooledRecords {
		return
	}
	// Drop the references into the request's blocks.
	clear(s.recs[:cap(s.recs)])
	clear(s.hdrs[:cap(s.hdrs)])
	pr.scratch.Put(s)
}
