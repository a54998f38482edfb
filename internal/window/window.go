// Package window holds the state of keyed event-time windows: which windows
// an event falls in, the aggregates of every open window of every group
// key, the watermarks that close them, and the snapshot that checkpoints
// all of it with the source positions. It knows nothing of records or
// expressions: the pipeline's window processor evaluates those and hands
// the Operator plain keys, times and values.
//
// Times are milliseconds since the Unix epoch, as Kafka timestamps are.
// Windows are half-open, [Start, End).
package window

import (
	"container/heap"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/aggregate"
)

// Kind is a window type.
type Kind uint8

// Window types.
const (
	// Tumbling windows of Size, aligned to the epoch, one per event.
	Tumbling Kind = iota + 1
	// Hopping windows of Size starting every Advance: an event falls in
	// Size/Advance of them (rounded up).
	Hopping
	// Session windows per key: events less than Gap apart share one, from
	// the first event to the last plus Gap.
	Session
)

func (k Kind) String() string {
	switch k {
	case Tumbling:
		return "tumbling"
	case Hopping:
		return "hopping"
	case Session:
		return "session"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind reads a window type as specs write it.
func ParseKind(s string) (Kind, error) {
	for _, k := range []Kind{Tumbling, Hopping, Session} {
		if s == k.String() {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown window type %q: want tumbling, hopping or session", s)
}

// DefaultMaxBytes is Config.MaxBytes when it is zero.
const DefaultMaxBytes = 256 << 20

// maxEventTime bounds event times, so that window arithmetic cannot
// overflow: about 36 million years either side of the epoch.
const maxEventTime = 1 << 60

// maxWindowsPerEvent bounds Size/Advance of hopping windows: each event
// updates that many windows.
const maxWindowsPerEvent = 1000

// Config defines an Operator. Durations are milliseconds.
type Config struct {
	Kind     Kind
	Size     int64 // tumbling, hopping
	Advance  int64 // hopping
	Gap      int64 // session
	Lateness int64
	// IdleTimeout is how long a partition that has nothing more to read
	// is waited for before the watermark moves on without it.
	IdleTimeout time.Duration
	Aggregates  []aggregate.Spec
	// MaxBytes bounds the state; an event that would grow it past the
	// bound fails with ErrStateFull.
	MaxBytes int64
}

// Validate checks the sizes.
func (c *Config) Validate() error {
	switch c.Kind {
	case Tumbling:
		if c.Size <= 0 {
			return errors.New("size must be positive")
		}
	case Hopping:
		if c.Size <= 0 || c.Advance <= 0 {
			return errors.New("size and advance must be positive")
		}
		if c.Advance > c.Size {
			return fmt.Errorf("advance %dms is longer than size %dms: events between windows would fall in none", c.Advance, c.Size)
		}
		if (c.Size+c.Advance-1)/c.Advance > maxWindowsPerEvent {
			return fmt.Errorf("size/advance is %d: at most %d windows per event", (c.Size+c.Advance-1)/c.Advance, maxWindowsPerEvent)
		}
	case Session:
		if c.Gap <= 0 {
			return errors.New("gap must be positive")
		}
	default:
		return fmt.Errorf("unknown window kind %d", c.Kind)
	}
	if c.Lateness < 0 {
		return errors.New("allowed lateness must not be negative")
	}
	for i, a := range c.Aggregates {
		if err := a.Validate(); err != nil {
			return fmt.Errorf("aggregate %d: %w", i, err)
		}
	}
	return nil
}

// ErrLate is returned by Add for an event of a window that has closed.
var ErrLate = errors.New("late event")

// ErrStateFull is returned by Add when the state would outgrow MaxBytes.
var ErrStateFull = errors.New("window state is full")

// Input is one aggregate's argument for one event: Num for numeric
// aggregates, Key for count_distinct; count takes neither.
type Input struct {
	Num float64
	Key []byte
}

// Result is a window's aggregates, in Config.Aggregates order.
type Result struct {
	Key        string
	Start, End int64
	Values     []any
}

// Operator holds the windows of every key. It is not safe for concurrent
// use: a pipeline drives it from one goroutine.
type Operator struct {
	cfg    Config
	groups map[string]*group
	parts  map[int32]*partition
	// partList holds the same partitions, for Advance's loop over them
	// at every event.
	partList []*partition
	// watermark closes windows whose end it has reached; it only grows.
	watermark int64
	// closing orders open windows by end, one entry each (plus entries of
	// sessions merged away, skipped when popped). A session's entry may
	// hold an end it has since extended: close pushes it back.
	closing closeHeap
	bytes   int64
	// dirty windows changed since the last Updates.
	dirty map[*win]struct{}
}

type group struct {
	key  string
	wins []*win // sorted by start
}

type win struct {
	g          *group
	start, end int64
	states     []aggregate.State
	size       int64
}

type partition struct {
	maxTime int64 // MinInt64 until an event arrives
	// caughtUp is when the partition was last found with nothing more to
	// read, zero while it has.
	caughtUp time.Time
}

// Per-window and per-key overheads in the size estimate: the structs,
// slice headers, map entries and heap entries.
const (
	winOverhead   = 96
	groupOverhead = 96
)

// New returns an empty Operator. cfg must be valid.
func New(cfg Config) *Operator {
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	return &Operator{
		cfg:       cfg,
		groups:    make(map[string]*group),
		parts:     make(map[int32]*partition),
		watermark: math.MinInt64,
		dirty:     make(map[*win]struct{}),
	}
}

// Watermark returns the watermark: windows that end at or before it are
// closed. It is math.MinInt64 before the first event.
func (o *Operator) Watermark() int64 { return o.watermark }

// Bytes returns the estimated size of the state.
func (o *Operator) Bytes() int64 { return o.bytes }

// Windows returns how many windows are open.
func (o *Operator) Windows() int {
	n := 0
	for _, g := range o.groups {
		n += len(g.wins)
	}
	return n
}

// AddPartition makes p one of the partitions the watermark waits for.
// Adding one twice keeps what is known of it.
func (o *Operator) AddPartition(p int32) {
	if o.parts[p] == nil {
		ps := &partition{maxTime: math.MinInt64}
		o.parts[p] = ps
		o.partList = append(o.partList, ps)
	}
}

// CaughtUp records whether partition p had nothing more to read at now.
func (o *Operator) CaughtUp(p int32, caughtUp bool, now time.Time) {
	ps := o.parts[p]
	if ps == nil {
		return
	}
	switch {
	case !caughtUp:
		ps.caughtUp = time.Time{}
	case ps.caughtUp.IsZero():
		ps.caughtUp = now
	}
}

// Late reports whether an event at t would be late: it belongs to a
// window that has closed. For tumbling and hopping windows that is its
// earliest window; a session event is late once the watermark passed its
// time, since it could otherwise extend a session already closed.
func (o *Operator) Late(t int64) bool {
	if o.watermark == math.MinInt64 {
		return false
	}
	switch o.cfg.Kind {
	case Session:
		return t < o.watermark
	default:
		start, _ := o.firstWindow(t)
		return satAdd(start, o.cfg.Size) <= o.watermark
	}
}

// firstWindow returns the start of the earliest window that t falls in
// and the start of the next hop's window (Tumbling: the same as Size).
func (o *Operator) firstWindow(t int64) (first, step int64) {
	step = o.cfg.Size
	if o.cfg.Kind == Hopping {
		step = o.cfg.Advance
	}
	if o.cfg.Kind == Tumbling {
		return floorDiv(t, step) * step, step
	}
	// The earliest is the first k*step with k*step+size > t.
	return (floorDiv(t-o.cfg.Size, step) + 1) * step, step
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// Add adds an event of key at time t from partition p: in every window it
// falls in, each aggregate takes its input. It returns ErrLate (wrapped,
// with the window) for a late event, which changes nothing, an error
// naming the aggregate for an input it refuses (a NaN), and ErrStateFull
// when the state is at its bound.
func (o *Operator) Add(p int32, key string, t int64, in []Input) error {
	if t < -maxEventTime || t > maxEventTime {
		return fmt.Errorf("event time %d is out of range: at most %d milliseconds from the epoch", t, int64(maxEventTime))
	}
	if o.Late(t) {
		return fmt.Errorf("%w: event time %s is behind the watermark %s", ErrLate, fmtTime(t), fmtTime(o.watermark))
	}
	for i, a := range o.cfg.Aggregates {
		if a.Func.Args() > 0 && a.Func != aggregate.CountDistinct && (math.IsNaN(in[i].Num) || math.IsInf(in[i].Num, 0)) {
			return fmt.Errorf("aggregate %d (%s): value %v is not a finite number", i, a.Func, in[i].Num)
		}
	}
	if o.bytes > o.cfg.MaxBytes {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrStateFull, o.bytes, o.cfg.MaxBytes)
	}
	if ps := o.parts[p]; ps != nil && t > ps.maxTime {
		ps.maxTime = t
	}
	g := o.groups[key]
	if g == nil {
		g = &group{key: key}
		o.groups[key] = g
		o.bytes += groupOverhead + int64(len(key))
	}
	switch o.cfg.Kind {
	case Session:
		return o.addSession(g, t, in)
	default:
		first, step := o.firstWindow(t)
		for start := first; start <= t; start += step {
			o.update(o.window(g, start, start+o.cfg.Size), in)
		}
	}
	return nil
}

// window returns g's window [start, end), creating it.
func (o *Operator) window(g *group, start, end int64) *win {
	// Events mostly come in time order: the latest window first.
	if n := len(g.wins); n > 0 && g.wins[n-1].start == start {
		return g.wins[n-1]
	}
	i, found := slices.BinarySearchFunc(g.wins, start, func(w *win, s int64) int { return cmpInt(w.start, s) })
	if found {
		return g.wins[i]
	}
	w := o.newWin(g, start, end)
	g.wins = slices.Insert(g.wins, i, w)
	return w
}

func (o *Operator) newWin(g *group, start, end int64) *win {
	w := &win{g: g, start: start, end: end, states: make([]aggregate.State, len(o.cfg.Aggregates))}
	for i, a := range o.cfg.Aggregates {
		w.states[i] = aggregate.New(a)
	}
	w.size = winOverhead
	for _, s := range w.states {
		w.size += int64(s.Size())
	}
	o.bytes += w.size
	heap.Push(&o.closing, closeEntry{end: end, w: w})
	return w
}

func (o *Operator) update(w *win, in []Input) {
	for i, a := range o.cfg.Aggregates {
		s := w.states[i]
		switch {
		case a.Func == aggregate.Count:
			s.Inc()
		case a.Func == aggregate.CountDistinct:
			s.AddKey(in[i].Key)
		default:
			// Add checked the number already.
			_ = s.AddNumber(in[i].Num)
		}
	}
	o.resize(w)
	o.dirty[w] = struct{}{}
}

// resize brings the state's size up to date after w changed.
func (o *Operator) resize(w *win) {
	n := int64(winOverhead)
	for _, s := range w.states {
		n += int64(s.Size())
	}
	o.bytes += n - w.size
	w.size = n
}

// addSession puts an event in g's session that it extends, merging the
// sessions it bridges, or in a new one.
func (o *Operator) addSession(g *group, t int64, in []Input) error {
	lo, hi := t, satAdd(t, o.cfg.Gap)
	// Sessions overlapping [lo, hi): start < hi && end > lo.
	var hit []*win
	for _, w := range g.wins {
		if w.start < hi && w.end > lo {
			hit = append(hit, w)
		}
	}
	if len(hit) == 0 {
		w := o.newWin(g, lo, hi)
		i, _ := slices.BinarySearchFunc(g.wins, lo, func(w *win, s int64) int { return cmpInt(w.start, s) })
		g.wins = slices.Insert(g.wins, i, w)
		o.update(w, in)
		return nil
	}
	keep := hit[0]
	start, end := min(keep.start, lo), max(keep.end, hi)
	for _, w := range hit[1:] {
		for i, s := range w.states {
			if err := keep.states[i].Merge(s); err != nil {
				return fmt.Errorf("merge sessions: %w", err)
			}
		}
		start, end = min(start, w.start), max(end, w.end)
		o.remove(w)
	}
	// The end only grows: the window's entry in closing is pushed back
	// to its new end when it comes up (see close).
	keep.start, keep.end = start, end
	o.update(keep, in)
	return nil
}

// remove drops w from its group and the size; its heap entries go stale.
func (o *Operator) remove(w *win) {
	g := w.g
	if i := slices.Index(g.wins, w); i >= 0 {
		g.wins = slices.Delete(g.wins, i, i+1)
	}
	o.bytes -= w.size
	w.g = nil
	delete(o.dirty, w)
	if len(g.wins) == 0 && o.groups[g.key] == g {
		delete(o.groups, g.key)
		o.bytes -= groupOverhead + int64(len(g.key))
	}
}

// Advance moves the watermark as far as the partitions allow at now and
// returns the windows that closed, ordered by end, key and start. The
// watermark is the least over the partitions of the latest event time
// seen minus the allowed lateness, leaving out partitions that have had
// nothing to read for IdleTimeout; when every partition is idle, the
// greatest, so that a stream that stops still closes what its events
// have passed.
func (o *Operator) Advance(now time.Time) []Result {
	if len(o.partList) == 0 {
		return nil
	}
	low, high := int64(math.MaxInt64), int64(math.MinInt64)
	active := false
	for _, ps := range o.partList {
		wm := int64(math.MinInt64)
		if ps.maxTime != math.MinInt64 {
			wm = ps.maxTime - o.cfg.Lateness
		}
		high = max(high, wm)
		if !ps.caughtUp.IsZero() && now.Sub(ps.caughtUp) >= o.cfg.IdleTimeout {
			continue
		}
		active = true
		low = min(low, wm)
	}
	wm := high
	if active {
		wm = low
	}
	if wm <= o.watermark {
		return nil
	}
	o.watermark = wm
	return o.close(wm)
}

// Flush closes every open window, as if the input had ended (a batch run
// that has read its whole range), and returns them as Advance does. Every
// event after it is late.
func (o *Operator) Flush() []Result {
	o.watermark = math.MaxInt64
	return o.close(math.MaxInt64)
}

// close removes and returns the windows that end at or before wm.
func (o *Operator) close(wm int64) []Result {
	var out []Result
	for len(o.closing) > 0 && o.closing[0].end <= wm {
		e := heap.Pop(&o.closing).(closeEntry)
		w := e.w
		if w.g == nil {
			continue // merged into another session
		}
		if w.end > e.end {
			heap.Push(&o.closing, closeEntry{end: w.end, w: w})
			continue
		}
		out = append(out, o.result(w))
		o.remove(w)
	}
	slices.SortStableFunc(out, func(a, b Result) int {
		if c := cmpInt(a.End, b.End); c != 0 {
			return c
		}
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return cmpInt(a.Start, b.Start)
	})
	return out
}

func (o *Operator) result(w *win) Result {
	r := Result{Key: w.g.key, Start: w.start, End: w.end, Values: make([]any, len(w.states))}
	for i, s := range w.states {
		r.Values[i] = s.Result()
	}
	return r
}

// Updates returns the open windows that changed since the last call, in
// the order Advance uses, for windows that emit on every update.
func (o *Operator) Updates() []Result {
	if len(o.dirty) == 0 {
		return nil
	}
	out := make([]Result, 0, len(o.dirty))
	for w := range o.dirty {
		out = append(out, o.result(w))
	}
	clear(o.dirty)
	slices.SortFunc(out, func(a, b Result) int {
		if c := cmpInt(a.End, b.End); c != 0 {
			return c
		}
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return cmpInt(a.Start, b.Start)
	})
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fmtTime writes a millisecond time for error messages.
func fmtTime(t int64) string {
	if t == math.MinInt64 {
		return "(none)"
	}
	return time.UnixMilli(t).UTC().Format("2006-01-02T15:04:05.000Z")
}

type closeEntry struct {
	end int64
	w   *win
}

type closeHeap []closeEntry

func (h closeHeap) Len() int           { return len(h) }
func (h closeHeap) Less(i, j int) bool { return h[i].end < h[j].end }
func (h closeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *closeHeap) Push(x any)        { *h = append(*h, x.(closeEntry)) }
func (h *closeHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = closeEntry{}
	*h = old[:len(old)-1]
	return e
}
