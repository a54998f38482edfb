package kafkawire

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// apiVersionsKey is ApiVersions' key, which the connection treats specially.
const apiVersionsKey = 18

// api is one served API: the versions ApiVersions advertises (all of which
// are accepted on the wire; a handler may answer some with an error) and
// its handler. A handler returns the response, nil for no response
// (produce with acks=0), or an error that closes the connection.
type api struct {
	key      int16
	name     string
	min, max int16
	handle   func(s *Server, rc *request, req kmsg.Request) (kmsg.Response, error)
}

// apiTable lists the served APIs. The version ranges are chosen so that
// librdkafka 2.0+, franz-go, Sarama 1.41+ and kafkajs all negotiate.
func apiTable() []api {
	return []api{
		{key: 0, min: 0, max: 12, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleProduce(rc, r.(*kmsg.ProduceRequest))
		}},
		{key: 1, min: 4, max: 12, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleFetch(rc, r.(*kmsg.FetchRequest))
		}},
		{key: 2, min: 1, max: 7, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleListOffsets(rc, r.(*kmsg.ListOffsetsRequest))
		}},
		{key: 3, min: 0, max: 12, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleMetadata(rc, r.(*kmsg.MetadataRequest))
		}},
		{key: 8, min: 2, max: 9, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleOffsetCommit(rc, r.(*kmsg.OffsetCommitRequest))
		}},
		{key: 9, min: 1, max: 9, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleOffsetFetch(rc, r.(*kmsg.OffsetFetchRequest))
		}},
		{key: 10, min: 0, max: 6, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleFindCoordinator(rc, r.(*kmsg.FindCoordinatorRequest))
		}},
		{key: 11, min: 0, max: 9, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleJoinGroup(rc, r.(*kmsg.JoinGroupRequest))
		}},
		{key: 12, min: 0, max: 4, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleHeartbeat(rc, r.(*kmsg.HeartbeatRequest))
		}},
		{key: 13, min: 0, max: 5, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleLeaveGroup(rc, r.(*kmsg.LeaveGroupRequest))
		}},
		{key: 14, min: 0, max: 5, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleSyncGroup(rc, r.(*kmsg.SyncGroupRequest))
		}},
		{key: 15, min: 0, max: 5, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleDescribeGroups(rc, r.(*kmsg.DescribeGroupsRequest))
		}},
		{key: 16, min: 0, max: 4, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleListGroups(rc, r.(*kmsg.ListGroupsRequest))
		}},
		{key: apiVersionsKey, min: 0, max: 4, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleApiVersions(rc, r.(*kmsg.ApiVersionsRequest))
		}},
		{key: 19, min: 0, max: 7, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleCreateTopics(rc, r.(*kmsg.CreateTopicsRequest))
		}},
		{key: 20, min: 0, max: 6, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleDeleteTopics(rc, r.(*kmsg.DeleteTopicsRequest))
		}},
		{key: 21, min: 0, max: 2, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleDeleteRecords(rc, r.(*kmsg.DeleteRecordsRequest))
		}},
		{key: 22, min: 0, max: 4, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleInitProducerID(rc, r.(*kmsg.InitProducerIDRequest))
		}},
		{key: 32, min: 0, max: 4, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleDescribeConfigs(rc, r.(*kmsg.DescribeConfigsRequest))
		}},
		{key: 33, min: 0, max: 2, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleAlterConfigs(rc, r.(*kmsg.AlterConfigsRequest))
		}},
		{key: 37, min: 0, max: 3, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleCreatePartitions(rc, r.(*kmsg.CreatePartitionsRequest))
		}},
		{key: 42, min: 0, max: 2, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleDeleteGroups(rc, r.(*kmsg.DeleteGroupsRequest))
		}},
		{key: 44, min: 0, max: 1, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleIncrementalAlterConfigs(rc, r.(*kmsg.IncrementalAlterConfigsRequest))
		}},
		{key: 47, min: 0, max: 0, handle: func(s *Server, rc *request, r kmsg.Request) (kmsg.Response, error) {
			return s.handleOffsetDelete(rc, r.(*kmsg.OffsetDeleteRequest))
		}},
	}
}

// api returns the served API with the given key, or nil.
func (s *Server) api(key int16) *api {
	if key < 0 || int(key) >= len(s.apis) {
		return nil
	}
	return s.apis[key]
}

// apiName is the protocol name of an API key, as the metrics label it.
func apiName(key int16) string { return kmsg.NameForKey(key) }
