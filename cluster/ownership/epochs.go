package ownership

// This file holds the rules on epochs and local data: which local bucket
// may be served at which epoch, the persisted highest epoch, in-place
// reclaim, and garbage collection of buckets that can never be served again.

// persist records the highest epoch seen for p, before anything acts on it.
func (n *Node) persist(p Partition, e uint64) {
	if e > n.highest[p] {
		n.highest[p] = e
		n.emit(Persist{Partition: p, Epoch: e})
	}
}

type srcKind uint8

const (
	srcNone    srcKind = iota // no legitimate data here
	srcBucket                 // the local bucket
	srcStaging                // the staging bucket of the entry's handoff
)

// localSource tells which local data, if any, may be served for entry e,
// which names this node. The rule: a bucket at epoch E is kept only if it
// came from the handoff whose ID the entry for E names, or if this node
// moved the entry from (itself, E-1) to (itself, E) with its bucket at E-1.
// Anything else (a bucket left from an epoch somebody else owned since) would
// resurrect old state.
func (n *Node) localSource(p Partition, e Entry) srcKind {
	b, hasB := n.local[p]
	if e.HandoffID != "" {
		if s := n.staging[e.HandoffID]; s != nil && s.complete && s.p == p && s.from+1 == e.Epoch {
			return srcStaging
		}
		if hasB && b == e.Epoch {
			return srcBucket // this handoff's staging, already promoted
		}
		return srcNone
	}
	if hasB && b == e.Epoch {
		return srcBucket
	}
	if hasB && b+1 == e.Epoch {
		// This node's own in-place move from E-1 whose Serve never ran (a
		// crash or a lost reply in between): only this node writes an entry
		// naming itself without a handoff ID, and only from its own entry.
		return srcBucket
	}
	return srcNone
}

// takeOwn handles an entry that names this node while it does not serve the
// partition: after a restart, a re-registration, an orphan mark, or a
// handoff whose HandoffDone message was lost.
func (n *Node) takeOwn(p Partition, rec entryRec) {
	e := rec.entry
	if n.highest[p] > e.Epoch {
		// This node has seen a later epoch: the directory lost writes. The
		// data here may be older than what a later owner served; refuse.
		n.alert(regressKey(p, e.Epoch), &EpochRegressedError{Partition: p, Directory: e.Epoch, Highest: n.highest[p]})
		return
	}
	src := n.localSource(p, e)
	if !e.Orphaned && rec.rev > n.lease.regRev && src != srcNone {
		// Written during this incarnation (by this node, or by an old owner
		// handing off to it): nobody can have moved it since without revoking
		// this very lease, which would have lapsed first. Serve it as is.
		if src == srcStaging {
			n.promote(e.HandoffID, p, e.Epoch)
		}
		n.serveAt(p, e.Epoch, rec.rev)
		return
	}
	// Written before this incarnation, or orphaned: the entry may be stale
	// (a claimant may be moving it right now), so move it to E+1 by
	// compare-and-set; the compare-and-set decides between us.
	next := Entry{Owner: n.cfg.NodeID, Epoch: e.Epoch + 1}
	switch src {
	case srcNone:
		if n.cfg.policy(p) != OwnerLossReset || n.draining {
			n.alert(unavailKey(p, e), &DataUnavailableError{Partition: p, Entry: e})
			return
		}
		n.wipe(p, next.Epoch)
		n.acquire(p, acqFresh, next, rec.rev)
		return
	case srcStaging:
		// Make the staging bucket the local bucket at E first (the entry for
		// E names its handoff), so that the in-place rule covers a crash
		// after the compare-and-set.
		n.promote(e.HandoffID, p, e.Epoch)
	default:
		if n.local[p] != e.Epoch {
			// The bucket is at E-1, moved in place to E before a crash: say so
			// on disk before moving on to E+1, or two such moves in a row
			// would leave a bucket two epochs behind, which no rule allows.
			n.emit(Stamp{Partition: p, Epoch: e.Epoch})
			n.local[p] = e.Epoch
		}
	}
	n.acquire(p, acqInPlace, next, rec.rev)
}

// collectGarbage wipes the local bucket of a partition whose entry names
// another node at a higher epoch than the bucket's: a later epoch exists
// elsewhere, so this bucket can never be served again (only this node writes
// an entry naming itself without a handoff ID, and only from an entry naming
// itself). An entry at a lower epoch may just be a stale view (the watch lags
// what this node did itself): it proves nothing.
func (n *Node) collectGarbage(p Partition, e Entry) {
	if b, ok := n.local[p]; ok && e.Epoch > b {
		n.wipe(p, 0)
	}
}

func (n *Node) serveAt(p Partition, epoch, rev uint64) {
	n.persist(p, epoch)
	n.emit(Serve{Partition: p, Epoch: epoch})
	n.local[p] = epoch
	n.parts[p] = &owned{epoch: epoch, rev: rev, phase: phaseServing}
	delete(n.retryAt, p)
}

func (n *Node) wipe(p Partition, epoch uint64) {
	n.emit(Wipe{Partition: p, Epoch: epoch})
	if epoch == 0 {
		delete(n.local, p)
	} else {
		n.local[p] = epoch
	}
}

func (n *Node) promote(hid string, p Partition, epoch uint64) {
	n.emit(PromoteStaging{HandoffID: hid, Partition: p, Epoch: epoch})
	n.local[p] = epoch
	delete(n.staging, hid)
}
