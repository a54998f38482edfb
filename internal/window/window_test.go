package window

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/internal/aggregate"
)

// event is one generated input.
type event struct {
	part   int32
	key    string
	t      int64
	amount float64
	user   string
}

// aggs are the aggregates every exactness test computes, in this order.
var aggs = []aggregate.Spec{
	{Func: aggregate.Count},
	{Func: aggregate.Sum},
	{Func: aggregate.Avg},
	{Func: aggregate.Min},
	{Func: aggregate.Max},
	{Func: aggregate.CountDistinct},
	{Func: aggregate.Quantile, Q: 0.9},
}

func inputs(e event) []Input {
	return []Input{{}, {Num: e.amount}, {Num: e.amount}, {Num: e.amount}, {Num: e.amount}, {Key: []byte(e.user)}, {Num: e.amount}}
}

// refWindow is a window as the reference computes it.
type refWindow struct {
	key        string
	start, end int64
	amounts    []float64
	users      map[string]bool
}

func (w *refWindow) id() string { return fmt.Sprintf("%s|%d|%d", w.key, w.start, w.end) }

// reference computes the windows of the accepted events by brute force,
// without the operator's data structures: every window an event falls
// in, or for sessions, each key's events split at gaps.
func reference(cfg Config, events []event) map[string]*refWindow {
	out := make(map[string]*refWindow)
	put := func(key string, start, end int64, e event) {
		w := &refWindow{key: key, start: start, end: end, users: map[string]bool{}}
		if old := out[w.id()]; old != nil {
			w = old
		} else {
			out[w.id()] = w
		}
		w.amounts = append(w.amounts, e.amount)
		w.users[e.user] = true
	}
	switch cfg.Kind {
	case Tumbling, Hopping:
		step := cfg.Size
		if cfg.Kind == Hopping {
			step = cfg.Advance
		}
		for _, e := range events {
			// Every window start k*step with k*step <= t < k*step+size.
			for k := int64(math.Floor(float64(e.t-cfg.Size)/float64(step))) - 1; k*step <= e.t; k++ {
				if start := k * step; start <= e.t && e.t < start+cfg.Size {
					put(e.key, start, start+cfg.Size, e)
				}
			}
		}
	case Session:
		byKey := map[string][]event{}
		for _, e := range events {
			byKey[e.key] = append(byKey[e.key], e)
		}
		for key, es := range byKey {
			sort.SliceStable(es, func(i, j int) bool { return es[i].t < es[j].t })
			var cur []event
			flush := func() {
				if len(cur) == 0 {
					return
				}
				start, end := cur[0].t, cur[len(cur)-1].t+cfg.Gap
				for _, e := range cur {
					put(key, start, end, e)
				}
				cur = nil
			}
			for _, e := range es {
				if len(cur) > 0 && e.t >= cur[len(cur)-1].t+cfg.Gap {
					flush()
				}
				cur = append(cur, e)
			}
			flush()
		}
	}
	return out
}

// lateByRef says whether e is late, given the greatest event time seen
// before it on a single partition: the reference's own reading of the
// rule that a window closes when max time minus lateness passes its end.
func lateByRef(cfg Config, maxSeen int64, e event) bool {
	if maxSeen == math.MinInt64 {
		return false
	}
	wm := maxSeen - cfg.Lateness
	switch cfg.Kind {
	case Session:
		return e.t < wm
	case Tumbling:
		return floorDiv(e.t, cfg.Size)*cfg.Size+cfg.Size <= wm
	default:
		// The earliest hopping window holding t.
		last := floorDiv(e.t, cfg.Advance) * cfg.Advance
		for s := last; s > e.t-cfg.Size; s -= cfg.Advance {
			last = s
		}
		return last+cfg.Size <= wm
	}
}

func toFloat(t *testing.T, v any) float64 {
	t.Helper()
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		return x
	case int:
		return float64(x)
	}
	t.Fatalf("result %v is a %T, want a number", v, v)
	return 0
}

// check compares an operator's result with the reference window.
func check(t *testing.T, got Result, want *refWindow) {
	t.Helper()
	a := slices.Clone(want.amounts)
	slices.Sort(a)
	// Amounts are whole cents: their exact sum is a whole number of cents.
	var cents int64
	for _, x := range a {
		cents += int64(math.Round(x * 100))
	}
	sum := float64(cents) / 100
	id := want.id()
	if n := toFloat(t, got.Values[0]); n != float64(len(a)) {
		t.Errorf("%s count = %v, want %d", id, n, len(a))
	}
	if s := toFloat(t, got.Values[1]); math.Abs(s-sum) > 1e-12*math.Abs(sum) {
		t.Errorf("%s sum = %v, want %v", id, s, sum)
	}
	if avg := toFloat(t, got.Values[2]); math.Abs(avg-sum/float64(len(a))) > 1e-12*math.Abs(sum) {
		t.Errorf("%s avg = %v, want %v", id, avg, sum/float64(len(a)))
	}
	if m := toFloat(t, got.Values[3]); m != a[0] {
		t.Errorf("%s min = %v, want %v", id, m, a[0])
	}
	if m := toFloat(t, got.Values[4]); m != a[len(a)-1] {
		t.Errorf("%s max = %v, want %v", id, m, a[len(a)-1])
	}
	if n := toFloat(t, got.Values[5]); n != float64(len(want.users)) {
		t.Errorf("%s count_distinct = %v, want %d", id, n, len(want.users))
	}
	// The sketch's guarantee: within 1% of a value whose rank is the
	// quantile's.
	q := toFloat(t, got.Values[6])
	rank := int(math.Ceil(0.9*float64(len(a)))) - 1
	lo, hi := a[max(rank-1, 0)], a[min(rank+1, len(a)-1)]
	if q < lo-0.01*math.Abs(lo) || q > hi+0.01*math.Abs(hi) {
		t.Errorf("%s quantile(0.9) = %v, want within 1%% of [%v, %v]", id, q, lo, hi)
	}
}

// gen makes n events over keys on parts partitions, out of order by up to
// jitter, with a share of them late by far more than that.
func gen(rng *rand.Rand, n, keys int, parts int32, jitter, lateBy int64, lateShare float64) []event {
	out := make([]event, n)
	base := int64(1_700_000_000_000)
	for i := range out {
		t := base + int64(i)*37 - rng.Int64N(jitter+1)
		if rng.Float64() < lateShare {
			t -= lateBy
		}
		out[i] = event{
			part:   int32(i) % parts,
			key:    "k" + strconv.Itoa(rng.IntN(keys)),
			t:      t,
			amount: float64(rng.IntN(200_000)-50_000) / 100,
			user:   "u" + strconv.Itoa(rng.IntN(50)),
		}
	}
	return out
}

func TestExactness(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"tumbling", Config{Kind: Tumbling, Size: 1000, Lateness: 300}},
		{"tumbling no lateness", Config{Kind: Tumbling, Size: 500}},
		{"hopping", Config{Kind: Hopping, Size: 1000, Advance: 250, Lateness: 300}},
		{"hopping uneven", Config{Kind: Hopping, Size: 1000, Advance: 300, Lateness: 200}},
		{"session", Config{Kind: Session, Gap: 400, Lateness: 300}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Aggregates = aggs
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
			// One partition: which events are late is then a function of
			// the stream alone, and the reference can tell.
			events := gen(rng, 20_000, 300, 1, cfg.Lateness, 5*cfg.Lateness+2000, 0.02)
			op := New(cfg)
			op.AddPartition(0)
			now := time.Unix(0, 0)
			var accepted []event
			got := map[string]Result{}
			collect := func(rs []Result) {
				for _, r := range rs {
					id := fmt.Sprintf("%s|%d|%d", r.Key, r.Start, r.End)
					if _, dup := got[id]; dup {
						t.Fatalf("window %s emitted twice", id)
					}
					got[id] = r
				}
			}
			maxSeen, lateCount := int64(math.MinInt64), 0
			for _, e := range events {
				wantLate := lateByRef(cfg, maxSeen, e)
				err := op.Add(0, e.key, e.t, inputs(e))
				switch {
				case wantLate && !errors.Is(err, ErrLate):
					t.Fatalf("event at %d (max seen %d): err = %v, want ErrLate", e.t, maxSeen, err)
				case !wantLate && err != nil:
					t.Fatalf("event at %d (max seen %d): %v", e.t, maxSeen, err)
				case wantLate:
					lateCount++
				default:
					accepted = append(accepted, e)
					maxSeen = max(maxSeen, e.t)
				}
				collect(op.Advance(now))
			}
			if lateCount == 0 {
				t.Fatal("no event was late: the test tests nothing of lateness")
			}
			closedEarly := len(got)
			collect(op.Flush())
			if closedEarly == 0 {
				t.Fatal("no window closed before the end")
			}
			want := reference(cfg, accepted)
			if len(got) != len(want) {
				t.Fatalf("%d windows, want %d", len(got), len(want))
			}
			for id, w := range want {
				r, ok := got[id]
				if !ok {
					t.Fatalf("window %s missing", id)
				}
				check(t, r, w)
			}
			if op.Windows() != 0 || op.Bytes() != 0 {
				t.Errorf("after Flush: %d windows, %d bytes", op.Windows(), op.Bytes())
			}
		})
	}
}

// Results are in order of end, then key, then start: the sink sees the
// same sequence on every run.
func TestAdvanceOrder(t *testing.T) {
	cfg := Config{Kind: Hopping, Size: 100, Advance: 50, Aggregates: []aggregate.Spec{{Func: aggregate.Count}}}
	op := New(cfg)
	op.AddPartition(0)
	for _, k := range []string{"b", "a", "c"} {
		for tm := int64(0); tm < 300; tm += 10 {
			if err := op.Add(0, k, tm, []Input{{}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := op.Add(0, "a", 1000, []Input{{}}); err != nil {
		t.Fatal(err)
	}
	rs := op.Advance(time.Now())
	if len(rs) == 0 {
		t.Fatal("nothing closed")
	}
	sorted := slices.IsSortedFunc(rs, func(a, b Result) int {
		if a.End != b.End {
			return cmpInt(a.End, b.End)
		}
		if a.Key != b.Key {
			if a.Key < b.Key {
				return -1
			}
			return 1
		}
		return cmpInt(a.Start, b.Start)
	})
	if !sorted {
		t.Errorf("results out of order: %v", rs)
	}
}

// The watermark waits for the slowest partition, until it has had nothing
// to read for the idle timeout.
func TestIdlePartition(t *testing.T) {
	cfg := Config{Kind: Tumbling, Size: 1000, IdleTimeout: 30 * time.Second, Aggregates: []aggregate.Spec{{Func: aggregate.Count}}}
	op := New(cfg)
	op.AddPartition(0)
	op.AddPartition(1)
	t0 := time.Unix(1000, 0)
	must := func(p int32, tm int64) {
		t.Helper()
		if err := op.Add(p, "k", tm, []Input{{}}); err != nil {
			t.Fatal(err)
		}
	}
	must(0, 100)
	must(1, 200)
	must(0, 5000)
	if rs := op.Advance(t0); len(rs) != 0 {
		t.Fatalf("closed %v while partition 1 is at 200", rs)
	}
	if op.Watermark() != 200 {
		t.Fatalf("watermark %d, want 200 (partition 1's)", op.Watermark())
	}
	// Partition 1 has nothing more to read.
	op.CaughtUp(1, true, t0)
	if rs := op.Advance(t0.Add(29 * time.Second)); len(rs) != 0 {
		t.Fatalf("closed %v before the idle timeout", rs)
	}
	rs := op.Advance(t0.Add(30 * time.Second))
	if len(rs) != 1 || rs[0].Start != 0 || toFloat(t, rs[0].Values[0]) != 2 {
		t.Fatalf("after the idle timeout: %v, want [0,1000) with 2 events", rs)
	}
	// Partition 1 wakes up behind the watermark: its event is late, not
	// merged into the window that closed.
	op.CaughtUp(1, false, t0.Add(31*time.Second))
	if err := op.Add(1, "k", 300, []Input{{}}); !errors.Is(err, ErrLate) {
		t.Fatalf("event behind the watermark: %v, want ErrLate", err)
	}
	// Both partitions idle: the watermark goes to the greatest, so a
	// stream that stops still closes what it has passed.
	must(0, 9000)
	op.CaughtUp(0, true, t0.Add(40*time.Second))
	op.CaughtUp(1, true, t0.Add(40*time.Second))
	rs = op.Advance(t0.Add(80 * time.Second))
	if len(rs) != 1 || rs[0].Start != 5000 {
		t.Fatalf("all idle: %v, want the window at 5000", rs)
	}
}

// A snapshot taken mid-stream and restored into a new operator gives the
// same results as the operator that went on, and the same bytes for the
// same state.
func TestSnapshotRoundTrip(t *testing.T) {
	for _, cfg := range []Config{
		{Kind: Tumbling, Size: 1000, Lateness: 300},
		{Kind: Hopping, Size: 1000, Advance: 250, Lateness: 300},
		{Kind: Session, Gap: 400, Lateness: 300},
	} {
		t.Run(cfg.Kind.String(), func(t *testing.T) {
			cfg.Aggregates = aggs
			rng := rand.New(rand.NewPCG(7, 7))
			events := gen(rng, 6000, 20, 3, 300, 4000, 0.01)
			run := func(snapAt int) ([]Result, []byte) {
				op := New(cfg)
				for p := range int32(3) {
					op.AddPartition(p)
				}
				var out []Result
				var snap []byte
				for i, e := range events {
					if i == snapAt {
						snap = op.AppendSnapshot(nil)
						op2 := New(cfg)
						if err := op2.Restore(snap); err != nil {
							t.Fatal(err)
						}
						if again := op2.AppendSnapshot(nil); !bytes.Equal(again, snap) {
							t.Fatal("a restored state snapshots to other bytes")
						}
						if op2.Bytes() != op.Bytes() || op2.Windows() != op.Windows() {
							t.Errorf("restored %d bytes in %d windows, had %d in %d", op2.Bytes(), op2.Windows(), op.Bytes(), op.Windows())
						}
						op = op2
					}
					_ = op.Add(e.part, e.key, e.t, inputs(e))
					out = append(out, op.Advance(time.Unix(0, 0))...)
				}
				return append(out, op.Flush()...), snap
			}
			want, _ := run(-1)
			got, snap := run(len(events) / 2)
			if len(snap) == 0 {
				t.Fatal("no snapshot")
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("results differ after a restore: %d results, want %d", len(got), len(want))
			}
		})
	}
}

func TestRestoreIncompatible(t *testing.T) {
	a := New(Config{Kind: Tumbling, Size: 1000, Aggregates: []aggregate.Spec{{Func: aggregate.Count}}})
	snap := a.AppendSnapshot(nil)
	b := New(Config{Kind: Tumbling, Size: 2000, Aggregates: []aggregate.Spec{{Func: aggregate.Count}}})
	if err := b.Restore(snap); !errors.Is(err, ErrIncompatible) {
		t.Fatalf("restore of another size: %v, want ErrIncompatible", err)
	}
	// Lateness is not part of what the state means.
	c := New(Config{Kind: Tumbling, Size: 1000, Lateness: 5000, Aggregates: []aggregate.Spec{{Func: aggregate.Count}}})
	if err := c.Restore(snap); err != nil {
		t.Fatalf("restore with another lateness: %v", err)
	}
}

func TestStateLimit(t *testing.T) {
	op := New(Config{Kind: Tumbling, Size: 1000, MaxBytes: 64 << 10, Aggregates: []aggregate.Spec{{Func: aggregate.Count}}})
	op.AddPartition(0)
	var err error
	for i := 0; i < 100_000 && err == nil; i++ {
		err = op.Add(0, "key-"+strconv.Itoa(i), 0, []Input{{}})
	}
	if !errors.Is(err, ErrStateFull) {
		t.Fatalf("err = %v, want ErrStateFull", err)
	}
	if op.Bytes() > 64<<10+4096 {
		t.Errorf("state grew to %d bytes past its 64 KiB limit", op.Bytes())
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{Kind: Tumbling}, "size must be positive"},
		{Config{Kind: Hopping, Size: 100}, "size and advance must be positive"},
		{Config{Kind: Hopping, Size: 100, Advance: 200}, "longer than size"},
		{Config{Kind: Hopping, Size: 100_000, Advance: 1}, "windows per event"},
		{Config{Kind: Session}, "gap must be positive"},
		{Config{Kind: Tumbling, Size: 1, Lateness: -1}, "lateness"},
		{Config{Kind: 9, Size: 1}, "unknown window kind"},
		{Config{Kind: Session, Gap: 10}, ""},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want))):
			t.Errorf("%+v: %v, want an error with %q", tc.cfg, err, tc.want)
		}
	}
}

func FuzzRestore(f *testing.F) {
	cfg := Config{Kind: Session, Gap: 400, Aggregates: aggs}
	op := New(cfg)
	op.AddPartition(0)
	for _, e := range gen(rand.New(rand.NewPCG(3, 3)), 200, 5, 1, 100, 1000, 0) {
		_ = op.Add(0, e.key, e.t, inputs(e))
	}
	f.Add(op.AppendSnapshot(nil))
	f.Add([]byte(snapshotMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		op := New(Config{Kind: Session, Gap: 400, Aggregates: aggs, MaxBytes: 1 << 20})
		if err := op.Restore(b); err != nil {
			return
		}
		// A state that restores is a state: it snapshots and closes.
		snap := op.AppendSnapshot(nil)
		op2 := New(op.cfg)
		if err := op2.Restore(snap); err != nil {
			t.Fatalf("re-restore: %v", err)
		}
		op.Flush()
	})
}

// BenchmarkTumblingCountSum is the figure: tumbling windows, count
// and sum by key over 10,000 keys, events in time order with the
// watermark advanced every 1,000 events.
func BenchmarkTumblingCountSum(b *testing.B) {
	const keys = 10_000
	op := New(Config{Kind: Tumbling, Size: 60_000, Lateness: 5000,
		Aggregates: []aggregate.Spec{{Func: aggregate.Count}, {Func: aggregate.Sum}}})
	op.AddPartition(0)
	names := make([]string, keys)
	for i := range names {
		names[i] = "region-" + strconv.Itoa(i)
	}
	in := []Input{{}, {}}
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	b.ResetTimer()
	t0 := int64(1_700_000_000_000)
	for i := range b.N {
		in[1].Num = float64(rng.IntN(100_000)) / 100
		// 100 events per millisecond: a minute's window holds 6 M.
		if err := op.Add(0, names[rng.IntN(keys)], t0+int64(i/100), in); err != nil {
			b.Fatal(err)
		}
		if i%1000 == 999 {
			op.Advance(now)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	if op.Windows() > 0 {
		b.ReportMetric(float64(op.Bytes())/float64(op.Windows()), "state-bytes/key")
	}
}
