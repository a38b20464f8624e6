package peer

import (
	"fmt"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// ReplyResponse is the ForwardResponse carrying an actor's reply.
func ReplyResponse(reply proto.Message) (*holdfastv1.ForwardResponse, error) {
	a, err := anypb.New(reply)
	if err != nil {
		return nil, fmt.Errorf("%w: peer: encode reply: %v", actor.ErrInternal, err)
	}
	return &holdfastv1.ForwardResponse{Result: &holdfastv1.ForwardResponse_Reply{Reply: a}}, nil
}

// NotOwnerResponse is the ForwardResponse saying the receiver does not
// serve the partition (nothing ran).
func NotOwnerResponse(n *holdfastv1.NotOwner) *holdfastv1.ForwardResponse {
	return &holdfastv1.ForwardResponse{Result: &holdfastv1.ForwardResponse_NotOwner{NotOwner: n}}
}

// Decode splits a ForwardResponse: the reply (decoded from its Any; the
// message type must be linked in, as every holdfastv1 type is), or the
// NotOwner answer, or the call's error rebuilt with api.ErrorFromStatus
// (errors.Is/As match as for a local call). Exactly one is set.
func Decode(resp *holdfastv1.ForwardResponse) (reply proto.Message, notOwner *holdfastv1.NotOwner, err error) {
	switch r := resp.GetResult().(type) {
	case *holdfastv1.ForwardResponse_Reply:
		m, uerr := r.Reply.UnmarshalNew()
		if uerr != nil {
			return nil, nil, fmt.Errorf("%w: peer: decode reply %s: %v", actor.ErrInternal, r.Reply.GetTypeUrl(), uerr)
		}
		return m, nil, nil
	case *holdfastv1.ForwardResponse_NotOwner:
		if r.NotOwner == nil {
			return nil, &holdfastv1.NotOwner{}, nil
		}
		return nil, r.NotOwner, nil
	case *holdfastv1.ForwardResponse_Error:
		if e := api.ErrorFromStatus(r.Error); e != nil {
			return nil, nil, e
		}
		return nil, nil, fmt.Errorf("%w: peer: error result with an OK status", actor.ErrInternal)
	}
	return nil, nil, fmt.Errorf("%w: peer: empty forward response", actor.ErrInternal)
}
