package pipeline

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A request for more than the budget is granted once what was granted
// before it is released, even while small requests keep coming: they wait
// behind it.
func TestBudgetLargeRequestNotStarved(t *testing.T) {
	b := newBudget(16 << 20)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stop atomic.Bool
	var wg sync.WaitGroup
	// Two pollers, each holding 1 MiB most of the time, as the fetchers
	// of caught-up partitions do during their long polls.
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := b.acquire(ctx, 1<<20); err != nil {
					return
				}
				time.Sleep(2 * time.Millisecond)
				b.release(1 << 20)
			}
		}()
	}
	time.Sleep(10 * time.Millisecond)
	if err := b.acquire(ctx, 40<<20); err != nil {
		t.Fatalf("the large request was not granted: %v", err)
	}
	if got := b.inUse(); got != 40<<20 {
		t.Errorf("in use %d while the large request holds it", got)
	}
	b.release(40 << 20)
	stop.Store(true)
	wg.Wait()
}

// A waiter whose context ends gives up its turn.
func TestBudgetAbandonedTurn(t *testing.T) {
	b := newBudget(10)
	if err := b.acquire(context.Background(), 10); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { errc <- b.acquire(ctx, 5) }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a cancelled acquire succeeded")
	}
	done := make(chan error)
	go func() { done <- b.acquire(context.Background(), 5) }()
	b.release(10)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request after an abandoned one never got its turn")
	}
}
