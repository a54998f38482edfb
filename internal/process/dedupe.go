package process

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/google/cel-go/common/types"
)

// pruneSteps is how many of the oldest keys each record looks at for
// expiry: more than the one key a record can add, so expired keys drain
// faster than they arrive.
const pruneSteps = 4

// dedupeProc drops a record whose key was kept within window of it, by
// the records' timestamps (event time, not the time they are processed).
//
// The state is in memory: a restart, or a pipeline that is changed and
// recompiled, forgets every key, and records replayed after a crash pass
// again (at-least-once delivery makes duplicates possible there anyway).
// A key is remembered with the timestamp of the last record of it that
// was kept; duplicates do not extend the window. Keys older than window
// behind the newest timestamp seen are forgotten, a few with every
// record, and past MaxKeys the longest-remembered key goes first: a
// duplicate that arrives later than that passes.
type dedupeProc struct {
	key    *program
	window int64 // nanoseconds
	max    int

	seen map[string]int64 // key -> timestamp of the record kept
	// fifo orders the keys by when they were remembered; an entry whose
	// timestamp no longer matches seen was refreshed and is moved to the
	// back when it reaches the front.
	fifo []dedupeEntry
	head int
	// newest is the latest timestamp seen, the clock keys expire by.
	newest int64
}

type dedupeEntry struct {
	key string
	ts  int64
}

func (p *dedupeProc) process(ctx context.Context, c *Chain) (bool, error) {
	out, err := p.key.eval(ctx, &c.act)
	if err != nil {
		return false, err
	}
	var key string
	switch t := out.(type) {
	case types.Bytes:
		key = string(t)
	case types.Null:
		return false, errors.New("dedupe key is null")
	default:
		if key, err = stringify(out); err != nil {
			return false, err
		}
	}
	ts := nanos(c.act.view.r.Timestamp)
	return p.observe(key, ts), nil
}

// observe records key at ts and reports whether the record is kept.
func (p *dedupeProc) observe(key string, ts int64) bool {
	if ts > p.newest {
		p.newest = ts
	}
	p.prune()
	prev, ok := p.seen[key]
	if ok {
		d := ts - prev
		if d < 0 {
			d = -d
		}
		if d <= p.window {
			return false
		}
		if ts > prev {
			p.seen[key] = ts // the entry in fifo goes to the back when met
		}
		return true
	}
	for len(p.seen) >= p.max {
		p.evict()
	}
	p.seen[key] = ts
	p.push(dedupeEntry{key, ts})
	return true
}

func (p *dedupeProc) push(e dedupeEntry) {
	if p.head > 0 && p.head >= len(p.fifo)/2 {
		// Reclaim the consumed front instead of growing forever.
		n := copy(p.fifo, p.fifo[p.head:])
		clear(p.fifo[n:])
		p.fifo = p.fifo[:n]
		p.head = 0
	}
	p.fifo = append(p.fifo, e)
}

func (p *dedupeProc) pop() dedupeEntry {
	e := p.fifo[p.head]
	p.fifo[p.head] = dedupeEntry{}
	p.head++
	return e
}

// prune forgets up to pruneSteps expired keys from the front.
func (p *dedupeProc) prune() {
	limit := int64(math.MinInt64)
	if p.newest > math.MinInt64+p.window {
		limit = p.newest - p.window
	}
	for range pruneSteps {
		if p.head == len(p.fifo) {
			return
		}
		e := p.fifo[p.head]
		ts := p.seen[e.key]
		if ts != e.ts {
			p.pop()
			p.push(dedupeEntry{e.key, ts}) // refreshed: remembered anew
			continue
		}
		if ts >= limit {
			return
		}
		p.pop()
		delete(p.seen, e.key)
	}
}

// evict forgets the key remembered longest ago.
func (p *dedupeProc) evict() {
	e := p.pop()
	delete(p.seen, e.key)
}

// nanos is t in Unix nanoseconds, clamped to a range in which sums and
// differences of two stay finite (UnixNano is undefined outside about
// 1678 to 2262, and a record's timestamp can be anything).
func nanos(t time.Time) int64 {
	const lim = math.MaxInt64 / 4
	switch {
	case t.Year() < 1679:
		return -lim
	case t.Year() > 2261:
		return lim
	}
	return t.UnixNano()
}
