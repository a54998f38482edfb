package kafkawire

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
)

// Requests are checked against their wire shape before kmsg decodes them,
// because kmsg trusts two kinds of count more than a server can afford to:
//
//   - A tagged-field count is read as a uint32 and looped over even after
//     the input has run out, so seven bytes announcing 2^32-1 tags keep a
//     core busy for over a minute.
//   - An array length is checked only against the bytes that remain, and the
//     whole array of structs (up to 80 bytes each) is allocated before any
//     element is read, so a short request can make kmsg allocate 80 times
//     its size.
//
// validateShape walks a request body with the same reading rules as kmsg and
// fails on any count that the bytes cannot back: tag counts above half the
// remaining bytes (a tag takes at least two), array lengths whose elements
// are not all there, and more than maxRequestElements array elements in all.
// A body that passes decodes with work and memory proportional to its size.
// The shapes list every field by version, as the Kafka protocol's message
// definitions do; TestShapesMatchKmsg checks them against kmsg's encoder.

// maxRequestElements bounds the array elements of one request, which bounds
// what decoding it allocates for structs (at most 80 bytes an element) to
// about 80 MiB whatever the request's size. Real requests stay far below:
// a consumer fetching 10,000 partitions sends about 10,000 elements.
const maxRequestElements = 1 << 20

// errShape is wrapped by every error of validateShape.
var errShape = errors.New("malformed request")

// wire is how a field is encoded; the flexible (compact) or classic form
// follows from the request's version.
type wire uint8

const (
	wInt8   wire = iota + 1 // int8, bool
	wInt16                  // int16
	wInt32                  // int32
	wInt64                  // int64, float64
	wUUID                   // uuid
	wString                 // string or nullable string
	wBytes                  // bytes or nullable bytes
	wArray                  // array, possibly nullable, of elem
)

// noMax is the open upper end of a field's version range.
const noMax = 1<<15 - 1

// field is one field of a shape, present in versions min to max.
type field struct {
	w        wire
	min, max int16
	elem     *shape // for wArray
}

// shape is the wire layout of a struct, or of a primitive array element.
type shape struct {
	fields []field
	// prim marks the element of an array of primitives (int32s, strings),
	// which has no tagged-field section of its own.
	prim bool
	// tagged holds the tagged fields whose payload kmsg decodes as a
	// struct (with tags of its own); other tagged fields are skipped by
	// size.
	tagged map[uint32]*shape
}

// Field constructors: always for a field in every version, since for a field
// from version min on, between for a field in versions min to max; the same
// for arrays of elem. fields makes a struct shape.
func always(w wire) field                  { return field{w: w, min: 0, max: noMax} }
func since(w wire, min int16) field        { return field{w: w, min: min, max: noMax} }
func between(w wire, min, max int16) field { return field{w: w, min: min, max: max} }
func array(elem *shape) field              { return field{w: wArray, min: 0, max: noMax, elem: elem} }
func arraySince(min int16, e *shape) field { return field{w: wArray, min: min, max: noMax, elem: e} }
func arrayBetween(min, max int16, e *shape) field {
	return field{w: wArray, min: min, max: max, elem: e}
}
func fields(fs ...field) *shape { return &shape{fields: fs} }

// prim is the element shape of an array of primitives.
func prim(w wire) *shape { return &shape{fields: []field{always(w)}, prim: true} }

// requestShapes returns the request body shapes by API key, for every API
// the server serves or will serve (the group coordinator's included). Every
// key in apiTable must have one.
func requestShapes() map[int16]*shape {
	return map[int16]*shape{
		0: fields( // Produce
			since(wString, 3), // TransactionalID
			always(wInt16),    // Acks
			always(wInt32),    // TimeoutMillis
			array(fields(
				between(wString, 0, 12), // Topic
				since(wUUID, 13),        // TopicID
				array(fields(
					always(wInt32), // Partition
					always(wBytes), // Records
				)),
			)),
		),
		1: fetchShape(),
		2: fields( // ListOffsets
			always(wInt32),  // ReplicaID
			since(wInt8, 2), // IsolationLevel
			array(fields(
				always(wString), // Topic
				array(fields(
					always(wInt32),        // Partition
					since(wInt32, 4),      // CurrentLeaderEpoch
					always(wInt64),        // Timestamp
					between(wInt32, 0, 0), // MaxNumOffsets
				)),
			)),
			since(wInt32, 10), // TimeoutMillis
		),
		3: fields( // Metadata
			array(fields(
				since(wUUID, 10), // TopicID
				always(wString),  // Topic
			)),
			since(wInt8, 4),       // AllowAutoTopicCreation
			between(wInt8, 8, 10), // IncludeClusterAuthorizedOperations
			since(wInt8, 8),       // IncludeTopicAuthorizedOperations
		),
		8: fields( // OffsetCommit
			always(wString),       // Group
			since(wInt32, 1),      // Generation
			since(wString, 1),     // MemberID
			since(wString, 7),     // InstanceID
			between(wInt64, 2, 4), // RetentionTimeMillis
			array(fields(
				between(wString, 0, 9), // Topic
				since(wUUID, 10),       // TopicID
				array(fields(
					always(wInt32),        // Partition
					always(wInt64),        // Offset
					between(wInt64, 1, 1), // Timestamp
					since(wInt32, 6),      // LeaderEpoch
					always(wString),       // Metadata
				)),
			)),
		),
		9: fields( // OffsetFetch
			between(wString, 0, 7), // Group
			arrayBetween(0, 7, fields(
				always(wString),     // Topic
				array(prim(wInt32)), // Partitions
			)),
			arraySince(8, fields(
				always(wString),   // Group
				since(wString, 9), // MemberID
				since(wInt32, 9),  // MemberEpoch
				array(fields(
					between(wString, 8, 9), // Topic
					since(wUUID, 10),       // TopicID
					array(prim(wInt32)),    // Partitions
				)),
			)),
			since(wInt8, 7), // RequireStable
		),
		10: fields( // FindCoordinator
			between(wString, 0, 3),       // CoordinatorKey
			since(wInt8, 1),              // CoordinatorType
			arraySince(4, prim(wString)), // CoordinatorKeys
		),
		11: fields( // JoinGroup
			always(wString),   // Group
			always(wInt32),    // SessionTimeoutMillis
			since(wInt32, 1),  // RebalanceTimeoutMillis
			always(wString),   // MemberID
			since(wString, 5), // InstanceID
			always(wString),   // ProtocolType
			array(fields(
				always(wString), // Name
				always(wBytes),  // Metadata
			)),
			since(wString, 8), // Reason
		),
		12: fields( // Heartbeat
			always(wString),   // Group
			always(wInt32),    // Generation
			always(wString),   // MemberID
			since(wString, 3), // InstanceID
		),
		13: fields( // LeaveGroup
			always(wString),        // Group
			between(wString, 0, 2), // MemberID
			arraySince(3, fields(
				always(wString),   // MemberID
				always(wString),   // InstanceID
				since(wString, 5), // Reason
			)),
		),
		14: fields( // SyncGroup
			always(wString),   // Group
			always(wInt32),    // Generation
			always(wString),   // MemberID
			since(wString, 3), // InstanceID
			since(wString, 5), // ProtocolType
			since(wString, 5), // Protocol
			array(fields(
				always(wString), // MemberID
				always(wBytes),  // MemberAssignment
			)),
		),
		15: fields( // DescribeGroups
			array(prim(wString)), // Groups
			since(wInt8, 3),      // IncludeAuthorizedOperations
		),
		16: fields( // ListGroups
			arraySince(4, prim(wString)), // StatesFilter
			arraySince(5, prim(wString)), // TypesFilter
		),
		18: fields( // ApiVersions
			since(wString, 3), // ClientSoftwareName
			since(wString, 3), // ClientSoftwareVersion
			since(wString, 5), // ClusterID
			since(wInt32, 5),  // NodeID
		),
		19: fields( // CreateTopics
			array(fields(
				always(wString), // Topic
				always(wInt32),  // NumPartitions
				always(wInt16),  // ReplicationFactor
				array(fields(
					always(wInt32),      // Partition
					array(prim(wInt32)), // Replicas
				)),
				array(fields(
					always(wString), // Name
					always(wString), // Value
				)),
			)),
			always(wInt32),  // TimeoutMillis
			since(wInt8, 1), // ValidateOnly
		),
		20: fields( // DeleteTopics
			arrayBetween(0, 5, prim(wString)), // TopicNames
			arraySince(6, fields(
				always(wString), // Topic
				always(wUUID),   // TopicID
			)),
			always(wInt32), // TimeoutMillis
		),
		21: fields( // DeleteRecords
			array(fields(
				always(wString), // Topic
				array(fields(
					always(wInt32), // Partition
					always(wInt64), // Offset
				)),
			)),
			always(wInt32), // TimeoutMillis
		),
		22: fields( // InitProducerID
			always(wString),  // TransactionalID
			always(wInt32),   // TransactionTimeoutMillis
			since(wInt64, 3), // ProducerID
			since(wInt16, 3), // ProducerEpoch
		),
		32: fields( // DescribeConfigs
			array(fields(
				always(wInt8),        // ResourceType
				always(wString),      // ResourceName
				array(prim(wString)), // ConfigNames
			)),
			since(wInt8, 1), // IncludeSynonyms
			since(wInt8, 3), // IncludeDocumentation
		),
		33: fields( // AlterConfigs
			array(fields(
				always(wInt8),   // ResourceType
				always(wString), // ResourceName
				array(fields(
					always(wString), // Name
					always(wString), // Value
				)),
			)),
			always(wInt8), // ValidateOnly
		),
		37: fields( // CreatePartitions
			array(fields(
				always(wString), // Topic
				always(wInt32),  // Count
				array(fields(
					array(prim(wInt32)), // Replicas
				)),
			)),
			always(wInt32), // TimeoutMillis
			always(wInt8),  // ValidateOnly
		),
		42: fields( // DeleteGroups
			array(prim(wString)), // Groups
		),
		44: fields( // IncrementalAlterConfigs
			array(fields(
				always(wInt8),   // ResourceType
				always(wString), // ResourceName
				array(fields(
					always(wString), // Name
					always(wInt8),   // Op
					always(wString), // Value
				)),
			)),
			always(wInt8), // ValidateOnly
		),
		47: fields( // OffsetDelete
			always(wString), // Group
			array(fields(
				always(wString), // Topic
				array(fields(
					always(wInt32), // Partition
				)),
			)),
		),
	}
}

// fetchShape is Fetch's request shape; its top-level tag 1 (ReplicaState)
// is a struct that kmsg decodes, so its payload is walked too.
func fetchShape() *shape {
	s := fields(
		between(wInt32, 0, 14), // ReplicaID
		always(wInt32),         // MaxWaitMillis
		always(wInt32),         // MinBytes
		since(wInt32, 3),       // MaxBytes
		since(wInt8, 4),        // IsolationLevel
		since(wInt32, 7),       // SessionID
		since(wInt32, 7),       // SessionEpoch
		array(fields(
			between(wString, 0, 12), // Topic
			since(wUUID, 13),        // TopicID
			array(fields(
				always(wInt32),    // Partition
				since(wInt32, 9),  // CurrentLeaderEpoch
				always(wInt64),    // FetchOffset
				since(wInt32, 12), // LastFetchedEpoch
				since(wInt64, 5),  // LogStartOffset
				always(wInt32),    // PartitionMaxBytes
			)),
		)),
		arraySince(7, fields( // ForgottenTopics
			between(wString, 7, 12), // Topic
			since(wUUID, 13),        // TopicID
			array(prim(wInt32)),     // Partitions
		)),
		since(wString, 11), // Rack
	)
	s.tagged = map[uint32]*shape{
		1: fields(always(wInt32), always(wInt64)), // ReplicaState: ID, Epoch
	}
	return s
}

// shapeWalker reads a request body the way kmsg does.
type shapeWalker struct {
	b        []byte
	version  int16
	flexible bool
	elems    int
}

// validateShape checks body, the request after its header, against s at the
// given version; flexible says whether that version uses compact encodings
// and tagged fields. Trailing bytes are allowed, as kmsg allows them.
func validateShape(s *shape, body []byte, version int16, flexible bool) error {
	w := shapeWalker{b: body, version: version, flexible: flexible}
	return w.walk(s)
}

func (w *shapeWalker) fail(what string) error {
	return fmt.Errorf("%w: %s", errShape, what)
}

func (w *shapeWalker) walk(s *shape) error {
	for i := range s.fields {
		fd := &s.fields[i]
		if w.version < fd.min || w.version > fd.max {
			continue
		}
		if err := w.field(fd); err != nil {
			return err
		}
	}
	if w.flexible && !s.prim {
		return w.tags(s.tagged)
	}
	return nil
}

func (w *shapeWalker) skip(n int, what string) error {
	if n < 0 || n > len(w.b) {
		return w.fail(what + " runs past the end")
	}
	w.b = w.b[n:]
	return nil
}

func (w *shapeWalker) uvarint(what string) (uint32, error) {
	v, n := kbin.Uvarint(w.b)
	if n <= 0 {
		return 0, w.fail("bad varint in " + what)
	}
	w.b = w.b[n:]
	return v, nil
}

func (w *shapeWalker) int16() (int16, error) {
	if len(w.b) < 2 {
		return 0, w.fail("length runs past the end")
	}
	v := int16(binary.BigEndian.Uint16(w.b))
	w.b = w.b[2:]
	return v, nil
}

func (w *shapeWalker) int32() (int32, error) {
	if len(w.b) < 4 {
		return 0, w.fail("length runs past the end")
	}
	v := int32(binary.BigEndian.Uint32(w.b))
	w.b = w.b[4:]
	return v, nil
}

// length reads a string or bytes length; negative means null.
func (w *shapeWalker) length(wd wire) (int, error) {
	if w.flexible {
		u, err := w.uvarint("length")
		return int(u) - 1, err
	}
	if wd == wString {
		n, err := w.int16()
		return int(n), err
	}
	n, err := w.int32()
	return int(n), err
}

func (w *shapeWalker) field(fd *field) error {
	switch fd.w {
	case wInt8:
		return w.skip(1, "int8")
	case wInt16:
		return w.skip(2, "int16")
	case wInt32:
		return w.skip(4, "int32")
	case wInt64:
		return w.skip(8, "int64")
	case wUUID:
		return w.skip(16, "uuid")
	case wString, wBytes:
		n, err := w.length(fd.w)
		if err != nil || n < 0 {
			return err
		}
		return w.skip(n, "string or bytes")
	case wArray:
		var n int32
		if w.flexible {
			u, err := w.uvarint("array length")
			if err != nil {
				return err
			}
			n = int32(u) - 1 // as kmsg reads it: huge lengths wrap to "empty"
		} else {
			var err error
			if n, err = w.int32(); err != nil {
				return err
			}
		}
		if n <= 0 {
			return nil
		}
		if int(n) > len(w.b) {
			return w.fail(fmt.Sprintf("array of %d elements in %d bytes", n, len(w.b)))
		}
		w.elems += int(n)
		if w.elems > maxRequestElements {
			return w.fail(fmt.Sprintf("more than %d array elements", maxRequestElements))
		}
		for range n {
			if err := w.walk(fd.elem); err != nil {
				return err
			}
		}
		return nil
	}
	return w.fail("unknown field type")
}

// tags walks a tagged-field section. Payloads of tags listed in known are
// walked with their shape; all others are skipped by size.
func (w *shapeWalker) tags(known map[uint32]*shape) error {
	n, err := w.uvarint("tag count")
	if err != nil {
		return err
	}
	if int(n) > len(w.b)/2 {
		return w.fail(fmt.Sprintf("%d tagged fields in %d bytes", n, len(w.b)))
	}
	for range n {
		tag, err := w.uvarint("tag")
		if err != nil {
			return err
		}
		size, err := w.uvarint("tag size")
		if err != nil {
			return err
		}
		if int(size) > len(w.b) {
			return w.fail("tagged field runs past the end")
		}
		payload := w.b[:size]
		w.b = w.b[size:]
		if s, ok := known[tag]; ok {
			sub := shapeWalker{b: payload, version: w.version, flexible: w.flexible, elems: w.elems}
			if err := sub.walk(s); err != nil {
				return err
			}
			w.elems = sub.elems
		}
	}
	return nil
}
