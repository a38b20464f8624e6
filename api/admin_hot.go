package api

import (
	"context"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// HotAdmin is what the Hot RPC needs from a node: its hot ratelimit keys
// and the allowances it holds, and (unless local) every other member's.
type HotAdmin interface {
	Hot(ctx context.Context, local bool) (*holdfastv1.HotResponse, error)
}

// Hot lists the hot keys and held allowances of every member (or of this
// node only, with local).
func (s *AdminServer) Hot(ctx context.Context, r *holdfastv1.HotRequest) (*holdfastv1.HotResponse, error) {
	ha, ok := s.Admin.(HotAdmin)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this node does not report hot keys")
	}
	resp, err := ha.Hot(ctx, r.GetLocal())
	return resp, GRPCError(err)
}
