package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaConsumeOptions configures KafkaConsume. Zero values take the
// defaults in brackets.
type KafkaConsumeOptions struct {
	KafkaTarget
	// Fill is how the topic is filled before the runs: its Records
	// [10,000,000], RecordBytes [100], Partitions [6] and the generator
	// settings are those of a produce run. Its Duration, Rate,
	// FsyncBaseline, Runs, CPUProfile and Out are ignored.
	Fill KafkaProduceOptions
	// Consumers is the number of franz-go clients reading at once; the
	// partitions are assigned to them round-robin, without a group [3].
	Consumers int
	// FetchMaxBytes bounds a fetch response (FetchMaxBytes) [50 MiB].
	FetchMaxBytes int
	// FetchMaxPartitionBytes bounds one partition of a fetch response
	// (FetchMaxPartitionBytes) [8 MiB].
	FetchMaxPartitionBytes int
	// Runs is the number of runs over the same filled topic, each reading
	// it whole from the start, after an untimed read of it that brings it
	// into the page cache (when it fits in memory); medians are reported
	// [3].
	Runs int
	// CPUProfile, if set, receives a CPU profile of this process over the
	// consume runs (not the fill); see ProfileLabel.
	CPUProfile io.Writer
	// Out receives the Markdown report [io.Discard].
	Out io.Writer
}

func (o *KafkaConsumeOptions) setDefaults() error {
	o.Fill.KafkaTarget = o.KafkaTarget
	if o.Fill.Records <= 0 {
		o.Fill.Records = 10_000_000
	}
	if o.Fill.RecordBytes == 0 {
		o.Fill.RecordBytes = 100
	}
	o.Fill.Rate, o.Fill.FsyncBaseline, o.Fill.Runs, o.Fill.CPUProfile, o.Fill.Out = 0, false, 1, nil, nil
	if err := o.Fill.setDefaults(); err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	if o.Consumers <= 0 {
		o.Consumers = 3
	}
	if o.FetchMaxBytes <= 0 {
		o.FetchMaxBytes = 50 << 20
	}
	if o.FetchMaxPartitionBytes <= 0 {
		o.FetchMaxPartitionBytes = 8 << 20
	}
	if o.Runs <= 0 {
		o.Runs = 3
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return nil
}

func (o KafkaConsumeOptions) describe() string {
	return fmt.Sprintf("franz-go %s, %d consumer clients without a group, partitions assigned round-robin, fetches up to %d bytes (%d a partition), %d runs after an untimed one, each reading the whole topic from its start",
		franzVersion(), o.Consumers, o.FetchMaxBytes, o.FetchMaxPartitionBytes, o.Runs)
}

// KafkaConsume fills a new topic with o.Fill.Records records from the
// produce generator, then reads it whole from its start o.Runs times with
// o.Consumers franz-go clients, and prints a Markdown report of records/s
// and MB/s of values, medians over the runs, to o.Out. Every run must read
// exactly the records the topic holds.
func KafkaConsume(ctx context.Context, o KafkaConsumeOptions) (*KafkaReport, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	var rep *KafkaReport
	err := withKafkaTarget(ctx, o.KafkaTarget, func(ctx context.Context, b *kafkaBroker) error {
		printKafkaHeader(o.Out, "sluice bench consume --kafka", b, o.Fsync.String())
		fmt.Fprintf(o.Out, "- fill: %s\n- consumers: %s\n\n", o.Fill.describe(), o.describe())
		var err error
		rep, err = consumeRuns(ctx, b, o, "bench-consume")
		if err != nil {
			return err
		}
		printConsumeTable(o.Out, o, rep)
		return nil
	})
	return rep, err
}

func consumeRuns(ctx context.Context, b *kafkaBroker, o KafkaConsumeOptions, topicPrefix string) (*KafkaReport, error) {
	topic := fmt.Sprintf("%s-%d", topicPrefix, time.Now().UnixNano())
	pool := newValuePool(o.Fill.RecordBytes, o.Fill.BatchBytes, uint64(time.Now().UnixNano()))
	fill, err := produceOnce(ctx, b, o.Fill, topic, pool, false)
	if err != nil {
		return nil, fmt.Errorf("fill: %w", err)
	}
	fmt.Fprintf(o.Out, "- fill: %s\n", describeProduceRun(fill))
	cl, err := kgo.NewClient(kafkaClientOpts(b)...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	defer deleteBenchTopic(ctx, adm, topic)
	held, ends, err := topicRecords(ctx, adm, topic)
	if err != nil {
		return nil, err
	}

	// An untimed read first brings the whole topic into the page cache,
	// which the broker's cache window (docs/format.md) may have left
	// partly on disk, so that every run reads from memory.
	if warm, err := consumeOnce(ctx, b, o, topic, ends); err != nil {
		return nil, fmt.Errorf("warm-up read: %w", err)
	} else if warm.Records != held {
		return nil, fmt.Errorf("warm-up read %d records; the topic holds %d", warm.Records, held)
	}
	stopProfile, err := startProfile(o.CPUProfile)
	if err != nil {
		return nil, err
	}
	defer stopProfile()
	rep := &KafkaReport{}
	for i := 0; i < o.Runs; i++ {
		run, err := consumeOnce(ctx, b, o, topic, ends)
		if err != nil {
			return nil, err
		}
		if run.Records != held {
			return nil, fmt.Errorf("run %d read %d records; the topic holds %d", i+1, run.Records, held)
		}
		rep.Runs = append(rep.Runs, run)
		fmt.Fprintf(o.Out, "- run %d: %s records/s, %.1f MB/s, %s records in %s\n", i+1,
			groupThousands(run.RecordsPerSec()), run.MBPerSec(), groupThousands(float64(run.Records)), run.Elapsed.Round(time.Millisecond))
	}
	return rep, nil
}

// consumeOnce reads every partition of topic from its start up to ends
// with o.Consumers clients and returns the time until the last is done.
func consumeOnce(ctx context.Context, b *kafkaBroker, o KafkaConsumeOptions, topic string, ends map[int32]int64) (KafkaRun, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	assign := make([]map[int32]kgo.Offset, o.Consumers)
	for p, end := range ends {
		if end == 0 {
			continue
		}
		c := int(p) % o.Consumers
		if assign[c] == nil {
			assign[c] = map[int32]kgo.Offset{}
		}
		assign[c][p] = kgo.NewOffset().AtStart()
	}
	type consumer struct {
		cl    *kgo.Client
		parts map[int32]kgo.Offset
	}
	var consumers []consumer
	for _, parts := range assign {
		if parts == nil {
			continue
		}
		cl, err := kgo.NewClient(append(kafkaClientOpts(b),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: parts}),
			kgo.FetchMaxBytes(int32(o.FetchMaxBytes)),
			kgo.FetchMaxPartitionBytes(int32(o.FetchMaxPartitionBytes)),
			kgo.FetchMaxWait(time.Second),
		)...)
		if err != nil {
			return KafkaRun{}, fmt.Errorf("kafka client: %w", err)
		}
		defer cl.Close()
		// Connect before the clock starts.
		if err := cl.Ping(ctx); err != nil {
			return KafkaRun{}, fmt.Errorf("ping: %w", err)
		}
		consumers = append(consumers, consumer{cl, parts})
	}

	var (
		records, bytes atomic.Int64
		once           sync.Once
		firstErr       error
		wg             sync.WaitGroup
	)
	start := time.Now()
	for _, c := range consumers {
		cl := c.cl
		wg.Go(func() {
			// The end offset of each partition not yet read to its end.
			left := map[int32]int64{}
			for p := range c.parts {
				left[p] = ends[p]
			}
			for len(left) > 0 {
				fs := cl.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("consume %s: %w", topic, err); cancel() })
					return
				}
				var n, sz int64
				fs.EachPartition(func(p kgo.FetchTopicPartition) {
					for _, r := range p.Records {
						sz += int64(len(r.Value))
					}
					n += int64(len(p.Records))
					if k := len(p.Records); k > 0 && p.Records[k-1].Offset+1 >= left[p.Partition] {
						delete(left, p.Partition)
					}
				})
				records.Add(n)
				bytes.Add(sz)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if firstErr != nil {
		return KafkaRun{}, firstErr
	}
	return KafkaRun{Records: records.Load(), Bytes: bytes.Load(), Elapsed: elapsed}, nil
}

func printConsumeTable(w io.Writer, o KafkaConsumeOptions, rep *KafkaReport) {
	fmt.Fprintf(w, "\n| consume, medians over %d runs | records/s | MB/s (values) |\n|---|---|---|\n", len(rep.Runs))
	fmt.Fprintf(w, "| %d-byte records, %d consumers | %s | %.1f |\n", o.Fill.RecordBytes, o.Consumers,
		groupThousands(rep.Median(KafkaRun.RecordsPerSec)), rep.Median(KafkaRun.MBPerSec))
}
