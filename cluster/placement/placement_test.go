package placement

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/holdfast/holdfast/cluster/ownership"
)

func nodes(from, to int) []ownership.NodeID {
	var ms []ownership.NodeID
	for i := from; i <= to; i++ {
		ms = append(ms, ownership.NodeID(fmt.Sprintf("node-%d", i)))
	}
	return ms
}

func mustNew(t *testing.T, p Params, ms []ownership.NodeID) *Placement {
	t.Helper()
	pl, err := New(p, ms)
	if err != nil {
		t.Fatalf("New(%v, %d members): %v", p, len(ms), err)
	}
	return pl
}

func owners(t *testing.T, pl *Placement, without ownership.NodeID) []ownership.NodeID {
	t.Helper()
	out := make([]ownership.NodeID, pl.Params().Partitions)
	for p := range out {
		o, ok := pl.DesiredOwner(ownership.Partition(p), without)
		if !ok {
			t.Fatalf("partition %d without %q: no owner", p, without)
		}
		out[p] = o
	}
	return out
}

func TestValidate(t *testing.T) {
	if err := DefaultParams().Validate(); err != nil {
		t.Fatalf("default params: %v", err)
	}
	bad := []Params{
		{Partitions: 0, ReplicationFactor: 20, LoadFactor: 1.25},
		{Partitions: MaxPartitions + 1, ReplicationFactor: 20, LoadFactor: 1.25},
		{Partitions: 2048, ReplicationFactor: 0, LoadFactor: 1.25},
		{Partitions: 2048, ReplicationFactor: 20, LoadFactor: 0.99},
		{Partitions: 2048, ReplicationFactor: 20, LoadFactor: math.NaN()},
		{Partitions: 2048, ReplicationFactor: 20, LoadFactor: math.Inf(1)},
	}
	for _, p := range bad {
		if err := p.Validate(); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidParams", p, err)
		}
		if _, err := New(p, nodes(1, 3)); !errors.Is(err, ErrInvalidParams) {
			t.Errorf("New(%+v) = %v, want ErrInvalidParams", p, err)
		}
	}
}

func TestDeterministicAcrossOrders(t *testing.T) {
	p := DefaultParams()
	ms := nodes(1, 9)
	want := owners(t, mustNew(t, p, ms), "")
	wantWithout := owners(t, mustNew(t, p, ms), "node-4")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 10 {
		shuffled := append([]ownership.NodeID(nil), ms...)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		// Duplicates and empty names do not change the answer.
		shuffled = append(shuffled, shuffled[0], "")
		pl := mustNew(t, p, shuffled)
		got := owners(t, pl, "")
		gotWithout := owners(t, pl, "node-4")
		for part := range want {
			if got[part] != want[part] || gotWithout[part] != wantWithout[part] {
				t.Fatalf("order %d: partition %d: got %s/%s, want %s/%s", i, part, got[part], gotWithout[part], want[part], wantWithout[part])
			}
		}
		if len(pl.Members()) != len(ms) {
			t.Fatalf("members %v", pl.Members())
		}
	}
}

func TestZeroMembers(t *testing.T) {
	pl := mustNew(t, DefaultParams(), nil)
	if o, ok := pl.DesiredOwner(0, ""); ok {
		t.Fatalf("zero members: owner %q", o)
	}
	if len(pl.Owners()) != 0 || len(pl.Members()) != 0 {
		t.Fatalf("zero members: owners %v members %v", pl.Owners(), pl.Members())
	}
	one := mustNew(t, DefaultParams(), nodes(1, 1))
	if o, ok := one.DesiredOwner(7, "node-1"); ok {
		t.Fatalf("only member left out: owner %q", o)
	}
	if o, ok := one.DesiredOwner(7, ""); !ok || o != "node-1" {
		t.Fatalf("single member: %q %v", o, ok)
	}
}

func TestOutOfRangePartition(t *testing.T) {
	pl := mustNew(t, Params{Partitions: 16, ReplicationFactor: 20, LoadFactor: 1.25}, nodes(1, 3))
	if _, ok := pl.DesiredOwner(15, ""); !ok {
		t.Fatal("last partition has no owner")
	}
	if o, ok := pl.DesiredOwner(16, ""); ok {
		t.Fatalf("partition 16 of 16: owner %q", o)
	}
}

// bound is the library's load bound: ceil(partitions/members * load).
func bound(p Params, members int) int {
	return int(math.Ceil(float64(p.Partitions) / float64(members) * p.LoadFactor))
}

func TestBoundedLoad(t *testing.T) {
	for _, p := range []Params{DefaultParams(), {Partitions: 271, ReplicationFactor: 20, LoadFactor: 1.0}, {Partitions: 64, ReplicationFactor: 3, LoadFactor: 1.1}} {
		for n := 1; n <= 16; n++ {
			ms := nodes(1, n)
			pl := mustNew(t, p, ms)
			total := 0
			for m, c := range pl.Owners() {
				if c > bound(p, n) {
					t.Errorf("%+v n=%d: %s owns %d > %d", p, n, m, c, bound(p, n))
				}
				total += c
			}
			if total != p.Partitions {
				t.Errorf("%+v n=%d: %d partitions owned, want %d", p, n, total, p.Partitions)
			}
			if n < 2 {
				continue
			}
			// The map without a member is bounded among the others.
			counts := map[ownership.NodeID]int{}
			for _, o := range owners(t, pl, ms[n/2]) {
				counts[o]++
			}
			for m, c := range counts {
				if c > bound(p, n-1) {
					t.Errorf("%+v n=%d without %s: %s owns %d > %d", p, n, ms[n/2], m, c, bound(p, n-1))
				}
			}
		}
	}
}

// Adding a member moves few partitions, almost all of them to the new member.
func TestMinimalMovementOnAdd(t *testing.T) {
	p := DefaultParams()
	for n := 2; n <= 20; n++ {
		before := owners(t, mustNew(t, p, nodes(1, n)), "")
		newcomer := ownership.NodeID(fmt.Sprintf("node-%d", n+1))
		after := owners(t, mustNew(t, p, nodes(1, n+1)), "")
		moved, elsewhere := 0, 0
		for part := range before {
			if before[part] != after[part] {
				moved++
				if after[part] != newcomer {
					elsewhere++
				}
			}
		}
		frac := float64(moved) / float64(p.Partitions)
		if limit := 2 / float64(n+1); frac > limit {
			t.Errorf("n=%d->%d: %.3f of partitions moved, want <= %.3f", n, n+1, frac, limit)
		}
		if frac == 0 {
			t.Errorf("n=%d->%d: nothing moved to the new member", n, n+1)
		}
		if e := float64(elsewhere) / float64(p.Partitions); e > 0.02 {
			t.Errorf("n=%d->%d: %.3f of partitions moved between old members, want <= 0.02", n, n+1, e)
		}
	}
}

// Leaving a member out moves its partitions and few others; the answer never
// names the member left out, and equals a placement built without it.
func TestWithout(t *testing.T) {
	p := DefaultParams()
	ms := nodes(1, 12)
	pl := mustNew(t, p, ms)
	full := owners(t, pl, "")
	for _, w := range ms {
		got := owners(t, pl, w)
		ref := owners(t, mustNew(t, p, append(nodes(1, 0), filter(ms, w)...)), "")
		others := 0
		for part, o := range got {
			if o == w {
				t.Fatalf("without %s: partition %d assigned to %s", w, part, o)
			}
			if o != ref[part] {
				t.Fatalf("without %s: partition %d: %s, placement of the others says %s", w, part, o, ref[part])
			}
			if full[part] != w && full[part] != o {
				others++
			}
		}
		if f := float64(others) / float64(p.Partitions); f > 1/float64(len(ms)) {
			t.Errorf("without %s: %.3f of partitions not owned by it moved", w, f)
		}
	}
	// A name that is not a member changes nothing.
	if got := owners(t, pl, "stranger"); fmt.Sprint(got) != fmt.Sprint(full) {
		t.Fatal("without a non-member differs from the full map")
	}
}

func filter(ms []ownership.NodeID, w ownership.NodeID) []ownership.NodeID {
	var out []ownership.NodeID
	for _, m := range ms {
		if m != w {
			out = append(out, m)
		}
	}
	return out
}

// node-1 and node-11 (and node-1x) must not collide on the ring (the
// consistent v0.10.0 replica-key bug): every set places every partition,
// every member gets a share, and add/remove in any combination works.
func TestNodeNamesWithCommonPrefixes(t *testing.T) {
	p := DefaultParams()
	all := nodes(1, 15)
	sets := [][]ownership.NodeID{
		all,
		filter(all, "node-1"),
		filter(all, "node-11"),
		filter(filter(all, "node-1"), "node-11"),
		{"node-1", "node-11"},
		{"node-1", "node-11", "node-111", "node-1111"},
	}
	for _, ms := range sets {
		pl := mustNew(t, p, ms)
		for m, c := range pl.Owners() {
			if c == 0 {
				t.Errorf("members %v: %s owns nothing", ms, m)
			}
		}
		for _, w := range append([]ownership.NodeID{"", "node-1", "node-11"}, ms...) {
			for part := range p.Partitions {
				if o, ok := pl.DesiredOwner(ownership.Partition(part), w); !ok || o == w {
					t.Fatalf("members %v without %q: partition %d -> %q %v", ms, w, part, o, ok)
				}
			}
		}
	}
}

// The library panics when the load bound leaves no room: New reports it.
func TestRecoverPath(t *testing.T) {
	// ceil(10/3 * 0.5) = 2 per member: 6 slots for 10 partitions.
	_, err := build(Params{Partitions: 10, ReplicationFactor: 1, LoadFactor: 0.5}, nodes(1, 3))
	var pe *PlacementError
	if !errors.As(err, &pe) || pe.Members != 3 || pe.Reason == "" {
		t.Fatalf("build with no room: %v, want *PlacementError", err)
	}
	// The lazily computed map without a member fails the same way: ok=false.
	pl, err := build(Params{Partitions: 3, ReplicationFactor: 1, LoadFactor: 0.5}, nodes(1, 3))
	if err != nil {
		t.Fatalf("ceil(3/3*0.5) = 1 per member fits: %v", err)
	}
	// ceil(3/2*0.5) = 1 per member: 2 slots for 3 partitions.
	if o, ok := pl.DesiredOwner(0, "node-2"); ok {
		t.Fatalf("without node-2 cannot be placed, got %q", o)
	}
}

func TestConcurrentDesiredOwner(t *testing.T) {
	p := DefaultParams()
	ms := nodes(1, 8)
	pl := mustNew(t, p, ms)
	want := map[ownership.NodeID][]ownership.NodeID{}
	for _, w := range ms {
		want[w] = owners(t, mustNew(t, p, filter(ms, w)), "")
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 16 {
		wg.Go(func() {
			for i := range 4 * p.Partitions {
				w := ms[(g+i)%len(ms)]
				part := ownership.Partition((i * 7) % p.Partitions)
				if o, ok := pl.DesiredOwner(part, w); !ok || o != want[w][part] {
					errs <- fmt.Sprintf("partition %d without %s: %q %v, want %q", part, w, o, ok, want[w][part])
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestAccessorsReturnCopies(t *testing.T) {
	pl := mustNew(t, DefaultParams(), nodes(1, 3))
	pl.Members()[0] = "mutated"
	pl.Owners()["node-1"] = -1
	if pl.Members()[0] != "node-1" || pl.Owners()["node-1"] < 1 {
		t.Fatal("accessors share state with the caller")
	}
}
