package clients

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func kcat(t *testing.T) string {
	return requireTool(t, "kcat", "Debian package kcat")
}

// TestKcatMetadata: kcat -L lists the broker and the topics with their
// partitions.
func TestKcatMetadata(t *testing.T) {
	bin := kcat(t)
	s := startSluice(t)
	ctx := testContext(t, time.Minute)
	createTopics(t, ctx, s, map[string]int32{"kcat-meta-a": 3, "kcat-meta-b": 1})

	out, err := run(t, ctx, exec.Command(bin, "-b", s.kafkaAddr, "-L", "-J"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var md struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(out, &md); err != nil {
		t.Fatalf("kcat -L -J: %v; output:\n%s", err, out)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].Name != s.kafkaAddr {
		t.Errorf("brokers: got %+v, want one at %s", md.Brokers, s.kafkaAddr)
	}
	got := map[string]int{}
	for _, tp := range md.Topics {
		got[tp.Topic] = len(tp.Partitions)
		for _, p := range tp.Partitions {
			if len(md.Brokers) > 0 && p.Leader != md.Brokers[0].ID {
				t.Errorf("topic %s partition %d: got leader %d, want %d", tp.Topic, p.Partition, p.Leader, md.Brokers[0].ID)
			}
		}
	}
	for name, want := range map[string]int{"kcat-meta-a": 3, "kcat-meta-b": 1} {
		if got[name] != want {
			t.Errorf("topic %s: got %d partitions, want %d (topics listed: %v)", name, got[name], want, got)
		}
	}

	// The plain-text listing a person reads names them too.
	out, err = run(t, ctx, exec.Command(bin, "-b", s.kafkaAddr, "-L", "-t", "kcat-meta-a"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`topic "kcat-meta-a" with 3 partitions`)) {
		t.Errorf("kcat -L -t kcat-meta-a: got\n%s\nwant a line for topic \"kcat-meta-a\" with 3 partitions", out)
	}
}

// kcatMessages are n keyed messages with distinct keys and values of
// varied length and content (printable, no tab or newline, which are
// kcat's delimiters).
func kcatMessages(prefix string, n int) (keys, values []string) {
	r := rand.New(rand.NewPCG(uint64(len(prefix)), 42))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 {}[]\":,.-_/\\!@#$%^&*()"
	keys, values = make([]string, n), make([]string, n)
	for i := range n {
		keys[i] = fmt.Sprintf("%s-key-%05d", prefix, i)
		b := make([]byte, r.IntN(300))
		for j := range b {
			b[j] = alphabet[r.IntN(len(alphabet))]
		}
		values[i] = fmt.Sprintf("%s-%d|%s", prefix, i, b)
	}
	return keys, values
}

// kcatRecord is one consumed message.
type kcatRecord struct {
	partition int32
	offset    int64
	key       string
	value     string
}

// kcatFormat prints each message as "partition offset keylen valuelen\n"
// followed by the key and value bytes and a newline, so that the output
// parses whatever the bytes are.
const kcatFormat = `%p %o %K %S\n%k%s\n`

func parseKcat(out []byte) ([]kcatRecord, error) {
	var recs []kcatRecord
	br := bufio.NewReader(bytes.NewReader(out))
	for {
		hdr, err := br.ReadString('\n')
		if err == io.EOF && hdr == "" {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("record %d: header: %v", len(recs), err)
		}
		f := strings.Fields(hdr)
		if len(f) != 4 {
			return nil, fmt.Errorf("record %d: header %q: want 4 fields", len(recs), hdr)
		}
		var rec kcatRecord
		p, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		kl, err3 := strconv.Atoi(f[2])
		vl, err4 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			return nil, fmt.Errorf("record %d: header %q does not parse", len(recs), hdr)
		}
		// kcat prints -1 for a null key or value.
		buf := make([]byte, max(kl, 0)+max(vl, 0)+1)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, fmt.Errorf("record %d: body: %v", len(recs), err)
		}
		rec.partition, rec.offset = int32(p), o
		rec.key, rec.value = string(buf[:max(kl, 0)]), string(buf[max(kl, 0):len(buf)-1])
		recs = append(recs, rec)
	}
}

// checkKcatRecords checks that recs are exactly the messages keys/values,
// each once, with offsets dense from 0 in each partition.
func checkKcatRecords(t *testing.T, recs []kcatRecord, keys, values []string) {
	t.Helper()
	want := make(map[string]string, len(keys))
	for i := range keys {
		want[keys[i]] = values[i]
	}
	seen := make(map[string]bool, len(recs))
	next := map[int32]int64{}
	bad := 0
	for _, r := range recs {
		if r.offset != next[r.partition] && bad < 5 {
			t.Errorf("partition %d: got offset %d, want %d (offsets dense from 0, in order)", r.partition, r.offset, next[r.partition])
			bad++
		}
		next[r.partition] = r.offset + 1
		v, ok := want[r.key]
		switch {
		case !ok && bad < 5:
			t.Errorf("partition %d offset %d: got key %q, which was not produced", r.partition, r.offset, r.key)
			bad++
		case seen[r.key] && bad < 5:
			t.Errorf("partition %d offset %d: key %q read twice", r.partition, r.offset, r.key)
			bad++
		case ok && v != r.value && bad < 5:
			t.Errorf("key %q: got value %q, want %q", r.key, r.value, v)
			bad++
		}
		seen[r.key] = true
	}
	if len(recs) != len(keys) || len(seen) != len(keys) {
		t.Errorf("got %d records (%d distinct keys), want %d", len(recs), len(seen), len(keys))
	}
}

// TestKcatProduceConsumeCodecs: kcat -P produces 10,000 keyed messages with
// each compression codec (and once more with librdkafka's idempotent
// producer), kcat -C -e reads them back byte for byte, and kcat -C -o -3
// reads the last three of each partition, from inside compressed batches.
func TestKcatProduceConsumeCodecs(t *testing.T) {
	bin := kcat(t)
	s := startSluice(t)
	ctx := testContext(t, 2*time.Minute)
	cases := []struct {
		name, codec string
		idempotent  bool
	}{
		{name: "gzip", codec: "gzip"},
		{name: "snappy", codec: "snappy"},
		{name: "lz4", codec: "lz4"},
		{name: "zstd", codec: "zstd"},
		{name: "zstd-idempotent", codec: "zstd", idempotent: true},
	}
	topics := map[string]int32{}
	for _, tc := range cases {
		topics["kcat-"+tc.name] = 3
	}
	createTopics(t, ctx, s, topics)

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			topic := "kcat-" + tc.name
			keys, values := kcatMessages(tc.name, 10000)
			var in bytes.Buffer
			for i := range keys {
				in.WriteString(keys[i] + "\t" + values[i] + "\n")
			}
			args := []string{"-b", s.kafkaAddr, "-P", "-t", topic, "-K", "\t", "-z", tc.codec,
				"-X", "acks=all", "-X", "linger.ms=20", "-X", "enable.idempotence=" + strconv.FormatBool(tc.idempotent)}
			if _, err := run(t, ctx, exec.Command(bin, args...), &in); err != nil {
				t.Fatalf("kcat -P -z %s: %v", tc.codec, err)
			}
			out, err := run(t, ctx, exec.Command(bin, "-b", s.kafkaAddr, "-C", "-t", topic, "-o", "beginning", "-e",
				"-f", kcatFormat), nil)
			if err != nil {
				t.Fatalf("kcat -C -e: %v", err)
			}
			recs, err := parseKcat(out)
			if err != nil {
				t.Fatal(err)
			}
			checkKcatRecords(t, recs, keys, values)
			// The batches are stored as the producer compressed them.
			checkStored(t, ctx, s, topic, tc.codec, tc.idempotent)

			// The tail: the last three records of each partition.
			ends := endOffsets(t, ctx, s, topic)
			out, err = run(t, ctx, exec.Command(bin, "-b", s.kafkaAddr, "-C", "-t", topic, "-o", "-3", "-e",
				"-f", kcatFormat), nil)
			if err != nil {
				t.Fatalf("kcat -C -o -3 -e: %v", err)
			}
			tailRecs, err := parseKcat(out)
			if err != nil {
				t.Fatal(err)
			}
			got := map[int32][]int64{}
			for _, r := range tailRecs {
				got[r.partition] = append(got[r.partition], r.offset)
			}
			for _, p := range sortedPartitions(ends) {
				want := []int64{ends[p] - 3, ends[p] - 2, ends[p] - 1}
				if !slices.Equal(got[p], want) {
					t.Errorf("kcat -o -3, partition %d: got offsets %v, want %v", p, got[p], want)
				}
			}
		})
	}
}

// TestKcatGroup: kcat -G consumes as a member of a group, reads every
// message and commits; the committed offsets are then the log end of each
// partition, as Sluice's HTTP API reports them.
func TestKcatGroup(t *testing.T) {
	bin := kcat(t)
	s := startSluice(t)
	ctx := testContext(t, 2*time.Minute)
	const topic, group = "kcat-group", "kcat-readers"
	createTopics(t, ctx, s, map[string]int32{topic: 3})
	keys, values := kcatMessages("group", 3000)
	var in bytes.Buffer
	for i := range keys {
		in.WriteString(keys[i] + "\t" + values[i] + "\n")
	}
	if _, err := run(t, ctx, exec.Command(bin, "-b", s.kafkaAddr, "-P", "-t", topic, "-K", "\t"), &in); err != nil {
		t.Fatal(err)
	}
	ends := endOffsets(t, ctx, s, topic)

	out, err := run(t, ctx, exec.Command(bin, "-b", s.kafkaAddr, "-G", group, "-e", "-f", kcatFormat,
		"-X", "auto.offset.reset=earliest", "-X", "auto.commit.interval.ms=200", topic), nil)
	if err != nil {
		t.Fatalf("kcat -G: %v", err)
	}
	recs, err := parseKcat(out)
	if err != nil {
		t.Fatal(err)
	}
	checkKcatRecords(t, recs, keys, values)

	got, err := s.groupOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for p, end := range ends {
		if off, ok := got[topic][p]; !ok || off != end {
			t.Errorf("group %s partition %d: got committed offset %d (present %v), want %d (the log end)", group, p, off, ok, end)
		}
	}

	// A second run of the group starts from the commits: nothing is left.
	out, err = run(t, ctx, exec.Command(bin, "-b", s.kafkaAddr, "-G", group, "-e", "-f", kcatFormat,
		"-X", "auto.offset.reset=earliest", topic), nil)
	if err != nil {
		t.Fatalf("kcat -G again: %v", err)
	}
	if recs, err := parseKcat(out); err != nil || len(recs) != 0 {
		t.Errorf("second kcat -G run: got %d records (err %v), want 0: the group committed everything", len(recs), err)
	}
}

// sortedPartitions returns m's keys in order.
func sortedPartitions[V any](m map[int32]V) []int32 {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps
}
