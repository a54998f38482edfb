package kafkawire

// operation and resource name what a request wants to do, in Kafka's ACL
// terms, for the one authorization check every request passes.
type operation int8

const (
	opRead operation = iota
	opWrite
	opCreate
	opDelete
	opDescribe
	opDescribeConfigs
	opIdempotentWrite
	opAlter
	opAlterConfigs
)

type resourceType int8

const (
	resTopic resourceType = iota
	resGroup
	resCluster
	resTransactionalID
)

// authorize reports whether the request's principal may perform op on the
// named resource. Every handler asks before acting, so that ACLs (the
// security issue) slot in here; until then every principal is anonymous and
// everything is allowed.
func (s *Server) authorize(rc *request, op operation, res resourceType, name string) bool {
	return true
}
