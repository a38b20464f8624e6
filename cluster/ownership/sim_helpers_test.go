package ownership

import (
	"testing"
	"time"
)

var abc = []NodeID{"a", "b", "c"}

func resetAll(Partition) OnOwnerLoss { return OwnerLossReset }
func waitAll(Partition) OnOwnerLoss  { return OwnerLossWait }

// newSim boots a cluster and waits until every partition is served.
func newSim(t *testing.T, cfg SimConfig) *Sim {
	t.Helper()
	if cfg.Nodes == nil {
		cfg.Nodes = abc
	}
	s := NewSim(t, cfg)
	s.Start()
	if !s.RunUntil(s.AllServed, time.Minute) {
		t.Fatalf("cluster never served every partition")
	}
	s.RunFor(2 * time.Second) // let every view settle
	return s
}

type got[T Output] struct {
	At  time.Duration
	Gen int
	O   T
}

// outputsOf returns node id's outputs of type T that keep accepts (nil: all).
func outputsOf[T Output](s *Sim, id NodeID, keep func(T) bool) []got[T] {
	var out []got[T]
	for _, l := range s.Node(id).Log {
		if o, ok := l.Out.(T); ok && (keep == nil || keep(o)) {
			out = append(out, got[T]{At: l.At, Gen: l.Gen, O: o})
		}
	}
	return out
}

// servedBy returns the partitions node id can serve now.
func servedBy(s *Sim, id NodeID) []Partition {
	var ps []Partition
	for p := 0; p < s.Cfg.Partitions; p++ {
		if o, _, ok := s.Owner(Partition(p)); ok && o == id {
			ps = append(ps, Partition(p))
		}
	}
	return ps
}

// ownedPartition returns one partition node id serves, or fails.
func ownedPartition(t *testing.T, s *Sim, id NodeID) Partition {
	t.Helper()
	ps := servedBy(s, id)
	if len(ps) == 0 {
		t.Fatalf("%s serves nothing", id)
	}
	return ps[0]
}

func entryOf(t *testing.T, s *Sim, p Partition) Entry {
	t.Helper()
	e, _, ok := s.KV.Entry(p)
	if !ok {
		t.Fatalf("partition %d has no entry", p)
	}
	return e
}

func isRevokeOf(op KVOp, id NodeID) bool {
	return op.Key == LeaseKey(id) && op.Lease != nil && op.Lease.Revoked
}

func isRenewalOf(op KVOp, id NodeID) bool {
	return op.Kind == OpCompareAndSet && op.Key == LeaseKey(id) && op.Lease != nil && op.Lease.NodeID == id && !op.Lease.Revoked
}

func isMoveOf(op KVOp, p Partition) bool {
	return op.Kind == OpCompareAndSet && op.Key == EntryKey(p) && op.Entry != nil && op.Entry.HandoffID != ""
}

// runUntil fails the test if cond does not hold within limit.
func runUntil(t *testing.T, s *Sim, what string, cond func() bool, limit time.Duration) {
	t.Helper()
	if !s.RunUntil(cond, limit) {
		t.Fatalf("seed %d: %s did not happen within %v (now %v)", s.Cfg.Seed, what, limit, s.Now())
	}
}

func serves(s *Sim, id NodeID, p Partition) bool {
	o, _, ok := s.Owner(p)
	return ok && o == id
}
