package account

import (
	"cmp"
	"context"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// Client is what the gateway uses to reach a user's account actor: one
// turn before a call (Admit) and one after it (Settle). Errors are the
// Caller's (runtime errors, or gRPC statuses from a remote owner).
type Client struct {
	Caller api.Caller
	// Namespace of the account kind; DefaultNamespace when empty.
	Namespace string
}

func (c *Client) ref(user string) (actor.ID, *holdfastv1.ActorRef, error) {
	if err := ValidateUser(user); err != nil {
		return actor.ID{}, nil, err
	}
	ns := cmp.Or(c.Namespace, DefaultNamespace)
	return actor.ID{Namespace: ns, Key: user}, &holdfastv1.ActorRef{Namespace: ns, Key: user}, nil
}

// Admit runs the pre-flight turn in user's actor. It sets req.Actor and,
// when empty, req.RequestId (on req itself, so resending the same req after
// an unknown outcome reuses it). An allowed admit is recorded under its
// request ID (a duplicate does not take twice); a refusal is not, so the
// same request may be sent again after retry_after_ms. The admit and the
// settle of one call must have different request IDs.
func (c *Client) Admit(ctx context.Context, user string, req *holdfastv1.AccountAdmitRequest) (*holdfastv1.AccountAdmitResponse, error) {
	id, ref, err := c.ref(user)
	if err != nil {
		return nil, err
	}
	req.Actor = ref
	if req.RequestId == "" {
		req.RequestId = api.NewRequestID()
	}
	return callAs[*holdfastv1.AccountAdmitResponse](ctx, c.Caller, id, req)
}

// Settle debits a finished call in user's actor and returns the day's
// totals after it. It sets req.Actor and, when empty, req.RequestId (on req
// itself: retry a settle by resending the same req, and it counts once).
func (c *Client) Settle(ctx context.Context, user string, req *holdfastv1.AccountSettleRequest) (*holdfastv1.UsageTotals, error) {
	id, ref, err := c.ref(user)
	if err != nil {
		return nil, err
	}
	req.Actor = ref
	if req.RequestId == "" {
		req.RequestId = api.NewRequestID()
	}
	return callAs[*holdfastv1.UsageTotals](ctx, c.Caller, id, req)
}
