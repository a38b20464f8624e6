package fakeupstream

import (
	"context"
	"sync"
)

// Gate holds a response before each of its events until the test lets it
// through. Headers are not gated; event i (0-based) is written only once the
// gate allows it, so a test that has received event i through a proxy while
// event i+1 is not yet allowed has proven the proxy does not buffer. A Gate
// serves one request. Create it with NewGate.
type Gate struct {
	mu      sync.Mutex
	allowed int  // events with index < allowed may be written
	open    bool // everything may be written
	at      int  // highest event index the server has arrived at, -1 before any
	wake    chan struct{}
	waiters []gateWaiter
}

type gateWaiter struct {
	index int
	ch    chan struct{}
}

// NewGate returns a closed gate: no event passes until Next, Allow or Open.
func NewGate() *Gate { return &Gate{at: -1, wake: make(chan struct{})} }

// Next lets one more event through.
func (g *Gate) Next() {
	g.mu.Lock()
	g.allowed++
	g.broadcastLocked()
	g.mu.Unlock()
}

// Allow lets every event with index < n through.
func (g *Gate) Allow(n int) {
	g.mu.Lock()
	if n > g.allowed {
		g.allowed = n
		g.broadcastLocked()
	}
	g.mu.Unlock()
}

// Open lets every remaining event through.
func (g *Gate) Open() {
	g.mu.Lock()
	g.open = true
	g.broadcastLocked()
	g.mu.Unlock()
}

// Reached returns a channel closed once the server is about to write event
// i: it is waiting at the gate before it, or has passed it. Events before i
// have been written to the connection by then.
func (g *Gate) Reached(i int) <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(chan struct{})
	if i <= g.at {
		close(ch)
		return ch
	}
	g.waiters = append(g.waiters, gateWaiter{i, ch})
	return ch
}

func (g *Gate) broadcastLocked() {
	close(g.wake)
	g.wake = make(chan struct{})
}

// wait blocks before event i until it is allowed; false when ctx or done
// ends first.
func (g *Gate) wait(ctx context.Context, done <-chan struct{}, i int) bool {
	g.mu.Lock()
	if i > g.at {
		g.at = i
		kept := g.waiters[:0]
		for _, w := range g.waiters {
			if w.index <= i {
				close(w.ch)
			} else {
				kept = append(kept, w)
			}
		}
		g.waiters = kept
	}
	for !g.open && i >= g.allowed {
		wake := g.wake
		g.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return false
		case <-done:
			return false
		}
		g.mu.Lock()
	}
	g.mu.Unlock()
	return true
}
