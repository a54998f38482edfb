package clients

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Child processes re-execute the test binary with childRoleEnv naming what
// to run and the other settings in childEnv variables; TestMain runs the
// role instead of the tests. A child with SLUICE_CHILD_STDIN_STOPS set
// stops when its stdin closes.
const childRoleEnv = "SLUICE_CLIENTS_CHILD"

// childCmd is a command that runs role in a child of the test binary.
func childCmd(role string, env map[string]string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childRoleEnv+"="+role)
	for k, v := range env {
		cmd.Env = append(cmd.Env, "SLUICE_CHILD_"+k+"="+v)
	}
	return cmd
}

func childEnv(name string) string { return os.Getenv("SLUICE_CHILD_" + name) }

func runChild(role string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if childEnv("STDIN_STOPS") != "" {
		go func() { // stdin closing is the signal to stop
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}
	var err error
	switch role {
	case "franz-member":
		err = franzMember(ctx)
	case "sarama":
		err = saramaChild(ctx)
	default:
		err = fmt.Errorf("unknown child role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", role, err)
		return 1
	}
	return 0
}

// franzMember is one member of a franz-go consumer group with the
// cooperative-sticky balancer. It prints, on stdout, a line for each event:
//
//	assigned <unixnano> <p> <p> ...   partitions added to its assignment
//	revoked <unixnano> <p> ...        partitions taken away (or lost)
//	rec <p> <offset> <value>          a record, once processed
//	commit <p> <next offset>          after a commit covering it succeeded
//
// Records are committed after they are printed (at least once), and
// rebalances wait until the records of a poll are committed.
func franzMember(ctx context.Context) error {
	topic, group := childEnv("TOPIC"), childEnv("GROUP")
	delay, _ := time.ParseDuration(childEnv("DELAY"))
	out := bufio.NewWriter(os.Stdout)
	var outErr error
	emit := func(format string, args ...any) {
		fmt.Fprintf(out, format, args...)
		if err := out.Flush(); err != nil && outErr == nil {
			outErr = err
		}
	}
	parts := func(m map[string][]int32) string {
		var b strings.Builder
		for _, p := range m[topic] {
			b.WriteString(" " + strconv.Itoa(int(p)))
		}
		return b.String()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(childEnv("BROKERS")),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(6*time.Second),
		kgo.HeartbeatInterval(300*time.Millisecond),
		kgo.RebalanceTimeout(10*time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			emit("assigned %d%s\n", time.Now().UnixNano(), parts(m))
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			emit("revoked %d%s\n", time.Now().UnixNano(), parts(m))
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			emit("revoked %d%s\n", time.Now().UnixNano(), parts(m))
		}),
	)
	if err != nil {
		return err
	}
	// Close leaves the group; with BlockRebalanceOnPoll it would wait for
	// AllowRebalance.
	defer cl.Close()
	defer cl.AllowRebalance()
	for ctx.Err() == nil {
		fs := cl.PollRecords(ctx, 20)
		if ctx.Err() != nil {
			break
		}
		fs.EachError(func(t string, p int32, err error) {
			fmt.Fprintf(os.Stderr, "fetch %s/%d: %v\n", t, p, err)
		})
		recs := fs.Records()
		for _, r := range recs {
			emit("rec %d %d %s\n", r.Partition, r.Offset, r.Value)
		}
		if len(recs) > 0 {
			time.Sleep(delay) // "processing"
			if err := cl.CommitRecords(ctx, recs...); err != nil {
				fmt.Fprintf(os.Stderr, "commit: %v\n", err)
			} else {
				next := map[int32]int64{}
				for _, r := range recs {
					next[r.Partition] = max(next[r.Partition], r.Offset+1)
				}
				for p, o := range next {
					emit("commit %d %d\n", p, o)
				}
			}
		}
		cl.AllowRebalance()
		if outErr != nil {
			return outErr
		}
	}
	return nil
}
