package logstore

// The log keeps only the tail of each partition in the operating system's
// page cache. Once data is durable and more than Options.CacheWindow bytes
// behind the partition's end, the log tells the kernel it will not be read
// soon (posix_fadvise POSIX_FADV_DONTNEED), which frees its pages at once.
//
// Why: consumers that keep up read the tail, which stays cached; what lies
// further back is read by catch-up consumers and replays, which the kernel
// caches again as they read it. Without the window, a log written at
// hundreds of MB/s grows the page cache until it fills memory, pushing out
// the pages of whatever shares the machine (PostgreSQL, most often) and,
// on virtual machines whose memory the host backs lazily, paying for every
// new page it touches: appending 1 MiB writes with fdatasync to a new file
// ran at 254 MB/s while the page cache grew, and at 1.1 GB/s when its pages
// were recycled (docs/benchmarks.md).

// minEvict is the least a partition hands back to the kernel at once, so
// that a stream of small appends costs one fadvise per few MiB.
const minEvict = 4 << 20

// eviction is a range of a segment to drop from the page cache.
type eviction struct {
	s        *segment
	off, end int64
}

// evictionsLocked marks and returns the durable ranges that have fallen
// behind the partition's cache window and were not handed back yet; each
// holds a reference on its segment that evict releases. The caller holds
// p.mu.
func (p *Partition) evictionsLocked() []eviction {
	window := p.l.opts.CacheWindow
	if window < 0 || p.closed {
		return nil
	}
	var out []eviction
	keep := window
	for i := len(p.segs) - 1; i >= 0; i-- {
		s := p.segs[i]
		end := s.durableSize
		if keep >= end {
			keep -= end
			continue
		}
		end -= keep
		keep = 0
		if end <= s.evicted {
			break // everything before was handed back earlier
		}
		if end-s.evicted < minEvict && end < s.durableSize {
			continue // waits until there is more of it; older ones need not
		}
		s.acquire()
		out = append(out, eviction{s: s, off: s.evicted, end: end})
		s.evicted = end
	}
	return out
}

// evict hands the ranges back to the kernel, outside the partition lock.
// It is advice: a failure changes nothing that can be read, so it is not
// an error of the log.
func evict(evs []eviction) {
	for _, e := range evs {
		_ = e.s.f.Evict(e.off, e.end-e.off)
		e.s.release()
	}
}
