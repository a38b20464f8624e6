package ownership

import "fmt"

// Output is everything Step asks the driver to do. The driver executes the
// outputs of one Step in order, each completed before the next starts
// (a Persist is durable before the Serve that follows it), and before it
// lets turns run on the state the Step left.
type Output interface{ isOutput() }

// OpKind is the kind of a KV operation.
type OpKind uint8

// KV operation kinds.
const (
	// OpCreate writes Key only if absent (StatusMismatch if present).
	OpCreate OpKind = iota + 1
	// OpCompareAndSet writes Key only if its revision is ExpectRev.
	OpCompareAndSet
	// OpReadFromLeader reads Key through the stream leader (never a direct
	// get from a replica, which may be stale).
	OpReadFromLeader
)

func (k OpKind) String() string {
	switch k {
	case OpCreate:
		return "create"
	case OpCompareAndSet:
		return "cas"
	case OpReadFromLeader:
		return "read"
	}
	return "invalid"
}

// KVOp is one operation on the directory bucket. Exactly one of Lease and
// Entry is set for writes; both are nil for reads.
type KVOp struct {
	ID        OpID
	Kind      OpKind
	Key       Key
	ExpectRev uint64
	Lease     *Lease
	Entry     *Entry
	// Renewal marks a renewal of this node's own lease, so that the driver
	// can measure renewals apart from other writes.
	Renewal bool
}

// Persist records durably the highest epoch seen for a partition.
type Persist struct {
	Partition Partition
	Epoch     uint64
}

// Serve starts serving a partition at an epoch: the driver opens its local
// bucket (an empty one if there is none) and stamps it with Epoch.
type Serve struct {
	Partition Partition
	Epoch     uint64
}

// Stop stops serving a partition (its local bucket stays).
type Stop struct {
	Partition Partition
}

// StopAll stops serving every partition at once: the lease was revoked.
type StopAll struct{}

// Wipe deletes a partition's local bucket. With Epoch > 0 it leaves in its
// place an empty bucket stamped Epoch: the fresh state of a claim or a
// creation, prepared before the compare-and-set that makes it the
// partition's data, so that a crash after the compare-and-set finds the
// right (empty) data on disk.
type Wipe struct {
	Partition Partition
	Epoch     uint64
}

// Stamp records durably that the local bucket holds the partition's state
// at Epoch (it came there by an in-place move whose Serve never ran). It
// serves nothing.
type Stamp struct {
	Partition Partition
	Epoch     uint64
}

// PromoteStaging makes the staging bucket of HandoffID the partition's local
// bucket (replacing any), stamped with Epoch.
type PromoteStaging struct {
	HandoffID string
	Partition Partition
	Epoch     uint64
}

// DropStaging deletes the staging bucket of HandoffID, aborting its transfer
// if it is still running.
type DropStaging struct {
	HandoffID string
}

// Hold stops starting turns on a partition: new calls wait; running turns
// finish; the driver answers DrainedAndDurable when they have and the last
// write is durable. CanServe stays true until then so their commit checks
// pass.
type Hold struct {
	Partition Partition
}

// Resume ends a Hold whose handoff was aborted: held calls run here.
type Resume struct {
	Partition Partition
}

// ReleaseHeld ends a Hold: every held call is answered NOT_OWNER with
// NotOwner as the hint ("" when unknown). Never forwarded: the caller may
// already have retried elsewhere.
type ReleaseHeld struct {
	Partition Partition
	NotOwner  NodeID
}

// StartTransfer streams the partition's bucket (at Epoch) to Target, in
// chunks each in its own short read transaction, into a fresh staging
// bucket named HandoffID, epoch marker last.
type StartTransfer struct {
	HandoffID string
	Partition Partition
	Epoch     uint64
	Target    NodeID
}

// AbortTransfer cancels a transfer and tells Target (HandoffAborted; the
// message may be lost).
type AbortTransfer struct {
	HandoffID string
	Partition Partition
	Target    NodeID
}

// AckTransfer acknowledges a complete staging bucket to the old owner (who
// gets TransferAcked).
type AckTransfer struct {
	HandoffID string
	To        NodeID
}

// SendHandoffDone tells the new owner that the entry names it (it gets
// HandoffDone; the message may be lost).
type SendHandoffDone struct {
	To        NodeID
	HandoffID string
	Partition Partition
	Epoch     uint64
}

// Drained tells that a Drain finished: this node owns nothing.
type Drained struct{}

// Alert reports a condition an operator must see (typed errors of this
// package). It changes nothing.
type Alert struct {
	Err error
}

func (KVOp) isOutput()            {}
func (Persist) isOutput()         {}
func (Serve) isOutput()           {}
func (Stop) isOutput()            {}
func (StopAll) isOutput()         {}
func (Wipe) isOutput()            {}
func (Stamp) isOutput()           {}
func (PromoteStaging) isOutput()  {}
func (DropStaging) isOutput()     {}
func (Hold) isOutput()            {}
func (Resume) isOutput()          {}
func (ReleaseHeld) isOutput()     {}
func (StartTransfer) isOutput()   {}
func (AbortTransfer) isOutput()   {}
func (AckTransfer) isOutput()     {}
func (SendHandoffDone) isOutput() {}
func (Drained) isOutput()         {}
func (Alert) isOutput()           {}

func (o KVOp) String() string {
	s := fmt.Sprintf("op#%d %s %s", o.ID, o.Kind, o.Key)
	if o.Kind == OpCompareAndSet {
		s += fmt.Sprintf("@%d", o.ExpectRev)
	}
	if o.Lease != nil {
		s += fmt.Sprintf(" %+v", *o.Lease)
	}
	if o.Entry != nil {
		s += fmt.Sprintf(" %+v", *o.Entry)
	}
	return s
}
