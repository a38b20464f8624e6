package actor

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/actor/clock"
)

// committer is the group committer: the one goroutine that writes to the
// durable store. Turns enqueue their writes (getting a sequence number) and
// go on; the committer takes everything queued, up to maxBatch writes, and
// commits it as one bbolt transaction, so durability costs one commit per
// batch rather than per turn. Sequence numbers are assigned under the same
// lock as the queue append, so commits are in sequence order and "durable
// sequence >= s" means every write up to s is durable.
//
// A failed commit is sticky: the committer fails every queued and later
// write and every waiter, and the node must be restarted (after a failed
// fsync the page cache cannot be trusted; PostgreSQL and etcd do the same).
//
// Deferred writes (Turn.DeferCommit) do not start a commit of their own:
// they wait, up to deferMax after the oldest of them was queued, for a
// commit something else needs (an urgent write, or a waiter that is not
// deferred: waitUrgent), and ride along in it. Commits stay in sequence
// order; only their start moves.
type committer struct {
	store    Store
	maxBatch int
	deferMax time.Duration // 0: every write is urgent
	clock    clock.Clock
	metrics  *metrics

	mu struct {
		sync.Mutex
		queue   []*Write
		lastSeq uint64 // seq of the last enqueued write
		// urgent is the highest seq someone needs committed promptly:
		// an urgent write's, or a target waited on with waitUrgent.
		urgent uint64
		// deferredSince is when the oldest deferred write still queued
		// was enqueued (zero: none); deferTimer wakes the committer when
		// it falls due.
		deferredSince time.Time
		deferTimer    clock.Timer
		timerArmed    bool
		hurried       bool // shutting down: nothing waits any more
		// hurryUntil: deferred writes queued before it are urgent
		// (hurryWindow: a handoff holds a partition).
		hurryUntil time.Time
		// demands records, in rising seq, the demands of queued deferred
		// writes (a gate's Hurry, a reader of a pending deferred write):
		// each is a wait for holdfast_commit_wait_seconds, from at to
		// the commit that makes seq durable. Pruned as batches are taken.
		demands []demandMark
		err     error // sticky failure
		notify  chan struct{}
		closed  bool
	}
	// marks is the committer goroutine's copy of the demands of writes
	// in the batch being committed (owned by it, reused).
	marks []demandMark
	wake  chan struct{} // cap 1: "queue is not empty"
	// spare is the queue array not in use, swapped with mu.queue when a
	// batch is taken whole (owned by the committer goroutine).
	spare   []*Write
	durable atomic.Uint64
	commits atomic.Int64
	done    chan struct{}
}

// demandMark: the deferred write seq was demanded at at.
type demandMark struct {
	seq uint64
	at  time.Time
}

func newCommitter(store Store, maxBatch int, deferMax time.Duration, clk clock.Clock, m *metrics) *committer {
	c := &committer{store: store, maxBatch: maxBatch, deferMax: deferMax, clock: clk, metrics: m, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.mu.notify = make(chan struct{})
	return c
}

// enqueue queues w and returns its sequence number. Never blocks on I/O.
// A deferred write waits for a commit something else needs, at most
// deferMax.
func (c *committer) enqueue(w *Write, deferred bool) (uint64, error) {
	deferred = deferred && c.deferMax > 0
	now := c.clock.Now() // outside the lock: a fake clock has its own
	c.mu.Lock()
	if c.mu.err != nil {
		err := c.mu.err
		c.mu.Unlock()
		return 0, err
	}
	if c.mu.closed {
		c.mu.Unlock()
		return 0, ErrShuttingDown
	}
	c.mu.lastSeq++
	seq := c.mu.lastSeq
	c.mu.queue = append(c.mu.queue, w)
	if !deferred || c.mu.hurried || now.Before(c.mu.hurryUntil) {
		w.urgentAt = now // the committer reads it after taking w under mu
		c.mu.urgent = seq
		c.mu.Unlock()
		c.poke()
		return seq, nil
	}
	arm := false
	if c.mu.deferredSince.IsZero() {
		c.mu.deferredSince = now
		if !c.mu.timerArmed {
			c.mu.timerArmed, arm = true, true
		}
	}
	c.mu.Unlock()
	if arm {
		c.armDeferTimer(c.deferMax)
	}
	return seq, nil
}

// hurry makes every queued and later write urgent: Shutdown calls it
// first, so that the calls it waits for do not wait out CommitDefer.
func (c *committer) hurry() {
	c.mu.Lock()
	c.mu.hurried = true // later deferred writes are urgent when queued
	c.mu.Unlock()
	c.hurryQueued()
}

// hurryQueued makes every write queued so far urgent (later deferred
// writes defer again). It does not wait.
func (c *committer) hurryQueued() { c.demand(c.enqueued()) }

// hurryWindow is hurryQueued that also makes the deferred writes queued
// in the next deferMax urgent: those of turns that were running when it
// was called and are about to queue theirs (a handoff waits for them).
func (c *committer) hurryWindow() {
	if c.deferMax > 0 {
		until := c.clock.Now().Add(c.deferMax) // outside the lock: a fake clock has its own
		c.mu.Lock()
		if until.After(c.mu.hurryUntil) {
			c.mu.hurryUntil = until
		}
		c.mu.Unlock()
	}
	c.hurryQueued()
}

// poke wakes the committer goroutine. Never blocks.
func (c *committer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// armDeferTimer starts the timer that wakes the committer when deferred
// writes fall due. Called without c.mu (the clock may take its own lock),
// by whoever set timerArmed.
func (c *committer) armDeferTimer(d time.Duration) {
	t := c.clock.AfterFunc(d, c.deferTimerFired)
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		t.Stop() // the committer may have exited: nobody else would
		return
	}
	c.mu.deferTimer = t
	c.mu.Unlock()
}

// deferTimerFired wakes the committer if the oldest deferred write is
// due, and otherwise re-arms for when it will be (the writes it was armed
// for may have ridden along in a commit, and newer ones queued since).
func (c *committer) deferTimerFired() {
	c.mu.Lock()
	since := c.mu.deferredSince
	rem := time.Duration(0)
	if !since.IsZero() {
		// At most deferMax: a clock set backwards must not stretch it.
		rem = min(since.Add(c.deferMax).Sub(c.clock.Now()), c.deferMax)
	}
	if rem <= 0 || c.mu.closed {
		c.mu.timerArmed = false
		c.mu.Unlock()
		if !since.IsZero() {
			c.poke()
		}
		return
	}
	c.mu.Unlock()
	c.armDeferTimer(rem)
}

// dueLocked reports whether the queued writes must be committed now:
// something urgent is among them or waited on, the oldest deferred one
// waited deferMax, the committer is closing, or the store failed (the
// queue is then dropped). c.mu is held.
func (c *committer) dueLocked() bool {
	if c.mu.closed || c.mu.err != nil || c.mu.urgent > c.durable.Load() {
		return true
	}
	since := c.mu.deferredSince
	if since.IsZero() {
		return false
	}
	now := c.clock.Now()
	// A clock set back before the oldest deferred write counts as due.
	return now.Before(since) || !now.Before(since.Add(c.deferMax))
}

// run is the committer goroutine. It returns when stop is closed and the
// queue is empty.
func (c *committer) run(stop <-chan struct{}) {
	defer close(c.done)
	defer func() {
		c.mu.Lock()
		t := c.mu.deferTimer
		c.mu.Unlock()
		if t != nil {
			t.Stop()
		}
	}()
	for {
		c.mu.Lock()
		n := len(c.mu.queue)
		if n == 0 || !c.dueLocked() {
			closed := c.mu.closed // closing makes writes due: n == 0
			c.mu.Unlock()
			if closed {
				return
			}
			select {
			case <-c.wake:
			case <-stop:
				c.mu.Lock()
				c.mu.closed = true
				c.mu.Unlock()
			}
			continue
		}
		if n > c.maxBatch {
			n = c.maxBatch
		}
		queue := c.mu.queue
		batch := queue[:n]
		// The next writes go to the spare array: no copy, no allocation
		// while batches are taken whole (maxBatch caps them otherwise).
		c.mu.queue = append(c.spare[:0], queue[n:]...)
		// Every write before the remaining queue is in this batch.
		upTo := c.firstQueuedLocked() - 1
		if len(c.mu.queue) == 0 {
			// The deferred writes ride along. What remains past maxBatch
			// keeps the older time: it is due no later.
			c.mu.deferredSince = time.Time{}
		}
		c.marks = c.takeMarksLocked(upTo-uint64(n)+1, upTo)
		failed := c.mu.err
		c.mu.Unlock()

		if failed != nil {
			c.recycle(queue)
			continue // drop: their waiters see the sticky error
		}
		start := c.clock.Now()
		err := c.store.Commit(batch)
		end := c.clock.Now()
		c.commits.Add(1)

		c.mu.Lock()
		if err != nil {
			c.mu.err = &storageError{err: err}
			c.metrics.commitFailures.Inc()
		} else {
			c.durable.Store(upTo)
		}
		close(c.mu.notify)
		c.mu.notify = make(chan struct{})
		c.mu.Unlock()

		// Metrics after the waiters are released.
		if err == nil {
			c.observeWaits(batch, end)
		}
		c.recycle(queue)
		c.metrics.commitSeconds.Observe(end.Sub(start).Seconds())
		c.metrics.commitBatch.Observe(float64(len(batch)))
	}
}

// recycle makes a taken queue array the spare, dropping its writes so
// they can be collected.
func (c *committer) recycle(queue []*Write) {
	clear(queue)
	c.spare = queue[:0]
}

type storageError struct{ err error }

func (e *storageError) Error() string   { return "storage failure: commit failed: " + e.err.Error() }
func (e *storageError) Unwrap() error   { return e.err }
func (e *storageError) Is(t error) bool { return t == ErrStorage }

// enqueued returns the sequence of the last enqueued write.
func (c *committer) enqueued() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.lastSeq
}

// failed returns the sticky error, if any.
func (c *committer) failed() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err
}

// waitUrgent is wait for a waiter that needs seq promptly: deferred
// writes up to seq are committed now rather than when they fall due.
func (c *committer) waitUrgent(ctx context.Context, seq uint64, deadline time.Time) error {
	c.demand(seq)
	return c.wait(ctx, seq, deadline)
}

// demand makes the writes up to seq urgent without waiting for them.
func (c *committer) demand(seq uint64) {
	if c.durable.Load() >= seq {
		return
	}
	now := c.clock.Now() // outside the lock: a fake clock has its own
	c.mu.Lock()
	raise := seq > c.mu.urgent
	if raise {
		c.mu.urgent = seq
	}
	// A demand of a queued deferred write is a wait to count, even when a
	// later urgent write had already made it urgent. Demands of urgent
	// writes are not: those count from their queueing.
	if n := len(c.mu.demands); c.deferMax > 0 && (n == 0 || c.mu.demands[n-1].seq < seq) {
		first := c.firstQueuedLocked()
		if seq >= first && seq <= c.mu.lastSeq && c.mu.queue[seq-first].urgentAt.IsZero() {
			c.mu.demands = append(c.mu.demands, demandMark{seq: seq, at: now})
		}
	}
	c.mu.Unlock()
	if raise {
		c.poke()
	}
}

// wait blocks until every write up to seq is durable, the store failed,
// ctx ends, or the deadline passes (context.DeadlineExceeded; a zero
// deadline is none). The deadline is a timer armed only when it has to
// wait: a context.WithDeadline per turn cost more than the wait. It does
// not hurry deferred writes (see waitUrgent).
func (c *committer) wait(ctx context.Context, seq uint64, deadline time.Time) error {
	var timeout <-chan time.Time
	for {
		c.mu.Lock()
		err, ch := c.mu.err, c.mu.notify
		c.mu.Unlock()
		if c.durable.Load() >= seq {
			return nil
		}
		if err != nil {
			return err
		}
		if timeout == nil && !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return context.DeadlineExceeded
			}
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return context.DeadlineExceeded
		}
	}
}

// firstQueuedLocked is the sequence number of c.mu.queue[0] (lastSeq+1
// when the queue is empty). c.mu is held.
func (c *committer) firstQueuedLocked() uint64 {
	return c.mu.lastSeq - uint64(len(c.mu.queue)) + 1
}

// takeMarksLocked copies into c.marks the demands of writes first..upTo
// (the batch being taken) and drops from c.mu.demands every demand up to
// upTo (one of a write already committing when it came is not counted).
// c.mu is held.
func (c *committer) takeMarksLocked(first, upTo uint64) []demandMark {
	marks := c.marks[:0]
	d := c.mu.demands
	i := 0
	for ; i < len(d) && d[i].seq <= upTo; i++ {
		if d[i].seq >= first {
			marks = append(marks, d[i])
		}
	}
	c.mu.demands = append(d[:0], d[i:]...)
	return marks
}

// observeWaits records holdfast_commit_wait_seconds for a committed batch:
// each write urgent when queued, from its queueing, and each demand of a
// deferred write in it, from the demand. Deferred writes nobody demanded rode along and are not counted.
func (c *committer) observeWaits(batch []*Write, end time.Time) {
	for _, w := range batch {
		if !w.urgentAt.IsZero() {
			c.metrics.commitWait.Observe(end.Sub(w.urgentAt).Seconds())
		}
	}
	for _, m := range c.marks {
		c.metrics.commitWait.Observe(end.Sub(m.at).Seconds())
	}
}
