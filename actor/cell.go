package actor

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// cell is one activated actor.
//
// Fields under "guarded by the turn lock" are touched only by the goroutine
// that holds sem (the running turn, or the janitor evicting the cell).
type cell struct {
	id   ID
	enc  []byte
	part int
	ns   *namespace

	sem      chan struct{} // the turn lock: cap 1, held for one turn
	waiting  atomic.Int32  // calls queued for the turn lock (the mailbox)
	lastUsed atomic.Int64  // clock unix nanos of the last turn's end

	refs int // guarded by the registry shard's mutex

	// guarded by the turn lock
	handler      Handler
	overlay      *layer // writes not yet durable (local durability)
	lastWriteSeq uint64 // seq of this actor's last enqueued write
	alarm        alarmState
	alarmLoaded  bool
	dropped      bool // removed by DropPartition: a turn still queued on it fails
}

// trySpin takes the turn lock if it is free or frees within a short spin.
//
// It busy-waits with a short pause between tries (a turn is about a
// microsecond; yielding to the scheduler costs as much) and yields only
// every 16 tries, so a long turn does not burn a core.
func (c *cell) trySpin() bool {
	for i := 0; i < 96; i++ {
		select {
		case c.sem <- struct{}{}:
			return true
		default:
		}
		if i%16 == 15 {
			runtime.Gosched()
		} else {
			c.spinPause()
		}
	}
	return false
}

// spinPause waits a few dozen nanoseconds without a system call or a
// write to shared memory (reads of a cache line the holder does not write).
func (c *cell) spinPause() {
	for i := 0; i < 30; i++ {
		_ = c.lastUsed.Load()
	}
}

// registry maps encoded actor IDs to their cells, sharded to keep lock
// contention off the hot path.
type registry struct {
	shards [64]registryShard
	count  atomic.Int64
}

type registryShard struct {
	mu    sync.Mutex
	cells map[string]*cell
}

func newRegistry() *registry {
	r := &registry{}
	for i := range r.shards {
		r.shards[i].cells = make(map[string]*cell)
	}
	return r
}

func (r *registry) shard(enc []byte) *registryShard {
	var h uint32 = 2166136261
	for _, b := range enc {
		h = (h ^ uint32(b)) * 16777619
	}
	return &r.shards[h%uint32(len(r.shards))]
}

// acquire returns the cell of id, activating it if needed, with a reference
// that release drops. Never blocks on I/O.
//
// enc may be a caller's scratch buffer: it is copied only when the cell is
// created.
// The cell's partition is the grouped one (see Runtime.PartitionOf).
func (r *registry) acquire(id ID, enc []byte, partitions int, ns *namespace) (*cell, bool) {
	s := r.shard(enc)
	s.mu.Lock()
	c := s.cells[string(enc)]
	created := false
	if c == nil {
		own := append([]byte(nil), enc...)
		c = &cell{id: id, enc: own, part: groupedPartition(own, partitions, ns.group), ns: ns, sem: make(chan struct{}, 1)}
		if ns.cfg.Durability == Local {
			c.overlay = newLayer()
		}
		s.cells[string(own)] = c
		r.count.Add(1)
		created = true
	}
	c.refs++
	s.mu.Unlock()
	return c, created
}

func (r *registry) release(c *cell) {
	s := r.shard(c.enc)
	s.mu.Lock()
	c.refs--
	s.mu.Unlock()
}

// lookup returns the cell of enc if it is activated (no reference taken).
func (r *registry) lookup(enc []byte) *cell {
	s := r.shard(enc)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cells[string(enc)]
}

// evictIdle removes cells that evictable approves; it holds the shard lock
// while asking, so no call can take a reference meanwhile.
func (r *registry) evictIdle(evictable func(c *cell) bool) int {
	n := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		for k, c := range s.cells {
			if c.refs == 0 && c.waiting.Load() == 0 && evictable(c) {
				delete(s.cells, k)
				r.count.Add(-1)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}
