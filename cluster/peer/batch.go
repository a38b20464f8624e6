package peer

import (
	"context"
	"fmt"
	"sync"
	"time"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Call forwards req to the peer at addr and returns the call's result.
//
// Calls to one peer are batched Nagle-style: with no batch in flight the
// call goes at once, alone (a unary Call RPC); otherwise it waits at most
// BatchWindow, less if the batch fills (MaxBatch, MaxBatchBytes) or the
// batches in flight all end, and goes with the others in one CallBatch RPC.
// The call's deadline (ctx's, or req.timeout_ms if shorter) is sent as
// timeout_ms, the remaining budget when the batch leaves; req itself is not
// modified.
//
// The error is the RPC's (the same for every call of the batch); the call's
// own result, an actor error or NOT_OWNER included, is in the response (see
// Decode). When ctx ends first, Call returns ctx.Err() at once: a call not
// yet sent leaves its batch (NeverRan is then true), a call already sent
// may still run on the peer (its RPC is canceled when no call of its batch
// is waiting any more).
func (p *Pool) Call(ctx context.Context, addr string, req *holdfastv1.ForwardRequest) (*holdfastv1.ForwardResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, &notSentError{err}
	}
	pr, err := p.peer(addr)
	if err != nil {
		return nil, &notSentError{err}
	}
	s := &slot{ctx: ctx, req: req, size: proto.Size(req), done: make(chan struct{})}
	if err := pr.enqueue(s); err != nil {
		return nil, err
	}
	select {
	case <-s.done:
		return s.resp, s.err
	case <-ctx.Done():
		return pr.abandon(s)
	}
}

// peer is one address: its connection and its batching state.
type peer struct {
	pool   *Pool
	addr   string
	conn   *grpc.ClientConn
	client holdfastv1.PeerServiceClient

	mu           sync.Mutex
	pending      []*slot
	pendingBytes int
	inflight     int // batch RPCs in flight
	timer        *time.Timer
	timerGen     uint64
	closed       bool
}

// slot is one call waiting for its result.
type slot struct {
	ctx  context.Context
	req  *holdfastv1.ForwardRequest
	size int
	done chan struct{} // closed by finish
	resp *holdfastv1.ForwardResponse
	err  error

	b *batch // set under peer.mu when sent
}

func (s *slot) finish(resp *holdfastv1.ForwardResponse, err error) {
	s.resp, s.err = resp, err
	close(s.done)
}

// batch is one RPC's calls.
type batch struct {
	slots  []*slot
	reqs   []*holdfastv1.ForwardRequest
	live   int // slots whose caller still waits (under peer.mu)
	cancel context.CancelFunc
}

func (pr *peer) enqueue(s *slot) error {
	cfg := &pr.pool.cfg
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.closed {
		return &notSentError{ErrClosed}
	}
	pr.pending = append(pr.pending, s)
	pr.pendingBytes += s.size
	switch {
	case pr.inflight == 0, len(pr.pending) >= cfg.MaxBatch, pr.pendingBytes >= cfg.MaxBatchBytes:
		pr.flushLocked()
	case pr.timer == nil:
		gen := pr.timerGen
		pr.timer = time.AfterFunc(cfg.BatchWindow, func() { pr.timerFired(gen) })
	}
	return nil
}

func (pr *peer) timerFired(gen uint64) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.timer == nil || pr.timerGen != gen || pr.closed {
		return
	}
	pr.flushLocked()
}

func (pr *peer) stopTimerLocked() {
	if pr.timer != nil {
		pr.timer.Stop()
		pr.timer = nil
		pr.timerGen++
	}
}

// flushLocked sends the pending calls as one RPC. Calls whose context
// already ended are answered here, unsent.
func (pr *peer) flushLocked() {
	pr.stopTimerLocked()
	slots := pr.pending
	pr.pending, pr.pendingBytes = nil, 0
	now := time.Now()
	b := &batch{}
	var deadline time.Time
	bounded := true
	for _, s := range slots {
		if err := s.ctx.Err(); err != nil {
			s.finish(nil, &notSentError{err})
			continue
		}
		r := s.req
		ms := r.GetTimeoutMs()
		if d, ok := s.ctx.Deadline(); ok {
			left := d.Sub(now)
			m := int64((left + time.Millisecond - 1) / time.Millisecond) // round up
			m = max(m, 1)
			if ms <= 0 || m < ms {
				ms = m
			}
		}
		if ms > 0 {
			deadline = later(deadline, now.Add(time.Duration(ms)*time.Millisecond))
		} else {
			bounded = false
		}
		if ms != r.GetTimeoutMs() {
			r = withTimeout(r, ms)
		}
		s.b = b
		b.slots = append(b.slots, s)
		b.reqs = append(b.reqs, r)
	}
	if len(b.slots) == 0 {
		return
	}
	b.live = len(b.slots)
	var ctx context.Context
	if bounded {
		ctx, b.cancel = context.WithDeadline(pr.pool.ctx, deadline)
	} else {
		ctx, b.cancel = context.WithCancel(pr.pool.ctx)
	}
	pr.inflight++
	if !pr.pool.spawn(func() { pr.send(ctx, b) }) {
		pr.inflight--
		b.cancel()
		for _, s := range b.slots {
			s.finish(nil, &notSentError{ErrClosed})
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// withTimeout is a shallow copy of r with another timeout_ms (the caller's
// message stays untouched; its submessages are shared, read-only). Every
// field of ForwardRequest must be copied here (TestWithTimeoutCopiesEveryField).
func withTimeout(r *holdfastv1.ForwardRequest, ms int64) *holdfastv1.ForwardRequest {
	return &holdfastv1.ForwardRequest{
		Actor:      r.GetActor(),
		Partition:  r.GetPartition(),
		Epoch:      r.GetEpoch(),
		Message:    r.GetMessage(),
		TimeoutMs:  ms,
		OriginNode: r.GetOriginNode(),
	}
}

// send runs one batch's RPC on a pool goroutine and answers its calls.
func (pr *peer) send(ctx context.Context, b *batch) {
	defer b.cancel()
	var resps []*holdfastv1.ForwardResponse
	var err error
	if len(b.reqs) == 1 {
		var r *holdfastv1.ForwardResponse
		r, err = pr.client.Call(ctx, b.reqs[0])
		resps = []*holdfastv1.ForwardResponse{r}
	} else {
		var br *holdfastv1.ForwardBatchResponse
		br, err = pr.client.CallBatch(ctx, &holdfastv1.ForwardBatch{Calls: b.reqs})
		if err == nil && len(br.GetResponses()) != len(b.reqs) {
			err = fmt.Errorf("peer %s: batch of %d calls answered with %d responses", pr.addr, len(b.reqs), len(br.GetResponses()))
		}
		resps = br.GetResponses()
	}
	if err != nil {
		pr.pool.log.Debug("peer rpc failed", "addr", pr.addr, "calls", len(b.reqs), "err", err)
	}
	for i, s := range b.slots {
		if err != nil {
			s.finish(nil, err)
		} else {
			s.finish(resps[i], nil)
		}
	}
	pr.mu.Lock()
	pr.inflight--
	if pr.inflight == 0 && len(pr.pending) > 0 && !pr.closed {
		pr.flushLocked()
	}
	pr.mu.Unlock()
}

// abandon answers a call whose caller's context ended.
func (pr *peer) abandon(s *slot) (*holdfastv1.ForwardResponse, error) {
	pr.mu.Lock()
	select {
	case <-s.done: // answered meanwhile
		pr.mu.Unlock()
		return s.resp, s.err
	default:
	}
	if s.b == nil { // still pending: leave the batch, never sent
		for i, q := range pr.pending {
			if q == s {
				pr.pending = append(pr.pending[:i], pr.pending[i+1:]...)
				pr.pendingBytes -= s.size
				break
			}
		}
		if len(pr.pending) == 0 {
			pr.stopTimerLocked()
		}
		pr.mu.Unlock()
		return nil, &notSentError{s.ctx.Err()}
	}
	b := s.b
	b.live--
	last := b.live == 0
	pr.mu.Unlock()
	if last {
		b.cancel() // nobody waits for this RPC any more
	}
	return nil, s.ctx.Err()
}

// close fails the pending calls (never sent) and stops the timer.
func (pr *peer) close() {
	pr.mu.Lock()
	pr.closed = true
	pr.stopTimerLocked()
	pending := pr.pending
	pr.pending, pr.pendingBytes = nil, 0
	pr.mu.Unlock()
	for _, s := range pending {
		s.finish(nil, &notSentError{ErrClosed})
	}
}
