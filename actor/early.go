package actor

import (
	"context"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"
)

// OutputGate is the output gate of a turn whose reply CallEarly handed out
// before it was durable. Wait blocks until everything the turn could
// observe is durable (and, in a cluster, this node still owned the actor
// when it was), and returns nil, or the error that replaces the turn's
// reply: ErrStorage, a deadline, an UnknownOutcomeError, ErrOwnershipLost.
//
// Wait must be called exactly once, on every path: until then the call
// counts as in flight (Shutdown waits for it) and, in a cluster, holds the
// partition's turn gate (a handoff waits for it). Later calls return the
// first result. Safe for concurrent use.
type OutputGate interface {
	Wait(ctx context.Context) error
	// Hurry starts the commit the gate waits for now, if the turn was
	// deferred (WithCommitDeferred); otherwise it does nothing. It never
	// blocks, may be called any number of times, before or during Wait,
	// from any goroutine.
	Hurry()
	// Resolved reports whether Wait would return at once: the gate has
	// opened (or failed) already. A caller may then call Wait inline
	// instead of on a goroutine of its own. Never blocks.
	Resolved() bool
}

// openGate is the gate of a reply that is already durable (or of a turn
// that never ran).
type openGate struct{}

func (openGate) Wait(context.Context) error { return nil }
func (openGate) Hurry()                     {}
func (openGate) Resolved() bool             { return true }

// OpenGate is an OutputGate that never waits: for replies that left
// through the output gate already (a call forwarded to another node).
var OpenGate OutputGate = openGate{}

// failedGate is the gate of a turn whose output gate failed before
// CallEarly returned: Wait returns that error at once.
type failedGate struct{ err error }

func (g failedGate) Wait(context.Context) error { return g.err }
func (failedGate) Hurry()                       {}
func (failedGate) Resolved() bool               { return true }

// gateWait is what the output gate of one CallEarly turn waits for, and
// what it releases: plain fields, not closures, so that an admit whose
// gate opens at once costs no allocation, and one that must wait costs
// one (its earlyGate).
type gateWait struct {
	r       *Runtime
	out     pendingOutput
	id      ID
	reqID   string
	outcome int
	turnErr error
	gated   bool // Config.Gate: p, epoch and done are the cluster's
	p       int
	epoch   uint64
	done    func()
}

// wait runs the output gate and releases the call: the runtime's count
// of calls in flight and, in a cluster, the partition's turn gate.
func (w *gateWait) wait(ctx context.Context) error {
	defer w.r.leave()
	if w.done != nil {
		defer w.done()
	}
	if werr := w.r.outputGate(ctx, &w.out); werr != nil || !w.gated {
		return werr
	}
	return w.r.lostAfterTurn(w.p, w.epoch, w.id, w.reqID, w.outcome, w.turnErr)
}

// earlyGate is the pending output gate of one turn of this runtime.
type earlyGate struct {
	once sync.Once
	err  error
	w    gateWait
	// hurry: the turn's writes were deferred; Hurry demands w.out.target.
	hurry bool
	// resolved: Wait has returned.
	resolved atomic.Bool
}

func (g *earlyGate) Resolved() bool { return g.resolved.Load() }

func (g *earlyGate) Wait(ctx context.Context) error {
	g.once.Do(func() {
		g.err = g.w.wait(ctx)
		g.resolved.Store(true)
	})
	return g.err
}

func (g *earlyGate) Hurry() {
	if g.hurry {
		g.w.r.committer.demand(g.w.out.target)
	}
}

// commitDeferredKey marks a context made by WithCommitDeferred.
type commitDeferredKey struct{}

// WithCommitDeferred returns ctx marked so that the turn CallEarly runs
// with it defers its commit, as if its handler had called
// Turn.DeferCommit: its writes wait for a commit something else needs, or
// for its gate's Hurry, at most Config.CommitDefer. For a caller that acts
// on the early reply for a while before it needs the gate open (the
// gateway, whose provider takes its time to answer): the commit is then
// shared with the other turns of that while instead of costing one of its
// own. Call, which waits for the gate itself, ignores the mark; so does a
// call forwarded to another node (the mark does not travel).
func WithCommitDeferred(ctx context.Context) context.Context {
	return context.WithValue(ctx, commitDeferredKey{}, true)
}

// CommitDeferred reports whether ctx carries WithCommitDeferred's mark.
func CommitDeferred(ctx context.Context) bool {
	v, _ := ctx.Value(commitDeferredKey{}).(bool)
	return v
}

// CallEarly is Call with the output gate handed to the caller: it returns
// the turn's reply (or error) as soon as the turn ran, before its writes
// and what it read are durable, with the gate to wait on. The caller may
// act on the reply meanwhile in ways nobody can observe before Wait
// returns nil (the gateway sends the upstream request, and holds every
// byte of its answer to the client until then); it must not let the reply
// or anything derived from it be seen before. A non-nil Wait replaces the
// reply: the turn may or may not be durable, as with Call's errors.
//
// An error returned by CallEarly itself comes with a gate too (wait on it
// before answering with the error: the turn may have observed writes that
// are not durable yet).
//
// A turn with nothing to wait for (it wrote and read nothing pending) has
// its gate resolved before CallEarly returns, and that costs no
// allocation (OpenGate) unless the gate failed (a gate holding the error).
func (r *Runtime) CallEarly(ctx context.Context, id ID, msg proto.Message) (proto.Message, OutputGate, error) {
	reqID := requestID(msg)
	var (
		p     int
		epoch uint64
		done  func()
		gated = r.cfg.Gate != nil
	)
	if gated {
		var err error
		if p, err = r.PartitionOf(id); err != nil {
			return nil, OpenGate, err
		}
		if epoch, done, err = r.cfg.Gate.Enter(ctx, p); err != nil {
			return nil, OpenGate, err
		}
	}
	if err := r.enter(); err != nil {
		if done != nil {
			done()
		}
		return nil, OpenGate, err
	}
	deferred := CommitDeferred(ctx)
	// A literal here, not a constructor's result: it stays on the stack.
	body := func(t *Turn, c *cell) (proto.Message, error) {
		if deferred {
			t.DeferCommit()
		}
		return r.receive(t, c, msg)
	}
	resp, outcome, out, err := r.runUngated(ctx, id, reqID, body)
	w := gateWait{r: r, out: out, id: id, reqID: reqID, outcome: outcome, turnErr: err, gated: gated, p: p, epoch: epoch, done: done}
	if out.ns != nil && !out.deferred {
		// A turn that read deferred writes needs them now, not when its
		// gate is waited on: start the commit while the caller acts.
		r.committer.demand(out.target)
	}
	if out.ns == nil || out.ns.cfg.Durability != Local || r.committer.durable.Load() >= out.target {
		// Nothing to wait for (the turn wrote and read nothing pending):
		// open the gate now, sparing the caller a goroutine, and release
		// the runtime and, in a cluster, the partition's turn gate at once.
		if werr := w.wait(ctx); werr != nil {
			return resp, failedGate{werr}, err
		}
		return resp, OpenGate, err
	}
	// Its commit starts when the caller hurries it (deferred), or is due.
	return resp, &earlyGate{w: w, hurry: out.deferred}, err
}
