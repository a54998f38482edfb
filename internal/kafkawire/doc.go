// Package kafkawire serves the Kafka wire protocol over a stream.Log, so that
// Kafka clients and tools (franz-go, librdkafka/kcat, the Java client, Sarama,
// kafkajs) produce to and consume from Sluice's embedded log unchanged.
// Requests and responses are encoded with franz-go's kmsg; the server,
// dispatch and coordination are this package's.
//
// # Connections
//
// Each connection has one goroutine that reads a request, answers it and only
// then reads the next, as a Kafka broker does, with one exception: on a log
// that implements stream.StagedProducer (the embedded log), produce requests
// are appended as they are read and wait for their fsync on the connection's
// writer goroutine while the next request is read (see pipeline.go), so that
// a producer's requests in flight share fsyncs. Responses leave in request
// order either way; a connection holds one request being read (at most
// Options.MaxRequestBytes) and the responses of at most a few pipelined
// produce requests. A request is framed by a 4-byte size; a size above
// MaxRequestBytes closes the connection before anything is allocated for it,
// and the body buffer grows only as bytes arrive. The request header is
// version 1, or version 2 (with tagged fields) when the request's version is
// flexible (KIP-482); responses use header
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
// and the behaviour. Served: Produce (0), Fetch (1), ListOffsets (2),
// Metadata (3), OffsetCommit (8), OffsetFetch (9), FindCoordinator (10), the
// group coordinator's JoinGroup (11), Heartbeat (12), LeaveGroup (13),
// SyncGroup (14), DescribeGroups (15) and ListGroups (16), ApiVersions (18),
// CreateTopics (19), DeleteTopics (20), DeleteRecords (21), InitProducerId
// (22), DescribeConfigs (32), AlterConfigs (33), CreatePartitions (37),
// DeleteGroups (42), IncrementalAlterConfigs (44) and OffsetDelete (47).
// Stream errors map to Kafka error codes in one place, errors.go, and every
// request passes one authorization check, authorize in authz.go.
//
// The group APIs translate requests for the coordinator in internal/group,
// which holds membership in memory; offset commits from group members are
// checked against it. Idempotent producers are served: the log checks their sequences and
// epochs and answers retries with the original offsets. Topic configs are
// changed with IncrementalAlterConfigs and AlterConfigs; broker settings are
// flags of sluice serve, so changing one over the protocol is refused.
// Transactions are not served: transactional producers are refused with
// INVALID_REQUEST.
package kafkawire
