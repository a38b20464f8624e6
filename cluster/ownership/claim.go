package ownership

import (
	"fmt"
	"time"
)

// This file holds the claimant's side: countdowns on other nodes' leases,
// revocation, claims of a revoked node's partitions, and creation of
// partitions the directory does not have yet.

// countdown runs on one other node's lease revision.
type countdown struct {
	rev   uint64        // the revision observed
	start time.Duration // the claimant credit when it was observed
	op    OpID          // revocation in flight
}

// updateCountdowns restarts a countdown whenever a lease's revision changes
// (the node renewed) and drops it when the lease is revoked.
func (n *Node) updateCountdowns() {
	for id, r := range n.view.leases {
		if id == n.cfg.NodeID {
			continue
		}
		if r.deleted || r.lease.Revoked {
			delete(n.timers, id)
			continue
		}
		if t := n.timers[id]; t == nil || t.rev != r.rev {
			n.timers[id] = &countdown{rev: r.rev, start: n.credit}
		}
	}
}

// revokeExpired revokes, by compare-and-set expecting the observed revision,
// every lease not renewed for TTL+ε of this node's credited time. The owner's
// validity ended at its send time + TTL - ε, before the claimant even saw
// that revision, so by then the owner has stopped serving.
func (n *Node) revokeExpired() {
	for _, id := range sortedKeys(n.timers) {
		t := n.timers[id]
		if t.op != 0 || n.credit-t.start < n.cfg.TTL+n.cfg.Epsilon {
			continue
		}
		v := n.view.leases[id].lease
		v.Revoked = true
		t.op = n.issue(KVOp{Kind: OpCompareAndSet, Key: LeaseKey(id), ExpectRev: t.rev, Lease: &v},
			&pendingOp{purpose: purposeRevoke, peer: id, lease: v})
	}
}

func (n *Node) onRevoke(po *pendingOp, r KVResult) {
	t := n.timers[po.peer]
	if t != nil {
		t.op = 0
	}
	switch r.Status {
	case StatusOK:
		n.view.putLease(po.peer, &po.lease, r.Rev, false)
		delete(n.timers, po.peer)
	case StatusMismatch:
		// The lease changed: the node renewed (our watch lags). Count again.
		if t != nil {
			t.start = n.credit
		}
	}
	// Failed or unknown: the next tick re-issues; if it was applied the
	// re-issue mismatches and the watch shows the revocation.
}

// maybeClaim moves a partition away from a node whose lease is revoked, if
// this node is its desired owner computed without that node.
func (n *Node) maybeClaim(p Partition, rec entryRec) {
	e := rec.entry
	if n.draining || n.view.liveLease(e.Owner) {
		return
	}
	lr, ok := n.view.leases[e.Owner]
	if !ok || lr.deleted {
		// A lease key is never deleted by this protocol; without one there
		// is no revision to revoke, so nothing proves the owner stopped.
		return
	}
	if rec.rev > n.view.watchRev {
		// Only what the ordered watch has shown: then the lease view is at
		// least as new as the entry (see directory.watchRev).
		return
	}
	if want, ok := n.cfg.Placement.DesiredOwner(p, e.Owner); !ok || want != n.cfg.NodeID {
		return
	}
	if n.cfg.policy(p) == OwnerLossReset {
		// Above any epoch this node has seen, in case the directory regressed.
		next := max(e.Epoch, n.highest[p]) + 1
		n.wipe(p, next)
		n.acquire(p, acqFresh, Entry{Owner: n.cfg.NodeID, Epoch: next}, rec.rev)
		return
	}
	if !e.Orphaned {
		// The data is on the lost owner's disk only: mark the entry so that
		// callers get "unavailable" and only that owner takes it back.
		mark := e
		mark.Orphaned = true
		n.acquire(p, acqOrphan, mark, rec.rev)
	}
}

// maybeCreate creates the entry of a partition the directory does not have
// yet (a new cluster), if this node is its desired owner.
func (n *Node) maybeCreate(p Partition) {
	if n.draining {
		return
	}
	if want, ok := n.cfg.Placement.DesiredOwner(p, ""); !ok || want != n.cfg.NodeID {
		return
	}
	next := n.highest[p] + 1
	n.wipe(p, next)
	n.acquire(p, acqCreate, Entry{Owner: n.cfg.NodeID, Epoch: next}, 0)
}

type acquisition uint8

const (
	acqCreate  acquisition = iota + 1 // create a missing entry, fresh data
	acqFresh                          // take at a new epoch with fresh data
	acqInPlace                        // move (self, E) to (self, E+1), keeping the bucket
	acqOrphan                         // mark a lost owner's entry orphaned
)

func (n *Node) acquire(p Partition, kind acquisition, next Entry, expect uint64) {
	op := KVOp{Kind: OpCompareAndSet, Key: EntryKey(p), ExpectRev: expect, Entry: &next}
	if kind == acqCreate {
		op.Kind, op.ExpectRev = OpCreate, 0
	}
	n.acquiring[p] = n.issue(op, &pendingOp{purpose: purposeAcquire, p: p, entry: next, acq: kind})
}

func (n *Node) onAcquire(id OpID, po *pendingOp, r KVResult) {
	if n.acquiring[po.p] != id {
		return
	}
	delete(n.acquiring, po.p)
	switch r.Status {
	case StatusOK:
		n.acquired(po, r.Rev)
	case StatusUnknown:
		// Maybe applied: read it back before doing anything else with p.
		n.acquiring[po.p] = n.issue(KVOp{Kind: OpReadFromLeader, Key: EntryKey(po.p)},
			&pendingOp{purpose: purposeAcquireRead, p: po.p, entry: po.entry, acq: po.acq})
	default:
		n.acquireFailed(po)
	}
}

func (n *Node) onAcquireRead(id OpID, po *pendingOp, r KVResult) {
	if n.acquiring[po.p] != id {
		return
	}
	delete(n.acquiring, po.p)
	switch {
	case r.Status == StatusOK && r.Entry != nil && *r.Entry == po.entry:
		// Nobody else writes this exact value, so this is our write.
		n.acquired(po, r.Rev)
	case r.Status == StatusOK || r.Status == StatusNotFound:
		n.acquireFailed(po)
	default:
		// Still unknown: keep p busy and read again later.
		n.deferred(po)
	}
}

func (n *Node) acquired(po *pendingOp, rev uint64) {
	n.view.putEntry(po.p, &po.entry, rev, false)
	if po.acq == acqOrphan {
		return
	}
	n.serveAt(po.p, po.entry.Epoch, rev)
}

func (n *Node) acquireFailed(po *pendingOp) {
	n.retryAt[po.p] = n.now.Add(n.cfg.RetryInterval)
	if (po.acq == acqFresh || po.acq == acqCreate) && n.local[po.p] == po.entry.Epoch {
		// The empty bucket prepared for the claim must not stay: it could
		// later pass for data at that epoch.
		n.wipe(po.p, 0)
	}
}

// deferred re-issues an acquisition read after RetryInterval; p stays busy.
func (n *Node) deferred(po *pendingOp) {
	n.retryAt[po.p] = n.now.Add(n.cfg.RetryInterval)
	n.acquiring[po.p] = 0
	n.pendingReads[po.p] = po
}

func (n *Node) reissueReads() {
	for _, p := range sortedKeys(n.pendingReads) {
		if n.now.Before(n.retryAt[p]) {
			continue
		}
		po := n.pendingReads[p]
		delete(n.pendingReads, p)
		n.acquiring[p] = n.issue(KVOp{Kind: OpReadFromLeader, Key: EntryKey(p)},
			&pendingOp{purpose: purposeAcquireRead, p: p, entry: po.entry, acq: po.acq})
	}
}

func regressKey(p Partition, e uint64) string { return fmt.Sprintf("regress/%d/%d", p, e) }
func unavailKey(p Partition, e Entry) string  { return fmt.Sprintf("unavail/%d/%d", p, e.Epoch) }
