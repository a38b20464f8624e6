package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/gateway/envelope"
	"google.golang.org/protobuf/proto"
)

// EarlyCaller calls an actor and hands back the turn's output gate
// instead of waiting on it (actor.Runtime.CallEarly, cluster.Node's).
// Safe for concurrent use; the gate must be waited on exactly once.
type EarlyCaller interface {
	CallEarly(ctx context.Context, id actor.ID, msg proto.Message) (proto.Message, actor.OutputGate, error)
}

// errAdmitNotDurable stops a relay whose admit did not become durable:
// nothing has reached the client, the upstream request is cancelled.
var errAdmitNotDurable = errors.New("the admit did not become durable")

// pendingAdmit is an admit's output gate being waited on.
type pendingAdmit struct {
	gate actor.OutputGate
	done chan struct{} // closed when err is set
	err  error
}

// callAdmit runs the admit turn: with gateway.speculative_upstream and an
// EarlyCaller, returning before the turn is durable. A gate that is open
// already (an admit that wrote nothing) costs nothing more; any other is
// waited on at once, on a goroutine of its own: the runtime counts the
// call in flight, and in a cluster holds the partition's turn gate, until
// then, and the provider's first byte may be seconds away; waitAdmit
// collects the result.
func (c *call) callAdmit(ctx context.Context, req proto.Message) (proto.Message, error) {
	g := c.g
	if g.early == nil || !g.cfg.SpeculativeUpstream {
		return g.caller.Call(ctx, c.accountID(), req)
	}
	deferred := g.deferFrom > 0 && c.firstBytesOf().slow(c.start)
	if deferred {
		ctx = actor.WithCommitDeferred(ctx)
	}
	resp, gate, err := g.early.CallEarly(ctx, c.accountID(), req)
	if deferred && err == nil && !gate.Resolved() {
		// Counted only when a commit is pending: not a forwarded admit
		// (it came back durable), nor one that wrote nothing.
		g.m.admitsDeferred.Inc()
	}
	if gate.Resolved() {
		// Open already (the admit wrote nothing, nor read anything
		// pending): no goroutine, channel or record, unless it failed
		// (waitAdmit reports that).
		if werr := gate.Wait(ctx); werr != nil {
			c.admitGate = &pendingAdmit{gate: gate, done: closedDone, err: werr}
		}
		return resp, err
	}
	p := &pendingAdmit{gate: gate, done: make(chan struct{})}
	// Not the client's context: a client that left must not cut the wait
	// short, or a durable admit would go unsettled. The turn deadline
	// bounds it.
	go p.wait(context.WithoutCancel(ctx))
	c.admitGate = p
	return resp, err
}

// closedDone is the done of a pendingAdmit resolved before it was made.
var closedDone = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// wait waits on the gate and records its result.
func (p *pendingAdmit) wait(ctx context.Context) {
	p.err = p.gate.Wait(ctx)
	close(p.done)
}

// hurryAdmit starts a deferred admit's commit: the provider's answer has
// begun, the gate will be needed soon. No effect on any other admit.
func (c *call) hurryAdmit() {
	if p := c.admitGate; p != nil {
		p.gate.Hurry()
	}
}

// waitAdmit is the admit's output gate, on the gateway's side: it returns
// once everything the admit turn could observe is durable, before any
// byte of an answer (the upstream's, a refusal, an error) leaves for the
// client. A non-nil error means the admit may not be durable: the call is
// not admitted (not settled), and is answered with admitLost. Idempotent;
// without a pending gate it returns nil at once.
func (c *call) waitAdmit() error {
	p := c.admitGate
	if p == nil {
		return c.admitErr
	}
	c.admitGate = nil
	p.gate.Hurry() // a deferred admit's commit starts now: the answer is here
	<-p.done
	if err := p.err; err != nil {
		c.admitErr = err
		c.admitted = false
		if c.detail == "" {
			c.detail = "admit: " + err.Error()
		}
	}
	return c.admitErr
}

// admitLost is the answer to a call whose admit did not become durable.
func admitLost() refusal {
	return refusal{kind: envelope.Unavailable, failure: "admit_unavailable", retryAfter: time.Second,
		msg: "The gateway could not check this request's limits; retry shortly."}
}
