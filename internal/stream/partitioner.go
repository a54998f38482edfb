package stream

import "sync/atomic"

// Murmur2 is the 32-bit MurmurHash2 with Kafka's seed, as Kafka's Java
// client computes it for its default partitioner.
func Murmur2(data []byte) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(data)
	h := uint32(seed) ^ uint32(n)
	for len(data) >= 4 {
		k := uint32(data[0]) | uint32(data[1])<<8 | uint32(data[2])<<16 | uint32(data[3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
		data = data[4:]
	}
	switch len(data) {
	case 3:
		h ^= uint32(data[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// KeyPartition is Kafka's default partitioner for keyed records:
// (murmur2(key) & 0x7fffffff) % partitions. A key lands in the same
// partition whether it arrives over HTTP or from a Java or franz-go client.
func KeyPartition(key []byte, partitions int32) int32 {
	return int32((Murmur2(key) & 0x7fffffff) % uint32(partitions))
}

// RoundRobin spreads unkeyed records evenly over a topic's partitions. The
// zero value is ready to use and safe for concurrent use.
type RoundRobin struct{ n atomic.Uint32 }

// Next returns the partition for the next unkeyed record.
func (r *RoundRobin) Next(partitions int32) int32 {
	return int32((r.n.Add(1) - 1) % uint32(partitions))
}
