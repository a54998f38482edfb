package bench

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/sluice-dev/sluice/internal/logstore"
)

// The Kafka benchmarks run here at a tiny scale: the numbers mean nothing
// and nothing is checked against them, but every mode must produce and
// consume for real and the reports must be whole.

func tinyProduce(t *testing.T) KafkaProduceOptions {
	return KafkaProduceOptions{
		KafkaTarget: KafkaTarget{Dir: t.TempDir(), Fsync: logstore.SyncPolicy{Mode: logstore.SyncAlways}},
		Records:     3000, RecordBytes: 100, Producers: 2, Partitions: 3, BufferedRecords: 256,
		BatchBytes: 16 << 10, Runs: 2,
	}
}

func wantReport(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

func TestKafkaProduce(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*KafkaProduceOptions)
		want []string
	}{
		{"records", func(o *KafkaProduceOptions) {}, []string{"3,000 records per run", "acks=all"}},
		{"fsync baseline", func(o *KafkaProduceOptions) { o.FsyncBaseline, o.FsyncBaselineBytes = true, 2<<20 },
			[]string{"**produce / raw fsync: ", "raw write+fdatasync"}},
		{"duration acks leader zstd", func(o *KafkaProduceOptions) {
			o.Records, o.Duration, o.Acks, o.Compression = 0, 300*time.Millisecond, "1", "zstd"
		}, []string{"300ms per run", "compression zstd", "acks=1"}},
		{"acks none lz4", func(o *KafkaProduceOptions) { o.Acks, o.Compression = "none", "lz4" }, []string{"acks=none"}},
		{"constant rate", func(o *KafkaProduceOptions) { o.Records, o.Rate = 0, 5000; o.Duration = 400 * time.Millisecond },
			[]string{"constant rate 5,000 records/s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tinyProduce(t)
			tc.mod(&o)
			var out bytes.Buffer
			o.Out = &out
			rep, err := KafkaProduce(context.Background(), o)
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			if len(rep.Runs) != 2 {
				t.Fatalf("got %d runs, want 2", len(rep.Runs))
			}
			for _, r := range rep.Runs {
				if o.Records > 0 && (r.Records != 3000 || r.Bytes != 300000) {
					t.Errorf("got %d records, %d bytes; want 3000, 300000", r.Records, r.Bytes)
				}
				if r.Records == 0 || r.P50 <= 0 || r.P99 < r.P50 || r.P999 < r.P99 {
					t.Errorf("got %d records, p50 %s, p99 %s, p99.9 %s", r.Records, r.P50, r.P99, r.P999)
				}
				if o.FsyncBaseline && (r.RawFsync <= 0 || r.FsyncRatio() <= 0) {
					t.Errorf("got raw fsync %v, ratio %v", r.RawFsync, r.FsyncRatio())
				}
				if o.Rate > 0 {
					// 5,000 records/s for 0.4 s is about 2,000.
					if r.Records < 1000 || r.Records > 3000 {
						t.Errorf("constant rate: got %d records, want about 2000", r.Records)
					}
				}
			}
			wantReport(t, out.String(), append(tc.want, "# sluice bench produce --kafka", "| produce, medians over 2 runs |",
				"- run 2: ", "Sluice in this process", "fsync=always", "2 producer clients", "3 partitions")...)
		})
	}
}

// TestKafkaProduceBrokers loads a broker started apart, as --brokers does:
// kfake, franz-go's fake cluster.
func TestKafkaProduceBrokers(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o := tinyProduce(t)
	o.Brokers = c.ListenAddrs()
	var out bytes.Buffer
	o.Out = &out
	if _, err := KafkaProduce(context.Background(), o); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	wantReport(t, out.String(), c.ListenAddrs()[0]+" (a running broker", "- fsync policy reported for it: always")
}

func TestKafkaConsume(t *testing.T) {
	p := tinyProduce(t)
	var out bytes.Buffer
	var prof bytes.Buffer
	rep, err := KafkaConsume(context.Background(), KafkaConsumeOptions{
		KafkaTarget: p.KafkaTarget, Fill: KafkaProduceOptions{Records: 5000, RecordBytes: 50, Partitions: 5,
			Producers: 2, BatchBytes: 8 << 10},
		Consumers: 2, Runs: 2, CPUProfile: &prof, Out: &out,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, r := range rep.Runs {
		if r.Records != 5000+2 || r.Bytes != 5002*50 { // 2 warm-up records
			t.Errorf("got %d records, %d bytes; want 5002, %d", r.Records, r.Bytes, 5002*50)
		}
	}
	if prof.Len() == 0 {
		t.Error("no CPU profile written")
	}
	wantReport(t, out.String(), "# sluice bench consume --kafka", "| consume, medians over 2 runs |", "| 50-byte records, 2 consumers |",
		"- run 2: ", "5,002 records in", "2 consumer clients")
}

func TestKafkaSuite(t *testing.T) {
	p := tinyProduce(t)
	var out bytes.Buffer
	rep, err := KafkaSuite(context.Background(), KafkaSuiteOptions{
		KafkaTarget: p.KafkaTarget,
		Produce: KafkaProduceOptions{Records: 2000, Producers: 2, Partitions: 3, BufferedRecords: 256, BatchBytes: 16 << 10,
			FsyncBaselineBytes: 2 << 20},
		LargeRecordBytes: 512, SmallRecordBytes: 20,
		Consume: KafkaConsumeOptions{Fill: KafkaProduceOptions{Records: 3000}, Consumers: 2},
		Runs:    1, Out: &out,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.TargetRate <= 0 || len(rep.Rate.Runs) != 1 || rep.Large.Runs[0].RawFsync <= 0 || rep.Consume.Runs[0].Records != 3002 {
		t.Errorf("got target rate %v, %d rate runs, raw fsync %v, %d consumed", rep.TargetRate, len(rep.Rate.Runs),
			rep.Large.Runs[0].RawFsync, rep.Consume.Runs[0].Records)
	}
	wantReport(t, out.String(), "# sluice bench kafka", "## Produce 512-byte records, with the raw fsync baseline", "## Produce 20-byte records",
		"## Consume 20-byte records", "## Constant rate: 50 % of the 20-byte maximum", "## Summary", "**produce / raw fsync** |",
		"**p99 produce latency at ", "2,000 records per run")
}

func TestKafkaOptions(t *testing.T) {
	for _, tc := range []struct {
		mod  func(*KafkaProduceOptions)
		want string
	}{
		{func(o *KafkaProduceOptions) { o.Acks = "2" }, `acks "2"`},
		{func(o *KafkaProduceOptions) { o.Compression = "brotli" }, `compression "brotli"`},
		{func(o *KafkaProduceOptions) { o.Records = -1 }, "records -1"},
		{func(o *KafkaProduceOptions) { o.Rate = -5 }, "rate -5"},
		{func(o *KafkaProduceOptions) { o.RecordBytes = -1 }, "record bytes -1"},
	} {
		var o KafkaProduceOptions
		tc.mod(&o)
		if err := o.setDefaults(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("got %v, want an error with %q", err, tc.want)
		}
	}
	var o KafkaProduceOptions
	if err := o.setDefaults(); err != nil {
		t.Fatal(err)
	}
	if o.Producers != 4 || o.Linger != 5*time.Millisecond || o.BufferedRecords != 16384 || o.BatchBytes != 1<<20 ||
		o.Partitions != 6 || o.Acks != "all" || o.Compression != "none" || o.RecordBytes != 1024 || o.Runs != 3 {
		t.Errorf("defaults: got %+v", o)
	}
}

func TestLatencyHist(t *testing.T) {
	var h latencyHist
	for i := 1; i <= 100000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.999, 99900 * time.Microsecond}, {1, 100 * time.Millisecond}} {
		got := h.percentile(tc.q)
		if d := got - tc.want; d < -tc.want/100 || d > tc.want/100 {
			t.Errorf("percentile(%v): got %s, want %s within 1 %%", tc.q, got, tc.want)
		}
	}
	var small latencyHist
	for _, v := range []int64{0, 5, 127, 128, 129} {
		small.record(time.Duration(v))
	}
	if got := small.percentile(0.2); got != 0 {
		t.Errorf("got %v, want 0", got)
	}
	if got := small.percentile(0.6); got != 127 {
		t.Errorf("got %v, want 127", got)
	}
	for v := int64(0); v < 1<<40; v = v*3 + 1 {
		if i := histIndex(v); i < 0 || i >= len(h.counts) || histValue(i) > v+v/histSub+1 || histValue(i) < v-v/histSub-1 {
			t.Errorf("value %d: bucket %d holds %d", v, i, histValue(i))
		}
	}
}

// TestValuePool checks that values do not compress: a batch's worth of
// them stays as large under zstd.
func TestValuePool(t *testing.T) {
	p := newValuePool(100, 1<<20, 1)
	c := p.cursor(1, 4)
	var batch []byte
	for range 10000 {
		v := c.next()
		if len(v) != 100 || cap(v) != 100 {
			t.Fatalf("got len %d cap %d, want 100", len(v), cap(v))
		}
		batch = append(batch, v...)
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(enc.EncodeAll(batch, nil)); got < len(batch)*99/100 {
		t.Errorf("zstd shrank %d bytes of values to %d", len(batch), got)
	}
}
