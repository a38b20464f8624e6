package actor

import (
	"context"
	"fmt"
	"time"
)

// Partition lifecycle. The cluster driver calls these while partition p is
// held or not served (its Gate lets no turn of p in), so normally no turn of
// p runs. They stay safe if one does: DropPartition waits for it.

// DropPartition forgets everything this node keeps in memory about
// partition p: every activated actor of p is evicted (handler state,
// overlay of not-yet-durable writes, cached alarm), p's alarms leave the
// scheduler, and p's data in the memory-durability store is deleted, so a
// partition that comes back (moved back, reset, promoted from a staging
// bucket) never sees stale state. p's bucket in the durable store is left
// alone (see PartitionStore.WipePartition).
//
// An actor of p with a turn running or queued is removed from the registry
// first (new calls activate it afresh), then DropPartition waits for the
// running turn to finish (turns are bounded by their deadline); a turn still
// queued on the removed actor fails with ErrOwnershipLost. A write such a
// turn enqueued to the committer is not undone: call WaitPartitionDurable
// before wiping or replacing p's bucket. Must not be called from a turn.
// Safe for concurrent use.
func (r *Runtime) DropPartition(p int) {
	var dropped []*cell
	for i := range r.cells.shards {
		s := &r.cells.shards[i]
		s.mu.Lock()
		for k, c := range s.cells {
			if c.part == p {
				delete(s.cells, k)
				r.cells.count.Add(-1)
				dropped = append(dropped, c)
			}
		}
		s.mu.Unlock()
	}
	for _, c := range dropped {
		if !c.lock.tryLock() { // wait for a running turn; no lock held
			_ = c.lock.lockSlow(context.Background(), time.Time{}) // no deadline: cannot fail
		}
		c.dropped = true
		c.handler = nil
		c.overlay = nil
		c.mem = nil
		c.alarm, c.alarmLoaded = alarmState{}, false
		c.lock.unlock()
	}
	if len(dropped) > 0 {
		r.metrics.actorsInMemory.Set(float64(r.cells.count.Load()))
	}
	r.alarms.cancelPartition(p)
	r.mem.dropPartition(p)
	r.log.Debug("partition dropped from memory", "partition", p, "actors", len(dropped))
}

// ServePartition (re)loads partition p's alarms from the durable store's
// per-partition alarm index (and the memory store's) into the scheduler, so
// alarms move with their partition and fire on its new owner. Call it when
// this node starts serving p, after p's bucket is in place. If p's bucket
// was replaced while p was not served (wipe, promote), DropPartition must
// have run since p was last served (so no actor of p is cached). Loading an
// alarm already scheduled is harmless. Safe for concurrent use.
func (r *Runtime) ServePartition(p int) error {
	if p < 0 || p >= r.OwnershipPartitions() {
		return fmt.Errorf("serve partition %d: %w: must be in [0, %d)", p, ErrInvalidArgument, r.OwnershipPartitions())
	}
	if err := r.alarms.loadPartition(r.store, p); err != nil {
		return fmt.Errorf("serve partition %d: loading its alarms: %w", p, err)
	}
	if err := r.alarms.loadPartition(r.mem, p); err != nil {
		return fmt.Errorf("serve partition %d: loading its memory alarms: %w", p, err)
	}
	return nil
}

// WaitPartitionDurable returns once every write enqueued for partition p so
// far is durable (it waits for every write enqueued so far on this node,
// which includes p's), the store failed (ErrStorage), or ctx ends. Memory
// durability writes need no wait. Safe for concurrent use.
func (r *Runtime) WaitPartitionDurable(ctx context.Context, p int) error {
	_ = p
	return r.committer.waitUrgent(ctx, r.committer.enqueued(), time.Time{})
}

// scanPartitionAlarms calls fn for each entry of partition p's alarm
// index, through the store's per-partition scan when it has one.
func scanPartitionAlarms(store Store, p int, fn func(at int64, actor []byte) bool) error {
	if ps, ok := store.(interface {
		scanPartitionAlarms(p int, fn func(at int64, actor []byte) bool) error
	}); ok {
		return ps.scanPartitionAlarms(p, fn)
	}
	return store.ScanAlarms(func(q int, at int64, actor []byte) bool {
		if q != p {
			return true
		}
		return fn(at, actor)
	})
}
