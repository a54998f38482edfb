package clients

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceValues produces the values (keyed by themselves) to topic with
// franz-go's defaults (idempotent, acks=all) from several goroutines, and
// fails the test on any error.
func produceValues(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, values []string) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for _, v := range values {
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Topic: topic, Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				select {
				case errs <- fmt.Errorf("produce %s: %w", r.Value, err):
				default:
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// TestFranzIdempotentProducer: franz-go's default producer (idempotent,
// acks=all) sends many records over several partitions, and a consumer
// reads every one back exactly once, each partition's offsets dense, each
// batch stamped with the producer ID Sluice gave it.
func TestFranzIdempotentProducer(t *testing.T) {
	s := startSluice(t)
	ctx := testContext(t, 90*time.Second)
	const topic, n = "franz-idempotent", 40000
	createTopics(t, ctx, s, map[string]int32{topic: 6})
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("record-%06d", i)
	}
	prod := kgoClient(t, s, kgo.ProducerLinger(2*time.Millisecond), kgo.MaxBufferedRecords(5000))
	produceValues(t, ctx, prod, topic, values)

	ends := endOffsets(t, ctx, s, topic)
	var total int64
	for _, e := range ends {
		total += e
	}
	if total != n {
		t.Errorf("log end offsets add up to %d, want %d (one per record produced)", total, n)
	}

	cons := kgoClient(t, s, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := make(map[string]int, n)
	next := map[int32]int64{}
	pids := map[int64]bool{}
	for len(seen) < n {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records: %v", len(seen), n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		for _, r := range fs.Records() {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: got offset %d, want %d", r.Partition, r.Offset, next[r.Partition])
			}
			next[r.Partition]++
			seen[string(r.Value)]++
			pids[r.ProducerID] = true
		}
	}
	for _, v := range values {
		if seen[v] != 1 {
			t.Errorf("%s: read %d times, want once", v, seen[v])
		}
	}
	if len(pids) != 1 || pids[-1] {
		t.Errorf("producer IDs in the stored batches: got %v, want one, not -1 (the producer is idempotent)", slices.Collect(maps.Keys(pids)))
	}
	if len(next) != 6 {
		t.Errorf("records landed in %d partitions, want all 6", len(next))
	}
}

// memberEvents is what a franz-member child printed.
type memberEvents struct {
	recs     []memberRec
	commits  map[int32]int64 // last commit printed, per partition
	assigned map[int32]int64 // partition -> unix nanos of its latest assignment
	owned    map[int32]bool  // owned now (assigned and not revoked since)
}

type memberRec struct {
	partition int32
	offset    int64
	value     string
	// afterAssign is the unix nanos of the assignment the record was read
	// under.
	afterAssign int64
}

func parseMember(out string) memberEvents {
	ev := memberEvents{commits: map[int32]int64{}, assigned: map[int32]int64{}, owned: map[int32]bool{}}
	out = out[:strings.LastIndexByte(out, '\n')+1] // not a partial last line
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "assigned", "revoked":
			at, _ := strconv.ParseInt(f[1], 10, 64)
			for _, ps := range f[2:] {
				p, _ := strconv.ParseInt(ps, 10, 32)
				if f[0] == "assigned" {
					ev.assigned[int32(p)], ev.owned[int32(p)] = at, true
				} else {
					delete(ev.owned, int32(p))
				}
			}
		case "rec":
			if len(f) != 4 {
				continue
			}
			p, _ := strconv.ParseInt(f[1], 10, 32)
			o, _ := strconv.ParseInt(f[2], 10, 64)
			ev.recs = append(ev.recs, memberRec{int32(p), o, f[3], ev.assigned[int32(p)]})
		case "commit":
			p, _ := strconv.ParseInt(f[1], 10, 32)
			o, _ := strconv.ParseInt(f[2], 10, 64)
			ev.commits[int32(p)] = o
		}
	}
	return ev
}

// member is a franz-member child process.
type member struct {
	p     *proc
	stdin io.WriteCloser
}

func (m *member) events() memberEvents { return parseMember(m.p.stdout.String()) }

// TestFranzGroupCooperativeKill: three franz-go group members with the
// cooperative-sticky balancer, each its own process, share a topic; one is
// killed (SIGKILL) mid-stream. Every record is processed at least once, the
// dead member's partitions resume from its commits, nothing is lost, and the
// group's commits reach the log end.
func TestFranzGroupCooperativeKill(t *testing.T) {
	s := startSluice(t)
	ctx := testContext(t, 2*time.Minute)
	const topic, group, partitions = "franz-coop", "franz-coop-group", 6
	createTopics(t, ctx, s, map[string]int32{topic: partitions})
	prod := kgoClient(t, s)
	values := func(from, to int) []string {
		v := make([]string, 0, to-from)
		for i := from; i < to; i++ {
			v = append(v, fmt.Sprintf("v%06d", i))
		}
		return v
	}
	const first, second = 9000, 3000
	produceValues(t, ctx, prod, topic, values(0, first))

	var members []*member
	start := func() *member {
		cmd := childCmd("franz-member", map[string]string{"BROKERS": s.kafkaAddr, "TOPIC": topic, "GROUP": group, "DELAY": "60ms", "STDIN_STOPS": "1"})
		pw, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		m := &member{p: startProc(t, cmd, nil), stdin: pw}
		members = append(members, m)
		return m
	}
	// Start the members one after another, each once the last one has
	// partitions, so that the group rebalances incrementally twice.
	for i := range 3 {
		m := start()
		waitFor(t, ctx, fmt.Sprintf("member %d gets partitions", i), func() error {
			if len(m.events().owned) == 0 {
				return fmt.Errorf("member %d owns no partitions; stderr:\n%s", i, tail(m.p.stderr.String()))
			}
			return nil
		})
	}
	victim := members[0]
	waitFor(t, ctx, "all three members own partitions and the victim made progress", func() error {
		total := 0
		for i, m := range members {
			ev := m.events()
			if len(ev.owned) == 0 {
				return fmt.Errorf("member %d owns no partitions", i)
			}
			total += len(ev.owned)
		}
		if total != partitions {
			return fmt.Errorf("members own %d partitions, want %d", total, partitions)
		}
		if len(victim.events().commits) == 0 {
			return fmt.Errorf("victim has committed nothing yet")
		}
		return nil
	})
	if err := victim.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-victim.p.done:
	case <-ctx.Done():
		t.Fatal("the killed member was not reaped")
	}
	killedAt := time.Now().UnixNano()
	dead := victim.events()
	if len(dead.recs) >= first {
		t.Fatalf("the victim processed all %d records before it was killed; slow the members down", len(dead.recs))
	}
	produceValues(t, ctx, prod, topic, values(first, first+second))
	all := values(0, first+second)

	survivors := members[1:]
	waitFor(t, ctx, "the survivors process every record", func() error {
		seen := map[string]bool{}
		for _, r := range dead.recs {
			seen[r.value] = true
		}
		for _, m := range survivors {
			for _, r := range m.events().recs {
				seen[r.value] = true
			}
		}
		for _, v := range all {
			if !seen[v] {
				return fmt.Errorf("%d of %d records processed; %s is not", len(seen), len(all), v)
			}
		}
		return nil
	})

	// The dead member's partitions resumed from its last commit: a
	// survivor's first record of each, read under an assignment made after
	// the kill, is at or after the victim's last printed commit (a commit
	// may have landed without being printed) and no later than the record
	// after the last one it processed.
	lastDone := map[int32]int64{}
	for _, r := range dead.recs {
		lastDone[r.partition] = max(lastDone[r.partition], r.offset)
	}
	for p := range dead.owned {
		resumed := int64(-1)
		for _, m := range survivors {
			for _, r := range m.events().recs {
				if r.partition == p && r.afterAssign > killedAt && (resumed < 0 || r.offset < resumed) {
					resumed = r.offset
				}
			}
		}
		lo, hi := dead.commits[p], lastDone[p]+1
		if _, ok := lastDone[p]; !ok {
			hi = lo
		}
		if resumed < lo || resumed > hi {
			t.Errorf("partition %d: a survivor resumed at offset %d, want from %d (the victim's last commit) to %d (after its last record)",
				p, resumed, lo, hi)
		}
	}

	// The commits go on to the log end of every partition.
	ends := endOffsets(t, ctx, s, topic)
	adm := kadmClient(t, s)
	waitFor(t, ctx, "the group's commits reach the log end", func() error {
		offs, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return err
		}
		for p, end := range ends {
			o, ok := offs.Lookup(topic, p)
			if !ok || o.At != end {
				return fmt.Errorf("partition %d: got committed offset %d (present %v), want %d", p, o.At, ok, end)
			}
		}
		return nil
	})

	// Survivors leave cleanly when told to.
	for i, m := range survivors {
		_ = m.stdin.Close()
		if err := m.p.wait(ctx); err != nil {
			t.Errorf("member %d: %v", i+1, err)
		}
	}
	var dups int
	count := map[string]int{}
	for _, m := range members {
		for _, r := range m.events().recs {
			if count[r.value]++; count[r.value] == 2 {
				dups++
			}
		}
	}
	uncommitted := 0
	for p := range dead.owned {
		if _, ok := lastDone[p]; ok {
			uncommitted += int(lastDone[p] + 1 - dead.commits[p])
		}
	}
	if dups > uncommitted {
		t.Errorf("got %d records processed twice, want at most %d (what the victim processed after its last commit)", dups, uncommitted)
	}
}

// TestKadm: franz-go's admin client creates a topic with a config,
// describes it and its configs, alters a config, lists offsets, and deletes
// it.
func TestKadm(t *testing.T) {
	s := startSluice(t)
	ctx := testContext(t, time.Minute)
	adm := kadmClient(t, s)
	const topic = "kadm-topic"

	resp, err := adm.CreateTopic(ctx, 4, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, topic)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic: %v / %v", err, resp.Err)
	}
	if resp.NumPartitions != 4 || resp.ReplicationFactor != 1 {
		t.Errorf("create topic: got %d partitions, replication %d; want 4, 1", resp.NumPartitions, resp.ReplicationFactor)
	}
	again, err := adm.CreateTopic(ctx, 4, 1, nil, topic)
	if err == nil {
		err = again.Err
	}
	if !errors.Is(err, kerr.TopicAlreadyExists) {
		t.Errorf("create the same topic again: got %v, want TOPIC_ALREADY_EXISTS", err)
	}

	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := details[topic]; !ok || len(d.Partitions) != 4 || d.Err != nil {
		t.Errorf("list topics: got %+v, want %s with 4 partitions", details[topic], topic)
	}
	cfgs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cfgs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe configs: %v / %v", err, rc.Err)
	}
	var retention string
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" {
			retention = c.MaybeValue()
		}
	}
	if retention != "3600000" {
		t.Errorf("retention.ms: got %q, want %q", retention, "3600000")
	}
	alt, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: kadm.StringPtr("7200000")}}, topic)
	if err == nil {
		var ar kadm.AlterConfigsResponse
		if ar, err = alt.On(topic, nil); err == nil {
			err = ar.Err
		}
	}
	if err != nil {
		t.Fatalf("alter configs: %v", err)
	}
	if cfgs, err = adm.DescribeTopicConfigs(ctx, topic); err != nil {
		t.Fatal(err)
	}
	if rc, err = cfgs.On(topic, nil); err != nil || rc.Err != nil {
		t.Fatalf("describe configs after alter: %v / %v", err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && c.MaybeValue() != "7200000" {
			t.Errorf("retention.ms after alter: got %q, want %q", c.MaybeValue(), "7200000")
		}
	}

	// Offsets: 10 records in partition 2, timestamps 1000 apart.
	cl := kgoClient(t, s, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 10 {
		r := &kgo.Record{Topic: topic, Partition: 2, Value: []byte(strconv.Itoa(i)), Timestamp: base.Add(time.Duration(i) * time.Second)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	type listed struct{ start, end, after int64 }
	want := map[int32]listed{0: {0, 0, 0}, 1: {0, 0, 0}, 2: {0, 10, 4}, 3: {0, 0, 0}}
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	after, err := adm.ListOffsetsAfterMilli(ctx, base.Add(4*time.Second).UnixMilli(), topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range want {
		s, _ := starts.Lookup(topic, p)
		e, _ := ends.Lookup(topic, p)
		a, _ := after.Lookup(topic, p)
		if got := (listed{s.Offset, e.Offset, a.Offset}); got != w || s.Err != nil || e.Err != nil || a.Err != nil {
			t.Errorf("partition %d: got start, end, after-time offsets %v (errors %v %v %v), want %v", p, got, s.Err, e.Err, a.Err, w)
		}
	}

	del, err := adm.DeleteTopics(ctx, topic)
	if err != nil || del[topic].Err != nil {
		t.Fatalf("delete topic: %v / %v", err, del[topic].Err)
	}
	waitFor(t, ctx, "the deleted topic is gone from the listing", func() error {
		details, err := adm.ListTopics(ctx)
		if err != nil {
			return err
		}
		if _, ok := details[topic]; ok {
			return fmt.Errorf("list topics still has %s", topic)
		}
		return nil
	})
}

// TestKadmGroups: kadm commits offsets for a group, lists, describes and
// fetches the group's offsets, and deletes the group.
func TestKadmGroups(t *testing.T) {
	s := startSluice(t)
	ctx := testContext(t, time.Minute)
	adm := kadmClient(t, s)
	const topic, group = "kadm-groups", "kadm-group"
	createTopics(t, ctx, s, map[string]int32{topic: 2})
	produceValues(t, ctx, kgoClient(t, s), topic, []string{"a", "b", "c", "d"})

	// A group with a live member, so that describe has something to show.
	cons := kgoClient(t, s, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	got := 0
	for got < 4 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 4: %v", got, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		got += len(fs.Records())
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(listed.Groups(), group) {
		t.Errorf("list groups: got %v, want %s among them", listed.Groups(), group)
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	dg := described[group]
	if dg.Err != nil || dg.State != "Stable" || len(dg.Members) != 1 || dg.Protocol == "" {
		t.Errorf("describe group: got state %q, %d members, protocol %q, err %v; want Stable, 1 member, a protocol",
			dg.State, len(dg.Members), dg.Protocol, dg.Err)
	}
	if len(dg.Members) == 1 {
		if a, ok := dg.Members[0].Assigned.AsConsumer(); !ok || len(a.Topics) != 1 || len(a.Topics[0].Partitions) != 2 {
			t.Errorf("describe group: member assignment %+v, want both partitions of %s", a, topic)
		}
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != 4 {
		t.Errorf("fetched offsets add up to %d, want 4", committed)
	}

	cons.Close() // leaves the group
	waitFor(t, ctx, "the group is empty once its member left", func() error {
		d, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return err
		}
		if st := d[group].State; st != "Empty" {
			return fmt.Errorf("got state %q, want Empty", st)
		}
		return nil
	})
	deleted, err := adm.DeleteGroup(ctx, group)
	if err != nil || deleted.Err != nil {
		t.Fatalf("delete group: %v / %v", err, deleted.Err)
	}
	offs, err = adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(offs); n != 0 {
		t.Errorf("offsets after the group was deleted: got %d topics, want none", n)
	}
}
