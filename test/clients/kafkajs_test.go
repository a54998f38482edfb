package clients

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKafkajs: kafkajs (run by node) creates a topic, produces keyed
// messages alone and in gzip batches, and reads them all back in a consumer
// group, whose commits then stand at the log end of every partition.
func TestKafkajs(t *testing.T) {
	node := requireTool(t, "node", "Debian package nodejs")
	dir, err := filepath.Abs("kafkajs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "kafkajs", "package.json")); err != nil {
		missing(t, "kafkajs is not installed (run npm ci in test/clients/kafkajs)")
	}
	s := startSluice(t)
	ctx := testContext(t, 90*time.Second)
	const topic, group, n, partitions = "kafkajs-topic", "kafkajs-group", 1000, 3
	cmd := exec.Command(node, "roundtrip.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BROKERS="+s.kafkaAddr, "TOPIC="+topic, "GROUP="+group,
		"N="+strconv.Itoa(n), "PARTITIONS="+strconv.Itoa(partitions), "KAFKAJS_NO_PARTITIONER_WARNING=1")
	out, err := run(t, ctx, cmd, nil)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s", err, tail(string(out)))
	}

	sent, got := map[string][2]int64{}, map[string][2]int64{}
	batched := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "batch":
			c, _ := strconv.Atoi(f[1])
			batched += c
		case len(f) == 4 && (f[0] == "sent" || f[0] == "got"):
			p, _ := strconv.ParseInt(f[1], 10, 32)
			o, _ := strconv.ParseInt(f[2], 10, 64)
			if f[0] == "sent" {
				sent[f[3]] = [2]int64{p, o}
			} else {
				if _, dup := got[f[3]]; dup {
					t.Errorf("%s consumed twice", f[3])
				}
				got[f[3]] = [2]int64{p, o}
			}
		default:
			t.Fatalf("kafkajs output line %q: unexpected", sc.Text())
		}
	}
	if len(sent)+batched != n || len(got) != n {
		t.Fatalf("got %d sent alone + %d in batches and %d consumed, want %d of each", len(sent), batched, len(got), n)
	}
	for i := range n {
		v := "value-" + strconv.Itoa(i)
		g, ok := got[v]
		if !ok {
			t.Errorf("%s was not consumed", v)
			continue
		}
		if at, alone := sent[v]; alone && at != g {
			t.Errorf("%s: sent to partition/offset %v, consumed at %v", v, at, g)
		}
	}

	checkStored(t, ctx, s, topic, "", true)
	ends := endOffsets(t, ctx, s, topic)
	if len(ends) != partitions {
		t.Errorf("topic has %d partitions, want %d", len(ends), partitions)
	}
	commits, err := s.groupOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sortedPartitions(ends) {
		if c, ok := commits[topic][p]; !ok || c != ends[p] {
			t.Errorf("partition %d: got committed offset %d (present %v), want %d (the log end)", p, c, ok, ends[p])
		}
	}
}
