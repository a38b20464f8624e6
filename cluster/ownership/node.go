package ownership

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Node is one node's ownership state machine. It is not safe for concurrent
// use: the driver serializes Step and the queries, and applies the outputs of
// a Step before it lets turns observe the state that Step left.
type Node struct {
	cfg     Config
	now     time.Time
	started bool
	out     []Output

	nextOp OpID
	ops    map[OpID]*pendingOp

	lease  leaseState
	credit time.Duration // claimant time: counts only while own renewals succeed
	reach  map[NodeID]bool
	timers map[NodeID]*countdown

	view directory

	parts        map[Partition]*owned     // partitions served or being handed off
	acquiring    map[Partition]OpID       // create, claim, in-place move or orphan mark in flight
	pendingReads map[Partition]*pendingOp // acquisitions whose outcome is still unknown
	retryAt      map[Partition]time.Time

	local   map[Partition]uint64 // epoch stamped on each local bucket
	highest map[Partition]uint64 // persisted highest epoch seen
	staging map[string]*staged

	draining    bool
	drainedSent bool
	handoffSeq  uint64
	alerted     map[string]bool
}

// New returns a Node that has not registered yet; the first Step (a Tick)
// starts registration. disk is what the data directory holds.
func New(cfg Config, disk Disk) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:          cfg,
		ops:          map[OpID]*pendingOp{},
		reach:        map[NodeID]bool{},
		timers:       map[NodeID]*countdown{},
		view:         newDirectory(),
		parts:        map[Partition]*owned{},
		acquiring:    map[Partition]OpID{},
		pendingReads: map[Partition]*pendingOp{},
		retryAt:      map[Partition]time.Time{},
		local:        maps.Clone(disk.Buckets),
		highest:      maps.Clone(disk.Highest),
		staging:      map[string]*staged{},
		alerted:      map[string]bool{},
	}
	if n.local == nil {
		n.local = map[Partition]uint64{}
	}
	if n.highest == nil {
		n.highest = map[Partition]uint64{}
	}
	for _, s := range disk.Staging {
		if !s.Complete {
			// A transfer cut by the crash can never complete: its sender
			// has given up or will.
			n.emit(DropStaging{HandoffID: s.HandoffID})
			continue
		}
		// Incarnation 0: received by an earlier process, so it may only be
		// served after a compare-and-set (see takeOwn).
		n.staging[s.HandoffID] = &staged{id: s.HandoffID, p: s.Partition, from: s.FromEpoch, sender: s.From, complete: true}
	}
	return n, nil
}

// Step feeds one input at local time now (a reading of the injected clock,
// one that runs during suspend) and returns what the driver must do, in
// order. now must never go backwards.
func (n *Node) Step(now time.Time, in Input) ([]Output, error) {
	if n.started && now.Before(n.now) {
		return nil, &ClockError{Last: n.now, Now: now}
	}
	if n.started {
		n.accrueCredit(now)
	}
	n.now, n.started = now, true
	switch in := in.(type) {
	case Tick:
	case KVResult:
		n.onResult(in)
	case WatchEvent:
		n.onWatch(in)
	case WatchSynced:
		n.view.synced = true
	case Reachability:
		n.reach = maps.Clone(in.Reachable)
	case SetPlacement:
		if in.Placement != nil {
			n.cfg.Placement = in.Placement
		}
	case DrainedAndDurable:
		n.onDrained(in.Partition)
	case TransferAcked:
		n.onTransferAcked(in.HandoffID)
	case TransferFailed:
		n.onTransferFailed(in.HandoffID)
	case StagingStarted:
		n.onStagingStarted(in)
	case StagingCompleted:
		n.onStagingCompleted(in.HandoffID)
	case HandoffDone:
		n.onHandoffDone(in)
	case HandoffAborted:
		n.dropStaging(in.HandoffID)
	case Drain:
		n.draining = true
	default:
		return nil, &UnknownInputError{Input: in}
	}
	n.reconcile()
	out := n.out
	n.out = nil
	return out, nil
}

// CanServe tells whether a turn on partition p at epoch may run, or may
// release its reply, at local time now: the node serves p at exactly that
// epoch, never below its persisted highest epoch, and its lease is valid at
// now. The runtime calls it when a turn starts and again after its commit.
func (n *Node) CanServe(p Partition, epoch uint64, now time.Time) bool {
	pt := n.parts[p]
	if pt == nil || !pt.serving() || pt.epoch != epoch || epoch < n.highest[p] {
		return false
	}
	return n.leaseValid(now)
}

// Epoch returns the epoch at which the node serves (or is handing off) p.
func (n *Node) Epoch(p Partition) (uint64, bool) {
	pt := n.parts[p]
	if pt == nil || !pt.serving() {
		return 0, false
	}
	return pt.epoch, true
}

// Entry returns the directory view's entry for p (a routing hint, never a
// safety argument) and its revision.
func (n *Node) Entry(p Partition) (Entry, uint64, bool) {
	r, ok := n.view.entries[p]
	if !ok || r.deleted {
		return Entry{}, 0, false
	}
	return r.entry, r.rev, true
}

// Incarnation returns the registered incarnation, 0 when not registered.
func (n *Node) Incarnation() uint64 {
	if n.lease.phase != regRegistered {
		return 0
	}
	return n.lease.incarnation
}

// LeaseValidUntil returns when the lease lapses (zero when not registered).
func (n *Node) LeaseValidUntil() time.Time {
	if n.lease.phase != regRegistered {
		return time.Time{}
	}
	return n.lease.validUntil
}

// Credit returns the claimant time accrued so far: the time during which
// this node's own renewals succeeded and its lease was valid. It only grows.
func (n *Node) Credit() time.Duration { return n.credit }

// Highest returns the persisted highest epoch seen for p.
func (n *Node) Highest(p Partition) uint64 { return n.highest[p] }

func (n *Node) emit(o Output) { n.out = append(n.out, o) }

// alert emits err once per key, so a stuck condition does not flood.
func (n *Node) alert(key string, err error) {
	if n.alerted[key] {
		return
	}
	n.alerted[key] = true
	n.emit(Alert{Err: err})
}

// active tells whether this node may take partitions or revoke leases: a
// valid lease, a quorum, and a directory view that has been synced once.
func (n *Node) active() bool {
	return n.leaseValid(n.now) && n.quorum() && n.view.synced
}

// reconcile runs after every input: it compares the state with the
// directory view and emits what moves them closer.
func (n *Node) reconcile() {
	n.tickLease()
	n.updateCountdowns()
	n.tickHandoffs()
	n.reissueReads()
	n.cleanupStaging()
	for i := 0; i < n.cfg.Partitions; i++ {
		n.reconcilePartition(Partition(i))
	}
	if n.active() {
		n.revokeExpired()
	}
	n.checkDrained()
}

func (n *Node) reconcilePartition(p Partition) {
	rec, has := n.view.entry(p)
	if pt := n.parts[p]; pt != nil {
		if has {
			n.checkStillOwner(p, pt, rec)
		}
		if pt := n.parts[p]; pt != nil && pt.phase == phaseServing && n.active() {
			n.maybeStartHandoff(p, pt)
		}
		return
	}
	if _, busy := n.acquiring[p]; busy {
		return
	}
	if has && rec.entry.Owner != n.cfg.NodeID {
		n.collectGarbage(p, rec.entry)
	}
	if !n.active() || n.now.Before(n.retryAt[p]) {
		return
	}
	switch {
	case !has:
		n.maybeCreate(p)
	case rec.entry.Owner == n.cfg.NodeID:
		n.takeOwn(p, rec)
	default:
		n.maybeClaim(p, rec)
	}
}

// issue emits a KV operation and remembers why.
func (n *Node) issue(op KVOp, po *pendingOp) OpID {
	n.nextOp++
	op.ID = n.nextOp
	po.sentAt = n.now
	po.key = op.Key
	n.ops[op.ID] = po
	n.emit(op)
	return op.ID
}

func (n *Node) onResult(r KVResult) {
	po := n.ops[r.Op]
	if po == nil {
		return // forgotten (StopAll) or resolved another way
	}
	delete(n.ops, r.Op)
	switch po.purpose {
	case purposeRegisterRead:
		n.onRegisterRead(r)
	case purposeRegisterWrite:
		n.onRegisterWrite(po, r)
	case purposeRenew:
		n.onRenew(po, r)
	case purposeRenewRead:
		n.onRenewRead(r)
	case purposeRevoke:
		n.onRevoke(po, r)
	case purposeAcquire:
		n.onAcquire(r.Op, po, r)
	case purposeAcquireRead:
		n.onAcquireRead(r.Op, po, r)
	case purposeMove:
		n.onMove(r.Op, po, r)
	case purposeMoveRead:
		n.onMoveRead(r.Op, po, r)
	default:
		panic(fmt.Sprintf("ownership: op with purpose %d", po.purpose))
	}
}

type purpose uint8

const (
	purposeRegisterRead purpose = iota + 1
	purposeRegisterWrite
	purposeRenew
	purposeRenewRead
	purposeRevoke
	purposeAcquire
	purposeAcquireRead
	purposeMove
	purposeMoveRead
)

// pendingOp is what a Node remembers about an operation in flight.
type pendingOp struct {
	purpose purpose
	sentAt  time.Time // taken before sending: lease validity counts from here
	key     Key
	p       Partition
	peer    NodeID
	lease   Lease
	entry   Entry // value written
	acq     acquisition
}

func sortedKeys[K cmp.Ordered, V any](m map[K]V) []K {
	return slices.Sorted(maps.Keys(m))
}
