package ownership

import (
	"fmt"
	"strconv"
)

// NodeID is a node's stable name (the StatefulSet pod name).
type NodeID string

// Partition is a partition number in [0, Config.Partitions).
type Partition uint32

// OpID names one KV operation emitted by a Node, so that the driver's
// KVResult can be matched with it. IDs are unique within one Node value only:
// a restarted process starts again from 1, and the driver must never deliver
// a result to a Node other than the one that emitted the operation.
type OpID uint64

// Entry is the directory's record of who owns a partition.
type Entry struct {
	// Owner is the node that may serve the partition at Epoch.
	Owner NodeID
	// Epoch rises by one at every change of owner or of local data.
	Epoch uint64
	// HandoffID names the handoff that produced this epoch ("" for a claim,
	// a creation or an in-place move): the new owner's staging bucket for
	// that ID is the only data that may be served at this epoch.
	HandoffID string
	// Orphaned marks an entry whose owner lost its lease under
	// on_owner_loss=wait: nobody serves it until Owner, back with its disk,
	// moves it to Epoch+1.
	Orphaned bool
}

// Lease is the value of a node's lease key. Revocation rewrites it with
// Revoked set (it is never deleted), so that a restarting node can tell a
// revoked lease from one that never existed.
type Lease struct {
	NodeID      NodeID
	Incarnation uint64
	Nonce       string
	Revoked     bool
}

// KeyKind tells lease keys from partition keys.
type KeyKind uint8

// Key kinds.
const (
	LeaseKeyKind KeyKind = iota + 1
	EntryKeyKind
)

// Key is a directory key: one lease key per node, one entry key per
// partition. It is structured so that nobody parses strings; String gives the
// KV bucket's key.
type Key struct {
	Kind      KeyKind
	Node      NodeID    // LeaseKeyKind
	Partition Partition // EntryKeyKind
}

// LeaseKey is node n's lease key.
func LeaseKey(n NodeID) Key { return Key{Kind: LeaseKeyKind, Node: n} }

// EntryKey is partition p's entry key.
func EntryKey(p Partition) Key { return Key{Kind: EntryKeyKind, Partition: p} }

// String returns the KV key ("lease.<node>" or "part.<p>").
func (k Key) String() string {
	switch k.Kind {
	case LeaseKeyKind:
		return "lease." + string(k.Node)
	case EntryKeyKind:
		return "part." + strconv.FormatUint(uint64(k.Partition), 10)
	}
	return fmt.Sprintf("invalid-key(%d)", k.Kind)
}

// OnOwnerLoss is what happens to a partition whose owner lost its lease.
// The zero value is Wait: by default no state is ever thrown away.
type OnOwnerLoss uint8

const (
	// OwnerLossWait marks the entry Orphaned at the same epoch; only the old
	// owner, back with its disk, takes it again.
	OwnerLossWait OnOwnerLoss = iota
	// OwnerLossReset lets the desired owner take the partition at a new
	// epoch with a fresh, empty bucket.
	OwnerLossReset
)

func (o OnOwnerLoss) String() string {
	if o == OwnerLossReset {
		return "reset"
	}
	return "wait"
}

// Placement is the desired map, computed by the caller (consistent hashing
// over the serving members). It must be deterministic: the same question gets
// the same answer until the caller sends SetPlacement.
type Placement interface {
	// DesiredOwner returns the node that should own p among the members,
	// leaving out the node without (none left out when empty). ok is false
	// when no member is eligible.
	DesiredOwner(p Partition, without NodeID) (owner NodeID, ok bool)
}

// Disk is what a starting node finds in its data directory. The driver reads
// it before New; the Node keeps its own copy up to date from then on through
// the outputs it emits.
type Disk struct {
	// Buckets gives, per partition with a local bucket, the epoch stamped on
	// it (the epoch it was last served at).
	Buckets map[Partition]uint64
	// Highest is the persisted highest epoch seen, per partition.
	Highest map[Partition]uint64
	// Staging lists the staging buckets left by handoffs to this node.
	Staging []StagedHandoff
}

// StagedHandoff describes one staging bucket on disk.
type StagedHandoff struct {
	HandoffID string
	Partition Partition
	FromEpoch uint64 // the old owner's epoch; the data is served at FromEpoch+1
	From      NodeID
	Complete  bool // the epoch marker carrying HandoffID was written last
}
