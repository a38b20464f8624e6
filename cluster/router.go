package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	"github.com/holdfast/holdfast/cluster/ownership"
	"github.com/holdfast/holdfast/cluster/peer"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Call implements api.Caller for the whole cluster: in-process when this
// node serves the actor's partition, else forwarded to its owner.
func (n *Node) Call(ctx context.Context, id actor.ID, msg proto.Message) (proto.Message, error) {
	resp, _, err := n.call(ctx, id, msg, false)
	return resp, err
}

// CallEarly is Call with the output gate handed to the caller when this
// node serves the actor (actor.Runtime.CallEarly); a forwarded call's
// reply comes through its owner's output gate, with actor.OpenGate. The
// gate must be waited on exactly once.
func (n *Node) CallEarly(ctx context.Context, id actor.ID, msg proto.Message) (proto.Message, actor.OutputGate, error) {
	return n.call(ctx, id, msg, true)
}

func (n *Node) call(ctx context.Context, id actor.ID, msg proto.Message, early bool) (proto.Message, actor.OutputGate, error) {
	p, err := n.rt.PartitionOf(id)
	if err != nil {
		return nil, actor.OpenGate, err
	}
	hint := ""
	var last error
	for attempt := 0; attempt <= n.cfg.ForwardRetries; attempt++ {
		if attempt > 0 && !n.backoff(ctx, attempt) {
			if last != nil {
				return nil, actor.OpenGate, last
			}
			return nil, actor.OpenGate, ctx.Err()
		}
		owner, epoch, orphaned, known := n.route(p, hint)
		hint = ""
		switch {
		case orphaned:
			return nil, actor.OpenGate, &UnavailableError{Partition: p, Why: "orphaned"}
		case !known:
			last = &UnavailableError{Partition: p, Why: "unowned"}
			continue
		case owner == n.cfg.NodeID:
			var resp proto.Message
			gate := actor.OpenGate
			if early {
				resp, gate, err = n.rt.CallEarly(ctx, id, msg)
			} else {
				resp, err = n.rt.Call(ctx, id, msg)
			}
			var no *NotOwnerError
			var uo *actor.UnknownOutcomeError
			switch {
			case errors.As(err, &no):
				_ = gate.Wait(ctx) // refused at the gate: nothing to wait for
				hint, last = no.Hint, err
				continue
			case errors.Is(err, actor.ErrOwnershipLost) && !errors.As(err, &uo):
				// Refused before anything was written: retry on the owner.
				_ = gate.Wait(ctx)
				last = err
				continue
			}
			return resp, gate, err
		}
		resp, retry, nextHint, err := n.forward(ctx, owner, id, p, epoch, msg)
		if !retry {
			return resp, actor.OpenGate, err
		}
		hint, last = nextHint, err
	}
	return nil, actor.OpenGate, last
}

// route returns the owner of p in this node's copy of the directory (hint,
// when given, wins once: a NOT_OWNER answer names the new owner before the
// watch shows it).
func (n *Node) route(p int, hint string) (owner string, epoch uint64, orphaned, known bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.node == nil {
		return "", 0, false, false
	}
	e, _, ok := n.mu.node.Entry(ownership.Partition(p))
	if hint != "" {
		if ok && string(e.Owner) == hint {
			return hint, e.Epoch, e.Orphaned, true
		}
		return hint, 0, false, true
	}
	if !ok {
		return "", 0, false, false
	}
	return string(e.Owner), e.Epoch, e.Orphaned, true
}

// forward sends one call to owner. retry says the call provably did not
// run there (NOT_OWNER, or it never reached the handler).
func (n *Node) forward(ctx context.Context, owner string, id actor.ID, p int, epoch uint64, msg proto.Message) (resp proto.Message, retry bool, hint string, err error) {
	addr, ok := n.addrOf(owner)
	if !ok {
		return nil, true, "", &UnavailableError{Partition: p, Why: "no route to " + owner}
	}
	payload, err := anypb.New(msg)
	if err != nil {
		return nil, false, "", fmt.Errorf("%w: %v", actor.ErrInvalidArgument, err)
	}
	req := &holdfastv1.ForwardRequest{
		Actor:      &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key, Shard: id.Shard},
		Partition:  uint32(p),
		Epoch:      epoch,
		Message:    payload,
		OriginNode: n.cfg.NodeID,
	}
	if d, ok := ctx.Deadline(); ok {
		req.TimeoutMs = max(1, time.Until(d).Milliseconds())
	}
	fr, err := n.pool.Call(ctx, addr, req)
	if err != nil {
		if peer.NeverRan(err) {
			return nil, true, "", &UnavailableError{Partition: p, Why: "owner " + owner + " unreachable"}
		}
		if ctx.Err() != nil {
			return nil, false, "", ctx.Err()
		}
		// The call reached the owner and then the connection broke: it may
		// have run. With a request ID the client's retry is safe; without
		// one the outcome is still unknown (never "unavailable", which
		// says it did not run).
		return nil, false, "", &actor.UnknownOutcomeError{RequestID: requestID(msg), Err: fmt.Errorf("forwarding to %s: %w", owner, err)}
	}
	switch r := fr.GetResult().(type) {
	case *holdfastv1.ForwardResponse_Reply:
		out, err := r.Reply.UnmarshalNew()
		if err != nil {
			return nil, false, "", fmt.Errorf("decoding the reply of %s: %w", owner, err)
		}
		return out, false, "", nil
	case *holdfastv1.ForwardResponse_Error:
		return nil, false, "", api.ErrorFromStatus(r.Error)
	case *holdfastv1.ForwardResponse_NotOwner:
		if r.NotOwner.GetUnavailable() {
			return nil, true, "", &UnavailableError{Partition: p, Why: "moving"}
		}
		return nil, true, r.NotOwner.GetOwnerHint(), &NotOwnerError{Partition: p, Hint: r.NotOwner.GetOwnerHint()}
	}
	return nil, false, "", fmt.Errorf("empty answer from %s", owner)
}

// backoff waits before retry attempt (1-based): 5 ms doubling to 400 ms.
func (n *Node) backoff(ctx context.Context, attempt int) bool {
	d := 5 * time.Millisecond << min(attempt-1, 7)
	return n.sleep(ctx, min(d, 400*time.Millisecond))
}

type requestIDer interface{ GetRequestId() string }

func requestID(msg proto.Message) string {
	if m, ok := msg.(requestIDer); ok {
		return m.GetRequestId()
	}
	return ""
}
