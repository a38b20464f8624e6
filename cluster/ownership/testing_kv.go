package ownership

// FakeKV is the in-memory directory bucket of the simulation (testing.go);
// the driver's tests may use it too.

import (
	"fmt"
	"slices"
	"time"
)

// KVChange is one write to the fake KV, in revision order.
type KVChange struct {
	Key   Key
	Rev   uint64
	Lease *Lease
	Entry *Entry
	At    time.Duration // simulated time of the write
}

// FakeKV is an in-memory directory bucket: create and compare-and-set with
// one revision counter for the whole bucket, as a JetStream KV has.
type FakeKV struct {
	rev  uint64
	vals map[Key]KVChange
	// Log holds every write, for watches.
	Log []KVChange
	// OnWrite, if set, sees each write with the previous value of its key.
	OnWrite func(c KVChange, prev *KVChange)
}

// NewFakeKV returns an empty bucket.
func NewFakeKV() *FakeKV { return &FakeKV{vals: map[Key]KVChange{}} }

// Apply executes op at once, at simulated time at.
func (kv *FakeKV) Apply(op KVOp, at time.Duration) KVResult {
	cur, ok := kv.vals[op.Key]
	switch op.Kind {
	case OpReadFromLeader:
		if !ok {
			return KVResult{Op: op.ID, Status: StatusNotFound}
		}
		return KVResult{Op: op.ID, Status: StatusOK, Rev: cur.Rev, Lease: clonePtr(cur.Lease), Entry: clonePtr(cur.Entry)}
	case OpCreate:
		if ok {
			return KVResult{Op: op.ID, Status: StatusMismatch}
		}
	case OpCompareAndSet:
		if !ok || cur.Rev != op.ExpectRev {
			return KVResult{Op: op.ID, Status: StatusMismatch}
		}
	default:
		panic(fmt.Sprintf("FakeKV: op kind %d", op.Kind))
	}
	kv.rev++
	c := KVChange{Key: op.Key, Rev: kv.rev, Lease: clonePtr(op.Lease), Entry: clonePtr(op.Entry), At: at}
	kv.vals[op.Key] = c
	kv.Log = append(kv.Log, c)
	if kv.OnWrite != nil {
		var prev *KVChange
		if ok {
			prev = &cur
		}
		kv.OnWrite(c, prev)
	}
	return KVResult{Op: op.ID, Status: StatusOK, Rev: kv.rev}
}

// Put overwrites a key whatever its revision (an operator's hand, or a
// directory that lost writes), as a new revision.
func (kv *FakeKV) Put(k Key, l *Lease, e *Entry, at time.Duration) uint64 {
	kv.rev++
	prev, had := kv.vals[k]
	c := KVChange{Key: k, Rev: kv.rev, Lease: clonePtr(l), Entry: clonePtr(e), At: at}
	kv.vals[k] = c
	kv.Log = append(kv.Log, c)
	if kv.OnWrite != nil {
		var pp *KVChange
		if had {
			pp = &prev
		}
		kv.OnWrite(c, pp)
	}
	return kv.rev
}

// Get returns the current value of a key.
func (kv *FakeKV) Get(k Key) (KVChange, bool) {
	c, ok := kv.vals[k]
	return c, ok
}

// Entry returns partition p's current entry.
func (kv *FakeKV) Entry(p Partition) (Entry, uint64, bool) {
	c, ok := kv.vals[EntryKey(p)]
	if !ok || c.Entry == nil {
		return Entry{}, 0, false
	}
	return *c.Entry, c.Rev, true
}

// Lease returns node n's current lease.
func (kv *FakeKV) Lease(n NodeID) (Lease, uint64, bool) {
	c, ok := kv.vals[LeaseKey(n)]
	if !ok || c.Lease == nil {
		return Lease{}, 0, false
	}
	return *c.Lease, c.Rev, true
}

// Snapshot returns the current value of every key, in revision order.
func (kv *FakeKV) Snapshot() []KVChange {
	out := make([]KVChange, 0, len(kv.vals))
	for _, c := range kv.vals {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b KVChange) int { return int(a.Rev) - int(b.Rev) })
	return out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// KVFault is what a SimConfig.KVFault hook does to one operation.
type KVFault struct {
	Fail      bool          // refused: StatusFailed, not applied
	LoseReply bool          // applied, but the node gets StatusUnknown
	Delay     time.Duration // reaches the leader this much later
	// ReplyDelay holds the reply back after the op was applied (past the
	// driver's OpTimeout it arrives as StatusUnknown).
	ReplyDelay time.Duration
}
