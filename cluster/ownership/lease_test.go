package ownership

import (
	"testing"
	"time"
)

// A renewal and a revocation race for the same revision: the KV's
// compare-and-set picks one. Either way no two nodes serve at once.
func TestRenewalRacesRevocation(t *testing.T) {
	t.Run("revocation first: the renewal mismatches, the node stops everything and re-registers", func(t *testing.T) {
		s := newSim(t, SimConfig{Seed: 11, Policy: resetAll})
		s.AutoTurns = 0.2
		a := s.Node("a")
		mine := servedBy(s, "a")
		inc := a.M.Incarnation()
		before := map[Partition]uint64{}
		for _, p := range mine {
			before[p] = entryOf(t, s, p).Epoch
		}
		s.CutKV("a", true) // a's renewals fail; the others' succeed, so they count down
		runUntil(t, s, "revocation of a", func() bool { l, _, _ := s.KV.Lease("a"); return l.Revoked }, time.Minute)
		revokedAt := s.Now()
		for _, p := range mine {
			if e, ok := a.M.Epoch(p); ok && a.M.CanServe(p, e, s.LocalNow(a)) {
				t.Fatalf("a can still serve partition %d when its lease is revoked", p)
			}
		}
		// a's next renewal expects the revision the revocation replaced. Its
		// watch lags, so the renewal's mismatch is what tells it.
		s.StallWatch("a", true)
		s.CutKV("a", false)
		runUntil(t, s, "a re-registered", func() bool { return a.M.Incarnation() > inc }, time.Minute)
		s.StallWatch("a", false)
		stops := outputsOf[StopAll](s, "a", nil)
		renewals := outputsOf(s, "a", func(o KVOp) bool { return isRenewalOf(o, "a") && o.Lease.Incarnation == inc })
		if len(stops) != 1 || len(renewals) == 0 || stops[0].At < renewals[len(renewals)-1].At || renewals[len(renewals)-1].At < revokedAt {
			t.Fatalf("a's StopAll %+v should follow its renewal after the revocation (at %v): %+v", stops, revokedAt, renewals)
		}
		runUntil(t, s, "every partition served", s.AllServed, time.Minute)
		for _, p := range mine {
			if e := entryOf(t, s, p); e.Epoch <= before[p] {
				t.Fatalf("partition %d still at epoch %d after its owner's lease was revoked", p, e.Epoch)
			}
		}
	})

	t.Run("renewal first: the revocation mismatches, the claimant counts again, nothing moves", func(t *testing.T) {
		s := newSim(t, SimConfig{Seed: 12, Policy: resetAll})
		s.AutoTurns = 0.2
		a := s.Node("a")
		mine := servedBy(s, "a")
		inc := a.M.Incarnation()
		before := map[Partition]Entry{}
		for _, p := range mine {
			before[p] = entryOf(t, s, p)
		}
		s.CutKV("a", true)
		revokes := 0
		s.KVFault = func(n NodeID, op KVOp) KVFault {
			if isRevokeOf(op, "a") {
				revokes++
				// a gets through to the KV again just as the revocation is
				// sent; its renewal, sent later, reaches the leader first.
				s.CutKV("a", false)
				return KVFault{Delay: 2 * time.Second}
			}
			return KVFault{}
		}
		runUntil(t, s, "a revocation attempt", func() bool { return revokes > 0 }, time.Minute)
		s.RunFor(time.Minute)
		if l, _, _ := s.KV.Lease("a"); l.Revoked {
			t.Fatal("a's lease was revoked although a renewed first")
		}
		if a.M.Incarnation() != inc || len(outputsOf[StopAll](s, "a", nil)) != 0 {
			t.Fatal("a lost its lease")
		}
		for _, p := range mine {
			if e := entryOf(t, s, p); e != before[p] || !serves(s, "a", p) {
				t.Fatalf("partition %d moved to %+v", p, e)
			}
		}
	})
}

// A node frozen longer than its lease must not serve when it wakes up,
// before it has even run; its first renewal mismatches (revoked meanwhile),
// so it stops everything and registers again.
func TestLongPauseLeaseLapsed(t *testing.T) {
	s := newSim(t, SimConfig{Seed: 13, Policy: resetAll})
	s.AutoTurns = 0.2
	a := s.Node("a")
	mine := servedBy(s, "a")
	inc := a.M.Incarnation()
	s.Pause("a")
	s.RunFor(3 * s.Cfg.TTL)
	if l, _, _ := s.KV.Lease("a"); !l.Revoked {
		t.Fatal("a's lease was not revoked during its pause")
	}
	// Woken up, with its state as it was before the pause: the lease has
	// lapsed by the clock, which ran during the pause.
	for _, p := range mine {
		e, ok := a.M.Epoch(p)
		if ok && a.M.CanServe(p, e, s.LocalNow(a)) {
			t.Fatalf("a could serve partition %d right after its pause", p)
		}
	}
	resumed := s.Now()
	s.StallWatch("a", true) // its renewal's mismatch, not its watch, must tell it
	s.Resume("a")
	runUntil(t, s, "a re-registered", func() bool { return a.M.Incarnation() > inc }, 30*time.Second)
	s.StallWatch("a", false)
	stops := outputsOf[StopAll](s, "a", nil)
	renewals := outputsOf(s, "a", func(o KVOp) bool { return isRenewalOf(o, "a") && o.Lease.Incarnation == inc })
	if len(stops) != 1 || stops[0].At < resumed || renewals[len(renewals)-1].At < resumed {
		t.Fatalf("a's StopAll %+v should follow a renewal after it woke up: %+v", stops, renewals)
	}
	runUntil(t, s, "every partition served", s.AllServed, time.Minute)
	s.RunFor(30 * time.Second) // a's partitions come back to it by handoff
}

// A JetStream leader election longer than a TTL: nobody can renew, every
// lease lapses (nobody serves), but no countdown runs while a node's own
// renewals fail, so when the KV is back nobody revokes or claims anything.
func TestLeaderChangeLongerThanTTL(t *testing.T) {
	s := newSim(t, SimConfig{Seed: 14, Policy: resetAll})
	s.AutoTurns = 0.2
	before := map[Partition]Entry{}
	for p := Partition(0); p < 8; p++ {
		before[p] = entryOf(t, s, p)
	}
	s.KVUnavailable(2 * s.Cfg.TTL)
	s.RunFor(s.Cfg.TTL + 2*s.Cfg.Epsilon)
	if ids, _ := s.Serving(0); len(ids) != 0 {
		t.Fatalf("%v still serve with the KV down for longer than a lease", ids)
	}
	s.RunFor(s.Cfg.TTL + time.Minute)
	for _, id := range abc {
		if l, _, _ := s.KV.Lease(id); l.Revoked || l.Incarnation != 1 {
			t.Fatalf("lease of %s is %+v", id, l)
		}
		if r := outputsOf(s, id, func(o KVOp) bool { return o.Lease != nil && o.Lease.Revoked }); len(r) > 0 {
			t.Fatalf("%s tried to revoke a lease: %+v", id, r[0].O)
		}
	}
	for p := Partition(0); p < 8; p++ {
		if e := entryOf(t, s, p); e != before[p] {
			t.Fatalf("partition %d moved from %+v to %+v", p, before[p], e)
		}
	}
	if !s.AllServed() {
		t.Fatal("partitions not served again after the election")
	}
}

// A node that cannot reach a majority of the lease holders over gRPC stops
// renewing (while the KV is reachable for it): its lease lapses and the
// majority takes its partitions.
func TestQuorumLossStopsRenewing(t *testing.T) {
	s := newSim(t, SimConfig{Seed: 15, Policy: resetAll})
	s.AutoTurns = 0.2
	s.RunFor(time.Minute) // several renewals each
	a := s.Node("a")
	mine := servedBy(s, "a")
	s.Isolate("a")
	s.RunFor(s.Cfg.Tick) // a learns from its pings
	cutAt := s.Now()
	s.RunFor(2 * s.Cfg.TTL)
	if r := outputsOf(s, "a", func(o KVOp) bool { return isRenewalOf(o, "a") }); len(r) > 0 && r[len(r)-1].At > cutAt {
		t.Fatalf("a renewed at %v without a quorum (cut at %v)", r[len(r)-1].At, cutAt)
	}
	for _, id := range []NodeID{"b", "c"} {
		if r := outputsOf(s, id, func(o KVOp) bool { return isRenewalOf(o, id) }); len(r) == 0 || r[len(r)-1].At < cutAt+s.Cfg.TTL {
			t.Fatalf("%s stopped renewing: it holds a majority", id)
		}
	}
	for _, p := range mine {
		if e := entryOf(t, s, p); e.Owner == "a" {
			t.Fatalf("partition %d still names a", p)
		}
		if e, ok := a.M.Epoch(p); ok && a.M.CanServe(p, e, s.LocalNow(a)) {
			t.Fatalf("a can serve partition %d", p)
		}
	}
	runUntil(t, s, "every partition served by the majority", s.AllServed, time.Minute)
	s.HealNetwork()
	runUntil(t, s, "a back", func() bool { return len(servedBy(s, "a")) > 0 }, time.Minute)
}
