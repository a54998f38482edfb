package kafkawire

import (
	"fmt"
	"strconv"
	"sync"
)

// producerIDs hands out producer IDs that are never reused, across restarts
// too: the store holds the end of the block of IDs reserved so far, and a
// new block is reserved (one durable Put) before any of its IDs is handed
// out. A restart continues after the last reserved block, skipping the IDs
// of that block that were never handed out.
type producerIDs struct {
	store Store

	mu    sync.Mutex
	next  int64 // the next ID to hand out
	limit int64 // IDs below limit are reserved
}

const (
	producerIDKey   = "next_producer_id_block"
	producerIDBlock = 1000
)

func newProducerIDs(store Store) (*producerIDs, error) {
	p := &producerIDs{store: store}
	v, ok, err := store.Get(storeNamespace, producerIDKey)
	if err != nil {
		return nil, fmt.Errorf("kafkawire: read producer id counter: %w", err)
	}
	if ok {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("kafkawire: producer id counter %q is not a non-negative number", v)
		}
		p.next, p.limit = n, n
	}
	return p, nil
}

// allocate returns a new producer ID.
func (p *producerIDs) allocate() (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.next >= p.limit {
		limit := p.next + producerIDBlock
		if err := p.store.Put(storeNamespace, producerIDKey, strconv.AppendInt(nil, limit, 10)); err != nil {
			return 0, fmt.Errorf("reserve producer ids: %w", err)
		}
		p.limit = limit
	}
	id := p.next
	p.next++
	return id, nil
}
