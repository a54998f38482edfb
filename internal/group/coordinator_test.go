package group

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	testSession   = 10 * time.Second
	testRebalance = 20 * time.Second
	testDelay     = 3 * time.Second
)

func newTest(t *testing.T, opts Options) (*Coordinator, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	opts.Clock = clk
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.InitialRebalanceDelay == 0 {
		opts.InitialRebalanceDelay = testDelay
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, clk
}

// jreq is a consumer join of group g; each protocol's metadata is its name.
func jreq(g, memberID string, protocols ...string) JoinRequest {
	if len(protocols) == 0 {
		protocols = []string{"range"}
	}
	r := JoinRequest{Group: g, MemberID: memberID, ClientID: "client", ClientHost: "/127.0.0.1", ProtocolType: "consumer",
		SessionTimeout: testSession, RebalanceTimeout: testRebalance}
	for _, p := range protocols {
		r.Protocols = append(r.Protocols, Protocol{Name: p, Metadata: []byte(p)})
	}
	return r
}

// call is a join or sync started without blocking: its answer, or the
// channel the answer will arrive on.
type call[R any, A any] struct {
	t   *testing.T
	w   <-chan A
	res R
	err error
}

type joinCall = call[JoinResult, answer[JoinResult]]
type syncCall = call[SyncResult, answer[SyncResult]]

func startJoin(t *testing.T, c *Coordinator, r JoinRequest) joinCall {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	w, res, err := c.join(r)
	return joinCall{t: t, w: w, res: res, err: err}
}

func startSync(t *testing.T, c *Coordinator, r SyncRequest) syncCall {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	w, res, err := c.sync(r)
	return syncCall{t: t, w: w, res: res, err: err}
}

func answerOf(a any) (any, error) {
	switch a := a.(type) {
	case answer[JoinResult]:
		return a.res, a.err
	case answer[SyncResult]:
		return a.res, a.err
	}
	panic("unknown answer")
}

// done returns the answer, failing the test if there is none yet.
func (jc call[R, A]) done() (R, error) {
	jc.t.Helper()
	if jc.w == nil {
		return jc.res, jc.err
	}
	select {
	case a := <-jc.w:
		r, err := answerOf(a)
		return r.(R), err
	default:
		jc.t.Fatal("got no answer yet, want one")
		var zero R
		return zero, nil
	}
}

// ok returns the answer, failing the test on an error.
func (jc call[R, A]) ok() R {
	jc.t.Helper()
	r, err := jc.done()
	if err != nil {
		jc.t.Fatalf("got error %v, want none", err)
	}
	return r
}

func (jc *call[R, A]) waiting() bool {
	if jc.w == nil {
		return false
	}
	select {
	case a := <-jc.w:
		// Put it back for a later done().
		ch := make(chan A, 1)
		ch <- a
		jc.w = ch
		return false
	default:
		return true
	}
}

func wantErr(t *testing.T, what string, got, want error) {
	t.Helper()
	if !errors.Is(got, want) && !(got == nil && want == nil) {
		t.Errorf("%s: got error %v, want %v", what, got, want)
	}
}

func state(c *Coordinator, g string) State {
	d, _ := c.Describe(g)
	return d.State
}

// stable forms group g with n dynamic members and completes the sync, each
// member assigned "assign-<i>". It returns the member IDs in join order
// (the first is the leader) and the generation.
func stable(t *testing.T, c *Coordinator, clk *fakeClock, g string, n int) ([]string, int32) {
	t.Helper()
	calls := make([]joinCall, n)
	for i := range calls {
		calls[i] = startJoin(t, c, jreq(g, ""))
	}
	clk.Advance(2 * testDelay) // the second join extends the initial delay once
	ids := make([]string, n)
	var res []JoinResult
	for i, jc := range calls {
		r := jc.ok()
		ids[i] = r.MemberID
		res = append(res, r)
	}
	gen := res[0].Generation
	leader := res[0].Leader
	assign := map[string][]byte{}
	for i, id := range ids {
		assign[id] = []byte(fmt.Sprintf("assign-%d", i))
	}
	var syncs []syncCall
	for _, id := range ids {
		if id != leader {
			syncs = append(syncs, startSync(t, c, SyncRequest{Group: g, MemberID: id, Generation: gen}))
		}
	}
	startSync(t, c, SyncRequest{Group: g, MemberID: leader, Generation: gen, Assignments: assign}).ok()
	for _, s := range syncs {
		s.ok()
	}
	if got := state(c, g); got != Stable {
		t.Fatalf("state %s, want Stable", got)
	}
	// Put the leader first.
	for i, id := range ids {
		if id == leader {
			ids[0], ids[i] = ids[i], ids[0]
		}
	}
	return ids, gen
}

func TestJoinValidation(t *testing.T) {
	c, _ := newTest(t, Options{})
	noType := jreq("g", "")
	noType.ProtocolType = ""
	noProtocols := jreq("g", "")
	noProtocols.Protocols = nil
	short, long := jreq("g", ""), jreq("g", "")
	short.SessionTimeout = DefaultMinSessionTimeout - time.Millisecond
	long.SessionTimeout = DefaultMaxSessionTimeout + time.Millisecond
	for _, tt := range []struct {
		name string
		req  JoinRequest
		want error
	}{
		{"empty group", jreq("", ""), kerr.InvalidGroupID},
		{"session below min", short, kerr.InvalidSessionTimeout},
		{"session above max", long, kerr.InvalidSessionTimeout},
		{"unknown member of unknown group", jreq("g", "nobody"), kerr.UnknownMemberID},
		{"no protocol type", noType, kerr.InconsistentGroupProtocol},
		{"no protocols", noProtocols, kerr.InconsistentGroupProtocol},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := startJoin(t, c, tt.req).done()
			wantErr(t, "join", err, tt.want)
			if _, ok := c.Describe("g"); ok {
				t.Error("a failed join left the group behind")
			}
		})
	}
}

func TestSessionTimeoutBoundsAreOptions(t *testing.T) {
	c, _ := newTest(t, Options{MinSessionTimeout: time.Second, MaxSessionTimeout: 2 * time.Second})
	r := jreq("g", "")
	r.SessionTimeout = time.Second
	if jc := startJoin(t, c, r); !jc.waiting() {
		_, err := jc.done()
		t.Errorf("join with a 1s session and a 1s minimum: got %v, want it held in the rebalance", err)
	}
	r.SessionTimeout = 3 * time.Second
	_, err := startJoin(t, c, r).done()
	wantErr(t, "join with 3s session, max 2s", err, kerr.InvalidSessionTimeout)
	if _, err := New(Options{MinSessionTimeout: 2 * time.Second, MaxSessionTimeout: time.Second}); err == nil {
		t.Error("New with min above max: got no error")
	}
}

func TestMemberIDRequired(t *testing.T) {
	c, clk := newTest(t, Options{})
	r := jreq("g", "")
	r.RequireKnownMemberID = true
	res, err := startJoin(t, c, r).done()
	wantErr(t, "v4 first join", err, kerr.MemberIDRequired)
	if !strings.HasPrefix(res.MemberID, "client-") {
		t.Fatalf("member ID %q, want client-<uuid>", res.MemberID)
	}
	if got := state(c, "g"); got != Empty {
		t.Errorf("state after MEMBER_ID_REQUIRED: %s, want Empty", got)
	}
	r.MemberID = res.MemberID
	jc := startJoin(t, c, r)
	if !jc.waiting() {
		t.Fatal("rejoin with the given member ID: answered at once, want held for the initial delay")
	}
	clk.Advance(2 * testDelay) // the second join extends the initial delay once
	got := jc.ok()
	if got.MemberID != res.MemberID || got.Leader != res.MemberID || got.Generation != 1 || got.Protocol != "range" {
		t.Errorf("join result %+v, want member and leader %s, generation 1, protocol range", got, res.MemberID)
	}

	// Before v4 there is no MEMBER_ID_REQUIRED.
	old := startJoin(t, c, jreq("h", ""))
	if !old.waiting() {
		t.Error("v3 join: got an answer at once, want it held")
	}

	// A member ID handed out and never used expires with the session.
	r = jreq("p", "")
	r.RequireKnownMemberID = true
	res, _ = startJoin(t, c, r).done()
	clk.Advance(testSession)
	r.MemberID = res.MemberID
	_, err = startJoin(t, c, r).done()
	wantErr(t, "join with an expired pending member ID", err, kerr.UnknownMemberID)
}

func TestInitialRebalanceDelay(t *testing.T) {
	c, clk := newTest(t, Options{})
	a := startJoin(t, c, jreq("g", ""))
	clk.Advance(2 * time.Second)
	b := startJoin(t, c, jreq("g", ""))
	clk.Advance(time.Second) // 3s: a new member came, so the delay is extended
	if !a.waiting() || !b.waiting() {
		t.Fatal("joins answered at the first delay although a member joined during it")
	}
	clk.Advance(testDelay - time.Millisecond)
	if !a.waiting() {
		t.Fatal("joins answered before the extended delay ran out")
	}
	clk.Advance(time.Millisecond)
	ra, rb := a.ok(), b.ok()
	if ra.Generation != 1 || rb.Generation != 1 || ra.Leader != ra.MemberID || rb.Leader != ra.MemberID {
		t.Errorf("got %+v and %+v, want generation 1 with the first member as leader", ra, rb)
	}
	if len(ra.Members) != 2 || len(rb.Members) != 0 {
		t.Errorf("leader got %d members, follower %d; want 2 and 0", len(ra.Members), len(rb.Members))
	}
	if got := state(c, "g"); got != CompletingRebalance {
		t.Errorf("state %s, want CompletingRebalance", got)
	}
}

func TestInitialDelayBoundedByRebalanceTimeout(t *testing.T) {
	c, clk := newTest(t, Options{})
	first := startJoin(t, c, jreq("g", ""))
	// A new member every 2s keeps extending the delay, but never past the
	// rebalance timeout (3s delay + at most 17s more).
	for i := 0; i < 12 && first.waiting(); i++ {
		startJoin(t, c, jreq("g", ""))
		clk.Advance(2 * time.Second)
	}
	if first.waiting() {
		t.Fatal("initial rebalance still waiting after 24s with a 20s rebalance timeout")
	}
	if now := clk.Now().Sub(time.Unix(1_700_000_000, 0)); now > testRebalance+testDelay {
		t.Errorf("join completed after %v, want by %v", now, testRebalance+testDelay)
	}
}

func TestProtocolSelection(t *testing.T) {
	for _, tt := range []struct {
		members [][]string
		want    string
	}{
		{[][]string{{"range"}}, "range"},
		{[][]string{{"cooperative-sticky", "range"}, {"range", "cooperative-sticky"}, {"cooperative-sticky", "range"}}, "cooperative-sticky"},
		{[][]string{{"a", "b"}, {"b", "a"}, {"b"}}, "b"},      // a is not supported by all
		{[][]string{{"a", "b"}, {"b", "a"}}, "a"},             // a tie, broken by name
		{[][]string{{"x", "a", "b"}, {"b", "a"}, {"a"}}, "a"}, // x is no candidate
	} {
		t.Run(fmt.Sprint(tt.members), func(t *testing.T) {
			c, clk := newTest(t, Options{})
			var calls []joinCall
			for _, ps := range tt.members {
				calls = append(calls, startJoin(t, c, jreq("g", "", ps...)))
			}
			clk.Advance(2 * testDelay) // the second join extends the initial delay once
			for _, jc := range calls {
				if got := jc.ok(); got.Protocol != tt.want {
					t.Errorf("protocol %q, want %q", got.Protocol, tt.want)
				}
			}
		})
	}
}

func TestInconsistentProtocol(t *testing.T) {
	c, _ := newTest(t, Options{})
	startJoin(t, c, jreq("g", "", "range", "roundrobin"))
	_, err := startJoin(t, c, jreq("g", "", "sticky")).done()
	wantErr(t, "join with no protocol in common", err, kerr.InconsistentGroupProtocol)
	other := jreq("g", "", "range")
	other.ProtocolType = "connect"
	_, err = startJoin(t, c, other).done()
	wantErr(t, "join with another protocol type", err, kerr.InconsistentGroupProtocol)
	if jc := startJoin(t, c, jreq("g", "", "roundrobin")); !jc.waiting() {
		t.Error("join with a protocol in common: answered at once, want held")
	}
}

func TestSync(t *testing.T) {
	c, clk := newTest(t, Options{})
	a, b, d := startJoin(t, c, jreq("g", "")), startJoin(t, c, jreq("g", "")), startJoin(t, c, jreq("g", ""))
	clk.Advance(2 * testDelay) // the second join extends the initial delay once
	ra, rb, rd := a.ok(), b.ok(), d.ok()
	gen, leader := ra.Generation, ra.Leader
	ptr := func(s string) *string { return &s }

	for _, tt := range []struct {
		name string
		req  SyncRequest
		want error
	}{
		{"unknown group", SyncRequest{Group: "nope", MemberID: rb.MemberID, Generation: gen}, kerr.UnknownMemberID},
		{"empty group name", SyncRequest{MemberID: rb.MemberID, Generation: gen}, kerr.InvalidGroupID},
		{"unknown member", SyncRequest{Group: "g", MemberID: "nobody", Generation: gen}, kerr.UnknownMemberID},
		{"old generation", SyncRequest{Group: "g", MemberID: rb.MemberID, Generation: gen - 1}, kerr.IllegalGeneration},
		{"other protocol type", SyncRequest{Group: "g", MemberID: rb.MemberID, Generation: gen, ProtocolType: ptr("connect")}, kerr.InconsistentGroupProtocol},
		{"other protocol", SyncRequest{Group: "g", MemberID: rb.MemberID, Generation: gen, Protocol: ptr("sticky")}, kerr.InconsistentGroupProtocol},
	} {
		_, err := startSync(t, c, tt.req).done()
		wantErr(t, tt.name, err, tt.want)
	}

	follower := startSync(t, c, SyncRequest{Group: "g", MemberID: rb.MemberID, Generation: gen,
		ProtocolType: ptr("consumer"), Protocol: ptr("range")})
	if !follower.waiting() {
		t.Fatal("follower's sync answered before the leader's")
	}
	// The leader leaves the third member out: it gets an empty assignment.
	got := startSync(t, c, SyncRequest{Group: "g", MemberID: leader, Generation: gen,
		Assignments: map[string][]byte{leader: []byte("L"), rb.MemberID: []byte("B"), "stranger": []byte("S")}}).ok()
	if string(got.Assignment) != "L" || got.Protocol != "range" || got.ProtocolType != "consumer" {
		t.Errorf("leader's sync: %+v, want assignment L, consumer/range", got)
	}
	if got := follower.ok(); string(got.Assignment) != "B" {
		t.Errorf("follower's assignment %q, want B", got.Assignment)
	}
	if got := startSync(t, c, SyncRequest{Group: "g", MemberID: rd.MemberID, Generation: gen}).ok(); len(got.Assignment) != 0 {
		t.Errorf("left-out member's assignment %q, want empty", got.Assignment)
	}
	if got := state(c, "g"); got != Stable {
		t.Errorf("state %s, want Stable", got)
	}
	// A sync in a stable group answers the current assignment again.
	if got := startSync(t, c, SyncRequest{Group: "g", MemberID: rb.MemberID, Generation: gen}).ok(); string(got.Assignment) != "B" {
		t.Errorf("repeated sync: assignment %q, want B", got.Assignment)
	}

	// During a rebalance, syncs get REBALANCE_IN_PROGRESS.
	startJoin(t, c, jreq("g", leader))
	_, err := startSync(t, c, SyncRequest{Group: "g", MemberID: rb.MemberID, Generation: gen}).done()
	wantErr(t, "sync while preparing a rebalance", err, kerr.RebalanceInProgress)
}

func TestRebalanceWhileCompletingFailsHeldSyncs(t *testing.T) {
	c, clk := newTest(t, Options{})
	a, b := startJoin(t, c, jreq("g", "")), startJoin(t, c, jreq("g", ""))
	clk.Advance(2 * testDelay) // the second join extends the initial delay once
	ra, rb := a.ok(), b.ok()
	follower := ra
	if ra.Leader == ra.MemberID {
		follower = rb
	}
	held := startSync(t, c, SyncRequest{Group: "g", MemberID: follower.MemberID, Generation: ra.Generation})
	startJoin(t, c, jreq("g", "")) // a newcomer restarts the rebalance
	_, err := held.done()
	wantErr(t, "held sync when a rebalance starts", err, kerr.RebalanceInProgress)
}

func TestHeartbeat(t *testing.T) {
	c, clk := newTest(t, Options{})
	r := jreq("g", "")
	r.InstanceID = "i1"
	jc := startJoin(t, c, r)
	clk.Advance(2 * testDelay) // the second join extends the initial delay once
	res := jc.ok()
	gen, id := res.Generation, res.MemberID
	wantErr(t, "heartbeat while completing", c.Heartbeat("g", id, "i1", gen), nil)
	startSync(t, c, SyncRequest{Group: "g", MemberID: id, InstanceID: "i1", Generation: gen}).ok()

	for _, tt := range []struct {
		name                string
		group, member, inst string
		gen                 int32
		want                error
	}{
		{"stable", "g", id, "i1", gen, nil},
		{"unknown group", "nope", id, "", gen, kerr.UnknownMemberID},
		{"unknown member", "g", "nobody", "", gen, kerr.UnknownMemberID},
		{"old generation", "g", id, "i1", gen - 1, kerr.IllegalGeneration},
		{"fenced instance", "g", "old-id", "i1", gen, kerr.FencedInstanceID},
	} {
		wantErr(t, tt.name, c.Heartbeat(tt.group, tt.member, tt.inst, tt.gen), tt.want)
	}
	// A second member starts a rebalance: heartbeats say so.
	startJoin(t, c, jreq("g", ""))
	wantErr(t, "heartbeat during a rebalance", c.Heartbeat("g", id, "i1", gen), kerr.RebalanceInProgress)
}

func TestSessionExpiry(t *testing.T) {
	c, clk := newTest(t, Options{})
	ids, gen := stable(t, c, clk, "g", 2)
	clk.Advance(testSession - time.Second)
	wantErr(t, "heartbeat of the live member", c.Heartbeat("g", ids[0], "", gen), nil)
	if got := state(c, "g"); got != Stable {
		t.Fatalf("state %s before any session expired, want Stable", got)
	}
	clk.Advance(2 * time.Second)
	// The second member never heartbeat: its session expired, and the
	// group rebalances without it.
	if got := state(c, "g"); got != PreparingRebalance {
		t.Fatalf("state %s after a session expired, want PreparingRebalance", got)
	}
	wantErr(t, "heartbeat of the expired member", c.Heartbeat("g", ids[1], "", gen), kerr.UnknownMemberID)
	wantErr(t, "heartbeat of the live member", c.Heartbeat("g", ids[0], "", gen), kerr.RebalanceInProgress)
	res := startJoin(t, c, jreq("g", ids[0])).ok() // the only member left has rejoined
	if res.Generation != gen+1 || len(res.Members) != 1 {
		t.Errorf("rejoin: generation %d with %d members, want %d with 1", res.Generation, len(res.Members), gen+1)
	}
}

func TestHeldJoinIsLiveness(t *testing.T) {
	c, clk := newTest(t, Options{})
	ids, _ := stable(t, c, clk, "g", 2)
	a := startJoin(t, c, jreq("g", ids[0])) // the leader rejoins; the other never does
	clk.Advance(testSession + time.Second)
	// The other member's session expired, which completes the join; the
	// member whose join was held did not expire although it sent nothing.
	res := a.ok()
	if len(res.Members) != 1 || res.Members[0].MemberID != ids[0] {
		t.Errorf("after the session timeout: members %+v, want only %s", res.Members, ids[0])
	}
}

func TestSyncDeadline(t *testing.T) {
	c, clk := newTest(t, Options{})
	a, b := startJoin(t, c, jreq("g", "")), startJoin(t, c, jreq("g", ""))
	clk.Advance(2 * testDelay) // the second join extends the initial delay once
	ra, rb := a.ok(), b.ok()
	// Nobody syncs; both keep heartbeating.
	for i := 0; i < 4; i++ {
		clk.Advance(testRebalance / 4)
		c.Heartbeat("g", ra.MemberID, "", ra.Generation)
		c.Heartbeat("g", rb.MemberID, "", rb.Generation)
	}
	d, ok := c.Describe("g")
	if ok && len(d.Members) != 0 {
		t.Errorf("after the rebalance timeout without syncs: %d members in state %s, want none", len(d.Members), d.State)
	}
}

func TestLeave(t *testing.T) {
	c, clk := newTest(t, Options{})
	static := jreq("g", "")
	static.InstanceID = "i1"
	s := startJoin(t, c, static)
	d := startJoin(t, c, jreq("g", ""))
	e := startJoin(t, c, jreq("g", ""))
	clk.Advance(2 * testDelay) // the second join extends the initial delay once
	rs, rd, re := s.ok(), d.ok(), e.ok()
	errs, err := c.Leave("g", []LeaveMember{
		{MemberID: rd.MemberID},
		{MemberID: "nobody"},
		{MemberID: "stale", InstanceID: "i1"},
		{InstanceID: "i1"},
		{InstanceID: "i-unknown"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []error{nil, kerr.UnknownMemberID, kerr.FencedInstanceID, nil, kerr.UnknownMemberID}
	for i := range want {
		wantErr(t, fmt.Sprintf("member %d", i), errs[i], want[i])
	}
	if got := state(c, "g"); got != PreparingRebalance {
		t.Errorf("state after leaves: %s, want PreparingRebalance", got)
	}
	_ = rs
	errs, _ = c.Leave("g", []LeaveMember{{MemberID: re.MemberID}})
	wantErr(t, "last member", errs[0], nil)
	if d, ok := c.Describe("g"); ok || d.State != Dead {
		t.Errorf("group after the last member left: %s (tracked %v), want Dead, untracked", d.State, ok)
	}
	errs, _ = c.Leave("nope", []LeaveMember{{MemberID: "x"}})
	wantErr(t, "unknown group", errs[0], kerr.UnknownMemberID)
}

func TestLeaveWhileJoining(t *testing.T) {
	c, clk := newTest(t, Options{})
	ids, _ := stable(t, c, clk, "g", 2)
	held := startJoin(t, c, jreq("g", ids[0]))
	c.Leave("g", []LeaveMember{{MemberID: ids[1]}})
	// With the other member gone, everyone left has joined.
	if got := held.ok(); len(got.Members) != 1 {
		t.Errorf("join after the other member left: %d members, want 1", len(got.Members))
	}
}

func TestStaticMembership(t *testing.T) {
	for _, v9 := range []bool{false, true} {
		t.Run(fmt.Sprintf("skipAssignment=%v", v9), func(t *testing.T) {
			c, clk := newTest(t, Options{})
			leaderReq := jreq("g", "")
			leaderReq.InstanceID = "leader"
			followerReq := jreq("g", "")
			followerReq.InstanceID = "follower"
			l, f := startJoin(t, c, leaderReq), startJoin(t, c, followerReq)
			clk.Advance(2 * testDelay) // the second join extends the initial delay once
			rl, rf := l.ok(), f.ok()
			if rl.Leader != rl.MemberID || !strings.HasPrefix(rl.MemberID, "leader-") {
				t.Fatalf("leader %q, member %q; want the first static member, ID leader-<uuid>", rl.Leader, rl.MemberID)
			}
			gen := rl.Generation
			fs := startSync(t, c, SyncRequest{Group: "g", MemberID: rf.MemberID, InstanceID: "follower", Generation: gen})
			startSync(t, c, SyncRequest{Group: "g", MemberID: rl.MemberID, InstanceID: "leader", Generation: gen,
				Assignments: map[string][]byte{rl.MemberID: []byte("L"), rf.MemberID: []byte("F")}}).ok()
			fs.ok()

			// The follower restarts: same instance ID, same metadata, no
			// member ID. It replaces its old ID without a rebalance.
			followerReq.SupportsSkipAssignment = v9
			nf := startJoin(t, c, followerReq).ok()
			if nf.MemberID == rf.MemberID || nf.Generation != gen || nf.Leader != rl.MemberID || len(nf.Members) != 0 {
				t.Errorf("static rejoin: %+v, want a new member ID in generation %d led by %s", nf, gen, rl.MemberID)
			}
			if got := state(c, "g"); got != Stable {
				t.Errorf("state after a static rejoin: %s, want Stable", got)
			}
			if got := startSync(t, c, SyncRequest{Group: "g", MemberID: nf.MemberID, InstanceID: "follower", Generation: gen}).ok(); string(got.Assignment) != "F" {
				t.Errorf("rejoined member's assignment %q, want its old one, F", got.Assignment)
			}
			wantErr(t, "old member ID heartbeat", c.Heartbeat("g", rf.MemberID, "follower", gen), kerr.FencedInstanceID)
			wantErr(t, "old member ID commit", c.CheckCommit("g", gen, rf.MemberID, "follower"), kerr.FencedInstanceID)
			_, err := startJoin(t, c, JoinRequest{Group: "g", MemberID: rf.MemberID, InstanceID: "follower", ProtocolType: "consumer",
				Protocols: followerReq.Protocols, SessionTimeout: testSession}).done()
			wantErr(t, "old member ID join", err, kerr.FencedInstanceID)

			// The leader restarts.
			leaderReq.SupportsSkipAssignment = v9
			nl := startJoin(t, c, leaderReq).ok()
			switch {
			case v9 && (!nl.SkipAssignment || nl.Leader != nl.MemberID || len(nl.Members) != 2):
				t.Errorf("static leader rejoin (v9): %+v, want SkipAssignment, itself as leader, 2 members", nl)
			case !v9 && (nl.SkipAssignment || nl.Leader != rl.MemberID || len(nl.Members) != 0):
				t.Errorf("static leader rejoin (before v9): %+v, want the old leader ID %s and no members", nl, rl.MemberID)
			}
			if got := state(c, "g"); got != Stable {
				t.Errorf("state after the leader's static rejoin: %s, want Stable", got)
			}

			// A restart with other metadata (a new subscription) rebalances.
			changed := followerReq
			changed.Protocols = []Protocol{{Name: "range", Metadata: []byte("new topics")}}
			held := startJoin(t, c, changed)
			if !held.waiting() || state(c, "g") != PreparingRebalance {
				t.Errorf("static rejoin with new metadata: state %s, want PreparingRebalance with the join held", state(c, "g"))
			}
		})
	}
}

func TestStaticMemberKeptThroughRebalance(t *testing.T) {
	c, clk := newTest(t, Options{})
	sr := jreq("g", "")
	sr.InstanceID = "s"
	s, d := startJoin(t, c, sr), startJoin(t, c, jreq("g", ""))
	clk.Advance(2 * testDelay) // the second join extends the initial delay once
	rs, rd := s.ok(), d.ok()
	// A rebalance the static member sits out does not remove it (until its
	// session expires); a dynamic member that sits out is removed.
	held := startJoin(t, c, jreq("g", ""))
	for i := 0; i < 4; i++ {
		for _, id := range []string{rs.MemberID, rd.MemberID} {
			wantErr(t, "heartbeat while rebalancing", c.Heartbeat("g", id, "", rs.Generation), kerr.RebalanceInProgress)
		}
		clk.Advance(testRebalance / 4)
	}
	res := held.ok()
	ids := map[string]bool{}
	for _, m := range res.Members {
		ids[m.MemberID] = true
	}
	if len(res.Members) != 2 || !ids[rs.MemberID] || ids[rd.MemberID] {
		t.Errorf("members after the rebalance: %v; want the newcomer and the static %s, not the dynamic %s", ids, rs.MemberID, rd.MemberID)
	}
}

func TestMaxSize(t *testing.T) {
	c, clk := newTest(t, Options{MaxSize: 2})
	startJoin(t, c, jreq("g", ""))
	startJoin(t, c, jreq("g", ""))
	_, err := startJoin(t, c, jreq("g", "")).done()
	wantErr(t, "third join while preparing", err, kerr.GroupMaxSizeReached)
	clk.Advance(2 * testDelay) // the second join extends the initial delay once
	_, err = startJoin(t, c, jreq("g", "")).done()
	wantErr(t, "third join while completing", err, kerr.GroupMaxSizeReached)
}

func TestCheckCommit(t *testing.T) {
	c, clk := newTest(t, Options{})
	ids, gen := stable(t, c, clk, "g", 2)
	for _, tt := range []struct {
		name   string
		group  string
		gen    int32
		member string
		want   error
	}{
		{"untracked group, no generation", "other", -1, "", nil},
		{"untracked group with a generation", "other", 3, "m", kerr.IllegalGeneration},
		{"member of the current generation", "g", gen, ids[1], nil},
		{"old generation", "g", gen - 1, ids[1], kerr.IllegalGeneration},
		{"unknown member", "g", gen, "nobody", kerr.UnknownMemberID},
		{"no generation in a group with members", "g", -1, "", kerr.UnknownMemberID},
	} {
		wantErr(t, tt.name, c.CheckCommit(tt.group, tt.gen, tt.member, ""), tt.want)
	}
	// During PreparingRebalance commits are still accepted (the heartbeat
	// tells the member to rejoin); during CompletingRebalance they are not.
	startJoin(t, c, jreq("g", ids[0]))
	wantErr(t, "commit while preparing", c.CheckCommit("g", gen, ids[1], ""), nil)
	startJoin(t, c, jreq("g", ids[1]))
	if got := state(c, "g"); got != CompletingRebalance {
		t.Fatalf("state %s, want CompletingRebalance", got)
	}
	wantErr(t, "commit while completing", c.CheckCommit("g", gen+1, ids[1], ""), kerr.RebalanceInProgress)
}

func TestDelete(t *testing.T) {
	c, clk := newTest(t, Options{})
	stable(t, c, clk, "g", 1)
	wantErr(t, "delete with members", c.Delete("g"), kerr.NonEmptyGroup)
	wantErr(t, "delete untracked", c.Delete("none"), nil)
	r := jreq("p", "")
	r.RequireKnownMemberID = true
	startJoin(t, c, r) // only a pending member: the group is Empty
	wantErr(t, "delete empty", c.Delete("p"), nil)
	if _, ok := c.Describe("p"); ok {
		t.Error("deleted group still tracked")
	}
}

func TestDescribeAndList(t *testing.T) {
	c, clk := newTest(t, Options{})
	ids, gen := stable(t, c, clk, "b", 2)
	startJoin(t, c, jreq("a", ""))
	d, ok := c.Describe("b")
	if !ok || d.State != Stable || d.Protocol != "range" || d.ProtocolType != "consumer" || d.Generation != gen || len(d.Members) != 2 || d.Rebalances != 1 {
		t.Fatalf("describe: %+v, want Stable consumer/range generation %d with 2 members, 1 rebalance", d, gen)
	}
	for _, m := range d.Members {
		if string(m.Metadata) != "range" || !strings.HasPrefix(string(m.Assignment), "assign-") || m.ClientHost != "/127.0.0.1" {
			t.Errorf("member %+v, want metadata, assignment and host", m)
		}
	}
	_ = ids
	l := c.List()
	if len(l) != 2 || l[0].Group != "a" || l[0].State != PreparingRebalance || l[0].Protocol != "" || l[1].Group != "b" {
		t.Errorf("list: %+v, want a (PreparingRebalance, no protocol) then b", l)
	}
}

func TestWaitersEnd(t *testing.T) {
	c, _ := newTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 2)
	go func() {
		_, err := c.Join(ctx, jreq("g", ""))
		errc <- err
	}()
	go func() {
		_, err := c.Join(context.Background(), jreq("h", ""))
		errc <- err
	}()
	cancel()
	// Wait until both joins are in the coordinator, then close it.
	for deadline := time.Now().Add(5 * time.Second); len(c.List()) < 2; {
		if time.Now().After(deadline) {
			t.Fatal("joins never reached the coordinator")
		}
		time.Sleep(time.Millisecond)
	}
	_ = c.Close()
	got := map[string]bool{}
	for range 2 {
		select {
		case err := <-errc:
			got[fmt.Sprint(err)] = true
		case <-time.After(5 * time.Second):
			t.Fatal("held join did not end")
		}
	}
	if !got[context.Canceled.Error()] || !got[ErrClosed.Error()] {
		t.Errorf("held joins ended with %v, want context canceled and ErrClosed", got)
	}
	if _, err := c.Join(context.Background(), jreq("g", "")); !errors.Is(err, ErrClosed) {
		t.Errorf("join after Close: %v, want ErrClosed", err)
	}
}

func TestConsumerProtocolHelpers(t *testing.T) {
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"orders", "users"}
	as := kmsg.NewConsumerMemberAssignment()
	as.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: "orders", Partitions: []int32{0, 2}}}
	d := Description{ProtocolType: ConsumerProtocolType, Members: []MemberDescription{
		{Protocols: []Protocol{{Name: "range", Metadata: md.AppendTo(nil)}}},
	}}
	for _, tt := range []struct {
		topic string
		want  bool
	}{{"orders", true}, {"users", true}, {"other", false}} {
		if got := d.SubscribedTo(tt.topic); got != tt.want {
			t.Errorf("SubscribedTo(%q) = %v, want %v", tt.topic, got, tt.want)
		}
	}
	d.Members[0].Protocols[0].Metadata = []byte{0xff}
	if !d.SubscribedTo("other") {
		t.Error("undecodable metadata: got not subscribed, want subscribed to everything")
	}
	d.ProtocolType = "connect"
	if d.SubscribedTo("orders") {
		t.Error("connect group: got subscribed, want not")
	}
	got := ConsumerAssignment(as.AppendTo(nil))
	if len(got) != 1 || got[0].Topic != "orders" || fmt.Sprint(got[0].Partitions) != "[0 2]" {
		t.Errorf("ConsumerAssignment: %+v, want orders [0 2]", got)
	}
	if ConsumerAssignment([]byte{1}) != nil || ConsumerAssignment(nil) != nil {
		t.Error("ConsumerAssignment of garbage or nothing: want nil")
	}
}

func TestSameSubscription(t *testing.T) {
	meta := func(owned int32, topics ...string) []Protocol {
		md := kmsg.NewConsumerMemberMetadata()
		md.Version, md.Topics = 1, topics
		if owned >= 0 {
			md.OwnedPartitions = []kmsg.ConsumerMemberMetadataOwnedPartition{{Topic: topics[0], Partitions: []int32{owned}}}
		}
		return []Protocol{{Name: "cooperative-sticky", Metadata: md.AppendTo(nil)}}
	}
	for _, tt := range []struct {
		name string
		a, b []Protocol
		want bool
	}{
		{"same topics, other owned partitions", meta(3, "a", "b"), meta(-1, "b", "a"), true},
		{"other topics", meta(-1, "a"), meta(-1, "a", "c"), false},
		{"protocol missing", meta(-1, "a"), []Protocol{{Name: "range"}}, false},
	} {
		if got := sameSubscription(ConsumerProtocolType, "cooperative-sticky", tt.a, tt.b); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
	if !sameSubscription("connect", "x", nil, nil) {
		t.Error("other protocol type: got false, want true (Kafka's rule only)")
	}
}

// TestPendingMemberCompletesJoin: the join completes as soon as the last
// member ID handed out with MEMBER_ID_REQUIRED is used, as after any join
// in Kafka, not when the rebalance timeout runs out.
func TestPendingMemberCompletesJoin(t *testing.T) {
	c, clk := newTest(t, Options{})
	ids, gen := stable(t, c, clk, "g", 1)
	v4 := jreq("g", "")
	v4.RequireKnownMemberID = true
	// Two consumers start together: both are handed a member ID.
	rb, err := startJoin(t, c, v4).done()
	wantErr(t, "first newcomer", err, kerr.MemberIDRequired)
	rc, err := startJoin(t, c, v4).done()
	wantErr(t, "second newcomer", err, kerr.MemberIDRequired)
	b := v4
	b.MemberID = rb.MemberID
	jb := startJoin(t, c, b)
	ja := startJoin(t, c, jreq("g", ids[0]))
	if !ja.waiting() || !jb.waiting() {
		t.Fatal("join completed while a member ID handed out was still to come")
	}
	cr := v4
	cr.MemberID = rc.MemberID
	jc := startJoin(t, c, cr)
	for name, j := range map[string]*joinCall{"leader": &ja, "first newcomer": &jb, "second newcomer": &jc} {
		if j.waiting() {
			t.Fatalf("%s's join still held after every member joined", name)
		}
		if got := j.ok(); got.Generation != gen+1 {
			t.Errorf("%s: generation %d, want %d", name, got.Generation, gen+1)
		}
	}
}
