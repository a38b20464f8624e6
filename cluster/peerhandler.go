package cluster

import (
	"context"
	"errors"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	"github.com/holdfast/holdfast/cluster/ownership"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/types/known/anypb"
)

// PeerHandler is this node's side of the node-to-node service.
func (n *Node) PeerHandler() *peerHandler { return &peerHandler{n} }

type peerHandler struct{ n *Node }

// Call runs a forwarded call here, never forwarding it again: the gate
// decides, and a refusal goes back as NOT_OWNER with what this node knows.
func (h *peerHandler) Call(ctx context.Context, req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse {
	ref := req.GetActor()
	id := actor.ID{Namespace: ref.GetNamespace(), Key: ref.GetKey(), Shard: ref.GetShard()}
	msg, err := req.GetMessage().UnmarshalNew()
	if err != nil {
		return errorResponse(errors.Join(actor.ErrInvalidArgument, err))
	}
	resp, err := h.n.rt.Call(ctx, id, msg)
	if err != nil {
		var no *NotOwnerError
		var un *UnavailableError
		switch {
		case errors.As(err, &no):
			hint := no.Hint
			if hint == "" {
				if owner, _, _, known := h.n.route(no.Partition, ""); known && owner != h.n.cfg.NodeID {
					hint = owner
				}
			}
			return &holdfastv1.ForwardResponse{Result: &holdfastv1.ForwardResponse_NotOwner{NotOwner: &holdfastv1.NotOwner{OwnerHint: hint}}}
		case errors.As(err, &un):
			return &holdfastv1.ForwardResponse{Result: &holdfastv1.ForwardResponse_NotOwner{NotOwner: &holdfastv1.NotOwner{Unavailable: true}}}
		}
		return errorResponse(err)
	}
	payload, err := anypb.New(resp)
	if err != nil {
		return errorResponse(err)
	}
	return &holdfastv1.ForwardResponse{Result: &holdfastv1.ForwardResponse_Reply{Reply: payload}}
}

func errorResponse(err error) *holdfastv1.ForwardResponse {
	return &holdfastv1.ForwardResponse{Result: &holdfastv1.ForwardResponse_Error{Error: api.StatusFromError(err)}}
}

func (h *peerHandler) Transfer(stream holdfastv1.PeerService_TransferServer) error {
	return h.n.receiveTransfer(stream)
}

func (h *peerHandler) HandoffDone(ctx context.Context, req *holdfastv1.HandoffDoneRequest) error {
	h.n.feed(ownership.HandoffDone{HandoffID: req.GetHandoffId(), Partition: ownership.Partition(req.GetPartition()), Epoch: req.GetEpoch(), From: ownership.NodeID(req.GetFromNode())})
	return nil
}

func (h *peerHandler) HandoffAborted(ctx context.Context, req *holdfastv1.HandoffAbortedRequest) error {
	h.n.feed(ownership.HandoffAborted{HandoffID: req.GetHandoffId()})
	return nil
}

func (h *peerHandler) Ping(ctx context.Context, req *holdfastv1.PingRequest) (*holdfastv1.PingResponse, error) {
	var inc uint64
	h.n.mu.Lock()
	if h.n.mu.node != nil {
		inc = h.n.mu.node.Incarnation()
	}
	h.n.mu.Unlock()
	return &holdfastv1.PingResponse{NodeId: h.n.cfg.NodeID, Incarnation: inc}, nil
}

func (h *peerHandler) Drain(ctx context.Context) error {
	h.n.goFunc(func() { h.n.Drain(h.n.ctx) })
	return nil
}
