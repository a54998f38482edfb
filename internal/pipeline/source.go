package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-dev/sluice/internal/connector"
	"github.com/sluice-dev/sluice/internal/record"
	"github.com/sluice-dev/sluice/internal/resource"
	"github.com/sluice-dev/sluice/internal/stream"
)

// chunk is what one fetch of one partition yields: its records from the
// position asked for on, and where the next fetch starts. next may lie past
// the last record (control batches, records below the position).
type chunk struct {
	partition int32
	records   []*connector.Record
	next      int64
	hwm       int64
	// cost is what the chunk holds of the budget, released once its
	// records are delivered.
	cost int64
}

// source reads every partition of a topic, one fetcher goroutine each,
// into one channel. Fetchers take budget for what they hold before
// fetching, so a pipeline whose sink is slow stops reading instead of
// filling the heap: that is the backpressure.
type source struct {
	log        stream.Log
	topic      string
	budget     *budget
	fetchBytes int
	// predecode parses values as JSON in the fetchers, one goroutine per
	// partition, for pipelines that will look into them: the parse is the
	// main per-record cost, and this spreads it over the cores and
	// overlaps it with the sink's writes.
	predecode bool
	logger    *slog.Logger
	codecs    record.Codecs

	out  chan chunk
	errc chan error

	wg      sync.WaitGroup
	mu      sync.Mutex
	running map[int32]bool
}

// newSource returns the source of a pipeline of spec reading topic, with
// an in-flight budget of 4 batches' bytes (at least minInFlight).
func newSource(log stream.Log, topic string, spec *resource.PipelineSpec, logger *slog.Logger) *source {
	return &source{
		log: log, topic: topic, budget: newBudget(max(int64(spec.Batch.MaxBytes)*4, minInFlight)),
		fetchBytes: fetchBytes, predecode: parsesValues(spec), logger: logger,
		out:     make(chan chunk, 16),
		errc:    make(chan error, 1),
		running: make(map[int32]bool),
	}
}

// start starts a fetcher for partition p at offset, unless one runs.
func (s *source) start(ctx context.Context, p int32, offset int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[p] {
		return
	}
	s.running[p] = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.fetch(ctx, p, offset); err != nil && ctx.Err() == nil {
			select {
			case s.errc <- err:
			default:
			}
		}
	}()
}

// partitions returns how many partitions have fetchers.
func (s *source) partitions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.running)
}

// wait waits for every fetcher to return; the caller cancels their
// context first.
func (s *source) wait() { s.wg.Wait() }

// fetch is one partition's fetcher.
func (s *source) fetch(ctx context.Context, p int32, offset int64) error {
	var dec connector.JSONDecoder
	// recs is scratch: each record is copied into the chunk's own slab.
	var recs []record.Record
	for {
		reserve := int64(s.fetchBytes)
		if err := s.budget.acquire(ctx, reserve); err != nil {
			return nil
		}
		fr, err := s.log.Fetch(ctx, stream.FetchRequest{Topic: s.topic, Partition: p, Offset: offset,
			MaxBytes: s.fetchBytes, MaxWait: 500 * time.Millisecond})
		if err != nil {
			s.budget.release(reserve)
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, stream.ErrOffsetOutOfRange) {
				next, rerr := s.resetOffset(ctx, p, offset)
				if rerr != nil {
					return rerr
				}
				offset = next
				continue
			}
			return fmt.Errorf("read %s/%d at offset %d: %w", s.topic, p, offset, err)
		}
		c := chunk{partition: p, next: max(offset, fr.NextOffset), hwm: fr.HighWatermark}
		var cost int64
		for b := fr.Batches; len(b) > 0; {
			h, err := record.ParseHeader(b)
			if err == nil && h.Size() > len(b) {
				err = fmt.Errorf("%w: batch of %d bytes, %d fetched", record.ErrMalformed, h.Size(), len(b))
			}
			if err != nil {
				s.budget.release(reserve)
				return fmt.Errorf("read %s/%d at offset %d: %w", s.topic, p, offset, err)
			}
			// The fetch's buffer is this chunk's alone (no FetchRequest.Buf
			// is given) and nothing writes into it: the records keep it.
			recs, _, err = s.codecs.AppendRecordsInPlace(recs[:0], b[:h.Size()], record.DecodeLimits{})
			if err != nil {
				s.budget.release(reserve)
				return fmt.Errorf("read %s/%d: decode the batch at offset %d: %w", s.topic, p, h.BaseOffset, err)
			}
			b = b[h.Size():]
			slab := make([]connector.Record, 0, len(recs))
			for i := range recs {
				r := &recs[i]
				if r.Control || r.Offset < offset {
					continue
				}
				// One allocation for the batch's records, not one each;
				// the capacity is fixed, so the pointers stay valid.
				slab = append(slab, connector.Record{})
				cr := &slab[len(slab)-1]
				cr.SetValue(r.Value)
				cr.Topic, cr.Partition, cr.Offset = s.topic, p, r.Offset
				cr.Timestamp = time.UnixMilli(r.Timestamp)
				cr.Key, cr.Headers = r.Key, r.Headers
				if s.predecode {
					// An error is reported where the document is used.
					_ = cr.ParseDoc(&dec)
				}
				c.records = append(c.records, cr)
				cost += recordCost(cr, s.predecode)
			}
			clear(recs) // holds no fetch buffer past its chunk
			c.next = max(c.next, h.NextOffset())
		}
		// Trade the reservation for what the chunk holds. A first batch
		// larger than the fetch size (a fetch always returns one whole
		// batch) may exceed the whole budget; acquire grants that when
		// nothing else is held.
		s.budget.release(reserve)
		if err := s.budget.acquire(ctx, cost); err != nil {
			return nil
		}
		c.cost = cost
		if len(c.records) == 0 && c.next == offset {
			// Nothing new: report the high watermark for lag, cheaply.
			select {
			case s.out <- c:
			case <-ctx.Done():
				s.budget.release(cost)
				return nil
			}
			continue
		}
		select {
		case s.out <- c:
		case <-ctx.Done():
			s.budget.release(cost)
			return nil
		}
		offset = c.next
	}
}

// resetOffset handles a position outside the partition: below its log
// start (retention deleted records the pipeline had not read: they are
// gone, and the pipeline goes on from the oldest it can read, as Kafka's
// auto.offset.reset=earliest does, saying so in the log), or above its end
// (the topic was recreated: start over).
func (s *source) resetOffset(ctx context.Context, p int32, offset int64) (int64, error) {
	start, err := s.log.ListOffset(ctx, s.topic, p, stream.Earliest)
	if err != nil {
		return 0, fmt.Errorf("read %s/%d: find the log start: %w", s.topic, p, err)
	}
	end, err := s.log.ListOffset(ctx, s.topic, p, stream.Latest)
	if err != nil {
		return 0, fmt.Errorf("read %s/%d: find the log end: %w", s.topic, p, err)
	}
	next := start
	if offset < start {
		s.logger.Warn("records were deleted before the pipeline read them; going on from the oldest left",
			"topic", s.topic, "partition", p, "position", offset, "log_start", start, "skipped", start-offset)
	} else if offset > end {
		s.logger.Warn("position is past the end of the partition; starting over from its oldest record",
			"topic", s.topic, "partition", p, "position", offset, "log_end", end)
	} else {
		next = offset
	}
	return next, nil
}

// recordCost is what a record counts against the budget: its bytes and
// the bookkeeping around them, and for a parsed value its document, which
// takes about three times the bytes of its JSON.
func recordCost(r *connector.Record, parsed bool) int64 {
	v, _ := r.Value()
	n := int64(len(r.Key)+len(v)) + 160
	if parsed {
		n += 3 * int64(len(v))
	}
	for _, h := range r.Headers {
		n += int64(len(h.Key)+len(h.Value)) + 40
	}
	return n
}

// budget bounds the bytes a pipeline holds in flight. acquire blocks
// until n bytes are free; a request for more than the whole budget is
// granted when nothing else is held, so one oversized batch still moves.
// Requests are granted in the order they came: otherwise the fetchers of
// caught-up partitions, each holding a small reservation for its long
// poll, could keep the budget from ever being empty for a large one, and
// starve its partition (and a window's watermark with it).
type budget struct {
	mu    sync.Mutex
	cond  *sync.Cond
	limit int64
	used  int64
	// next is the ticket of the next request, serving the one whose turn
	// it is; abandoned tickets (their context ended) are skipped.
	next, serving uint64
	abandoned     map[uint64]bool
}

func newBudget(limit int64) *budget {
	b := &budget{limit: limit, abandoned: make(map[uint64]bool)}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *budget) acquire(ctx context.Context, n int64) error {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	ticket := b.next
	b.next++
	for ticket != b.serving || (b.used > 0 && b.used+n > b.limit) {
		if err := ctx.Err(); err != nil {
			b.abandon(ticket)
			return err
		}
		b.cond.Wait()
	}
	if err := ctx.Err(); err != nil {
		b.abandon(ticket)
		return err
	}
	b.used += n
	b.advance()
	return nil
}

// abandon gives up a ticket. The caller holds mu.
func (b *budget) abandon(ticket uint64) {
	if ticket == b.serving {
		b.advance()
		return
	}
	b.abandoned[ticket] = true
}

// advance passes the turn to the next ticket still waiting. The caller
// holds mu.
func (b *budget) advance() {
	b.serving++
	for b.abandoned[b.serving] {
		delete(b.abandoned, b.serving)
		b.serving++
	}
	b.cond.Broadcast()
}

func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.cond.Broadcast()
	b.mu.Unlock()
}

func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// drain waits for the fetchers to return, releasing the budget of the
// chunks they sent that nobody took; the caller cancels their contexts
// first.
func (s *source) drain() {
	done := make(chan struct{})
	go func() { s.wait(); close(done) }()
	for {
		select {
		case c := <-s.out:
			s.budget.release(c.cost)
		case <-done:
			for {
				select {
				case c := <-s.out:
					s.budget.release(c.cost)
				default:
					return
				}
			}
		}
	}
}

// parsesValues says whether a pipeline needs its records' values as
// documents, so that its fetchers should parse them (see
// source.predecode). The PostgreSQL sink reads the members it writes
// straight from the bytes, which costs less than a document.
func parsesValues(spec *resource.PipelineSpec) bool {
	return len(spec.Processors) > 0 || spec.Sink.Parquet != nil
}
