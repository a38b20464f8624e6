package ownership

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestRandomized runs seeded simulations with random faults (pauses,
// crashes with restarts, message loss, lost KV replies, refused KV ops,
// leader elections, network cuts, membership changes, drains) and checks the
// safety invariants after every event (Sim.Check, and the lineage check of
// every turn). After healing everything it checks liveness: every partition
// ends served by exactly one node. HOLDFAST_SIM_SEED=n replays one seed
// verbosely; HOLDFAST_SIM_SEEDS=k and HOLDFAST_SIM_FIRST=n run k seeds from n.
func TestRandomized(t *testing.T) {
	seeds := 10
	if testing.Short() {
		seeds = 3
	}
	if v := os.Getenv("HOLDFAST_SIM_SEEDS"); v != "" {
		var err error
		if seeds, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	if v := os.Getenv("HOLDFAST_SIM_SEED"); v != "" {
		seed, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		runRandom(t, seed, true)
		return
	}
	first := uint64(1)
	if v := os.Getenv("HOLDFAST_SIM_FIRST"); v != "" {
		var err error
		if first, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	for seed := first; seed < first+uint64(seeds); seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runRandom(t, seed, false) })
	}
}

func runRandom(t *testing.T, seed uint64, verbose bool) {
	nodes := []NodeID{"a", "b", "c", "d"}
	s := NewSim(t, SimConfig{
		Seed: seed, Nodes: nodes, Partitions: 8,
		Policy: func(p Partition) OnOwnerLoss { return OnOwnerLoss(p % 2) },
		// A driver timeout longer than 2ε, so that a reply held back that
		// long still arrives: lease validity must count from the send time.
		Epsilon: 500 * time.Millisecond, OpTimeout: 2 * time.Second,
		DriftPPM: map[NodeID]int64{"a": 100, "b": -100, "c": 50, "d": 0},
	})
	s.Verbose = verbose
	s.Start()
	s.AutoTurns = 0.2
	s.MsgLoss, s.ReplyLoss, s.OpFail = 0.05, 0.03, 0.02
	s.MaxReplyDelay = 1900 * time.Millisecond
	r := s.Rng
	dur := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo))) }
	pick := func() NodeID { return nodes[r.IntN(len(nodes))] }
	without := func(id NodeID) []NodeID {
		var rest []NodeID
		for _, n := range nodes {
			if n != id {
				rest = append(rest, n)
			}
		}
		return rest
	}

	for i := 0; i < 600; i++ {
		if r.IntN(100) < 12 {
			switch r.IntN(9) {
			case 0, 1:
				id := pick()
				s.Pause(id)
				s.After(dur(time.Second, 40*time.Second), func() { s.Resume(id) })
			case 2:
				id := pick()
				s.Crash(id)
				s.After(dur(time.Second, 60*time.Second), func() { s.Restart(id) })
			case 3:
				s.KVUnavailable(dur(time.Second, 30*time.Second))
			case 4:
				id := pick()
				s.Isolate(id)
				s.After(dur(time.Second, 40*time.Second), s.HealNetwork)
			case 5:
				id := pick()
				s.CutKV(id, true)
				s.After(dur(time.Second, 30*time.Second), func() { s.CutKV(id, false) })
			case 6:
				id := pick()
				s.SetMembers(without(id)...)
				s.After(dur(5*time.Second, 60*time.Second), func() { s.SetMembers(nodes...) })
			case 8:
				// A lagging watch: the node acts on a stale view while its
				// own operations go through.
				id := pick()
				s.StallWatch(id, true)
				s.After(dur(time.Second, 40*time.Second), func() { s.StallWatch(id, false) })
			case 7:
				// A drain (membership shows the node leaving), then the
				// process exits and comes back later.
				id := pick()
				s.SetMembers(without(id)...)
				s.Drain(id)
				s.After(dur(5*time.Second, 30*time.Second), func() {
					s.Crash(id)
					s.After(dur(time.Second, 30*time.Second), func() {
						s.Restart(id)
						s.SetMembers(nodes...)
					})
				})
			}
		}
		s.RunFor(time.Second)
	}

	// Heal everything, let pending fault timers fire, then demand liveness.
	s.MsgLoss, s.ReplyLoss, s.OpFail, s.MaxReplyDelay = 0, 0, 0, 0
	s.RunFor(70 * time.Second)
	for _, id := range nodes {
		s.Restart(id)
		s.Resume(id)
		s.CutKV(id, false)
		s.StallWatch(id, false)
	}
	s.HealNetwork()
	s.SetMembers(nodes...)
	if !s.RunUntil(s.AllServed, 3*time.Minute) {
		var b []string
		for p := 0; p < 8; p++ {
			e, rev, _ := s.KV.Entry(Partition(p))
			ids, es := s.Serving(Partition(p))
			b = append(b, fmt.Sprintf("p%d entry %+v@%d serving %v %v", p, e, rev, ids, es))
		}
		for _, id := range nodes {
			l, rev, _ := s.KV.Lease(id)
			b = append(b, fmt.Sprintf("%s lease %+v@%d alerts %v", id, l, rev, s.Node(id).Alerts))
		}
		t.Fatalf("seed %d: not every partition is served after healing:\n%s", seed, joinLines(b))
	}
	s.RunFor(30 * time.Second)
	if s.Stats.TurnsAcked == 0 {
		t.Fatalf("seed %d: no turn ever acknowledged", seed)
	}
	t.Logf("seed %d: %+v", seed, s.Stats)
}

func joinLines(b []string) string {
	out := ""
	for _, l := range b {
		out += l + "\n"
	}
	return out
}
