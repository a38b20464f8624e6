package ownership

import (
	"fmt"
	"time"
)

type regPhase uint8

const (
	regNone       regPhase = iota // not registered; next: read own lease key
	regReading                    // reading own lease key from the leader
	regWriting                    // creating or CASing a new incarnation
	regRegistered                 // holding a lease (which may have lapsed)
)

// leaseState is this node's own lease.
type leaseState struct {
	phase regPhase
	op    OpID
	// writing is the lease being registered; kept across a lost reply so that
	// reading it back can adopt it.
	writing     Lease
	incarnation uint64
	rev         uint64 // last known revision of the lease key
	regRev      uint64 // revision that registered this incarnation
	validUntil  time.Time
	lastSend    time.Time // send time of the last renewal sent
	renewOK     bool      // the last renewal succeeded
	needRead    bool      // a renewal's outcome is unknown: learn the revision first
	retryAt     time.Time
}

func (n *Node) nonce(inc uint64) string { return fmt.Sprintf("%s/%d", n.cfg.BootNonce, inc) }

func (n *Node) ownLease() Lease {
	inc := n.lease.incarnation
	return Lease{NodeID: n.cfg.NodeID, Incarnation: inc, Nonce: n.nonce(inc)}
}

func (n *Node) leaseValid(now time.Time) bool {
	return n.lease.phase == regRegistered && now.Before(n.lease.validUntil)
}

// accrueCredit advances the claimant clock by the time since the last Step,
// but only while this node's own renewals succeed and its lease is valid:
// when the KV is unavailable nobody can renew, so no countdown may run out
// (else a leader change longer than a TTL would expire every lease).
func (n *Node) accrueCredit(now time.Time) {
	l := &n.lease
	if l.phase != regRegistered || !l.renewOK || !n.now.Before(l.validUntil) {
		return
	}
	end := now
	if end.After(l.validUntil) {
		end = l.validUntil
	}
	n.credit += end.Sub(n.now)
}

// quorum applies the quorum rule: counting itself, the node must reach a
// strict majority of the nodes holding an unrevoked lease in the directory,
// or it stops renewing and acting (it must not hold partitions nobody can
// reach).
func (n *Node) quorum() bool {
	holders, reached := 1, 1
	for id, r := range n.view.leases {
		if id == n.cfg.NodeID || r.deleted || r.lease.Revoked {
			continue
		}
		holders++
		if n.reach[id] {
			reached++
		}
	}
	return 2*reached > holders
}

func (n *Node) tickLease() {
	l := &n.lease
	if l.op != 0 || n.now.Before(l.retryAt) || !n.quorum() {
		return
	}
	switch l.phase {
	case regNone:
		l.phase = regReading
		l.op = n.issue(KVOp{Kind: OpReadFromLeader, Key: LeaseKey(n.cfg.NodeID)}, &pendingOp{purpose: purposeRegisterRead})
	case regRegistered:
		if l.needRead {
			l.op = n.issue(KVOp{Kind: OpReadFromLeader, Key: LeaseKey(n.cfg.NodeID)}, &pendingOp{purpose: purposeRenewRead})
			return
		}
		if l.renewOK && n.now.Sub(l.lastSend) < n.cfg.RenewInterval {
			return
		}
		// The send time is taken before sending: validity counts from it.
		l.lastSend = n.now
		v := n.ownLease()
		l.op = n.issue(KVOp{Kind: OpCompareAndSet, Key: LeaseKey(n.cfg.NodeID), ExpectRev: l.rev, Lease: &v, Renewal: true},
			&pendingOp{purpose: purposeRenew, lease: v})
	}
}

func (n *Node) onRegisterRead(r KVResult) {
	l := &n.lease
	l.op = 0
	switch {
	case r.Status == StatusOK && r.Lease != nil:
		cur := *r.Lease
		if l.writing.Incarnation != 0 && cur == l.writing {
			// Our registration was applied but its reply was lost. Adopt it,
			// without validity: we do not know when it was applied, so the
			// next renewal, sent right away, gives validity.
			n.registered(cur, r.Rev, time.Time{})
			return
		}
		next := Lease{NodeID: n.cfg.NodeID, Incarnation: max(cur.Incarnation, l.writing.Incarnation) + 1}
		next.Nonce = n.nonce(next.Incarnation)
		n.writeRegistration(OpCompareAndSet, r.Rev, next)
	case r.Status == StatusNotFound:
		next := Lease{NodeID: n.cfg.NodeID, Incarnation: l.writing.Incarnation + 1}
		next.Nonce = n.nonce(next.Incarnation)
		n.writeRegistration(OpCreate, 0, next)
	default:
		l.phase = regNone
		l.retryAt = n.now.Add(n.cfg.RetryInterval)
	}
}

func (n *Node) writeRegistration(kind OpKind, rev uint64, next Lease) {
	l := &n.lease
	l.phase = regWriting
	l.writing = next
	l.op = n.issue(KVOp{Kind: kind, Key: LeaseKey(n.cfg.NodeID), ExpectRev: rev, Lease: &next},
		&pendingOp{purpose: purposeRegisterWrite, lease: next})
}

func (n *Node) onRegisterWrite(po *pendingOp, r KVResult) {
	l := &n.lease
	l.op = 0
	switch r.Status {
	case StatusOK:
		n.registered(po.lease, r.Rev, po.sentAt.Add(n.cfg.TTL-n.cfg.Epsilon))
	case StatusFailed:
		l.phase = regNone
		l.retryAt = n.now.Add(n.cfg.RetryInterval)
	default:
		// Mismatch: somebody wrote the key since we read it; read again.
		// Unknown: reading it back tells whether ours was applied.
		l.phase = regNone
	}
}

func (n *Node) registered(v Lease, rev uint64, validUntil time.Time) {
	n.lease = leaseState{
		phase:       regRegistered,
		incarnation: v.Incarnation,
		rev:         rev,
		regRev:      rev,
		validUntil:  validUntil,
		lastSend:    validUntil.Add(-(n.cfg.TTL - n.cfg.Epsilon)),
		renewOK:     !validUntil.IsZero(),
	}
	n.view.putLease(v.NodeID, &v, rev, false)
}

func (n *Node) onRenew(po *pendingOp, r KVResult) {
	l := &n.lease
	l.op = 0
	switch r.Status {
	case StatusOK:
		l.rev = r.Rev
		if until := po.sentAt.Add(n.cfg.TTL - n.cfg.Epsilon); until.After(l.validUntil) {
			l.validUntil = until
		}
		l.renewOK = true
		n.view.putLease(n.cfg.NodeID, &po.lease, r.Rev, false)
	case StatusMismatch:
		// Only a revocation writes our lease key: stop everything now.
		n.lostLease()
	case StatusUnknown:
		// Not extended: validity simply runs out. If it was applied the
		// revision moved, so learn it before the next compare-and-set, which
		// would otherwise mismatch and look like a revocation.
		l.renewOK = false
		l.needRead = true
	default:
		l.renewOK = false
		l.retryAt = n.now.Add(n.cfg.RetryInterval)
	}
}

func (n *Node) onRenewRead(r KVResult) {
	l := &n.lease
	l.op = 0
	switch {
	case r.Status == StatusOK && r.Lease != nil && *r.Lease == n.ownLease():
		// Still ours (a lost renewal may have moved the revision). Validity is
		// not extended: we cannot tell when that renewal was applied.
		l.rev = r.Rev
		l.needRead = false
		n.view.putLease(n.cfg.NodeID, r.Lease, r.Rev, false)
	case r.Status == StatusOK || r.Status == StatusNotFound:
		n.lostLease()
	default:
		l.retryAt = n.now.Add(n.cfg.RetryInterval)
	}
}

// lostLease handles a revoked lease: stop serving every partition at once,
// forget every operation in flight (their outcomes are settled later by
// compare-and-set against the directory), and register again under a new
// incarnation.
func (n *Node) lostLease() {
	n.emit(StopAll{})
	for _, p := range sortedKeys(n.parts) {
		pt := n.parts[p]
		if pt.handoff != nil {
			if pt.phase == phaseDraining || pt.phase == phaseTransferring {
				n.emit(AbortTransfer{HandoffID: pt.handoff.id, Partition: p, Target: pt.handoff.target})
			}
			n.emit(ReleaseHeld{Partition: p})
		}
	}
	writing := n.lease.writing
	n.parts = map[Partition]*owned{}
	n.acquiring = map[Partition]OpID{}
	n.pendingReads = map[Partition]*pendingOp{}
	n.ops = map[OpID]*pendingOp{}
	n.timers = map[NodeID]*countdown{}
	n.lease = leaseState{phase: regNone, writing: Lease{Incarnation: max(writing.Incarnation, n.lease.incarnation)}}
	// Staging received under the old incarnation may now only be served
	// after a compare-and-set.
	for _, s := range n.staging {
		s.inc = 0
	}
}
