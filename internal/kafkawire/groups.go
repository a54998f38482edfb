package kafkawire

// checkCommit validates the group membership behind an offset commit and
// returns a Kafka error code, 0 to accept.
//
// Until the group coordinator lands (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup, with group state in Options.Store), every commit is accepted:
// simple consumers commit with generation -1 and an empty member ID, and
// Kafka also accepts commits for "standalone" groups that never join. The
// coordinator will answer here, for groups it tracks, with
// ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID or
// REBALANCE_IN_PROGRESS, and accept generation -1 only for empty groups.
func (s *Server) checkCommit(group string, generation int32, memberID string, instanceID *string) int16 {
	return 0
}
