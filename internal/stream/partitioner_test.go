package stream

import (
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestMurmur2KafkaVectors checks Murmur2 against the values Apache Kafka's
// own test pins (UtilsTest.testMurmur2 in clients/src/test/java/org/apache/
// kafka/common/utils/UtilsTest.java), as Java ints.
func TestMurmur2KafkaVectors(t *testing.T) {
	tests := []struct {
		in   string
		want int32
	}{
		{"21", -973932308},
		{"foobar", -790332482},
		{"a-little-bit-long-string", -985981536},
		{"a-little-bit-longer-string", -1486304829},
		{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
		{"abc", 479470107},
		// Not in Kafka's test: the empty key, whose hash is the seed mixed
		// by the finalizer alone. Cross-checked with franz-go below.
		{"", 275646681},
	}
	for _, tc := range tests {
		if got := int32(Murmur2([]byte(tc.in))); got != tc.want {
			t.Errorf("Murmur2(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestKeyPartitionMatchesFranzGo checks KeyPartition against franz-go's
// default partitioner for keyed records, for many random keys and partition
// counts: a key must land where a franz-go (or Java) producer puts it.
func TestKeyPartitionMatchesFranzGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 42))
	p := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	counts := []int{1, 2, 3, 6, 7, 12, 100, 1000, 10000, math.MaxInt32}
	for i := range 50000 {
		key := make([]byte, rng.IntN(70))
		for j := range key {
			key[j] = byte(rng.Uint32())
		}
		if i%10 == 0 {
			key = key[:0] // empty, not null: hashed like any key
		}
		n := counts[rng.IntN(len(counts))]
		want := p.Partition(&kgo.Record{Key: key}, n)
		if got := KeyPartition(key, int32(n)); int(got) != want {
			t.Fatalf("KeyPartition(%x, %d) = %d, franz-go says %d", key, n, got, want)
		}
	}
	// With MaxInt32 partitions the partition is the hash's low 31 bits
	// (but for one value), which pins the empty key's vector above too.
	if got, want := p.Partition(&kgo.Record{Key: []byte{}}, math.MaxInt32), 275646681; got != want {
		t.Errorf("franz-go puts the empty key in partition %d of MaxInt32, want %d", got, want)
	}
}

func TestRoundRobin(t *testing.T) {
	var rr RoundRobin
	const partitions, per = 7, 1000
	counts := make([]int, partitions)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			local := make([]int, partitions)
			for range partitions * per / 8 {
				local[rr.Next(partitions)]++
			}
			mu.Lock()
			for i, n := range local {
				counts[i] += n
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	// 8 goroutines drew partitions*per partitions between them; the
	// shared counter hands each partition exactly per of them.
	for p, n := range counts {
		if n != per {
			t.Errorf("partition %d: got %d records, want %d", p, n, per)
		}
	}
}
