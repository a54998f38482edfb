package group

import (
	"bytes"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerProtocolType is the protocol type of Kafka consumers, whose
// member metadata and assignments follow the consumer protocol's embedded
// formats. The coordinator never reads them; these helpers decode them for
// callers that describe groups or guard their offsets.
const ConsumerProtocolType = "consumer"

// TopicPartitions names partitions of one topic.
type TopicPartitions struct {
	Topic      string
	Partitions []int32
}

// ConsumerAssignment decodes a consumer's assignment; nil when b is empty
// or not in the consumer protocol's format.
func ConsumerAssignment(b []byte) []TopicPartitions {
	if len(b) == 0 {
		return nil
	}
	var a kmsg.ConsumerMemberAssignment
	if err := a.ReadFrom(b); err != nil {
		return nil
	}
	out := make([]TopicPartitions, 0, len(a.Topics))
	for _, t := range a.Topics {
		out = append(out, TopicPartitions{Topic: t.Topic, Partitions: t.Partitions})
	}
	return out
}

// SubscribedTo reports whether a member of a consumer group is subscribed
// to topic, according to the metadata of any protocol it supports. Metadata
// that does not decode counts as a subscription to every topic, so that a
// caller guarding offsets errs on the safe side, as Kafka does when it
// cannot tell. Groups of other protocol types subscribe to nothing.
func (d Description) SubscribedTo(topic string) bool {
	if d.ProtocolType != ConsumerProtocolType {
		return false
	}
	for _, m := range d.Members {
		for _, p := range m.Protocols {
			var md kmsg.ConsumerMemberMetadata
			if err := md.ReadFrom(p.Metadata); err != nil {
				return true
			}
			for _, t := range md.Topics {
				if t == topic {
					return true
				}
			}
		}
	}
	return false
}

// sameSubscription reports whether a member's protocols a and b subscribe
// to the same topics under the selected protocol. For other protocol
// types, whose metadata this package cannot read, it reports true.
func sameSubscription(protocolType, protocol string, a, b []Protocol) bool {
	if protocolType != ConsumerProtocolType {
		return true
	}
	find := func(ps []Protocol) ([]byte, bool) {
		for _, p := range ps {
			if p.Name == protocol {
				return p.Metadata, true
			}
		}
		return nil, false
	}
	ma, oka := find(a)
	mb, okb := find(b)
	if !oka || !okb {
		return false
	}
	var da, db kmsg.ConsumerMemberMetadata
	if da.ReadFrom(ma) != nil || db.ReadFrom(mb) != nil {
		return bytes.Equal(ma, mb)
	}
	ta, tb := slices.Sorted(slices.Values(da.Topics)), slices.Sorted(slices.Values(db.Topics))
	return slices.Equal(slices.Compact(ta), slices.Compact(tb))
}
