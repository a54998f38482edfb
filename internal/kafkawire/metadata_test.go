package kafkawire

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func metadataRequest(version int16, allowCreate bool, topics ...string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(version)
	req.AllowAutoTopicCreation = allowCreate
	for _, name := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
	}
	if req.Topics == nil && version > 0 {
		req.Topics = []kmsg.MetadataRequestTopic{} // none, not all
	}
	return req
}

func TestMetadata(t *testing.T) {
	e := newTestEnv(t, Options{NodeID: 3, AdvertisedAddr: "kafka.example:19092", ClusterID: "cluster-1"})
	e.createTopic("a", 2, nil)
	e.createTopic("b", 1, nil)
	rc := e.dial()

	resp := roundTrip[*kmsg.MetadataResponse](rc, metadataRequest(12, false, "b", "nope"))
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 3 || resp.Brokers[0].Host != "kafka.example" ||
		resp.Brokers[0].Port != 19092 || resp.ControllerID != 3 || *resp.ClusterID != "cluster-1" {
		t.Errorf("brokers %+v, controller %d, cluster %v", resp.Brokers, resp.ControllerID, resp.ClusterID)
	}
	if len(resp.Topics) != 2 || *resp.Topics[0].Topic != "b" || *resp.Topics[1].Topic != "nope" {
		t.Fatalf("topics: %+v", resp.Topics)
	}
	b := resp.Topics[0]
	info, _ := e.log.DescribeTopic(context.Background(), "b")
	if b.ErrorCode != 0 || b.TopicID != info.ID || len(b.Partitions) != 1 || b.Partitions[0].Leader != 3 {
		t.Errorf("topic b: %+v", b)
	}
	if resp.Topics[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("unknown topic: error %d", resp.Topics[1].ErrorCode)
	}

	// By topic ID (v10+).
	req := kmsg.NewPtrMetadataRequest()
	req.SetVersion(12)
	rt := kmsg.NewMetadataRequestTopic()
	rt.TopicID = info.ID
	req.Topics = append(req.Topics, rt, kmsg.MetadataRequestTopic{TopicID: [16]byte{1}})
	resp = roundTrip[*kmsg.MetadataResponse](rc, req)
	if len(resp.Topics) != 2 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != "b" ||
		resp.Topics[1].ErrorCode != kerr.UnknownTopicID.Code {
		t.Errorf("by ID: %+v", resp.Topics)
	}

	// All topics: a null list (v1+), an empty list at v0; none for an
	// empty list at v1+.
	all := metadataRequest(12, false)
	all.Topics = nil
	if resp := roundTrip[*kmsg.MetadataResponse](rc, all); len(resp.Topics) != 2 {
		t.Errorf("null topic list: %d topics", len(resp.Topics))
	}
	if resp := roundTrip[*kmsg.MetadataResponse](rc, metadataRequest(0, false)); len(resp.Topics) != 2 {
		t.Errorf("v0 empty topic list: %d topics", len(resp.Topics))
	}
	if resp := roundTrip[*kmsg.MetadataResponse](rc, metadataRequest(1, false)); len(resp.Topics) != 0 {
		t.Errorf("v1 empty topic list: %d topics", len(resp.Topics))
	}

	// Auto-creation is off here, whatever the client says.
	resp = roundTrip[*kmsg.MetadataResponse](rc, metadataRequest(12, true, "new"))
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("auto-create off: error %d", resp.Topics[0].ErrorCode)
	}
}

func TestMetadataAutoCreate(t *testing.T) {
	e := newTestEnv(t, Options{AutoCreateTopics: true, DefaultPartitions: 3})
	rc := e.dial()
	resp := roundTrip[*kmsg.MetadataResponse](rc, metadataRequest(12, false, "not-allowed"))
	if resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("client disallows creation: error %d", resp.Topics[0].ErrorCode)
	}
	resp = roundTrip[*kmsg.MetadataResponse](rc, metadataRequest(12, true, "bad name"))
	if resp.Topics[0].ErrorCode != kerr.InvalidTopicException.Code {
		t.Errorf("bad name: error %d", resp.Topics[0].ErrorCode)
	}
	resp = roundTrip[*kmsg.MetadataResponse](rc, metadataRequest(3, false, "old-client")) // v0-3 imply allowed
	if resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 3 {
		t.Errorf("v3 auto-create: %+v", resp.Topics[0])
	}

	// A franz-go producer to a new topic creates it.
	cl := e.client(kgo.AllowAutoTopicCreation(), kgo.DefaultProduceTopic("auto"))
	if err := cl.ProduceSync(testContext(t), &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	info, err := e.log.DescribeTopic(context.Background(), "auto")
	if err != nil || len(info.Partitions) != 3 {
		t.Errorf("auto-created topic: %+v, %v", info, err)
	}
}

func TestFindCoordinator(t *testing.T) {
	e := newTestEnv(t, Options{})
	adm := e.admin()
	res := adm.FindGroupCoordinators(testContext(t), "g1", "g2")
	for _, g := range []string{"g1", "g2"} {
		r := res[g]
		if r.Err != nil || r.NodeID != 0 || r.Host != "127.0.0.1" {
			t.Errorf("%s: %+v", g, r)
		}
	}
	rc := e.dial()
	for v := int16(0); v <= 6; v++ {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.SetVersion(v)
		req.CoordinatorKey, req.CoordinatorKeys = "g", []string{"g", "h"}
		resp := roundTrip[*kmsg.FindCoordinatorResponse](rc, req)
		if v < 4 {
			if resp.ErrorCode != 0 || resp.NodeID != 0 || resp.Host != "127.0.0.1" || resp.Port == 0 {
				t.Errorf("v%d: %+v", v, resp)
			}
			continue
		}
		if len(resp.Coordinators) != 2 || resp.Coordinators[1].Key != "h" || resp.Coordinators[1].Port == 0 {
			t.Errorf("v%d: %+v", v, resp.Coordinators)
		}
	}
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.SetVersion(3)
	req.CoordinatorType = 2
	if resp := roundTrip[*kmsg.FindCoordinatorResponse](rc, req); resp.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("share coordinator: error %d", resp.ErrorCode)
	}
}
