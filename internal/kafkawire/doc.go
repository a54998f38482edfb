// Package kafkawire serves the Kafka wire protocol over a stream.Log, so that
// Kafka clients and tools (franz-go, librdkafka/kcat, the Java client, Sarama,
// kafkajs) produce to and consume from Sluice's embedded log unchanged.
// Requests and responses are encoded with franz-go's kmsg; the server,
// dispatch and coordination are this package's.
//
// # Connections
//
// Each connection has one goroutine that reads a request, answers it and only
// then reads the next, as a Kafka broker does: responses leave in request
// order, and a connection holds at most one request (at most
// Options.MaxRequestBytes) and one response in memory. A request is framed
// by a 4-byte size; a size above MaxRequestBytes closes the connection before
// anything is allocated for it, and the body buffer grows only as bytes
// arrive. The request header is version 1, or version 2 (with tagged fields)
// when the request's version is flexible (KIP-482); responses use header
// version 0, or 1 when flexible, except that ApiVersions always answers with
// header version 0 (KIP-511).
//
// Before kmsg decodes a body, validateShape walks it with the same reading
// rules and refuses counts the bytes cannot back (see shape.go), so decoding
// costs time and memory proportional to the request. A request that does not
// decode closes the connection, as does an API key or version the server does
// not serve; the one exception is ApiVersions at an unknown version, which
// gets a version 0 answer with UNSUPPORTED_VERSION and the supported keys, so
// that a newer client can downgrade. A panic while serving a request is
// recovered, logged and counted, and closes that connection only.
//
// # APIs
//
// One file per API key, named after the key, starts with the versions served
// and the behaviour. This round serves: Produce (0), Fetch (1), ListOffsets
// (2), Metadata (3), OffsetCommit (8), OffsetFetch (9), FindCoordinator (10),
// ApiVersions (18), CreateTopics (19), DeleteTopics (20), InitProducerId (22)
// and DescribeConfigs (32). Stream errors map to Kafka error codes in one
// place, errors.go.
//
// The group coordinator (JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
// ListGroups, DescribeGroups), idempotent sequence checks and transactions
// are not served yet: offset commits are accepted for any generation (simple
// consumers and standalone groups), idempotent batches are stored without
// sequence checks, and transactional producers are refused with
// INVALID_REQUEST.
package kafkawire
