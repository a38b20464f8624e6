package ratelimit

import (
	"bytes"
	"encoding/binary"
	"errors"
	"maps"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

const (
	sec = int64(time.Second)
	ms  = int64(time.Millisecond)
)

// tok is n whole tokens in micro-tokens.
func tok(n int64) int64 { return n * Micro }

func clone(s *Set) *Set {
	return &Set{Limits: maps.Clone(s.Limits), Buckets: maps.Clone(s.Buckets)}
}

func sameSet(a, b *Set) bool {
	return maps.Equal(a.Limits, b.Limits) && maps.Equal(a.Buckets, b.Buckets)
}

// step is one Take in a scenario and what it must return.
type step struct {
	at      int64
	take    map[string]int64
	allowed bool
	remain  map[string]int64 // micro-tokens; nil: not checked
	retry   time.Duration
	by      string // RefusedBy
	err     error  // errors.Is target; nil: no error
	errName string // bucket the error message must name
}

func runSteps(t *testing.T, s *Set, steps []step) {
	t.Helper()
	for i, st := range steps {
		before := clone(s)
		res, err := s.Take(st.at, st.take)
		if st.err != nil {
			if !errors.Is(err, st.err) {
				t.Fatalf("step %d: Take(%d, %v) error = %v, want %v", i, st.at, st.take, err, st.err)
			}
			if !strings.Contains(err.Error(), `"`+st.errName+`"`) {
				t.Errorf("step %d: error %q does not name bucket %q", i, err, st.errName)
			}
			if !sameSet(before, s) {
				t.Errorf("step %d: failed Take changed state: %+v -> %+v", i, before, s)
			}
			continue
		}
		if err != nil {
			t.Fatalf("step %d: Take(%d, %v): %v", i, st.at, st.take, err)
		}
		if res.Allowed != st.allowed || res.RetryAfter != st.retry || res.RefusedBy != st.by {
			t.Errorf("step %d: Take(%d, %v) = allowed %v retry %v by %q; want %v %v %q",
				i, st.at, st.take, res.Allowed, res.RetryAfter, res.RefusedBy, st.allowed, st.retry, st.by)
		}
		if st.remain != nil && !maps.Equal(res.Remaining, st.remain) {
			t.Errorf("step %d: remaining %v, want %v", i, res.Remaining, st.remain)
		}
		if !res.Allowed && !sameSet(before, s) {
			t.Errorf("step %d: refused Take changed state: %+v -> %+v", i, before, s)
		}
	}
}

func TestTake(t *testing.T) {
	one := Limit{Capacity: tok(1), Refill: Micro / 4} // one token per 4 s
	tests := []struct {
		name   string
		limits map[string]Limit
		steps  []step
	}{
		{"starts full then empties", map[string]Limit{"r": {tok(10), Micro}}, []step{
			{at: 0, take: map[string]int64{"r": 0}, allowed: true, remain: map[string]int64{"r": tok(10)}},
			{at: 0, take: map[string]int64{"r": 10}, allowed: true, remain: map[string]int64{"r": 0}},
			{at: 0, take: map[string]int64{"r": 1}, retry: time.Second, by: "r", remain: map[string]int64{"r": 0}},
		}},
		{"fractional refill, one per 4s", map[string]Limit{"r": one}, []step{
			{at: 0, take: map[string]int64{"r": 1}, allowed: true},
			{at: 3 * sec, take: map[string]int64{"r": 1}, retry: time.Second, by: "r", remain: map[string]int64{"r": 750_000}},
			{at: 4 * sec, take: map[string]int64{"r": 1}, allowed: true, remain: map[string]int64{"r": 0}},
		}},
		{"retry rounds up to the millisecond", map[string]Limit{"r": {tok(2), 3 * Micro}}, []step{
			{at: 0, take: map[string]int64{"r": 2}, allowed: true},
			// one token takes 333.33… ms at 3/s: 334 ms, never 333.
			{at: 0, take: map[string]int64{"r": 1}, retry: 334 * time.Millisecond, by: "r"},
			{at: 333 * ms, take: map[string]int64{"r": 1}, retry: time.Millisecond, by: "r", remain: map[string]int64{"r": 999_000}},
			{at: 334 * ms, take: map[string]int64{"r": 1}, allowed: true, remain: map[string]int64{"r": 2_000}},
		}},
		{"zero take on an empty bucket is allowed and reports", map[string]Limit{"r": one}, []step{
			{at: 0, take: map[string]int64{"r": 1}, allowed: true},
			{at: sec, take: map[string]int64{"r": 0}, allowed: true, remain: map[string]int64{"r": 250_000}},
			{at: sec, take: map[string]int64{"r": 0}, allowed: true, remain: map[string]int64{"r": 250_000}},
			{at: 4 * sec, take: map[string]int64{"r": 1}, allowed: true},
		}},
		{"amount equal to capacity is allowed", map[string]Limit{"r": {tok(5), Micro}}, []step{
			{at: 0, take: map[string]int64{"r": 5}, allowed: true, remain: map[string]int64{"r": 0}},
		}},
		{"all or nothing across buckets", map[string]Limit{"req": {tok(10), Micro}, "tok": {tok(100), tok(10)}}, []step{
			{at: 0, take: map[string]int64{"req": 1, "tok": 100}, allowed: true},
			{at: sec, take: map[string]int64{"req": 1, "tok": 50}, retry: 4 * time.Second, by: "tok",
				remain: map[string]int64{"req": tok(10), "tok": tok(10)}},
			// The refused take consumed nothing from req: all ten are there.
			{at: sec, take: map[string]int64{"req": 10}, allowed: true, remain: map[string]int64{"req": 0}},
		}},
		{"retry is the longest wait", map[string]Limit{"a": {tok(10), Micro}, "b": {tok(10), Micro}, "c": {tok(10), Micro}}, []step{
			{at: 0, take: map[string]int64{"a": 10, "b": 10, "c": 10}, allowed: true},
			{at: 0, take: map[string]int64{"a": 2, "b": 5, "c": 5}, retry: 5 * time.Second, by: "b"},
			{at: 0, take: map[string]int64{"a": 7, "b": 5, "c": 1}, retry: 7 * time.Second, by: "a"},
		}},
		{"negative amount", map[string]Limit{"r": {tok(10), Micro}}, []step{
			{at: 0, take: map[string]int64{"r": -1}, err: ErrNegativeAmount, errName: "r"},
			{at: 0, take: map[string]int64{"r": math.MinInt64}, err: ErrNegativeAmount, errName: "r"},
		}},
		{"unknown bucket", map[string]Limit{"r": {tok(10), Micro}}, []step{
			{at: 0, take: map[string]int64{"r": 1, "nope": 1}, err: ErrUnknownBucket, errName: "nope"},
			{at: 0, take: map[string]int64{"nope": 0}, err: ErrUnknownBucket, errName: "nope"},
		}},
		{"above capacity can never succeed", map[string]Limit{"r": {tok(10), Micro}, "s": {tok(10), Micro}}, []step{
			{at: 0, take: map[string]int64{"r": 11}, err: ErrExceedsCapacity, errName: "r"},
			{at: 0, take: map[string]int64{"r": 1, "s": math.MaxInt64}, err: ErrExceedsCapacity, errName: "s"},
		}},
		{"fractional capacity counts whole tokens", map[string]Limit{"r": {2_500_000, Micro}}, []step{
			{at: 0, take: map[string]int64{"r": 3}, err: ErrExceedsCapacity, errName: "r"},
			{at: 0, take: map[string]int64{"r": 2}, allowed: true, remain: map[string]int64{"r": 500_000}},
		}},
		{"invalid limit", map[string]Limit{"r": {0, Micro}}, []step{
			{at: 0, take: map[string]int64{"r": 0}, err: ErrInvalidLimit, errName: "r"},
		}},
		{"errors are checked in name order", map[string]Limit{"b": {tok(1), Micro}}, []step{
			{at: 0, take: map[string]int64{"a": 1, "b": -1}, err: ErrUnknownBucket, errName: "a"},
			{at: 0, take: map[string]int64{"b": 5, "c": 1}, err: ErrExceedsCapacity, errName: "b"},
		}},
		{"huge amount against huge capacity", map[string]Limit{"r": {MaxMicros, MaxMicros}}, []step{
			{at: 0, take: map[string]int64{"r": MaxMicros / Micro}, allowed: true, remain: map[string]int64{"r": 0}},
			{at: 0, take: map[string]int64{"r": MaxMicros / Micro}, retry: time.Second, by: "r"},
			{at: 0, take: map[string]int64{"r": MaxMicros/Micro + 1}, err: ErrExceedsCapacity, errName: "r"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			runSteps(t, &Set{Limits: tc.limits}, tc.steps)
		})
	}
}

func TestTakeStoresOnlyWhatItConsumes(t *testing.T) {
	s := &Set{Limits: map[string]Limit{"a": {tok(10), Micro}, "b": {tok(10), Micro}}}
	if _, err := s.Take(5*sec, map[string]int64{"a": 0, "b": 0}); err != nil || len(s.Buckets) != 0 {
		t.Fatalf("peek stored %v (err %v); want nothing", s.Buckets, err)
	}
	if _, err := s.Take(5*sec, map[string]int64{"a": 3, "b": 0}); err != nil {
		t.Fatal(err)
	}
	want := map[string]Bucket{"a": {Level: tok(7), Last: 5 * sec}}
	if !maps.Equal(s.Buckets, want) {
		t.Fatalf("Buckets = %v, want %v", s.Buckets, want)
	}
}

// A clock that steps back is no elapsed time; the later timestamp stays.
func TestClockBackwards(t *testing.T) {
	lim := map[string]Limit{"r": {tok(5), Micro}}

	t.Run("refused take waits for the later timestamp", func(t *testing.T) {
		runSteps(t, &Set{Limits: lim}, []step{
			{at: 10 * sec, take: map[string]int64{"r": 5}, allowed: true},
			// Refill resumes at 10 s; from 5 s that is 5 s + 1 s.
			{at: 5 * sec, take: map[string]int64{"r": 1}, retry: 6 * time.Second, by: "r", remain: map[string]int64{"r": 0}},
			{at: math.MinInt64, take: map[string]int64{"r": 0}, allowed: true, remain: map[string]int64{"r": 0}},
		})
	})

	t.Run("writes in the past keep the later timestamp", func(t *testing.T) {
		s := &Set{Limits: lim}
		mustTake(t, s, 10*sec, "r", 5)
		if _, err := s.Adjust(5*sec, "r", -1); err != nil { // give one back, clock 5 s behind
			t.Fatal(err)
		}
		if err := s.SetLimit(0, "r", lim["r"]); err != nil {
			t.Fatal(err)
		}
		if got := s.Buckets["r"].Last; got != 10*sec {
			t.Fatalf("Last = %d, want %d", got, 10*sec)
		}
		// Back at 11 s: the 1 given back plus 1 s of refill, not 6 s of it.
		runSteps(t, s, []step{
			{at: 11 * sec, take: map[string]int64{"r": 2}, allowed: true, remain: map[string]int64{"r": 0}},
			{at: 11 * sec, take: map[string]int64{"r": 1}, retry: time.Second, by: "r"},
		})
	})

	t.Run("back and forth mints nothing", func(t *testing.T) {
		s := &Set{Limits: lim}
		mustTake(t, s, 10*sec, "r", 5)
		for _, at := range []int64{0, 10 * sec, 1, 10 * sec, math.MinInt64, 10 * sec} {
			if _, err := s.Adjust(at, "r", 0); err != nil {
				t.Fatal(err)
			}
		}
		if got := s.Buckets["r"]; got != (Bucket{Level: 0, Last: 10 * sec}) {
			t.Fatalf("bucket = %+v, want empty at 10 s", got)
		}
	})
}

func mustTake(t *testing.T, s *Set, at int64, name string, n int64) {
	t.Helper()
	res, err := s.Take(at, map[string]int64{name: n})
	if err != nil || !res.Allowed {
		t.Fatalf("Take(%d, %s=%d) = %+v, %v; want allowed", at, name, n, res, err)
	}
}

func TestRefillSaturates(t *testing.T) {
	tests := []struct {
		name string
		lim  Limit
		b    Bucket
		now  int64
		want Bucket
	}{
		{"full int64 span at max rate", Limit{MaxMicros, MaxMicros},
			Bucket{Level: -MaxMicros, Last: math.MinInt64}, math.MaxInt64,
			Bucket{Level: MaxMicros, Last: math.MaxInt64}},
		{"full int64 span at min rate", Limit{tok(10), 1},
			Bucket{Level: -MaxMicros, Last: math.MinInt64}, math.MaxInt64,
			// 2^64-1 ns at 1 µ/s is 18_446_744_073 µ, well short of the debt.
			Bucket{Level: -MaxMicros + 18_446_744_073, Carry: 709_551_615, Last: math.MaxInt64}},
		{"quotient just fits but exceeds room", Limit{tok(10), tok(10)},
			Bucket{Level: 0, Carry: 5, Last: 0}, 1000 * sec,
			Bucket{Level: tok(10), Last: 1000 * sec}},
		{"exactly reaching capacity drops the carry", Limit{tok(10), Micro},
			Bucket{Level: tok(9), Carry: 0, Last: 0}, sec,
			Bucket{Level: tok(10), Last: sec}},
		{"level above a shrunk capacity is clamped", Limit{tok(3), Micro},
			Bucket{Level: tok(8), Last: 0}, 0,
			Bucket{Level: tok(3), Last: 0}},
		{"out-of-range hand-made state is sanitised", Limit{tok(3), Micro},
			Bucket{Level: math.MinInt64, Carry: -7, Last: 0}, 0,
			Bucket{Level: -MaxMicros, Last: 0}},
	}
	for _, tc := range tests {
		if got := tc.b.refill(tc.lim, tc.now); got != tc.want {
			t.Errorf("%s: refill = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// Many short refills must credit exactly what one long refill does; with
// floor-and-forget arithmetic each 1 µs step at 1/3 token/s would credit
// nothing at all.
func TestRefillNoDrift(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, rate := range []int64{333_333, 250_000, 1, 7 * Micro, MaxMicros} {
		lim := Limit{Capacity: MaxMicros, Refill: rate}
		start := Bucket{Level: -MaxMicros / 2, Last: 1_700_000_000 * sec}
		b := start
		now := start.Last
		for range 100_000 {
			now += rng.Int64N(2_000) + 1
			b = b.refill(lim, now)
		}
		if once := start.refill(lim, now); b != once {
			t.Errorf("rate %d: stepwise %+v, at once %+v", rate, b, once)
		}
	}
}

// wait must be exact: after it the take succeeds, a millisecond before it
// does not.
func TestWaitExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range 20_000 {
		lim := Limit{Capacity: rng.Int64N(tok(1000)) + 1, Refill: rng.Int64N(tok(50)) + 1}
		now := rng.Int64N(1000 * sec)
		b := Bucket{Level: rng.Int64N(lim.Capacity) - rng.Int64N(tok(20)), Carry: rng.Int64N(nanosPerSecond), Last: now}
		if i%4 == 0 {
			b.Last += rng.Int64N(10 * sec) // clock went back
		}
		b = b.refill(lim, now)
		need := b.Level + 1 + rng.Int64N(lim.Capacity-b.Level)
		if need > lim.Capacity {
			continue
		}
		w := b.wait(lim, need, now)
		if w <= 0 || w%time.Millisecond != 0 {
			t.Fatalf("wait = %v: want a positive whole number of ms", w)
		}
		if got := b.refill(lim, now+int64(w)).Level; got < need {
			t.Fatalf("%+v %+v need %d: after wait %v level %d", lim, b, need, w, got)
		}
		if got := b.refill(lim, now+int64(w)-ms).Level; got >= need {
			t.Fatalf("%+v %+v need %d: 1 ms before wait %v level already %d", lim, b, need, w, got)
		}
	}
}

func TestWait(t *testing.T) {
	tests := []struct {
		name string
		lim  Limit
		b    Bucket
		need int64
		now  int64
		want time.Duration
	}{
		{"whole seconds", Limit{tok(10), Micro}, Bucket{Level: tok(2)}, tok(5), 0, 3 * time.Second},
		{"carry shortens the wait", Limit{tok(10), Micro}, Bucket{Level: 0, Carry: 500_000_000}, 1, 0, time.Millisecond},
		// 1_000_000.000001 ns: one nanosecond past 1 ms must round to 2 ms.
		{"a hair past a millisecond", Limit{tok(10), Micro}, Bucket{Level: 0, Carry: nanosPerSecond - 1}, 1001, 0, 2 * time.Millisecond},
		{"a hair past, in debt", Limit{tok(10), Micro}, Bucket{Level: -999, Carry: nanosPerSecond - 1}, 2, 0, 2 * time.Millisecond},
		{"stored time ahead of now", Limit{tok(10), Micro}, Bucket{Level: 0, Last: 7 * sec}, tok(1), 2 * sec, 6 * time.Second},
		{"slowest rate", Limit{tok(1), 1}, Bucket{Level: 0}, tok(1), 0, time.Duration(Micro) * time.Second},
	}
	for _, tc := range tests {
		if got := tc.b.wait(tc.lim, tc.need, tc.now); got != tc.want {
			t.Errorf("%s: wait = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestWaitSaturates(t *testing.T) {
	lim := Limit{Capacity: MaxMicros, Refill: 1}
	b := Bucket{Level: -MaxMicros, Last: 0}
	if w := b.wait(lim, MaxMicros, 0); w != MaxRetryAfter {
		t.Errorf("wait = %v, want MaxRetryAfter", w)
	}
	b = Bucket{Level: 0, Last: math.MaxInt64} // clock far behind the stored time
	if w := b.wait(Limit{tok(1), Micro}, tok(1), math.MinInt64+1); w != MaxRetryAfter {
		t.Errorf("wait = %v, want MaxRetryAfter", w)
	}
	// One nanosecond past the largest whole millisecond saturates too.
	b = Bucket{Level: 0, Last: int64(MaxRetryAfter) - sec + 1}
	if w := b.wait(Limit{tok(1), Micro}, tok(1), 0); w != MaxRetryAfter {
		t.Errorf("wait = %v, want MaxRetryAfter", w)
	}
	b.Last--
	if w := b.wait(Limit{tok(1), Micro}, tok(1), 0); w != MaxRetryAfter {
		t.Errorf("wait = %v, want exactly MaxRetryAfter", w)
	}
	if m := MaxRetryAfter; m%time.Millisecond != 0 || m <= math.MaxInt64-time.Millisecond {
		t.Errorf("MaxRetryAfter %d is not the largest whole millisecond", MaxRetryAfter)
	}
}

func TestAdjust(t *testing.T) {
	lim := map[string]Limit{"r": {tok(10), Micro}}
	tests := []struct {
		name   string
		before int64 // tokens taken at 0 first
		at     int64
		delta  int64
		want   int64 // level after, micro-tokens
	}{
		{"consume more", 0, 0, 4, tok(6)},
		{"drive negative", 10, 0, 5, tok(-5)},
		{"give back", 6, 0, -2, tok(6)},
		{"give back never above capacity", 3, 0, -10, tok(10)},
		{"give back to a full bucket", 0, 0, -1, tok(10)},
		{"refill is applied first", 10, 3 * sec, 1, tok(2)},
		{"max consume saturates", 0, 0, math.MaxInt64, -MaxMicros},
		{"min give back saturates at capacity", 10, 0, math.MinInt64, tok(10)},
		{"zero", 4, 0, 0, tok(6)},
	}
	for _, tc := range tests {
		s := &Set{Limits: maps.Clone(lim)}
		if tc.before > 0 {
			mustTake(t, s, 0, "r", tc.before)
		}
		got, err := s.Adjust(tc.at, "r", tc.delta)
		if err != nil || got != tc.want || s.Buckets["r"].Level != tc.want {
			t.Errorf("%s: Adjust = %d, %v (stored %d); want %d", tc.name, got, err, s.Buckets["r"].Level, tc.want)
		}
	}

	t.Run("debt delays the next take", func(t *testing.T) {
		s := &Set{Limits: maps.Clone(lim)}
		mustTake(t, s, 0, "r", 10)
		if _, err := s.Adjust(0, "r", 5); err != nil {
			t.Fatal(err)
		}
		runSteps(t, s, []step{
			{at: 0, take: map[string]int64{"r": 1}, retry: 6 * time.Second, by: "r", remain: map[string]int64{"r": tok(-5)}},
			{at: 6 * sec, take: map[string]int64{"r": 1}, allowed: true, remain: map[string]int64{"r": 0}},
		})
	})

	t.Run("unknown bucket", func(t *testing.T) {
		s := &Set{Limits: maps.Clone(lim)}
		_, err := s.Adjust(0, "nope", 1)
		var ue *UnknownBucketError
		if !errors.As(err, &ue) || ue.Name != "nope" || !errors.Is(err, ErrUnknownBucket) {
			t.Fatalf("Adjust(nope) error = %v, want *UnknownBucketError{nope}", err)
		}
		if len(s.Buckets) != 0 {
			t.Fatalf("failed Adjust stored %v", s.Buckets)
		}
	})
}

func TestSetLimit(t *testing.T) {
	base := Limit{Capacity: tok(10), Refill: Micro}
	tests := []struct {
		name  string
		taken int64 // tokens taken at 0 under base
		at    int64 // when the new limit is set
		lim   Limit
		steps []step
	}{
		{"shrink clamps", 1, 0, Limit{tok(4), Micro}, []step{
			{at: 0, take: map[string]int64{"r": 0}, allowed: true, remain: map[string]int64{"r": tok(4)}},
		}},
		{"grow does not raise", 5, 0, Limit{tok(100), Micro}, []step{
			{at: 0, take: map[string]int64{"r": 0}, allowed: true, remain: map[string]int64{"r": tok(5)}},
			{at: 50 * sec, take: map[string]int64{"r": 0}, allowed: true, remain: map[string]int64{"r": tok(55)}},
		}},
		{"new rate applies from the change on", 10, 5 * sec, Limit{tok(100), tok(10)}, []step{
			{at: 5 * sec, take: map[string]int64{"r": 0}, allowed: true, remain: map[string]int64{"r": tok(5)}},
			{at: 6 * sec, take: map[string]int64{"r": 0}, allowed: true, remain: map[string]int64{"r": tok(15)}},
		}},
		{"fresh bucket starts full at the new capacity", 0, 0, Limit{tok(3), Micro}, []step{
			{at: 0, take: map[string]int64{"r": 3}, allowed: true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Set{}
			if err := s.SetLimit(0, "r", base); err != nil {
				t.Fatal(err)
			}
			if tc.taken > 0 {
				mustTake(t, s, 0, "r", tc.taken)
			}
			if err := s.SetLimit(tc.at, "r", tc.lim); err != nil {
				t.Fatal(err)
			}
			if b, ok := s.Buckets["r"]; ok && (b.Level > tc.lim.Capacity || b.Last < tc.at) {
				t.Fatalf("stored %+v: above the new capacity or not brought up to %d", b, tc.at)
			}
			runSteps(t, s, tc.steps)
		})
	}

	t.Run("invalid limit changes nothing", func(t *testing.T) {
		s := &Set{}
		if err := s.SetLimit(0, "r", base); err != nil {
			t.Fatal(err)
		}
		mustTake(t, s, 0, "r", 4)
		before := clone(s)
		err := s.SetLimit(sec, "r", Limit{Capacity: tok(10), Refill: 0})
		var le *LimitError
		if !errors.As(err, &le) || le.Name != "r" || !errors.Is(err, ErrInvalidLimit) {
			t.Fatalf("SetLimit error = %v, want *LimitError naming r", err)
		}
		if !sameSet(before, s) {
			t.Fatalf("state changed: %+v -> %+v", before, s)
		}
	})

	t.Run("state without a limit gets no credit for the gap", func(t *testing.T) {
		for _, setAt := range []int64{5 * sec, 20 * sec} { // clock behind, then ahead of the state
			s := &Set{Buckets: map[string]Bucket{"r": {Level: 0, Last: 10 * sec}}}
			if err := s.SetLimit(setAt, "r", base); err != nil {
				t.Fatal(err)
			}
			takeAt := max(setAt, 10*sec)
			runSteps(t, s, []step{
				{at: takeAt, take: map[string]int64{"r": 1}, retry: time.Second, by: "r", remain: map[string]int64{"r": 0}},
			})
			if got := s.Buckets["r"]; got != (Bucket{Level: 0, Last: takeAt}) {
				t.Fatalf("SetLimit at %d: bucket = %+v", setAt, got)
			}
		}
	})

	t.Run("remove", func(t *testing.T) {
		s := &Set{}
		if err := s.SetLimit(0, "r", base); err != nil {
			t.Fatal(err)
		}
		mustTake(t, s, 0, "r", 4)
		s.RemoveLimit("r")
		if _, err := s.Take(0, map[string]int64{"r": 0}); !errors.Is(err, ErrUnknownBucket) || len(s.Buckets) != 0 {
			t.Fatalf("after RemoveLimit: err %v, buckets %v", err, s.Buckets)
		}
	})
}

func TestLimitValidate(t *testing.T) {
	tests := []struct {
		lim Limit
		ok  bool
	}{
		{Limit{1, 1}, true},
		{Limit{MaxMicros, MaxMicros}, true},
		{Limit{tok(10), 250_000}, true},
		{Limit{0, 1}, false},
		{Limit{-1, 1}, false},
		{Limit{math.MinInt64, 1}, false},
		{Limit{MaxMicros + 1, 1}, false},
		{Limit{1, 0}, false},
		{Limit{1, -1}, false},
		{Limit{1, MaxMicros + 1}, false},
		{Limit{1, math.MaxInt64}, false},
	}
	for _, tc := range tests {
		err := tc.lim.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%+v.Validate() = %v, want ok=%v", tc.lim, err, tc.ok)
		}
		var le *LimitError
		if err != nil && (!errors.As(err, &le) || !errors.Is(err, ErrInvalidLimit)) {
			t.Errorf("%+v.Validate() = %T, want *LimitError wrapping ErrInvalidLimit", tc.lim, err)
		}
	}
}

func TestLimitFromFloat(t *testing.T) {
	tests := []struct {
		capacity, refill float64
		want             Limit
		ok               bool
	}{
		{10, 0.25, Limit{tok(10), 250_000}, true},
		{0.29, 0.1, Limit{290_000, 100_000}, true}, // 0.29 is 0.28999… in float64
		{1e12, 1e12, Limit{MaxMicros, MaxMicros}, true},
		{0.000001, 0.0000005, Limit{1, 1}, true}, // rounds half away from zero
		{0, 1, Limit{}, false},
		{1, 0.0000004, Limit{}, false},
		{-1, 1, Limit{}, false},
		{1.000001e12, 1, Limit{}, false},
		{math.NaN(), 1, Limit{}, false},
		{1, math.Inf(1), Limit{}, false},
	}
	for _, tc := range tests {
		got, err := LimitFromFloat(tc.capacity, tc.refill)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("LimitFromFloat(%v, %v) = %+v, %v; want %+v", tc.capacity, tc.refill, got, err, tc.want)
		}
		if !tc.ok && !errors.Is(err, ErrInvalidLimit) {
			t.Errorf("LimitFromFloat(%v, %v) = %+v, %v; want ErrInvalidLimit", tc.capacity, tc.refill, got, err)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&CapacityError{Name: "in", Amount: 3, Capacity: 2_500_000},
			`ratelimit: bucket "in": take of 3 tokens exceeds capacity 2.5 tokens`},
		{&UnknownBucketError{Name: "x"}, `ratelimit: no limit for bucket "x"`},
		{&LimitError{Name: "x", Limit: Limit{-1, 250_000}, Reason: "r"},
			`ratelimit: bucket "x": limit (capacity -0.000001, refill 0.25/s): limit out of range: r`},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	for _, l := range []Limit{{1, 1}, {tok(10), 250_000}, {MaxMicros, MaxMicros}} {
		data, err := l.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Limit
		if err := got.UnmarshalBinary(data); err != nil || got != l {
			t.Errorf("limit %+v: round trip %+v, %v", l, got, err)
		}
	}
	for _, b := range []Bucket{{}, {Level: -MaxMicros, Carry: nanosPerSecond - 1, Last: math.MinInt64},
		{Level: MaxMicros, Last: math.MaxInt64}, {Level: 123, Carry: 456, Last: 1_764_201_600 * sec}} {
		data, err := b.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Bucket
		if err := got.UnmarshalBinary(data); err != nil || got != b {
			t.Errorf("bucket %+v: round trip %+v, %v", b, got, err)
		}
	}
	// Pin the wire format: a change here breaks stored data.
	data, _ := Limit{tok(10), 250_000}.MarshalBinary()
	if want := []byte{0x11, 0x80, 0xad, 0xe2, 0x04, 0x90, 0xa1, 0x0f}; !bytes.Equal(data, want) {
		t.Errorf("limit encoding % x, want % x", data, want)
	}
	data, _ = Bucket{Level: -1, Carry: 2, Last: 3}.MarshalBinary()
	if want := []byte{0x21, 0x01, 0x02, 0x06}; !bytes.Equal(data, want) {
		t.Errorf("bucket encoding % x, want % x", data, want)
	}
}

func TestEncodeRefusesOutOfRange(t *testing.T) {
	if _, err := (Limit{0, 1}).MarshalBinary(); !errors.Is(err, ErrInvalidLimit) {
		t.Errorf("Limit{0,1}: err %v", err)
	}
	for _, b := range []Bucket{{Level: MaxMicros + 1}, {Level: -MaxMicros - 1}, {Carry: -1}, {Carry: nanosPerSecond}} {
		if _, err := b.MarshalBinary(); !errors.Is(err, ErrInvalidBucket) {
			t.Errorf("%+v: err %v, want ErrInvalidBucket", b, err)
		}
	}
}

func TestDecodeGarbage(t *testing.T) {
	tests := []struct {
		name   string
		bucket bool
		data   []byte
	}{
		{"nil", false, nil},
		{"empty bucket", true, []byte{}},
		{"wrong kind", false, []byte{0x21, 0x01, 0x01}},
		{"future version", true, []byte{0x22, 0x00, 0x00, 0x00}},
		{"truncated", false, []byte{0x11, 0x80}},
		{"missing field", true, []byte{0x21, 0x00, 0x00}},
		{"trailing byte", false, []byte{0x11, 0x01, 0x01, 0x00}},
		{"non-minimal varint", false, []byte{0x11, 0x81, 0x00, 0x01}},
		{"overflowing varint", true, []byte{0x21, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x00}},
		{"zero capacity", false, []byte{0x11, 0x00, 0x01}},
		{"capacity above MaxInt64", false, append([]byte{0x11}, append(uvarint(1<<63), 0x01)...)},
		{"carry out of range", true, append(append([]byte{0x21, 0x00}, uvarint(nanosPerSecond)...), 0x00)},
		{"level out of range", true, append(append([]byte{0x21}, varint(MaxMicros+1)...), 0x00, 0x00)},
	}
	for _, tc := range tests {
		var err error
		if tc.bucket {
			b := Bucket{Level: 42}
			err = b.UnmarshalBinary(tc.data)
			if b != (Bucket{Level: 42}) {
				t.Errorf("%s: failed decode modified the bucket: %+v", tc.name, b)
			}
		} else {
			l := Limit{7, 7}
			err = l.UnmarshalBinary(tc.data)
			if l != (Limit{7, 7}) {
				t.Errorf("%s: failed decode modified the limit: %+v", tc.name, l)
			}
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", tc.name, err)
		}
	}
}

func uvarint(v uint64) []byte { return binary.AppendUvarint(nil, v) }
func varint(v int64) []byte   { return binary.AppendVarint(nil, v) }

// FuzzDecode: garbage never panics, and whatever decodes re-encodes to the
// same bytes (the encoding is canonical).
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x11, 0x80, 0xad, 0xe2, 0x04, 0x90, 0xa1, 0x0f})
	f.Add([]byte{0x21, 0x01, 0x02, 0x06})
	f.Add([]byte{0x11, 0x81, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		var l Limit
		if l.UnmarshalBinary(data) == nil {
			if out, err := l.MarshalBinary(); err != nil || !bytes.Equal(out, data) {
				t.Fatalf("limit % x decoded to %+v, re-encoded % x, %v", data, l, out, err)
			}
		}
		var b Bucket
		if b.UnmarshalBinary(data) == nil {
			if out, err := b.MarshalBinary(); err != nil || !bytes.Equal(out, data) {
				t.Fatalf("bucket % x decoded to %+v, re-encoded % x, %v", data, b, out, err)
			}
		}
	})
}

// FuzzTake drives two buckets with takes and consuming adjusts at times
// that jump forwards and backwards, and checks after every operation:
//   - no level ever exceeds capacity and no timestamp moves backwards;
//   - a refused or failed take changes nothing;
//   - a refusal's RetryAfter is exact: the take succeeds after it and
//     fails a millisecond earlier;
//   - the tokens admitted since a bucket's creation never exceed
//     capacity + refill × elapsed.
func FuzzTake(f *testing.F) {
	f.Add(uint32(1_000_000), uint32(250_000), uint32(5_000_000), uint32(3_000_000),
		[]byte{2, 0, 0, 1, 0x0a, 0x0b, 0xb8, 1, 1, 0xff, 0x00, 2, 3, 0, 10, 4})
	f.Add(uint32(10_000_000), uint32(1), uint32(2_500_000), uint32(999_999),
		[]byte{0, 0, 0, 9, 0x0e, 0x80, 0x00, 1, 2, 0x7f, 0xff, 3, 0x0f, 0x12, 0x34, 0})
	// Debt so deep at the slowest rate that RetryAfter saturates.
	f.Add(uint32(99_999_999), uint32(0), uint32(1), uint32(1),
		append(bytes.Repeat([]byte{3, 0, 0, 0xff}, 60), 0, 0, 0, 1))
	f.Fuzz(func(t *testing.T, capA, rateA, capB, rateB uint32, ops []byte) {
		lims := map[string]Limit{
			"a": {Capacity: int64(capA)%tok(100) + 1, Refill: int64(rateA)%tok(10) + 1},
			"b": {Capacity: int64(capB)%tok(100) + 1, Refill: int64(rateB)%tok(10) + 1},
		}
		s := &Set{Limits: maps.Clone(lims)}
		admitted := map[string]int64{}
		created := map[string]int64{}
		scales := [4]int64{1, 1_000, ms, sec}
		now := int64(1_764_201_600) * sec
		// Long op lists add little over short ones but make each input
		// slow to run and to minimise.
		ops = ops[:min(len(ops), 4*64)]
		for len(ops) >= 4 {
			kind, dt, amt := ops[0], int64(int16(uint16(ops[1])<<8|uint16(ops[2]))), int64(ops[3])
			ops = ops[4:]
			now += dt * scales[(kind>>2)&3]
			req := map[string]int64{}
			switch kind & 3 {
			case 0:
				req["a"] = amt % 102
			case 1:
				req["b"] = amt % 102
			case 2:
				req["a"], req["b"] = amt%102, (amt*7)%102
			case 3:
				before := s.Buckets["a"].Last
				if _, err := s.Adjust(now, "a", amt*amt); err != nil {
					t.Fatal(err)
				}
				if _, ok := created["a"]; !ok {
					created["a"] = now
				}
				if s.Buckets["a"].Last < before {
					t.Fatalf("Adjust moved Last back")
				}
				checkLevels(t, s)
				continue
			}
			before := clone(s)
			res, err := s.Take(now, req)
			if err != nil {
				if !errors.Is(err, ErrExceedsCapacity) {
					t.Fatalf("Take(%d, %v): %v", now, req, err)
				}
				if !sameSet(before, s) {
					t.Fatalf("failed take changed state")
				}
				continue
			}
			checkLevels(t, s)
			for name, r := range res.Remaining {
				if r > lims[name].Capacity {
					t.Fatalf("remaining %s = %d above capacity %d", name, r, lims[name].Capacity)
				}
			}
			if !res.Allowed {
				if !sameSet(before, s) {
					t.Fatalf("refused take changed state")
				}
				checkRetry(t, s, now, req, res.RetryAfter)
				continue
			}
			for name, n := range req {
				if n == 0 {
					continue
				}
				if _, ok := created[name]; !ok {
					created[name] = now
				}
				if s.Buckets[name].Last < before.Buckets[name].Last {
					t.Fatalf("Take moved Last back")
				}
				admitted[name] += n * Micro
			}
			for name, n := range admitted {
				// admitted ≤ capacity + refill·(Last − created)/1e9, in exact arithmetic.
				l := lims[name]
				elapsed := big.NewInt(s.Buckets[name].Last - created[name])
				bound := new(big.Int).Mul(elapsed, big.NewInt(l.Refill))
				bound.Quo(bound, big.NewInt(nanosPerSecond))
				bound.Add(bound, big.NewInt(l.Capacity))
				if big.NewInt(n).Cmp(bound) > 0 {
					t.Fatalf("bucket %s admitted %d micro-tokens, bound %v", name, n, bound)
				}
			}
		}
	})
}

func checkLevels(t *testing.T, s *Set) {
	t.Helper()
	for name, b := range s.Buckets {
		if b.Level > s.Limits[name].Capacity || b.Level < -MaxMicros || b.Carry < 0 || b.Carry >= nanosPerSecond {
			t.Fatalf("bucket %s out of range: %+v (limit %+v)", name, b, s.Limits[name])
		}
	}
}

func checkRetry(t *testing.T, s *Set, now int64, req map[string]int64, w time.Duration) {
	t.Helper()
	if w <= 0 || w%time.Millisecond != 0 {
		t.Fatalf("refused with RetryAfter %v", w)
	}
	if w == MaxRetryAfter || now > math.MaxInt64-int64(w) {
		return
	}
	if res, err := clone(s).Take(now+int64(w), req); err != nil || !res.Allowed {
		t.Fatalf("Take(%v) at now+%v = %+v, %v; want allowed", req, w, res, err)
	}
	if res, err := clone(s).Take(now+int64(w)-ms, req); err != nil || res.Allowed {
		t.Fatalf("Take(%v) at now+%v-1ms = %+v, %v; want refused", req, w, res, err)
	}
}

func BenchmarkTake(b *testing.B) {
	s := &Set{Limits: map[string]Limit{"requests": {Capacity: tok(1_000_000), Refill: tok(1_000)}}}
	req := map[string]int64{"requests": 1}
	now := int64(1_764_201_600) * sec
	b.ReportAllocs()
	for b.Loop() {
		now += ms
		if _, err := s.Take(now, req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTakeThreeBuckets(b *testing.B) {
	s := &Set{Limits: map[string]Limit{
		"requests":      {Capacity: tok(1_000), Refill: tok(10)},
		"input_tokens":  {Capacity: tok(1_000_000), Refill: tok(10_000)},
		"output_tokens": {Capacity: tok(100_000), Refill: 333_333_333},
	}}
	req := map[string]int64{"requests": 1, "input_tokens": 500, "output_tokens": 50}
	now := int64(1_764_201_600) * sec
	b.ReportAllocs()
	for b.Loop() {
		now += ms
		if _, err := s.Take(now, req); err != nil {
			b.Fatal(err)
		}
	}
}
