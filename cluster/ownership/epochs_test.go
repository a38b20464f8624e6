package ownership

import (
	"errors"
	"testing"
	"time"
)

// A node restarting with its disk before anybody claimed its partitions
// takes its lease (a new incarnation) and its partitions back in place:
// (itself, E) -> (itself, E+1) by compare-and-set, keeping its buckets.
func TestRestartWithDiskReclaimsInPlace(t *testing.T) {
	s := newSim(t, SimConfig{Seed: 31, Policy: resetAll})
	s.AutoTurns = 0.3
	s.RunFor(10 * time.Second)
	a := s.Node("a")
	mine := servedBy(s, "a")
	before := map[Partition]Entry{}
	for _, p := range mine {
		before[p] = entryOf(t, s, p)
	}
	claims := s.Stats.Claims
	s.Crash("a")
	s.RunFor(3 * time.Second)
	s.Restart("a")
	runUntil(t, s, "a serving its partitions again", func() bool {
		for _, p := range mine {
			if !serves(s, "a", p) {
				return false
			}
		}
		return true
	}, 10*time.Second)
	if l, _, _ := s.KV.Lease("a"); l.Incarnation != 2 || l.Revoked {
		t.Fatalf("a's lease is %+v", l)
	}
	for _, p := range mine {
		e := entryOf(t, s, p)
		if e != (Entry{Owner: "a", Epoch: before[p].Epoch + 1}) {
			t.Fatalf("partition %d: %+v, was %+v", p, e, before[p])
		}
		if w := outputsOf(s, "a", func(o Wipe) bool { return o.Partition == p }); len(w) > 0 && w[len(w)-1].Gen == a.Gen {
			t.Fatalf("a wiped partition %d after its restart", p)
		}
	}
	if s.Stats.Claims != claims {
		t.Fatal("somebody claimed a partition")
	}
	s.RunFor(20 * time.Second) // turns check that a's acknowledged writes are all there
}

// A node back after its partitions moved on (claimed, then handed around)
// wipes its stale buckets and never serves an old epoch: it gets partitions
// back only through new handoffs or claims.
func TestReturnAfterPartitionsMovedOn(t *testing.T) {
	s := newSim(t, SimConfig{Seed: 32, Policy: resetAll})
	s.AutoTurns = 0.3
	a := s.Node("a")
	mine := servedBy(s, "a")
	old := map[Partition]uint64{}
	for _, p := range mine {
		old[p] = entryOf(t, s, p).Epoch
	}
	s.Crash("a")
	s.SetMembers("b", "c") // membership sees a gone
	runUntil(t, s, "a's partitions claimed", s.AllServed, time.Minute)
	// Move them on once more, by handoff.
	for _, p := range mine {
		o, _, _ := s.Owner(p)
		if o == "b" {
			s.Pin(p, "c")
		} else {
			s.Pin(p, "b")
		}
	}
	s.RunFor(20 * time.Second)
	gen := a.Gen
	s.Restart("a")
	s.SetMembers("a", "b", "c") // and back: a's partitions come home by handoff
	runUntil(t, s, "a serving again", func() bool { return len(servedBy(s, "a")) > 0 }, time.Minute)
	s.RunFor(20 * time.Second)
	for _, p := range mine {
		wipes := outputsOf(s, "a", func(o Wipe) bool { return o.Partition == p && o.Epoch == 0 })
		if len(wipes) == 0 || wipes[0].Gen != gen {
			t.Fatalf("a did not wipe its stale bucket of partition %d after restarting", p)
		}
		for _, sv := range outputsOf(s, "a", func(o Serve) bool { return o.Partition == p }) {
			if sv.Gen == gen && sv.O.Epoch <= old[p]+2 {
				t.Fatalf("a served partition %d at epoch %d after coming back (it had %d)", p, sv.O.Epoch, old[p])
			}
		}
	}
}

// on_owner_loss: with wait, the claimant marks a lost owner's entry
// orphaned at the same epoch and nobody serves it until that owner comes
// back and takes it, with its data, at epoch+1; with reset, the claimant
// serves it at epoch+1 with a fresh state.
func TestOnOwnerLossWaitVsReset(t *testing.T) {
	policy := func(p Partition) OnOwnerLoss {
		if p%2 == 0 {
			return OwnerLossWait
		}
		return OwnerLossReset
	}
	s := newSim(t, SimConfig{Seed: 33, Nodes: []NodeID{"a", "b", "c"}, Partitions: 12, Policy: policy})
	s.AutoTurns = 0.3
	s.RunFor(10 * time.Second)
	mine := servedBy(s, "a")
	before := map[Partition]Entry{}
	var waits, resets int
	for _, p := range mine {
		before[p] = entryOf(t, s, p)
		if policy(p) == OwnerLossWait {
			waits++
		} else {
			resets++
		}
	}
	if waits == 0 || resets == 0 {
		t.Fatalf("a owns %v: need both policies", mine)
	}
	s.Crash("a")
	s.RunFor(2*s.Cfg.TTL + 10*time.Second)
	for _, p := range mine {
		e := entryOf(t, s, p)
		ids, _ := s.Serving(p)
		switch policy(p) {
		case OwnerLossWait:
			want := before[p]
			want.Orphaned = true
			if e != want || len(ids) != 0 {
				t.Fatalf("wait partition %d: entry %+v served by %v", p, e, ids)
			}
		case OwnerLossReset:
			if e.Owner == "a" || e.Epoch != before[p].Epoch+1 || e.HandoffID != "" || len(ids) != 1 {
				t.Fatalf("reset partition %d: entry %+v served by %v", p, e, ids)
			}
		}
	}
	s.Restart("a")
	runUntil(t, s, "every partition served", s.AllServed, time.Minute)
	for _, p := range mine {
		if policy(p) != OwnerLossWait {
			continue
		}
		if e := entryOf(t, s, p); e != (Entry{Owner: "a", Epoch: before[p].Epoch + 1}) {
			t.Fatalf("wait partition %d: %+v", p, e)
		}
	}
	// Turns on the wait partitions now check that no acknowledged write was
	// lost; on the reset ones, that the state started afresh.
	s.RunFor(30 * time.Second)
}

// The directory loses writes (restored from an old snapshot): a node never
// serves an epoch below one it has persisted, and says why.
func TestDirectoryRegression(t *testing.T) {
	s := newSim(t, SimConfig{Seed: 34, Policy: waitAll})
	s.AutoTurns = 0.3
	p := ownedPartition(t, s, "a")
	e0 := entryOf(t, s, p)
	// a restarts (in place: E+1), then the directory loses that write.
	s.Crash("a")
	s.RunFor(time.Second)
	s.Restart("a")
	runUntil(t, s, "a serving again", func() bool { return serves(s, "a", p) }, 10*time.Second)
	s.Crash("a")
	s.KV.Put(EntryKey(p), nil, &e0, s.Now())
	s.RunFor(time.Second)
	s.Restart("a")
	s.RunFor(10 * time.Second)
	if ids, _ := s.Serving(p); len(ids) != 0 {
		t.Fatalf("%v serve partition %d at a regressed epoch", ids, p)
	}
	var re *EpochRegressedError
	found := false
	for _, err := range s.Node("a").Alerts {
		if errors.As(err, &re) && re.Partition == p {
			found = true
		}
	}
	if !found {
		t.Fatalf("no EpochRegressedError alert: %v", s.Node("a").Alerts)
	}
}
