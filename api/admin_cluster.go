package api

import (
	"context"
	"time"
	"unicode/utf8"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/holdfast/holdfast/actor"
)

// ClusterAdmin is what the admin service needs from a cluster member. A
// single node does not implement it, and its Ring, Where, Drain and Events
// answer FAILED_PRECONDITION.
type ClusterAdmin interface {
	Ring(ctx context.Context) (*holdfastv1.RingResponse, error)
	Where(ctx context.Context, id actor.ID) (*holdfastv1.WhereResponse, error)
	Drain(ctx context.Context, nodeID string) (*holdfastv1.DrainNodeResponse, error)
	// Events returns up to limit (already bounded to [1, MaxEventsLimit])
	// of user's usage events stored at or after since (zero: all
	// retained), oldest first; truncated when more matched.
	Events(ctx context.Context, user string, since time.Time, limit int) (*holdfastv1.EventsResponse, error)
	// OwnerAdmin returns the admin service of the node owning id's
	// partition, or nil when this node owns it: GetActor and DeleteActor
	// run on the owner.
	OwnerAdmin(ctx context.Context, id actor.ID) (holdfastv1.AdminServiceClient, error)
}

// ownerAdmin is the admin client of id's owner (nil: this node answers).
func (s *AdminServer) ownerAdmin(ctx context.Context, id actor.ID) (holdfastv1.AdminServiceClient, error) {
	ca, ok := s.Admin.(ClusterAdmin)
	if !ok {
		return nil, nil
	}
	return ca.OwnerAdmin(ctx, id)
}

// Usage event reads: the default and the largest limit of one Events call,
// and the longest user ID (as for account actors' keys in holdctl).
const (
	DefaultEventsLimit = 1000
	MaxEventsLimit     = 10000
	maxEventsUser      = 128
)

func (s *AdminServer) cluster() (ClusterAdmin, error) {
	if ca, ok := s.Admin.(ClusterAdmin); ok {
		return ca, nil
	}
	return nil, status.Error(codes.FailedPrecondition, "this node is not a cluster member (single node: start it with --join or cluster.enabled)")
}

// Ring lists every partition's owner and epoch.
func (s *AdminServer) Ring(ctx context.Context, _ *holdfastv1.RingRequest) (*holdfastv1.RingResponse, error) {
	ca, err := s.cluster()
	if err != nil {
		return nil, err
	}
	r, err := ca.Ring(ctx)
	return r, GRPCError(err)
}

// Where names the partition, owner and epoch of one actor.
func (s *AdminServer) Where(ctx context.Context, r *holdfastv1.WhereRequest) (*holdfastv1.WhereResponse, error) {
	ca, err := s.cluster()
	if err != nil {
		return nil, err
	}
	id, err := actorID(r.GetActor())
	if err != nil {
		return nil, GRPCError(err)
	}
	w, err := ca.Where(ctx, id)
	return w, GRPCError(err)
}

// Drain asks a node (any, reached through this one) to hand off every
// partition.
func (s *AdminServer) Drain(ctx context.Context, r *holdfastv1.DrainNodeRequest) (*holdfastv1.DrainNodeResponse, error) {
	ca, err := s.cluster()
	if err != nil {
		return nil, err
	}
	d, err := ca.Drain(ctx, r.GetNodeId())
	return d, GRPCError(err)
}

// Events reads a gateway user's usage events from the cluster's usage
// stream. A single node has no stream: FAILED_PRECONDITION.
func (s *AdminServer) Events(ctx context.Context, r *holdfastv1.EventsRequest) (*holdfastv1.EventsResponse, error) {
	ca, ok := s.Admin.(ClusterAdmin)
	if !ok {
		return nil, status.Error(codes.FailedPrecondition, "usage events need a cluster: this is a single node, which publishes none (start it with --join or cluster.enabled)")
	}
	user := r.GetUser()
	switch {
	case user == "":
		return nil, status.Error(codes.InvalidArgument, "user must not be empty")
	case len(user) > maxEventsUser:
		return nil, status.Errorf(codes.InvalidArgument, "user is %d bytes, at most %d", len(user), maxEventsUser)
	case !utf8.ValidString(user):
		return nil, status.Error(codes.InvalidArgument, "user is not valid UTF-8")
	case r.GetLimit() < 0:
		return nil, status.Error(codes.InvalidArgument, "limit must not be negative")
	}
	limit := int(min(r.GetLimit(), MaxEventsLimit))
	if limit == 0 {
		limit = DefaultEventsLimit
	}
	var since time.Time
	if ts := r.GetSince(); ts != nil && (ts.GetSeconds() != 0 || ts.GetNanos() != 0) {
		if err := ts.CheckValid(); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "since: %v", err)
		}
		since = ts.AsTime()
	}
	resp, err := ca.Events(ctx, user, since, limit)
	return resp, GRPCError(err)
}
