package kafkawire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/group"
)

// Group timings for tests: Kafka's minimum session timeout is 6s; the
// coordinator takes the minimum as an option so that an expiry takes ~1s.
const (
	testSession   = 1500 * time.Millisecond
	testHeartbeat = 200 * time.Millisecond
	testRebalance = 6 * time.Second
)

// newGroupEnv is a test server whose coordinator allows short sessions and
// has a short initial rebalance delay.
func newGroupEnv(t *testing.T) *testEnv {
	t.Helper()
	g, err := group.New(group.Options{InitialRebalanceDelay: 100 * time.Millisecond, MinSessionTimeout: time.Second, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return newTestEnv(t, Options{Groups: g})
}

// cutDialer dials normally until cut, which closes its connections and
// fails every later dial: the client's process "dies" without leaving its
// group, so only the session timeout can remove it.
type cutDialer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func (d *cutDialer) dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errors.New("cut")
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, host)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *cutDialer) Cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		_ = c.Close()
	}
}

// seenSet records the values consumers processed.
type seenSet struct {
	mu   sync.Mutex
	vals map[string]int
}

func (s *seenSet) add(v string) {
	s.mu.Lock()
	s.vals[v]++
	s.mu.Unlock()
}

func (s *seenSet) count(v string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.vals[v]
}

func (s *seenSet) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.vals)
}

// consume polls until ctx ends, recording each record and then marking it
// for the next autocommit: a record is committed only once processed.
func consume(ctx context.Context, cl *kgo.Client, seen *seenSet) {
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			seen.add(string(r.Value))
			cl.MarkCommitRecords(r)
		})
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func produceValues(t *testing.T, cl *kgo.Client, topic string, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	if err := cl.ProduceSync(testContext(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// TestConsumerGroupFailover runs three franz-go group consumers on six
// partitions, kills one mid-stream without leaving, and checks that its
// session expires, its partitions move on from the committed offsets, and
// every record is processed.
func TestConsumerGroupFailover(t *testing.T) {
	for _, tt := range []struct {
		name     string
		balancer kgo.GroupBalancer
	}{
		{"cooperative-sticky", kgo.CooperativeStickyBalancer()},
		{"range", kgo.RangeBalancer()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newGroupEnv(t)
			topic, groupName := "orders", "billing"
			e.createTopic(topic, 6, nil)
			const half, total = 600, 1200
			ctx, cancel := context.WithCancel(testContext(t))
			defer cancel()
			seen := &seenSet{vals: map[string]int{}}
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			victim := &cutDialer{}
			start := func(d *cutDialer) *kgo.Client {
				opts := []kgo.Opt{kgo.ConsumerGroup(groupName), kgo.ConsumeTopics(topic), kgo.Balancers(tt.balancer),
					kgo.SessionTimeout(testSession), kgo.HeartbeatInterval(testHeartbeat), kgo.RebalanceTimeout(testRebalance),
					kgo.AutoCommitMarks(), kgo.AutoCommitInterval(100 * time.Millisecond), kgo.FetchMaxWait(200 * time.Millisecond),
					kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
				if d != nil {
					opts = append(opts, kgo.Dialer(d.dial), kgo.RetryTimeout(time.Second), kgo.RequestRetries(1))
				}
				cl := e.client(opts...)
				wg.Add(1)
				go func() {
					defer wg.Done()
					consume(ctx, cl, seen)
				}()
				return cl
			}
			start(nil)
			start(nil)
			start(victim)
			coord := e.srv.Groups()
			waitFor(t, 30*time.Second, "a stable group of 3", func() bool {
				d, _ := coord.Describe(groupName)
				return d.State == group.Stable && len(d.Members) == 3
			})
			before, _ := coord.Describe(groupName)

			producer := e.client(kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
			produceValues(t, producer, topic, 0, half)
			waitFor(t, 30*time.Second, "half the records processed", func() bool { return seen.distinct() >= half/2 })
			victim.Cut()
			produceValues(t, producer, topic, half, total)

			waitFor(t, 30*time.Second, "the dead member's session to expire", func() bool {
				d, _ := coord.Describe(groupName)
				return d.State == group.Stable && len(d.Members) == 2 && d.Generation > before.Generation
			})
			waitFor(t, 60*time.Second, "every record processed", func() bool { return seen.distinct() == total })

			// Commits follow the processing to the end of every partition.
			adm := e.admin()
			waitFor(t, 30*time.Second, "commits at the end of every partition", func() bool {
				offs, err := adm.FetchOffsets(ctx, groupName)
				if err != nil {
					return false
				}
				var sum int64
				offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
				return sum == total
			})
			for i := range total {
				if seen.count(fmt.Sprintf("v%d", i)) == 0 {
					t.Errorf("record v%d never processed", i)
				}
			}
			d, _ := coord.Describe(groupName)
			for _, m := range d.Members {
				if len(group.ConsumerAssignment(m.Assignment)) == 0 {
					t.Errorf("member %s has no partitions after the failover; want the six shared by two", m.MemberID)
				}
			}
		})
	}
}

// TestStaticMemberRejoin restarts a static member: it replaces its old
// member ID without a rebalance and gets its partitions back.
func TestStaticMemberRejoin(t *testing.T) {
	e := newGroupEnv(t)
	e.createTopic("events", 4, nil)
	coord := e.srv.Groups()
	start := func(instance string) *kgo.Client {
		// An eager balancer: a cooperative one rebalances twice when the
		// second member comes, and a member closed between the two leaves.
		return e.client(kgo.ConsumerGroup("static"), kgo.ConsumeTopics("events"), kgo.InstanceID(instance), kgo.Balancers(kgo.RangeBalancer()),
			kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(testHeartbeat), kgo.RebalanceTimeout(testRebalance),
			kgo.FetchMaxWait(200*time.Millisecond))
	}
	ctx := testContext(t)
	poll := func(cl *kgo.Client) {
		pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		cl.PollFetches(pctx)
	}
	a, b := start("a"), start("b")
	waitFor(t, 30*time.Second, "a stable group of 2", func() bool {
		poll(a)
		poll(b)
		d, _ := coord.Describe("static")
		if d.State != group.Stable || len(d.Members) != 2 {
			return false
		}
		for _, m := range d.Members {
			if len(group.ConsumerAssignment(m.Assignment)) == 0 {
				return false
			}
		}
		return true
	})
	before, _ := coord.Describe("static")
	member := func(d group.Description, instance string) group.MemberDescription {
		for _, m := range d.Members {
			if m.InstanceID == instance {
				return m
			}
		}
		t.Fatalf("no member with instance ID %q in %+v", instance, d.Members)
		return group.MemberDescription{}
	}
	oldB := member(before, "b")
	b.Close() // a static member does not leave on close

	b2 := start("b")
	waitFor(t, 30*time.Second, "the restarted member to rejoin", func() bool {
		poll(b2)
		d, _ := coord.Describe("static")
		return d.State == group.Stable && len(d.Members) == 2 && member(d, "b").MemberID != oldB.MemberID
	})
	after, _ := coord.Describe("static")
	if after.Generation != before.Generation {
		t.Errorf("generation %d after the static rejoin, want %d (no rebalance)", after.Generation, before.Generation)
	}
	if got, want := fmt.Sprint(group.ConsumerAssignment(member(after, "b").Assignment)), fmt.Sprint(group.ConsumerAssignment(oldB.Assignment)); got != want {
		t.Errorf("rejoined member's assignment %s, want its old one %s", got, want)
	}
	if code := groupCode(coord.Heartbeat("static", oldB.MemberID, "b", before.Generation)); code != kerr.FencedInstanceID.Code {
		t.Errorf("heartbeat with the old member ID: code %d, want FENCED_INSTANCE_ID", code)
	}
}

// TestGroupAdmin drives DescribeGroups, ListGroups, DeleteGroups and
// OffsetDelete through kadm against a live group.
func TestGroupAdmin(t *testing.T) {
	e := newGroupEnv(t)
	e.createTopic("live", 2, nil)
	e.createTopic("old", 1, nil)
	ctx := testContext(t)
	adm := e.admin()
	// The group committed offsets for "old" before its members came.
	var os kadm.Offsets
	os.Add(kadm.Offset{Topic: "old", Partition: 0, At: 5, LeaderEpoch: -1})
	if rs, err := adm.CommitOffsets(ctx, "admin", os); err != nil || rs.Error() != nil {
		t.Fatalf("commit: %v %v", err, rs.Error())
	}
	if rs, err := adm.CommitOffsets(ctx, "idle", os); err != nil || rs.Error() != nil {
		t.Fatalf("commit: %v %v", err, rs.Error())
	}
	cl := e.client(kgo.ConsumerGroup("admin"), kgo.ConsumeTopics("live"), kgo.SessionTimeout(testSession),
		kgo.HeartbeatInterval(testHeartbeat), kgo.FetchMaxWait(200*time.Millisecond))
	waitFor(t, 30*time.Second, "the group to be stable", func() bool {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		cl.PollFetches(pctx)
		cancel()
		d, _ := e.srv.Groups().Describe("admin")
		return d.State == group.Stable
	})

	ds, err := adm.DescribeGroups(ctx, "admin", "idle", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	live := ds["admin"]
	if live.State != "Stable" || live.ProtocolType != "consumer" || live.Protocol != "cooperative-sticky" || len(live.Members) != 1 {
		t.Fatalf("describe admin: %+v, want Stable consumer/cooperative-sticky with 1 member", live)
	}
	if got := live.AssignedPartitions().Sorted(); len(got) != 1 || got[0].Topic != "live" || len(got[0].Partitions) != 2 {
		t.Errorf("assigned: %v, want live 0 and 1", got)
	}
	if m := live.Members[0]; m.ClientHost != "/127.0.0.1" || m.ClientID == "" {
		t.Errorf("member %+v, want client host /127.0.0.1 and a client ID", m)
	}
	if ds["idle"].State != "Empty" || ds["nobody"].State != "Dead" {
		t.Errorf("describe idle and nobody: %s and %s, want Empty and Dead", ds["idle"].State, ds["nobody"].State)
	}

	listed, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := listed.Sorted(); len(got) != 2 || got[0].Group != "admin" || got[0].State != "Stable" || got[1].Group != "idle" || got[1].State != "Empty" {
		t.Errorf("list groups: %+v, want admin (Stable) and idle (Empty)", got)
	}
	for filter, want := range map[string]string{"Stable": "admin", "empty": "idle"} {
		if got, err := adm.ListGroups(ctx, filter); err != nil || len(got) != 1 || got.Groups()[0] != want {
			t.Errorf("list groups in %s: %v, %v; want %s only", filter, got.Groups(), err, want)
		}
	}

	// Offsets of a subscribed topic stay; others may go.
	set := kadm.TopicsSet{}
	set.Add("live", 0)
	set.Add("old", 0)
	drs, err := adm.DeleteOffsets(ctx, "admin", set)
	if err != nil {
		t.Fatal(err)
	}
	if err := drs["live"][0]; !errors.Is(err, kerr.GroupSubscribedToTopic) {
		t.Errorf("delete offsets of the subscribed topic: %v, want GROUP_SUBSCRIBED_TO_TOPIC", err)
	}
	if err := drs["old"][0]; err != nil {
		t.Errorf("delete offsets of an unsubscribed topic: %v, want success", err)
	}
	if _, err := adm.DeleteOffsets(ctx, "nobody", set); !errors.Is(err, kerr.GroupIDNotFound) {
		t.Errorf("delete offsets of an unknown group: %v, want GROUP_ID_NOT_FOUND", err)
	}

	dr, err := adm.DeleteGroups(ctx, "admin", "idle", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	for g, want := range map[string]error{"admin": kerr.NonEmptyGroup, "idle": nil, "nobody": kerr.GroupIDNotFound} {
		if got := dr[g].Err; !errors.Is(got, want) && !(got == nil && want == nil) {
			t.Errorf("delete group %s: %v, want %v", g, got, want)
		}
	}

	// Commits from outside the group (generation -1) are refused while it
	// has members, and taken once it has none.
	if rs, err := adm.CommitOffsets(ctx, "admin", os); err == nil && !errors.Is(rs.Error(), kerr.UnknownMemberID) {
		t.Errorf("commit from outside a live group: %v, want UNKNOWN_MEMBER_ID", rs.Error())
	}
	cl.LeaveGroup()
	waitFor(t, 10*time.Second, "the member to leave", func() bool {
		_, ok := e.srv.Groups().Describe("admin")
		return !ok
	})
	if rs, err := adm.CommitOffsets(ctx, "admin", os); err != nil || rs.Error() != nil {
		t.Fatalf("commit from outside a group without members: %v %v, want success", err, rs.Error())
	}
	if r, err := adm.DeleteGroup(ctx, "admin"); err != nil || r.Err != nil {
		t.Errorf("delete the group after its member left: %v %v", err, r.Err)
	}
	if ds, _ := adm.DescribeGroups(ctx, "admin"); ds["admin"].State != "Dead" {
		t.Errorf("deleted group: state %s, want Dead", ds["admin"].State)
	}
}

// TestJoinEndsOnShutdown holds a JoinGroup in a rebalance that cannot
// complete and checks that Shutdown answers it rather than waiting.
func TestJoinEndsOnShutdown(t *testing.T) {
	e := newGroupEnv(t)
	e.createTopic("t", 1, nil)
	ctx := testContext(t)
	first := e.client(kgo.ConsumerGroup("held"), kgo.ConsumeTopics("t"), kgo.SessionTimeout(10*time.Second),
		kgo.RebalanceTimeout(time.Minute), kgo.HeartbeatInterval(testHeartbeat))
	waitFor(t, 30*time.Second, "a stable group", func() bool {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		first.PollFetches(pctx)
		cancel()
		d, _ := e.srv.Groups().Describe("held")
		return d.State == group.Stable
	})
	// A second member joins: the rebalance waits up to a minute for the
	// first, which is not polling and so does not rejoin.
	second := e.client(kgo.ConsumerGroup("held"), kgo.ConsumeTopics("t"), kgo.SessionTimeout(10*time.Second),
		kgo.RebalanceTimeout(time.Minute))
	go second.PollFetches(ctx)
	waitFor(t, 10*time.Second, "a rebalance in progress", func() bool {
		d, _ := e.srv.Groups().Describe("held")
		return d.State == group.PreparingRebalance && len(d.Members) == 2
	})
	// Another connection is served meanwhile.
	if _, err := e.admin().ListGroups(ctx); err != nil {
		t.Errorf("list groups during a held join: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := e.srv.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown with a held join: %v after %v, want nil", err, time.Since(start))
	}
}

// TestLastPendingMemberCompletesJoin: two consumers start together against
// a stable group (JoinGroup v4+, so both are first handed a member ID with
// MEMBER_ID_REQUIRED). When the second uses its ID after everyone else has
// rejoined, the rebalance completes at once, as in Kafka, not after the
// rebalance timeout.
func TestLastPendingMemberCompletesJoin(t *testing.T) {
	e := newGroupEnv(t)
	ctx := testContext(t)
	// Each member has its own client, so its own connection: a held join
	// holds only its connection.
	join := func(cl *kgo.Client, memberID, metadata string) (*kmsg.JoinGroupResponse, error) {
		req := kmsg.NewPtrJoinGroupRequest()
		req.Version = 5
		req.Group, req.MemberID, req.ProtocolType = "pending", memberID, "consumer"
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 30_000, 60_000
		req.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte(metadata)}}
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		resp, err := cl.Broker(0).Request(jctx, req)
		if err != nil {
			return nil, err
		}
		r := resp.(*kmsg.JoinGroupResponse)
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil && !errors.Is(err, kerr.MemberIDRequired) {
			return r, err
		}
		return r, nil
	}
	a, b, c := e.client(), e.client(), e.client()
	ra, err := join(a, "", "a")
	if err != nil {
		t.Fatal(err)
	}
	ra, err = join(a, ra.MemberID, "a")
	if err != nil {
		t.Fatal(err)
	}
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Group, sync.MemberID, sync.Generation = "pending", ra.MemberID, ra.Generation
	if resp, err := a.Broker(0).Request(ctx, sync); err != nil || resp.(*kmsg.SyncGroupResponse).ErrorCode != 0 {
		t.Fatalf("leader's sync: %v %+v", err, resp)
	}

	rb, err := join(b, "", "b")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := join(c, "", "c")
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		r   *kmsg.JoinGroupResponse
		err error
	}
	held := make(chan result, 2)
	go func() { r, err := join(b, rb.MemberID, "b"); held <- result{r, err} }()
	waitFor(t, 10*time.Second, "the first newcomer to start a rebalance", func() bool {
		d, _ := e.srv.Groups().Describe("pending")
		return d.State == group.PreparingRebalance && len(d.Members) == 2
	})
	// The leader rejoins (with new metadata, to see that it got there).
	go func() { r, err := join(a, ra.MemberID, "a2"); held <- result{r, err} }()
	waitFor(t, 10*time.Second, "the leader to rejoin", func() bool {
		d, _ := e.srv.Groups().Describe("pending")
		for _, m := range d.Members {
			if m.MemberID == ra.MemberID {
				return string(m.Protocols[0].Metadata) == "a2"
			}
		}
		return false
	})
	start := time.Now()
	last, err := join(c, rc.MemberID, "c")
	if err != nil {
		t.Fatalf("last newcomer's join after %v: %v, want the rebalance to complete at once", time.Since(start), err)
	}
	if last.Generation != ra.Generation+1 {
		t.Errorf("last newcomer: generation %d, want %d", last.Generation, ra.Generation+1)
	}
	for range 2 {
		if r := <-held; r.err != nil || r.r.Generation != ra.Generation+1 {
			t.Errorf("held join: %v, generation %v; want generation %d", r.err, r.r, ra.Generation+1)
		}
	}
}
