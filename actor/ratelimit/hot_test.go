package ratelimit

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestShareSumsExactly(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	totals := []int64{0, 1, 2, 3, 7, 999_999, 1_000_000, 1_000_001, MaxMicros, -1, -7, -MaxMicros}
	for range 500 {
		totals = append(totals, r.Int64N(2*MaxMicros)-MaxMicros)
	}
	for _, total := range totals {
		for _, n := range []int{1, 2, 3, 4, 7, 64, 1024} {
			var sum int64
			lo, hi := int64(1<<62), int64(-1<<62)
			for i := 1; i <= n; i++ {
				s := Share(total, n, i)
				sum += s
				lo, hi = min(lo, s), max(hi, s)
				if i > 1 && s > Share(total, n, i-1) {
					t.Fatalf("Share(%d, %d, %d) = %d > share %d: remainders go to the first shards", total, n, i, s, i-1)
				}
			}
			if sum != total || hi-lo > 1 {
				t.Fatalf("Share(%d, %d, ·): sum %d, spread %d", total, n, sum, hi-lo)
			}
			if total >= 0 && MinShare(total, n) != lo {
				t.Fatalf("MinShare(%d, %d) = %d, want %d", total, n, MinShare(total, n), lo)
			}
		}
	}
}

// SplitLevel: parcels sum to the level, each within its shard's capacity,
// in whole tokens except where a capacity share is fractional, so at most
// one parcel has a fraction when the shares are whole tokens.
func TestSplitLevel(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		n := r.IntN(MaxHotShards-1) + 2
		c := r.Int64N(MaxMicros) + 1
		switch r.IntN(3) {
		case 0:
			c = (r.Int64N(1000) + 1) * Micro * int64(n) // whole-token shares
		case 1:
			c = r.Int64N(100) + 1
		}
		level := c - r.Int64N(c+1)
		if r.IntN(5) == 0 {
			level = -r.Int64N(MaxMicros)
		}
		caps := make([]int64, n)
		for i := range caps {
			caps[i] = Share(c, n, i+1)
		}
		ps := SplitLevel(level, caps)
		var sum int64
		fractions := 0
		for i, p := range ps {
			sum += p
			if level >= 0 && (p > caps[i] || p < 0) {
				t.Fatalf("level %d of %d over %d: parcel %d = %d outside [0, %d]", level, c, n, i+1, p, caps[i])
			}
			if p%Micro != 0 {
				fractions++
			}
		}
		if sum != level {
			t.Fatalf("level %d over %d: parcels sum to %d", level, n, sum)
		}
		if level >= 0 && c%(Micro*int64(n)) == 0 && fractions > 1 {
			t.Fatalf("level %d of %d (whole shares) over %d: %d fractional parcels %v", level, c, n, fractions, ps)
		}
	}
}

// A parcel of a level never exceeds the share of the capacity, whatever
// the level (≤ capacity): dividing both with Share never needs clamping.
func TestParcelWithinShare(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		c := r.Int64N(MaxMicros) + 1
		if r.IntN(2) == 0 {
			c = r.Int64N(100) + 1
		}
		level := c - r.Int64N(c+1)
		if r.IntN(4) == 0 {
			level = -r.Int64N(MaxMicros)
		}
		n := r.IntN(MaxHotShards-1) + 2
		for i := 1; i <= n; i++ {
			if p, s := Share(level, n, i), Share(c, n, i); p > s {
				t.Fatalf("level %d of capacity %d over %d shards: parcel %d > share %d of shard %d", level, c, n, p, s, i)
			}
		}
	}
}

func TestRateEstimate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	at := func(d time.Duration) int64 { return t0 + int64(d) }
	var r Rate
	r = r.Add(at(0), 100)
	if got := r.PerSecond(at(0)); got != 100 {
		t.Fatalf("rate at once = %v", got)
	}
	r = r.Add(at(500*time.Millisecond), 100)
	if got := r.PerSecond(at(999 * time.Millisecond)); got != 200 {
		t.Fatalf("rate within the first second = %v", got)
	}
	// Half a second into the next window, half of the previous one counts.
	if got := r.PerSecond(at(1500 * time.Millisecond)); got != 100 {
		t.Fatalf("rate 1.5 s on = %v, want 100", got)
	}
	if got := r.PerSecond(at(3 * time.Second)); got != 0 {
		t.Fatalf("rate after two idle seconds = %v", got)
	}
	// A clock stepping back counts as no time.
	r = Rate{}.Add(at(10*time.Second), 5)
	if got := r.Add(at(9*time.Second), 5).PerSecond(at(9 * time.Second)); got != 10 {
		t.Fatalf("rate with the clock stepping back = %v", got)
	}
	// Steady 1000/s measured every 10 ms stays near 1000.
	r = Rate{}
	for i := range 500 {
		r = r.Add(at(time.Duration(i)*10*time.Millisecond), 10)
		if i > 150 {
			if got := r.PerSecond(at(time.Duration(i) * 10 * time.Millisecond)); got < 990 || got > 1010 {
				t.Fatalf("steady rate at step %d = %v", i, got)
			}
		}
	}
}

func TestHotDecisions(t *testing.T) {
	c := HotConfig{ThresholdTPS: 100}.WithDefaults()
	sec := int64(time.Second)
	now := 100 * sec
	if !c.AutoSplit() || (HotConfig{ThresholdTPS: 100, HotShards: 1}).AutoSplit() || (HotConfig{Shards: 4, ThresholdTPS: 100, HotShards: 4}).AutoSplit() {
		t.Fatal("AutoSplit: default on; off with hot_shards 1 or static shards")
	}
	if (HotConfig{}).Enabled() || !(HotConfig{Shards: 2}).Enabled() || !c.Enabled() {
		t.Fatal("Enabled")
	}
	// Latch: hot at the threshold, cold below half of it.
	if c.IsHot(99, false) || !c.IsHot(100, false) || !c.IsHot(50, true) || c.IsHot(49, true) || (HotConfig{}).IsHot(1e9, true) {
		t.Fatal("IsHot latch")
	}
	st := HotState{}
	if c.ShouldSplit(st, 99, now) || !c.ShouldSplit(st, 100, now) {
		t.Fatal("split at the threshold")
	}
	// Not sooner than MergeAfter after the last merge.
	merged := HotState{Gen: 1, Since: now - int64(c.MergeAfter) + 1}
	if c.ShouldSplit(merged, 1000, now) || !c.ShouldSplit(merged, 1000, now+1) {
		t.Fatal("split cooldown after a merge")
	}
	// Not while grants may still be credited.
	granting := HotState{Outstanding: 2, GrantsUntil: now + sec}
	if c.ShouldSplit(granting, 1000, now) || !c.ShouldSplit(granting, 1000, now+sec) {
		t.Fatal("split waits for grants")
	}
	if c.ShouldSplit(HotState{Mode: HotSplit}, 1000, now) {
		t.Fatal("a split parent splits again")
	}
	active := HotState{Mode: ShardActive, Shards: 4, Gen: 1, Since: now - 20*sec}
	if !c.ShouldMerge(active, 10, now-int64(c.MergeAfter), now) {
		t.Fatal("merge after a quiet MergeAfter")
	}
	if c.ShouldMerge(active, 10, now-int64(c.MergeAfter)+1, now) || c.ShouldMerge(active, 50, now-100*sec, now) || c.ShouldMerge(active, 10, 0, now) {
		t.Fatal("merge too early, or at half the threshold, or with no quiet period")
	}
	young := active
	young.Since = now - sec
	if c.ShouldMerge(young, 0, now-100*sec, now) {
		t.Fatal("merge of a split younger than MergeAfter")
	}
}

func TestHotConfigValidate(t *testing.T) {
	for _, bad := range []HotConfig{
		{Shards: -1}, {Shards: MaxStaticShards + 1}, {ThresholdTPS: -1}, {HotShards: MaxHotShards + 1},
		{MergeAfter: -1}, {AllowanceLifetime: 2 * time.Second}, {AllowanceMaxTakes: -1},
	} {
		if err := bad.Validate(); !errors.Is(err, ErrInvalidHotConfig) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	if err := (HotConfig{Shards: 8, ThresholdTPS: 500, HotShards: 4, AllowanceLifetime: time.Second}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestGrantTakes(t *testing.T) {
	m := Micro
	for _, c := range []struct {
		levels, amounts map[string]int64
		max             int
		want            int64
	}{
		{map[string]int64{"r": 1000 * m}, map[string]int64{"r": 1}, 64, 64},
		{map[string]int64{"r": 100 * m}, map[string]int64{"r": 1}, 64, 25},
		{map[string]int64{"r": 100 * m, "t": 40 * m}, map[string]int64{"r": 1, "t": 2}, 64, 5},
		{map[string]int64{"r": 3 * m}, map[string]int64{"r": 1}, 64, 0},
		{map[string]int64{"r": -5 * m}, map[string]int64{"r": 1}, 64, 0},
		{map[string]int64{"r": 1000 * m}, map[string]int64{"r": 0}, 64, 0},
	} {
		if got := GrantTakes(c.levels, c.amounts, c.max); got != c.want {
			t.Errorf("GrantTakes(%v, %v) = %d, want %d", c.levels, c.amounts, got, c.want)
		}
	}
}

func TestHotStateEncoding(t *testing.T) {
	for _, st := range []HotState{
		{},
		{Mode: HotSplit, Shards: 2, Gen: 3, Since: -5, Parcels: []Parcel{{"a": 1, "b": -2}, {"a": 0}}, GrantSeq: 9, Outstanding: 2, GrantsUntil: 77},
		{Mode: HotMerging, Shards: 2, Gen: 3, Parcels: []Parcel{{}, {}}, Returned: []bool{true, false}},
		{Mode: ShardRetired, Shards: 4, Gen: 1, Parcels: []Parcel{{"x": 5}}, Initialised: true},
	} {
		b, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got HotState
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("%+v: %v", st, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(st) {
			t.Fatalf("round trip: %+v != %+v", got, st)
		}
		for i := range b {
			var x HotState
			if err := x.UnmarshalBinary(b[:i]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("truncated at %d: %v", i, err)
			}
		}
	}
	g := Grant{Expires: 123, Tokens: map[string]int64{"r": 4}, Origin: "node-2"}
	b, _ := g.MarshalBinary()
	var g2 Grant
	if err := g2.UnmarshalBinary(b); err != nil || fmt.Sprint(g2) != fmt.Sprint(g) {
		t.Fatalf("grant round trip: %+v, %v", g2, err)
	}
}

// world is one key: a parent and its shards, each with its stored state,
// as the turns of the split and merge steps leave them. Nothing is in
// flight between actors except what the protocol keeps re-deliverable in
// a stored state (the parcels of a split parent; a retired shard's
// parcel), so a crash of a caller between turns loses nothing for good.
type world struct {
	t       *testing.T
	full    map[string]Limit
	n       int
	now     int64
	parent  HotState
	pb      map[string]Bucket
	shards  []HotState
	sb      []map[string]Bucket
	initial map[string]int64
}

func newWorld(t *testing.T, n int, levels map[string]int64) *world {
	w := &world{t: t, n: n, now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano(),
		full: map[string]Limit{"requests": {Capacity: 1000 * Micro, Refill: 7}, "tokens": {Capacity: 12_345_678, Refill: 3 * Micro}},
		pb:   map[string]Bucket{}, shards: make([]HotState, n), sb: make([]map[string]Bucket, n), initial: map[string]int64{}}
	for i := range w.sb {
		w.sb[i] = map[string]Bucket{}
	}
	for name, lvl := range levels {
		w.pb[name] = Bucket{Level: lvl, Last: w.now}
	}
	for name := range w.full {
		w.initial[name] = w.level(w.full[name], w.pb, name)
	}
	return w
}

func (w *world) level(l Limit, bs map[string]Bucket, name string) int64 {
	return levelAt(l, bs, name, w.now).Level
}

func merge(dst map[string]Bucket, changed map[string]Bucket) {
	for k, v := range changed {
		dst[k] = v
	}
}

// tokens counts, per bucket, every token that can still be taken: the
// parent's, the active shards', and the parcels kept for delivery.
func (w *world) tokens() map[string]int64 {
	out := map[string]int64{}
	pe := w.parent.Effective(w.full, 0, 0)
	for name := range w.full {
		out[name] += w.level(pe[name], w.pb, name)
	}
	for i, st := range w.shards {
		se := st.Effective(w.full, uint32(i+1), 0)
		for name := range w.full {
			out[name] += w.level(se[name], w.sb[i], name)
		}
		splitting := (w.parent.Mode == HotSplit || w.parent.Mode == HotMerging) && (w.parent.Gen == st.Gen || st.Mode == HotNormal)
		returned := w.parent.Mode == HotMerging && w.parent.Returned[i]
		if !splitting || returned {
			continue
		}
		switch {
		case st.Mode == HotNormal, st.Mode == ShardRetired && !st.Initialised:
			for name, v := range w.parent.Parcels[i] {
				out[name] += v
			}
		case st.Mode == ShardRetired:
			for name, v := range st.Parcels[0] {
				out[name] += v
			}
		}
	}
	return out
}

// check asserts the invariants: no bucket's tokens exceed what there was,
// and the capacities and refill rates of parent and shards sum to at most
// the limit.
func (w *world) check(step string) {
	w.t.Helper()
	for name, got := range w.tokens() {
		if got > w.initial[name] {
			w.t.Fatalf("after %s: bucket %s holds %d micro-tokens, more than the %d there were (minted)", step, name, got, w.initial[name])
		}
	}
	for name, l := range w.full {
		c, r := w.parent.Effective(w.full, 0, 0)[name].Capacity, w.parent.Effective(w.full, 0, 0)[name].Refill
		for i, st := range w.shards {
			e := st.Effective(w.full, uint32(i+1), 0)[name]
			c, r = c+e.Capacity, r+e.Refill
		}
		if c > l.Capacity || r > l.Refill {
			w.t.Fatalf("after %s: bucket %s: capacities sum to %d (limit %d), refills to %d (limit %d)", step, name, c, l.Capacity, r, l.Refill)
		}
	}
}

func (w *world) split() {
	st, ch, err := BeginSplit(w.parent, w.full, w.pb, w.now, w.n)
	if err != nil {
		w.t.Fatal(err)
	}
	w.parent = st
	merge(w.pb, ch)
	w.check("split")
}

// parcelFor is what a caller delivers to shard i: the parcel of the split
// it knows (possibly stale).
func (w *world) init(i int, gen uint64, parcel Parcel) {
	st, ch, _, err := InitShard(w.shards[i-1], uint32(i), w.full, w.sb[i-1], w.now, w.n, gen, parcel)
	if err != nil && !errors.Is(err, ErrHotState) {
		w.t.Fatal(err)
	}
	w.shards[i-1] = st
	merge(w.sb[i-1], ch)
	w.check(fmt.Sprintf("init %d", i))
}

func (w *world) retire(i int, gen uint64) RetireOutcome {
	st, ch, out, err := RetireShard(w.shards[i-1], uint32(i), w.full, w.sb[i-1], w.now, gen)
	if err != nil && !errors.Is(err, ErrHotState) {
		w.t.Fatal(err)
	}
	w.shards[i-1] = st
	merge(w.sb[i-1], ch)
	w.check(fmt.Sprintf("retire %d", i))
	return out
}

func (w *world) accept(i int, gen uint64, out RetireOutcome) bool {
	st, ch, done, err := AcceptReturn(w.parent, w.full, w.pb, w.now, gen, uint32(i), out.Initialised, out.Parcel)
	if err != nil && !errors.Is(err, ErrHotState) {
		w.t.Fatal(err)
	}
	w.parent = st
	merge(w.pb, ch)
	w.check(fmt.Sprintf("accept %d", i))
	return done
}

// take takes from shard i (an active shard) some tokens, as traffic does.
func (w *world) take(i int, name string, n int64) {
	s := &Set{Limits: w.shards[i-1].Effective(w.full, uint32(i), 0), Buckets: w.sb[i-1], zeroOK: true}
	if res, err := s.Take(w.now, map[string]int64{name: n}); err == nil && res.Allowed {
		w.initial[name] -= n * Micro
	}
	w.check("take")
}

// finish completes a merge the way any caller would from what is stored:
// retire every shard (idempotent), deliver every parcel (at most once).
func (w *world) finish() {
	gen := w.parent.Gen
	for i := 1; i <= w.n; i++ {
		w.accept(i, gen, w.retire(i, gen))
	}
	if w.parent.Mode != HotNormal {
		w.t.Fatalf("merge not finished: parent mode %d", w.parent.Mode)
	}
}

func TestSplitMergeConservesTokens(t *testing.T) {
	const n = 4
	levels := map[string]int64{"requests": 999*Micro + 3, "tokens": -5}
	// The whole sequence, then every crash point: the steps up to k, then
	// another caller finishes from the stored states. Never more tokens
	// than there were; exactly as many at the end (no time passes).
	type stepFn func(w *world)
	steps := []stepFn{func(w *world) { w.split() }}
	for i := 1; i <= n; i++ {
		if i != 3 { // shard 3 is never initialised
			steps = append(steps, func(w *world) { w.init(i, w.parent.Gen, w.parent.Parcels[i-1]) })
		}
	}
	var outs [n + 1]RetireOutcome
	for i := 1; i <= n; i++ {
		steps = append(steps, func(w *world) { outs[i] = w.retire(i, w.parent.Gen) })
		steps = append(steps, func(w *world) { w.accept(i, w.parent.Gen, outs[i]) })
	}
	for k := 0; k <= len(steps); k++ {
		w := newWorld(t, n, levels)
		for _, s := range steps[:k] {
			s(w)
		}
		if w.parent.Mode == HotNormal && w.parent.Gen == 0 {
			continue // crashed before the split: nothing moved
		}
		// A caller that never saw the crash re-delivers stale messages:
		// parcels of a split the shards already retired, returns again.
		gen := w.parent.Gen
		var parcels []Parcel
		if w.parent.Mode == HotSplit || w.parent.Mode == HotMerging {
			parcels = slices.Clone(w.parent.Parcels)
		}
		for i := 1; i <= n && parcels != nil; i++ {
			w.init(i, gen, parcels[i-1])
		}
		w.finish()
		for i := 1; i <= n && parcels != nil; i++ {
			w.init(i, gen, parcels[i-1]) // after the merge: refused
			w.accept(i, gen, RetireOutcome{Initialised: true, Parcel: parcels[i-1]})
		}
		got := w.tokens()
		for name, want := range w.initial {
			if got[name] != want {
				t.Fatalf("crash after step %d: bucket %s ends with %d micro-tokens, want %d (lost or minted)", k, name, got[name], want)
			}
		}
		if lvl := w.level(w.full["requests"], w.pb, "requests"); lvl != w.initial["requests"] {
			t.Fatalf("crash after step %d: parent holds %d, want %d", k, lvl, w.initial["requests"])
		}
	}
}

// Random interleavings of every step, including repeats, stale and out of
// order deliveries, traffic on active shards, and time passing (refill):
// never more tokens than the limits allow.
func TestSplitMergeRandomNeverMints(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 300 {
		n := r.IntN(5) + 2
		w := newWorld(t, n, map[string]int64{"requests": r.Int64N(1000 * Micro), "tokens": r.Int64N(12_345_678)})
		// Retire outcomes as the layer holds them: shard, generation, what
		// the shard answered (a merge_return always carries the generation
		// of the retire it comes from).
		type held struct {
			shard int
			gen   uint64
			out   RetireOutcome
		}
		var outs []held
		var parcels []Parcel
		old := map[uint64][]Parcel{} // every split's parcels, for stale deliveries
		for range 200 {
			switch op := r.IntN(7); {
			case op == 0 && w.parent.Mode == HotNormal:
				w.split()
				parcels = slices.Clone(w.parent.Parcels)
				old[w.parent.Gen] = parcels
			case op == 1 && w.parent.Gen > 0:
				i, gen := r.IntN(n)+1, w.parent.Gen
				if r.IntN(3) == 0 || parcels == nil {
					gen = uint64(r.IntN(int(gen))) + 1 // a caller with a stale split
				}
				w.init(i, gen, old[gen][i-1])
			case op == 2 && w.parent.Gen > 0:
				i := r.IntN(n) + 1
				outs = append(outs, held{i, w.parent.Gen, w.retire(i, w.parent.Gen)})
			case op == 3 && len(outs) > 0:
				h := outs[r.IntN(len(outs))]
				if !h.out.Pending {
					w.accept(h.shard, h.gen, h.out)
				}
			case op == 4:
				i := r.IntN(n) + 1
				if w.shards[i-1].Mode == ShardActive {
					w.take(i, "requests", r.Int64N(50)+1)
				}
			case op == 5:
				// Time passes: refill may add tokens, up to the limits.
				w.now += r.Int64N(int64(time.Second))
				for name, l := range w.full {
					w.initial[name] = min(l.Capacity, w.initial[name]+l.Refill) // a bound on what refill can add in a second
				}
				w.check("time")
			case op == 6 && w.parent.Mode != HotNormal:
				w.finish()
				parcels = nil
			}
		}
	}
}
