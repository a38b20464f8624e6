package ownership

import (
	"fmt"
	"slices"
	"time"
)

// This file holds the old owner's side of a handoff, and drain.

type phase uint8

const (
	phaseServing      phase = iota + 1
	phaseDraining           // Hold emitted; waiting for DrainedAndDurable
	phaseTransferring       // StartTransfer emitted; waiting for TransferAcked
	phaseMoving             // compare-and-set to the new owner issued (or to re-issue)
	phaseResolving          // reading the entry from the leader after a mismatch
)

// owned is a partition this node serves or is handing off.
type owned struct {
	epoch   uint64
	rev     uint64 // last known revision of the entry (0: not known yet)
	phase   phase
	handoff *handoff
	retryAt time.Time
}

// serving tells whether turns may run: while draining, the turns that were
// already running must pass their commit check; new ones are held by the
// runtime (Hold). From the transfer on, nothing runs.
func (o *owned) serving() bool { return o.phase == phaseServing || o.phase == phaseDraining }

type handoff struct {
	id       string
	target   NodeID
	deadline time.Time
	op       OpID
}

func (n *Node) newHandoffID(p Partition) string {
	n.handoffSeq++
	// Unique across processes (boot nonce) and attempts (sequence): each
	// attempt writes into its own fresh staging bucket.
	return fmt.Sprintf("%s/%s/%d/p%d", n.cfg.NodeID, n.cfg.BootNonce, n.handoffSeq, p)
}

// maybeStartHandoff starts a handoff of a served partition whose desired
// owner is another live, reachable node (or, when draining, to its desired
// owner computed without this node).
func (n *Node) maybeStartHandoff(p Partition, pt *owned) {
	if pt.rev == 0 || n.now.Before(pt.retryAt) {
		return // the move needs the entry's revision; the watch brings it
	}
	without := NodeID("")
	if n.draining {
		without = n.cfg.NodeID
	}
	target, ok := n.cfg.Placement.DesiredOwner(p, without)
	if !ok || target == n.cfg.NodeID {
		if n.draining {
			n.alert(fmt.Sprintf("nodrain/%d", p), &NoDrainTargetError{Partition: p})
		}
		return
	}
	if !n.view.liveLease(target) || !n.reach[target] {
		return
	}
	pt.phase = phaseDraining
	pt.handoff = &handoff{id: n.newHandoffID(p), target: target, deadline: n.now.Add(n.cfg.HandoffTimeout)}
	n.emit(Hold{Partition: p})
}

func (n *Node) onDrained(p Partition) {
	pt := n.parts[p]
	if pt == nil || pt.phase != phaseDraining {
		return
	}
	pt.phase = phaseTransferring
	n.emit(StartTransfer{HandoffID: pt.handoff.id, Partition: p, Epoch: pt.epoch, Target: pt.handoff.target})
}

func (n *Node) handoffPart(hid string) (Partition, *owned) {
	for p, pt := range n.parts {
		if pt.handoff != nil && pt.handoff.id == hid {
			return p, pt
		}
	}
	return 0, nil
}

func (n *Node) onTransferAcked(hid string) {
	p, pt := n.handoffPart(hid)
	if pt == nil || pt.phase != phaseTransferring {
		return // aborted meanwhile: that staging is never moved to
	}
	pt.phase = phaseMoving
	n.issueMove(p, pt)
}

func (n *Node) onTransferFailed(hid string) {
	p, pt := n.handoffPart(hid)
	if pt == nil || (pt.phase != phaseDraining && pt.phase != phaseTransferring) {
		return
	}
	n.abortHandoff(p, pt)
}

// abortHandoff gives up a handoff before its move was issued: nothing in the
// directory names its ID, so the partition is served here again.
func (n *Node) abortHandoff(p Partition, pt *owned) {
	n.emit(AbortTransfer{HandoffID: pt.handoff.id, Partition: p, Target: pt.handoff.target})
	n.emit(Resume{Partition: p})
	pt.phase = phaseServing
	pt.handoff = nil
	pt.retryAt = n.now.Add(n.cfg.RetryInterval)
}

// issueMove moves the entry to (new owner, epoch+1, handoff ID), against the
// last known revision; re-issued as is after a failure or an unknown outcome.
func (n *Node) issueMove(p Partition, pt *owned) {
	next := Entry{Owner: pt.handoff.target, Epoch: pt.epoch + 1, HandoffID: pt.handoff.id}
	pt.handoff.op = n.issue(KVOp{Kind: OpCompareAndSet, Key: EntryKey(p), ExpectRev: pt.rev, Entry: &next},
		&pendingOp{purpose: purposeMove, p: p, entry: next})
}

func (n *Node) issueMoveRead(p Partition, pt *owned) {
	pt.handoff.op = n.issue(KVOp{Kind: OpReadFromLeader, Key: EntryKey(p)}, &pendingOp{purpose: purposeMoveRead, p: p})
}

func (n *Node) tickHandoffs() {
	// Sorted for determinism, but only the partitions moving: this runs on
	// every step, and a node owns hundreds of partitions.
	var moving []Partition
	for p, pt := range n.parts {
		if pt.handoff != nil {
			moving = append(moving, p)
		}
	}
	slices.Sort(moving)
	for _, p := range moving {
		pt := n.parts[p]
		switch pt.phase {
		case phaseDraining, phaseTransferring:
			if !n.now.Before(pt.handoff.deadline) {
				n.abortHandoff(p, pt)
			}
		case phaseMoving:
			if pt.handoff.op == 0 && !n.now.Before(pt.retryAt) {
				n.issueMove(p, pt)
			}
		case phaseResolving:
			if pt.handoff.op == 0 && !n.now.Before(pt.retryAt) {
				n.issueMoveRead(p, pt)
			}
		}
	}
}

func (n *Node) movingOp(id OpID, p Partition) *owned {
	pt := n.parts[p]
	if pt == nil || pt.handoff == nil || pt.handoff.op != id {
		return nil
	}
	pt.handoff.op = 0
	return pt
}

func (n *Node) onMove(id OpID, po *pendingOp, r KVResult) {
	pt := n.movingOp(id, po.p)
	if pt == nil {
		return
	}
	switch r.Status {
	case StatusOK:
		n.view.putEntry(po.p, &po.entry, r.Rev, false)
		n.finishHandoff(po.p, pt)
	case StatusMismatch:
		// The entry changed: maybe our own earlier attempt, maybe a claimant.
		// Only the stream leader can say.
		pt.phase = phaseResolving
		n.issueMoveRead(po.p, pt)
	default:
		// Failed or unknown: stay on hold, re-issue against the same revision.
		pt.retryAt = n.now.Add(n.cfg.RetryInterval)
	}
}

func (n *Node) onMoveRead(id OpID, po *pendingOp, r KVResult) {
	pt := n.movingOp(id, po.p)
	if pt == nil {
		return
	}
	switch {
	case r.Status == StatusOK && r.Entry != nil:
		n.view.putEntry(po.p, r.Entry, r.Rev, false)
		n.persist(po.p, r.Entry.Epoch)
		n.resolveMove(po.p, pt, *r.Entry, r.Rev)
	case r.Status == StatusNotFound:
		n.dropPartition(po.p, pt, "")
	default:
		pt.retryAt = n.now.Add(n.cfg.RetryInterval)
	}
}

// resolveMove decides a move whose compare-and-set did not plainly succeed,
// from the entry as the leader (or the ordered watch) shows it.
func (n *Node) resolveMove(p Partition, pt *owned, e Entry, rev uint64) {
	h := pt.handoff
	switch {
	case e.HandoffID == h.id && e.Owner == h.target && e.Epoch == pt.epoch+1:
		n.finishHandoff(p, pt) // our move happened (its reply was lost)
	case e.Owner == n.cfg.NodeID && e.Epoch == pt.epoch && e.Orphaned:
		n.keepOrphaned(p, pt)
	case e.Owner == n.cfg.NodeID && e.Epoch == pt.epoch:
		// Unchanged in value: retry against the revision just read.
		pt.rev = rev
		pt.phase = phaseMoving
		n.issueMove(p, pt)
	default:
		// Anything else: our lease was revoked and the partition claimed.
		n.dropPartition(p, pt, e.Owner)
	}
}

// finishHandoff: the entry names the new owner. Tell it directly, drop our
// copy, answer every held call NOT_OWNER with the new owner.
func (n *Node) finishHandoff(p Partition, pt *owned) {
	h := pt.handoff
	n.persist(p, pt.epoch+1)
	n.emit(Stop{Partition: p})
	n.emit(SendHandoffDone{To: h.target, HandoffID: h.id, Partition: p, Epoch: pt.epoch + 1})
	n.wipe(p, 0)
	n.emit(ReleaseHeld{Partition: p, NotOwner: h.target})
	delete(n.parts, p)
}

// keepOrphaned: a claimant marked the entry orphaned (our lease was revoked
// under on_owner_loss=wait). Our bucket is the only copy: keep it; we take
// the partition back in place once registered again.
func (n *Node) keepOrphaned(p Partition, pt *owned) {
	n.emit(Stop{Partition: p})
	if pt.handoff != nil {
		n.emit(AbortTransfer{HandoffID: pt.handoff.id, Partition: p, Target: pt.handoff.target})
		n.emit(ReleaseHeld{Partition: p})
	}
	delete(n.parts, p)
}

// dropPartition: somebody else owns the partition now.
func (n *Node) dropPartition(p Partition, pt *owned, newOwner NodeID) {
	n.emit(Stop{Partition: p})
	if pt.handoff != nil {
		n.emit(AbortTransfer{HandoffID: pt.handoff.id, Partition: p, Target: pt.handoff.target})
		n.emit(ReleaseHeld{Partition: p, NotOwner: newOwner})
	}
	delete(n.parts, p)
	if newOwner != n.cfg.NodeID {
		if _, ok := n.local[p]; ok {
			n.wipe(p, 0)
		}
	}
}

// checkStillOwner reacts to a newer entry for a partition this node serves
// or is handing off.
func (n *Node) checkStillOwner(p Partition, pt *owned, rec entryRec) {
	e := rec.entry
	if rec.rev <= pt.rev {
		return
	}
	if e.Owner == n.cfg.NodeID && e.Epoch == pt.epoch && !e.Orphaned {
		pt.rev = rec.rev // e.g. served on HandoffDone before the watch showed it
		return
	}
	if e.Epoch < pt.epoch {
		return // an event older than our epoch, arriving late
	}
	switch pt.phase {
	case phaseMoving, phaseResolving:
		if pt.handoff.op != 0 {
			delete(n.ops, pt.handoff.op)
			pt.handoff.op = 0
		}
		n.resolveMove(p, pt, e, rec.rev)
	default:
		if e.Owner == n.cfg.NodeID && e.Orphaned {
			n.keepOrphaned(p, pt)
		} else {
			n.dropPartition(p, pt, e.Owner)
		}
	}
}

func (n *Node) checkDrained() {
	if !n.draining || n.drainedSent || len(n.parts) > 0 || len(n.acquiring) > 0 {
		return
	}
	n.drainedSent = true
	n.emit(Drained{})
}
