package actor_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/holdfast/holdfast/actor"
)

// TestMemStoreScanMatchesModel checks MemStore.Scan, whose sorted key index
// is kept up to date incrementally, against a plain map under random puts,
// deletes, re-puts, prefix deletes and scans of random ranges.
func TestMemStoreScanMatchesModel(t *testing.T) {
	for seed := uint64(1); seed <= 4; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		s := actor.NewMemStore()
		model := map[string]string{}
		id := []byte("actor")
		key := func() string {
			// A few hot keys (deleted and put again) and many cold ones.
			if rng.IntN(3) == 0 {
				return fmt.Sprintf("h%02d", rng.IntN(20))
			}
			return fmt.Sprintf("c%06d", rng.IntN(50_000))
		}
		for step := range 20_000 {
			var op actor.Op
			switch r := rng.IntN(100); {
			case r < 55:
				k, v := key(), fmt.Sprint(step)
				op = actor.Op{Kind: actor.OpPut, Key: []byte(k), Value: []byte(v)}
				model[k] = v
			case r < 90:
				k := key()
				op = actor.Op{Kind: actor.OpDelete, Key: []byte(k)}
				delete(model, k)
			case r < 91:
				p := fmt.Sprintf("c%d", rng.IntN(10))
				op = actor.Op{Kind: actor.OpDeletePrefix, Key: []byte(p)}
				for k := range model {
					if len(k) >= len(p) && k[:len(p)] == p {
						delete(model, k)
					}
				}
			default:
				checkScan(t, s, id, model, rng)
				continue
			}
			if err := s.Commit([]*actor.Write{{Partition: 3, Actor: id, Ops: []actor.Op{op}}}); err != nil {
				t.Fatal(err)
			}
		}
		checkScan(t, s, id, model, rng)
	}
}

func checkScan(t *testing.T, s *actor.MemStore, id []byte, model map[string]string, rng *rand.Rand) {
	t.Helper()
	bounds := []string{"", "c", "c01", "c02500", "c3", "h", "h10", "i"}
	start := bounds[rng.IntN(len(bounds))]
	var end []byte
	if e := bounds[rng.IntN(len(bounds))]; e != "" {
		end = []byte(e)
	}
	reverse := rng.IntN(4) == 0
	var want []string
	for k := range model {
		if k >= start && (end == nil || k < string(end)) {
			want = append(want, k+"="+model[k])
		}
	}
	sort.Strings(want)
	if reverse {
		slices.Reverse(want)
	}
	var got []string
	err := s.Scan(3, id, []byte(start), end, reverse, func(k, v []byte) bool {
		got = append(got, string(k)+"="+string(v))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("Scan [%q, %q) reverse=%v: got %d entries, want %d\ngot  %.10q\nwant %.10q", start, end, reverse, len(got), len(want), got, want)
	}
}
