package actor

import (
	"sync"
	"sync/atomic"
)

// cell is one activated actor.
//
// Fields under "guarded by the turn lock" are touched only by the goroutine
// that holds the turn lock (the running turn, or DropPartition).
type cell struct {
	id   ID
	enc  []byte
	part int
	ns   *namespace

	lock     turnLock     // the turn lock, held for one turn
	waiting  atomic.Int32 // calls queued for the turn lock (the mailbox)
	lastUsed atomic.Int64 // clock unix nanos of the last turn's end

	// refs counts the calls holding the cell (acquire to release). It is
	// raised only under the registry shard's mutex, so the janitor, which
	// reads it under that mutex, sees every holder; release lowers it
	// without the mutex.
	refs atomic.Int32

	// guarded by the turn lock
	handler      Handler
	overlay      *layer    // writes not yet durable (local durability)
	mem          *memActor // its data in Runtime.mem (memory durability), or nil: kept to skip the store's lookup
	lastWriteSeq uint64    // seq of this actor's last enqueued write
	// lastWriteDeferred: that write was a deferred turn's (DeferCommit)
	lastWriteDeferred bool
	// turnGate is what the output of the turn that just ran waits for:
	// lastWriteSeq, or less for a write-free turn that gates on its reads
	// (Turn.GateOnReads). Set by each turn, read before the lock is freed.
	turnGate    uint64
	alarm       alarmState
	alarmLoaded bool
	dropped     bool // removed by DropPartition: a turn still queued on it fails
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
		c = &cell{id: id, enc: own, part: groupedPartition(own, partitions, ns.group), ns: ns, lock: newTurnLock()}
		if ns.cfg.Durability == Local {
			c.overlay = newLayer()
		}
		s.cells[string(own)] = c
		r.count.Add(1)
		created = true
	}
	c.refs.Add(1)
	s.mu.Unlock()
	return c, created
}

// release drops the reference acquire took. The caller's writes to the
// cell before it happen before an evictor's check that sees refs == 0.
func (r *registry) release(c *cell) {
	c.refs.Add(-1)
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
			if c.refs.Load() == 0 && c.waiting.Load() == 0 && evictable(c) {
				delete(s.cells, k)
				r.count.Add(-1)
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}
