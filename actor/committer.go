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
type committer struct {
	store    Store
	maxBatch int
	clock    clock.Clock
	metrics  *metrics

	mu struct {
		sync.Mutex
		queue   []*Write
		lastSeq uint64 // seq of the last enqueued write
		err     error  // sticky failure
		notify  chan struct{}
		closed  bool
	}
	wake chan struct{} // cap 1: "queue is not empty"
	// spare is the queue array not in use, swapped with mu.queue when a
	// batch is taken whole (owned by the committer goroutine).
	spare   []*Write
	durable atomic.Uint64
	commits atomic.Int64
	done    chan struct{}
}

func newCommitter(store Store, maxBatch int, clk clock.Clock, m *metrics) *committer {
	c := &committer{store: store, maxBatch: maxBatch, clock: clk, metrics: m, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.mu.notify = make(chan struct{})
	return c
}

// enqueue queues w and returns its sequence number. Never blocks on I/O.
func (c *committer) enqueue(w *Write) (uint64, error) {
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
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return seq, nil
}

// run is the committer goroutine. It returns when stop is closed and the
// queue is empty.
func (c *committer) run(stop <-chan struct{}) {
	defer close(c.done)
	for {
		c.mu.Lock()
		n := len(c.mu.queue)
		if n == 0 {
			closed := c.mu.closed
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
		upTo := c.mu.lastSeq - uint64(len(c.mu.queue))
		failed := c.mu.err
		c.mu.Unlock()

		if failed != nil {
			c.recycle(queue)
			continue // drop: their waiters see the sticky error
		}
		start := c.clock.Now()
		err := c.store.Commit(batch)
		c.recycle(queue)
		c.metrics.commitSeconds.Observe(c.clock.Now().Sub(start).Seconds())
		c.metrics.commitBatch.Observe(float64(len(batch)))
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

// wait blocks until every write up to seq is durable, the store failed,
// ctx ends, or the deadline passes (context.DeadlineExceeded; a zero
// deadline is none). The deadline is a timer armed only when it has to
// wait: a context.WithDeadline per turn cost more than the wait.
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
