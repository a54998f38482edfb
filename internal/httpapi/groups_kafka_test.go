package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/group"
)

// joinKafkaMember makes a Kafka-protocol consumer a member of g through the
// coordinator, as the Kafka listener would, assigned the given partitions
// of topic, and returns its member ID.
func joinKafkaMember(t *testing.T, c *group.Coordinator, g, instance, topic string, partitions ...int32) string {
	t.Helper()
	ctx := context.Background()
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{topic}
	res, err := c.Join(ctx, group.JoinRequest{Group: g, InstanceID: instance, ClientID: "kgo", ClientHost: "/10.0.0.7",
		ProtocolType: "consumer", Protocols: []group.Protocol{{Name: "range", Metadata: md.AppendTo(nil)}},
		SessionTimeout: time.Minute, RebalanceTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	as := kmsg.NewConsumerMemberAssignment()
	as.Topics = []kmsg.ConsumerMemberAssignmentTopic{{Topic: topic, Partitions: partitions}}
	if _, err := c.Sync(ctx, group.SyncRequest{Group: g, MemberID: res.MemberID, InstanceID: instance, Generation: res.Generation,
		Assignments: map[string][]byte{res.MemberID: as.AppendTo(nil)}}); err != nil {
		t.Fatal(err)
	}
	return res.MemberID
}

func TestGroupsWithKafkaMembers(t *testing.T) {
	c, err := group.New(group.Options{InitialRebalanceDelay: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e := newTestEnv(t, withGroups(c))
	e.createTopic("orders", 3, nil)
	e.values("orders", 0, 1, "a", "b", "c")
	e.must(204, "POST", "/v1/groups/billing/offsets", `{"offsets": [{"topic": "orders", "partition": 0, "offset": 1}]}`, nil)
	id := joinKafkaMember(t, c, "billing", "host-1", "orders", 0, 2)
	joinKafkaMember(t, c, "nocommits", "", "orders", 1)

	var list groupsReply
	e.must(200, "GET", "/v1/groups", "", &list)
	if got := fmt.Sprintf("%+v", list.Groups); got != "[{Group:billing State:Stable Members:1 Lag:2} {Group:nocommits State:Stable Members:1 Lag:0}]" {
		t.Errorf("list: got %s, want billing and nocommits Stable with 1 member each", got)
	}
	var d describeReply
	e.must(200, "GET", "/v1/groups/billing", "", &d)
	if len(d.Members) != 1 || d.State != "Stable" {
		t.Fatalf("describe: got %+v, want one member, Stable", d)
	}
	m := d.Members[0]
	if m.Kind != "kafka" || m.MemberID != id || m.InstanceID != "host-1" || m.ClientID != "kgo" || m.ClientHost != "/10.0.0.7" ||
		fmt.Sprint(m.Partitions) != "[{orders 0} {orders 2}]" || fmt.Sprint(m.Topics) != "[orders]" {
		t.Errorf("member: got %+v, want the Kafka member %s (host-1) with orders 0 and 2", m, id)
	}
	if len(d.Partitions) != 2 || d.Partitions[0].Member != id || d.Partitions[1].Member != id || d.Partitions[1].CommittedOffset != nil {
		t.Errorf("partitions: got %+v, want orders 0 (committed) and 2 (not), both owned by %s", d.Partitions, id)
	}

	// Offsets cannot change under live Kafka consumers.
	var er struct {
		Message string `json:"message"`
	}
	e.must(409, "POST", "/v1/groups/billing/seek", `{"to": "earliest", "topic": "orders"}`, &er)
	if !strings.Contains(er.Message, id) {
		t.Errorf("seek refusal %q, want it to name the member %s", er.Message, id)
	}
	e.must(409, "DELETE", "/v1/groups/billing", "", nil)

	if errs, err := c.Leave("billing", []group.LeaveMember{{MemberID: id}}); err != nil || errs[0] != nil {
		t.Fatalf("leave: %v %v", err, errs)
	}
	e.must(200, "POST", "/v1/groups/billing/seek", `{"to": "earliest", "topic": "orders"}`, nil)
	e.must(204, "DELETE", "/v1/groups/billing", "", nil)
	e.must(404, "GET", "/v1/groups/billing", "", nil)
}
