package api

import (
	"context"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/holdfast/holdfast/actor"
)

// ClusterAdmin is what the admin service needs from a cluster member. A
// single node does not implement it, and its Ring, Where and Drain answer
// FAILED_PRECONDITION.
type ClusterAdmin interface {
	Ring(ctx context.Context) (*holdfastv1.RingResponse, error)
	Where(ctx context.Context, id actor.ID) (*holdfastv1.WhereResponse, error)
	Drain(ctx context.Context, nodeID string) (*holdfastv1.DrainNodeResponse, error)
}

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
