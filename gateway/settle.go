package gateway

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

// maxSettleBatch bounds the calls settled in one turn of an account actor
// (the actor takes up to account.MaxSettlesPerBatch).
const maxSettleBatch = 256

// settler batches the settles of each user: while a settle turn of a user
// is in flight, that user's calls that finish meanwhile queue, and go
// together in the next turn, as group commit does for writes. At low load
// every turn settles one call, as a plain settle; under load a hot user
// costs one turn (and one idempotency record) per batch instead of per
// call, and its admits, which clients wait for, do not queue behind a
// settle per call.
type settler struct {
	mu sync.Mutex
	// queues holds a user while a drain goroutine runs for it.
	queues map[string]*settleQueue
}

type settleQueue struct {
	calls []*call
}

// enqueueSettle hands an admitted, finished call to its user's queue,
// starting the user's drain when none runs. The call's log line and event
// follow its settle; inflight is released after them.
func (g *Gateway) enqueueSettle(c *call) {
	s := &g.settler
	s.mu.Lock()
	if s.queues == nil {
		s.queues = map[string]*settleQueue{}
	}
	q := s.queues[c.user]
	start := q == nil
	if start {
		q = &settleQueue{}
		s.queues[c.user] = q
	}
	q.calls = append(q.calls, c)
	s.mu.Unlock()
	if start {
		var linger chan struct{}
		if d := g.cfg.SettleLinger; d > 0 {
			// Armed here, not on the goroutine: the linger starts when the
			// call finished.
			linger = make(chan struct{})
			g.clk.AfterFunc(d, func() { close(linger) })
		}
		go g.drainSettles(c.user, q, linger)
	}
}

// drainSettles settles q's calls, a batch per turn, until q is empty.
// It first waits for linger to close (gateway.settle_linger; nil: none)
// so that the user's calls finishing meanwhile join the first batch.
func (g *Gateway) drainSettles(user string, q *settleQueue, linger <-chan struct{}) {
	s := &g.settler
	if linger != nil {
		<-linger
	}
	for {
		s.mu.Lock()
		n := min(len(q.calls), maxSettleBatch)
		if n == 0 {
			delete(s.queues, user)
			s.mu.Unlock()
			return
		}
		batch := q.calls[:n:n]
		if q.calls = q.calls[n:]; len(q.calls) == 0 {
			q.calls = nil
		}
		s.mu.Unlock()

		g.settles <- struct{}{}
		errs := g.settleBatch(batch)
		<-g.settles
		for i, c := range batch {
			c.logLine(errs[i])
			c.publishEvent(errs[i])
			g.inflight.add(-1)
		}
	}
}

// settleBatch settles calls of one user: one call as a plain settle
// (request ID: the call's, plus ".settle"), several as one batch turn
// (request ID: the first call's, plus ".settles"; a batch is settled
// once, whatever its retries). It returns each call's error.
func (g *Gateway) settleBatch(calls []*call) []error {
	errs := make([]error, len(calls))
	if len(calls) == 1 {
		req := calls[0].settleRequest()
		req.Actor, req.RequestId = calls[0].actorRef(), calls[0].id+".settle"
		_, errs[0] = g.callSettle(calls[0].accountID(), req)
	} else {
		req := &holdfastv1.AccountSettleBatchRequest{
			Actor:     calls[0].actorRef(),
			RequestId: calls[0].id + ".settles",
			Settles:   make([]*holdfastv1.AccountSettleRequest, len(calls)),
		}
		for i, c := range calls {
			req.Settles[i] = c.settleRequest()
		}
		resp, err := g.callSettle(calls[0].accountID(), req)
		for i := range errs {
			errs[i] = err
		}
		if br, ok := resp.(*holdfastv1.AccountSettleBatchResponse); ok && err == nil {
			for j, i := range br.GetFailed() {
				if int(i) >= len(errs) {
					continue
				}
				msg := "no reason given"
				if j < len(br.GetErrors()) {
					msg = br.GetErrors()[j].GetMessage()
				}
				errs[i] = fmt.Errorf("settle refused: %s", msg)
			}
		}
	}
	for i, err := range errs {
		if err != nil {
			g.m.failure(calls[i].p.name, "settle_failed")
		}
	}
	return errs
}

// settleRequest is the call's debit: actual usage and cost, correcting
// the admit's estimates. Actor and request ID are the caller's to set.
func (c *call) settleRequest() *holdfastv1.AccountSettleRequest {
	u := c.usage
	return &holdfastv1.AccountSettleRequest{
		KeyId:    c.keyID,
		Provider: c.p.name,
		Model:    c.model,
		Usage: &holdfastv1.TokenUsage{
			InputTokens:                 u.InputTokens,
			OutputTokens:                u.OutputTokens,
			CacheCreationInputTokens:    u.CacheCreationInputTokens,
			CacheCreation_5MInputTokens: u.CacheCreation5mInputTokens,
			CacheCreation_1HInputTokens: u.CacheCreation1hInputTokens,
			CacheReadInputTokens:        u.CacheReadInputTokens,
		},
		CostNanos:            c.cost,
		InputTokensEstimate:  c.inEst,
		OutputTokensEstimate: c.outEst,
		Failed:               !c.usageSeen,
	}
}

// callSettle sends a settle (or a batch) with its retries: a full
// mailbox is waited out (the turn did not run), other errors get three
// attempts; the request ID makes a resend count once.
func (g *Gateway) callSettle(id actor.ID, req proto.Message) (proto.Message, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var err error
	for failed, busy := 0, 0; ; {
		var resp proto.Message
		if resp, err = g.caller.Call(ctx, id, req); err == nil {
			return resp, nil
		}
		var wait time.Duration
		if errors.Is(err, actor.ErrOverloaded) && busy < maxSettleBusyRetries {
			// The actor's mailbox was full: the turn did not run, so
			// waiting it out is safe, and in a burst it is what keeps the
			// call charged. Jittered, so that refused settles do not
			// return together.
			wait = min(50*time.Millisecond<<min(busy, 5), time.Second)
			wait = wait/2 + time.Duration(rand.Int64N(int64(wait/2)))
			busy++
		} else {
			if failed++; failed == 3 {
				break
			}
			wait = time.Duration(200<<(failed-1)) * time.Millisecond
		}
		if ctx.Err() != nil || g.sleep(ctx, wait) != nil {
			break
		}
	}
	return nil, err
}

// maxSettleBusyRetries bounds the retries of a settle refused by a full
// mailbox (about the settle's 30 s at the 1 s cap); other errors get three
// attempts.
const maxSettleBusyRetries = 40
