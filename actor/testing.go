package actor

import (
	"errors"
	"sync"
)

// GatedStore wraps a Store so a test can hold commits: while closed, Commit
// blocks before touching the inner store. Entered receives one value per
// Commit that reached the gate. It is real package code (as hashicorp/raft's
// testing.go) so tests of other packages can use it.
type GatedStore struct {
	Store
	Entered chan int // batch sizes, buffered

	mu   sync.Mutex
	gate chan struct{} // nil: open
}

// NewGatedStore wraps inner with an open gate.
func NewGatedStore(inner Store) *GatedStore {
	return &GatedStore{Store: inner, Entered: make(chan int, 1024)}
}

// Close the gate: later commits block until Open.
func (g *GatedStore) Hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate == nil {
		g.gate = make(chan struct{})
	}
}

// Open releases held commits.
func (g *GatedStore) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.gate != nil {
		close(g.gate)
		g.gate = nil
	}
}

// Commit implements Store.
func (g *GatedStore) Commit(w []*Write) error {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	select {
	case g.Entered <- len(w):
	default:
	}
	if gate != nil {
		<-gate
	}
	return g.Store.Commit(w)
}

// ErrInjected is the error FailingStore returns.
var ErrInjected = errors.New("injected storage error")

// FailingStore wraps a Store and fails commits on demand, as pebble's
// errorfs: FailNext makes the next n commits return ErrInjected without
// touching the inner store.
type FailingStore struct {
	Store
	mu   sync.Mutex
	fail int
}

// FailNext arms n failing commits.
func (f *FailingStore) FailNext(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = n
}

// Commit implements Store.
func (f *FailingStore) Commit(w []*Write) error {
	f.mu.Lock()
	fail := f.fail > 0
	if fail {
		f.fail--
	}
	f.mu.Unlock()
	if fail {
		return ErrInjected
	}
	return f.Store.Commit(w)
}
