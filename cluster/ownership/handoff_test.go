package ownership

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// The old owner's move succeeds in the KV but its reply is lost. The old
// owner stays on hold and re-issues the compare-and-set against the same
// revision; that mismatches (its own write moved the revision), so it reads
// the entry from the leader, finds its own handoff ID, and finishes.
func TestHandoffMoveReplyLost(t *testing.T) {
	s := newSim(t, SimConfig{Seed: 21, Policy: waitAll})
	s.AutoTurns = 0.3
	p := ownedPartition(t, s, "a")
	e0 := entryOf(t, s, p)
	lost := 0
	s.KVFault = func(n NodeID, op KVOp) KVFault {
		if n == "a" && isMoveOf(op, p) && lost == 0 {
			lost++
			return KVFault{LoseReply: true}
		}
		return KVFault{}
	}
	s.StallWatch("a", true) // else a's watch may show the move before the re-issue
	s.Pin(p, "b")
	runUntil(t, s, "a finishing the handoff", func() bool {
		return len(outputsOf(s, "a", func(o ReleaseHeld) bool { return o.Partition == p })) > 0
	}, time.Minute)
	s.StallWatch("a", false)
	if !serves(s, "b", p) {
		t.Fatal("b does not serve the partition")
	}

	moves := outputsOf(s, "a", func(o KVOp) bool { return isMoveOf(o, p) })
	if len(moves) != 2 || moves[0].O.ExpectRev != moves[1].O.ExpectRev || *moves[0].O.Entry != *moves[1].O.Entry {
		t.Fatalf("want the same move issued twice, got %+v", moves)
	}
	hid := moves[0].O.Entry.HandoffID
	if e := entryOf(t, s, p); e != (Entry{Owner: "b", Epoch: e0.Epoch + 1, HandoffID: hid}) {
		t.Fatalf("entry is %+v", e)
	}
	reads := outputsOf(s, "a", func(o KVOp) bool { return o.Kind == OpReadFromLeader && o.Key == EntryKey(p) })
	if len(reads) != 1 || reads[0].At < moves[1].At {
		t.Fatalf("want one read after the re-issue, got %+v", reads)
	}
	// On hold all along: no Resume; the end of the handoff follows the read.
	if r := outputsOf(s, "a", func(o Resume) bool { return o.Partition == p }); len(r) != 0 {
		t.Fatal("a resumed the partition")
	}
	done := outputsOf(s, "a", func(o SendHandoffDone) bool { return o.Partition == p })
	rel := outputsOf(s, "a", func(o ReleaseHeld) bool { return o.Partition == p })
	wipe := outputsOf(s, "a", func(o Wipe) bool { return o.Partition == p })
	if len(done) != 1 || len(rel) != 1 || rel[0].O.NotOwner != "b" || len(wipe) == 0 || done[0].At < reads[0].At {
		t.Fatalf("finish: done %+v release %+v wipe %+v", done, rel, wipe)
	}
	s.RunFor(30 * time.Second)
}

// The old owner dies after its move and before telling the new owner (the
// HandoffDone message is lost too): the new owner serves as soon as its
// watch shows the entry naming it with the handoff ID whose staging it
// completed.
func TestOldOwnerDiesAfterMove(t *testing.T) {
	s := newSim(t, SimConfig{Seed: 22, Policy: waitAll})
	s.AutoTurns = 0.3
	p := ownedPartition(t, s, "a")
	e0 := entryOf(t, s, p)
	s.MsgFilter = func(from, to NodeID, in Input) bool { _, ok := in.(HandoffDone); return ok }
	s.OnOutput = func(n *SimNode, o Output) {
		if d, ok := o.(SendHandoffDone); ok && n.ID == "a" && d.Partition == p {
			s.Crash("a")
		}
	}
	s.Pin(p, "b")
	runUntil(t, s, "b serving the partition", func() bool { return serves(s, "b", p) }, time.Minute)
	if !s.Node("a").Crashed {
		t.Fatal("a did not get to its move")
	}
	e := entryOf(t, s, p)
	if e.Owner != "b" || e.Epoch != e0.Epoch+1 || e.HandoffID == "" {
		t.Fatalf("entry is %+v", e)
	}
	if got := outputsOf(s, "b", func(o PromoteStaging) bool { return o.HandoffID == e.HandoffID }); len(got) != 1 {
		t.Fatalf("b did not serve the staging of %s", e.HandoffID)
	}
	// The turns that follow check that b serves a's acknowledged writes.
	s.RunFor(20 * time.Second)
	s.Restart("a")
	s.RunFor(30 * time.Second)
}

// A handoff aborted after the new owner completed its staging (the
// acknowledgement and the abort message were lost): that staging is never
// served, and is dropped when superseded, by a new attempt or by the
// directory.
func TestAbortedHandoffStagingNeverServed(t *testing.T) {
	setup := func(t *testing.T, seed uint64) (*Sim, Partition, string) {
		s := newSim(t, SimConfig{Seed: seed, Policy: waitAll})
		s.AutoTurns = 0.3
		p := ownedPartition(t, s, "a")
		var first string
		s.MsgFilter = func(from, to NodeID, in Input) bool {
			switch in := in.(type) {
			case TransferAcked:
				if first == "" {
					first = in.HandoffID
				}
				return in.HandoffID == first
			case HandoffAborted:
				return in.HandoffID == first
			}
			return false
		}
		s.Pin(p, "b")
		runUntil(t, s, "the first attempt aborted", func() bool {
			return len(outputsOf(s, "a", func(o Resume) bool { return o.Partition == p })) > 0
		}, time.Minute)
		if st := s.Node("b").Disk.Staging[first]; st == nil || !st.Complete {
			t.Fatalf("b's staging of %s: %+v", first, st)
		}
		if !serves(s, "a", p) {
			t.Fatal("a does not serve the partition again after the abort")
		}
		return s, p, first
	}
	neverPromoted := func(t *testing.T, s *Sim, hid string) {
		if got := outputsOf(s, "b", func(o PromoteStaging) bool { return o.HandoffID == hid }); len(got) > 0 {
			t.Fatalf("b served the staging of aborted handoff %s", hid)
		}
		if got := outputsOf(s, "b", func(o DropStaging) bool { return o.HandoffID == hid }); len(got) != 1 {
			t.Fatalf("b did not drop the staging of aborted handoff %s", hid)
		}
		if _, ok := s.Node("b").Disk.Staging[hid]; ok {
			t.Fatal("the aborted staging is still on b's disk")
		}
	}

	t.Run("superseded by a new attempt", func(t *testing.T) {
		s, p, first := setup(t, 23)
		runUntil(t, s, "b serving the partition", func() bool { return serves(s, "b", p) }, time.Minute)
		neverPromoted(t, s, first)
		s.RunFor(20 * time.Second)
	})

	t.Run("superseded by the directory", func(t *testing.T) {
		s, p, first := setup(t, 24)
		s.Pin(p, "c") // the next attempt goes elsewhere
		runUntil(t, s, "c serving the partition", func() bool { return serves(s, "c", p) }, time.Minute)
		runUntil(t, s, "b dropping the stale staging", func() bool {
			_, ok := s.Node("b").Disk.Staging[first]
			return !ok
		}, 10*time.Second)
		neverPromoted(t, s, first)
		s.RunFor(20 * time.Second)
	})
}

// A turn already running when a handoff starts: the old owner holds new
// turns at once, but streams only after DrainedAndDurable, which comes when
// that turn has committed; the turn's commit check passes.
func TestHandoffWaitsForRunningTurn(t *testing.T) {
	s := newSim(t, SimConfig{Seed: 25, Policy: waitAll})
	p := ownedPartition(t, s, "a")
	if !s.StartTurn("a", p, 3*time.Second, "long") {
		t.Fatal("turn did not start")
	}
	started := s.Now()
	s.Pin(p, "b")
	runUntil(t, s, "b serving the partition", func() bool { return serves(s, "b", p) }, time.Minute)
	hold := outputsOf(s, "a", func(o Hold) bool { return o.Partition == p })
	xfer := outputsOf(s, "a", func(o StartTransfer) bool { return o.Partition == p })
	if len(hold) != 1 || hold[0].At > started+s.Cfg.Tick {
		t.Fatalf("hold: %+v", hold)
	}
	if len(xfer) != 1 || xfer[0].At < started+3*time.Second {
		t.Fatalf("transfer at %+v, before the running turn ended (%v)", xfer, started+3*time.Second)
	}
	if got := s.Calls["long"]; !slices.Equal(got, []string{"executed@a"}) {
		t.Fatalf("the running turn: %v", got)
	}
}

// Calls held during a handoff are answered NOT_OWNER with the new owner,
// never forwarded and never run by the old owner: the caller may already
// have retried elsewhere, where the call runs once. If the handoff aborts,
// the held calls run locally.
func TestHeldCallsGetNotOwner(t *testing.T) {
	t.Run("handoff completes", func(t *testing.T) {
		s := newSim(t, SimConfig{Seed: 26, Policy: waitAll})
		p := ownedPartition(t, s, "a")
		if !s.StartTurn("a", p, time.Second, "") { // keeps the hold open a while
			t.Fatal("turn did not start")
		}
		s.Pin(p, "b")
		s.RunFor(2 * s.Cfg.Tick)
		if s.Call("a", p, "c1") {
			t.Fatal("a ran a call while holding the partition")
		}
		runUntil(t, s, "b serving the partition", func() bool { return serves(s, "b", p) }, time.Minute)
		// The caller got NOT_OWNER(b) and retries there.
		if !s.Call("b", p, "c1") {
			t.Fatal("b refused the retried call")
		}
		want := []string{"held@a", "not-owner@a->b", "executed@b"}
		if got := s.Calls["c1"]; !slices.Equal(got, want) {
			t.Fatalf("call history %v, want %v", got, want)
		}
	})

	t.Run("handoff aborted", func(t *testing.T) {
		s := newSim(t, SimConfig{Seed: 27, Policy: waitAll})
		p := ownedPartition(t, s, "a")
		s.MsgFilter = func(from, to NodeID, in Input) bool { _, ok := in.(TransferAcked); return ok }
		s.StartTurn("a", p, time.Second, "")
		s.Pin(p, "b")
		s.RunFor(2 * s.Cfg.Tick)
		s.Call("a", p, "c2")
		runUntil(t, s, "the handoff aborted", func() bool {
			return len(outputsOf(s, "a", func(o Resume) bool { return o.Partition == p })) > 0
		}, time.Minute)
		if got := strings.Join(s.Calls["c2"], " "); got != "held@a resumed@a executed@a" {
			t.Fatalf("call history %q", got)
		}
	})
}

// Drain hands every owned partition off at once, each to its desired owner
// computed without the draining node, and reports Drained.
func TestDrain(t *testing.T) {
	s := newSim(t, SimConfig{Seed: 28, Policy: waitAll})
	s.AutoTurns = 0.3
	mine := servedBy(s, "a")
	s.SetMembers("b", "c") // membership shows a draining
	s.Drain("a")
	runUntil(t, s, "drained", func() bool { return s.Node("a").Drained }, time.Minute)
	s.RunFor(time.Second) // the last HandoffDone messages arrive
	holds := outputsOf[Hold](s, "a", nil)
	if len(holds) != len(mine) {
		t.Fatalf("%d holds for %d partitions", len(holds), len(mine))
	}
	for _, h := range holds {
		if h.At != holds[0].At {
			t.Fatal("partitions were not handed off in parallel")
		}
		want, _ := s.Placement().DesiredOwner(h.O.Partition, "a")
		if !serves(s, want, h.O.Partition) {
			t.Fatalf("partition %d not served by %s", h.O.Partition, want)
		}
	}
	if len(servedBy(s, "a")) != 0 {
		t.Fatal("a still serves after draining")
	}
}
