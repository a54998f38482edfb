package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-dev/sluice/internal/stream"
)

// OffsetFetch (key 9): versions 1-9.
//
// Behaviour:
//   - Offsets come from stream.Log.FetchOffsets. A partition the group has
//     not committed gets offset -1, leader epoch -1 and empty metadata, with
//     no error, as in Kafka; so do partitions of unknown topics.
//   - A null topic list (v2+) returns every offset the group committed.
//   - v8+ fetches several groups at once (KIP-709), each with its own
//     error code; v2-7 have one top-level error code; v1 reports errors per
//     partition.
//   - RequireStable (v7+) changes nothing: there are no transactions, so no
//     offsets are pending. MemberID and MemberEpoch (v9+) belong to
//     KIP-848 consumer groups, which are not served; they are ignored.

func (s *Server) handleOffsetFetch(rc *request, req *kmsg.OffsetFetchRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		resp.Groups = make([]kmsg.OffsetFetchResponseGroup, len(req.Groups))
		for i := range req.Groups {
			rg := &req.Groups[i]
			g := &resp.Groups[i]
			*g = kmsg.NewOffsetFetchResponseGroup()
			g.Group = rg.Group
			var asked []offsetFetchTopic
			if rg.Topics != nil {
				asked = make([]offsetFetchTopic, len(rg.Topics))
				for j, t := range rg.Topics {
					asked[j] = offsetFetchTopic{t.Topic, t.Partitions}
				}
			}
			topics, code := s.groupOffsets(rc, rg.Group, asked, rg.Topics == nil)
			g.ErrorCode = rc.note(code)
			for _, t := range topics {
				gt := kmsg.NewOffsetFetchResponseGroupTopic()
				gt.Topic = t.topic
				for _, p := range t.partitions {
					gp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
					gp.Partition, gp.Offset, gp.LeaderEpoch, gp.Metadata = p.Partition, p.Offset, p.LeaderEpoch, strPtr(p.Metadata)
					gt.Partitions = append(gt.Partitions, gp)
				}
				g.Topics = append(g.Topics, gt)
			}
		}
		return resp, nil
	}

	var asked []offsetFetchTopic
	if req.Topics != nil {
		asked = make([]offsetFetchTopic, len(req.Topics))
		for j, t := range req.Topics {
			asked[j] = offsetFetchTopic{t.Topic, t.Partitions}
		}
	}
	topics, code := s.groupOffsets(rc, req.Group, asked, req.Version >= 2 && req.Topics == nil)
	rc.note(code)
	if req.Version >= 2 {
		resp.ErrorCode = code
	}
	for _, t := range topics {
		rt := kmsg.NewOffsetFetchResponseTopic()
		rt.Topic = t.topic
		for _, p := range t.partitions {
			rp := kmsg.NewOffsetFetchResponseTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = p.Partition, p.Offset, p.LeaderEpoch, strPtr(p.Metadata)
			if req.Version < 2 {
				rp.ErrorCode = code
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp, nil
}

// offsetFetchTopic is a topic an OffsetFetch asks about, or answers.
type offsetFetchTopic struct {
	topic      string
	partitions []int32
}

// fetchedTopic is a topic's committed offsets as OffsetFetch reports them.
type fetchedTopic struct {
	topic      string
	partitions []stream.GroupOffset
}

// groupOffsets returns a group's offsets for the topics asked about (every
// committed offset when all is set) and a group-level error code. On error
// the partitions asked about are listed with offset -1.
func (s *Server) groupOffsets(rc *request, group string, asked []offsetFetchTopic, all bool) ([]fetchedTopic, int16) {
	var code int16
	var committed []stream.GroupOffset
	if !s.authorize(rc, opDescribe, resGroup, group) {
		code = kerr.GroupAuthorizationFailed.Code
	} else if cs, err := s.log.FetchOffsets(rc.ctx, group); err != nil {
		code = errorCode(err, kerr.InvalidRequest.Code)
		s.errorMessage(rc, "offset fetch", code, err) // logs server errors
	} else {
		committed = cs
	}
	if all {
		var out []fetchedTopic
		for _, o := range committed {
			if !s.authorize(rc, opDescribe, resTopic, o.Topic) {
				continue
			}
			if len(out) == 0 || out[len(out)-1].topic != o.Topic {
				out = append(out, fetchedTopic{topic: o.Topic})
			}
			last := &out[len(out)-1]
			last.partitions = append(last.partitions, o)
		}
		return out, code
	}
	type key struct {
		topic     string
		partition int32
	}
	index := make(map[key]stream.GroupOffset, len(committed))
	for _, o := range committed {
		index[key{o.Topic, o.Partition}] = o
	}
	out := make([]fetchedTopic, len(asked))
	for i, t := range asked {
		out[i].topic = t.topic
		allowed := s.authorize(rc, opDescribe, resTopic, t.topic)
		out[i].partitions = make([]stream.GroupOffset, len(t.partitions))
		for j, p := range t.partitions {
			o, ok := index[key{t.topic, p}]
			if !ok || !allowed {
				o = stream.GroupOffset{Topic: t.topic, Partition: p, Offset: -1, LeaderEpoch: -1}
			}
			out[i].partitions[j] = o
		}
	}
	return out, code
}
