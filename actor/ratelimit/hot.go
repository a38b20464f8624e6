package ratelimit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// Hot keys: the pure part. Nothing here reads the clock or does I/O; the
// actor glue (hotkind.go) and the caller-side layer (cluster/hotkey) call
// in with the time and the stored state.
//
// Shards. A key's tokens may be spread over shard actors 1..n (actor IDs
// with that Shard; shard 0 is the parent, the unsharded key). Shard i holds
// Share(x, n, i) of every limit x — capacity and refill, in micro-tokens:
// x/n rounded down, plus one micro-token for each of the first x mod n
// shards, so the n shares sum to exactly x (never more) and differ by at
// most one micro-token. A share may be zero (x < n micro-tokens): that
// shard then refuses every take of that bucket, or never refills. A take
// larger than the smallest share (x/n, rounded down) is refused on every
// shard with TAKE_EXCEEDS_SHARD_SHARE, even where it would fit one
// micro-token larger share, so the answer does not depend on the shard.
//
// Static shards (namespace option shards: n) start full, each with its
// share; the parent holds no tokens (its effective limits are zero). With a
// capacity that is not a whole number of tokens per shard, each shard's
// share has a fraction, and whole-token takes leave up to one token per
// shard untaken: choose capacities divisible by the shard count.
//
// Spend and the daily budget are never divided: the parent keeps the
// ledger; the caller checks a budgeted key's budget on the parent before a
// shard take, and sends spend adjustments to the parent.
//
// Automatic split (hot_threshold_tps, hot_shards): the parent, above the
// threshold, hands its tokens to S shards in these steps, each one turn of
// one actor (atomic: a crash leaves it done or not done):
//
//  1. Parent (BeginSplit): refill to now, divide every bucket's level into
//     S parcels with SplitLevel (they sum to the level exactly, each within
//     its shard's share, in whole tokens where the shares allow), store the
//     parcels in its split state (generation g+1) and empty its buckets,
//     in one turn. From now on its effective limits are zero and it
//     answers SPLIT(S, g+1, parcels).
//  2. Shard i (InitShard), on the first call that finds it not ready: the
//     caller delivers parcel i; the shard takes it, clamped to its share,
//     once per generation (it records the generation; a repeat is a no-op,
//     a parcel of a generation it already retired is refused).
//
// Merge is the reverse:
//
//  3. Shard i (RetireShard): refill to now, take every level as its parcel,
//     empty its buckets, record "retired at g" with the parcel (a repeat
//     returns the same parcel). A shard never initialised records "retired
//     at g, not initialised", so the parcel the parent kept for it can no
//     longer be delivered.
//  4. Parent (AcceptReturn), once per shard: add the shard's parcel (or,
//     for a shard never initialised, the parcel it kept) to its levels.
//     Its effective limit is the full limit minus the shares of the shards
//     not yet returned, so the sum of capacities and refill rates over
//     parent and shards never exceeds the limit at any step. When every
//     shard has returned, the parent is unsplit again.
//
// Why no step creates tokens: at every point each token of the key is in
// exactly one place — a bucket of the parent, a bucket of an initialised
// shard, a parcel the parent keeps for a shard not initialised (the shard
// takes it at most once, and refuses it once retired), or the parcel a
// retired shard keeps until the parent accepts it (at most once per shard
// and generation). A crash between steps leaves the tokens where the last
// completed turn put them; any caller can finish the sequence, because
// every step is idempotent. Tokens can only be lost: sub-micro-token
// carries, clamping to a share that shrank, a reset owner. With
// on_owner_loss reset a wiped shard may accept its parcel again: that is
// the reset's failing open, which a wiped unsharded key does too (it
// starts full).
//
// Allowances: an actor holding tokens (an unsplit parent without automatic
// split, or a shard) whose key is above the hot threshold may grant a
// calling node up to AllowanceMaxTakes takes of the same amounts,
// deducted at once; the grant is recorded (id, tokens, expiry) and
// credited back at most once when returned (unknown or expired-beyond-
// grace grants are not credited: lost, never duplicated). A split or a
// retirement waits until no grant is outstanding or all have expired.

// Hot-key limits and defaults.
const (
	// MaxStaticShards bounds the namespace option shards.
	MaxStaticShards = 1024
	// MaxHotShards bounds hot_shards (an automatic split).
	MaxHotShards = 64
	// DefaultHotShards is hot_shards when unset.
	DefaultHotShards = 4
	// DefaultMergeAfter is hot_merge_after when unset.
	DefaultMergeAfter = 10 * time.Second
	// MaxAllowanceLifetime bounds allowance_lifetime: a calling node holds
	// tokens for at most a second.
	MaxAllowanceLifetime = time.Second
	// DefaultAllowanceMaxTakes is allowance_max_takes when unset.
	DefaultAllowanceMaxTakes = 64
	// AllowanceGrace is how long past its expiry the owner still credits a
	// grant's return; later returns are lost.
	AllowanceGrace = 5 * time.Second
	// grantFraction: a grant takes at most 1/grantFraction of what the
	// bucket holds after the take, so near exhaustion grants shrink to
	// nothing and every take reaches the owner.
	grantFraction = 4
)

// ErrInvalidHotConfig is wrapped by HotConfig.Validate.
var ErrInvalidHotConfig = errors.New("invalid hot-key configuration")

// HotConfig is a namespace's hot-key handling.
type HotConfig struct {
	// Shards > 1 spreads every key over that many static shards.
	Shards int
	// ThresholdTPS is the turns/s above which a key is hot: it splits
	// (HotShards > 1, no static Shards) and its token-holding actors grant
	// allowances. 0: off.
	ThresholdTPS float64
	// HotShards is how many shards an automatic split makes; 1 disables
	// the split (allowances only). 0 means DefaultHotShards.
	HotShards int
	// MergeAfter: a split key merges once its rate stayed below half the
	// threshold this long (and was split at least this long); a merged key
	// splits again no sooner than this. 0 means DefaultMergeAfter.
	MergeAfter time.Duration
	// AllowanceLifetime is how long a calling node may hold a grant, at
	// most MaxAllowanceLifetime; 0: no allowances.
	AllowanceLifetime time.Duration
	// AllowanceMaxTakes bounds one grant, in takes of the same amounts. 0
	// means DefaultAllowanceMaxTakes.
	AllowanceMaxTakes int
	// Registry, when set, receives the node's hot actors (holdctl hot).
	Registry *HotRegistry
}

// Enabled reports whether the namespace has any hot-key handling: static
// shards or a threshold.
func (c HotConfig) Enabled() bool { return c.Shards > 1 || c.ThresholdTPS > 0 }

// AutoSplit reports whether keys split automatically.
func (c HotConfig) AutoSplit() bool { return c.Shards <= 1 && c.ThresholdTPS > 0 && c.HotShards > 1 }

// Validate reports the first out-of-range setting, wrapping
// ErrInvalidHotConfig.
func (c HotConfig) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidHotConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Shards < 0 || c.Shards > MaxStaticShards:
		return bad("shards %d: want 0..%d", c.Shards, MaxStaticShards)
	case math.IsNaN(c.ThresholdTPS) || math.IsInf(c.ThresholdTPS, 0) || c.ThresholdTPS < 0:
		return bad("hot_threshold_tps %v: want a finite number ≥ 0 (0: off)", c.ThresholdTPS)
	case c.HotShards < 0 || c.HotShards > MaxHotShards:
		return bad("hot_shards %d: want 1..%d (1: no automatic split)", c.HotShards, MaxHotShards)
	case c.MergeAfter < 0:
		return bad("hot_merge_after %v must not be negative", c.MergeAfter)
	case c.AllowanceLifetime < 0 || c.AllowanceLifetime > MaxAllowanceLifetime:
		return bad("allowance_lifetime %v: want 0..%v", c.AllowanceLifetime, MaxAllowanceLifetime)
	case c.AllowanceMaxTakes < 0:
		return bad("allowance_max_takes %d must not be negative", c.AllowanceMaxTakes)
	}
	return nil
}

// WithDefaults fills the zero fields that have defaults.
func (c HotConfig) WithDefaults() HotConfig {
	if c.HotShards == 0 {
		c.HotShards = DefaultHotShards
	}
	if c.MergeAfter == 0 {
		c.MergeAfter = DefaultMergeAfter
	}
	if c.AllowanceMaxTakes == 0 {
		c.AllowanceMaxTakes = DefaultAllowanceMaxTakes
	}
	return c
}

// IsHot applies the hot latch: a key becomes hot at ThresholdTPS and stays
// hot until its rate falls below half of it (so an allowance's takes,
// which the owner learns of only when it is returned, do not make it
// flap).
func (c HotConfig) IsHot(keyRate float64, was bool) bool {
	if c.ThresholdTPS <= 0 {
		return false
	}
	if was {
		return keyRate >= c.ThresholdTPS/2
	}
	return keyRate >= c.ThresholdTPS
}

// ShouldSplit decides the automatic split of an unsplit parent whose rate
// is rate at now: above the threshold, at least MergeAfter after its last
// merge (st.Since), and with no grant outstanding.
func (c HotConfig) ShouldSplit(st HotState, rate float64, now int64) bool {
	return c.AutoSplit() && st.Mode == HotNormal && rate >= c.ThresholdTPS &&
		(st.Since == 0 || now-st.Since >= int64(c.MergeAfter)) && st.GrantsClear(now)
}

// ShouldMerge decides, on an active shard of an automatic split, that the
// key should merge: the key's estimated rate has stayed below half the
// threshold since belowSince, for at least MergeAfter, and the split is at
// least MergeAfter old.
func (c HotConfig) ShouldMerge(st HotState, keyRate float64, belowSince, now int64) bool {
	return st.Mode == ShardActive && c.ThresholdTPS > 0 && keyRate < c.ThresholdTPS/2 &&
		belowSince != 0 && now-belowSince >= int64(c.MergeAfter) && now-st.Since >= int64(c.MergeAfter)
}

// Share returns part i (1 ≤ i ≤ n) of total divided into n parts:
// floor(total/n), plus one for the first (total mod n) parts. The n parts
// sum to total exactly and differ by at most one; total may be negative
// (a debt divides the same way).
func Share(total int64, n, i int) int64 {
	if n <= 1 {
		return total
	}
	q, r := total/int64(n), total%int64(n)
	if r < 0 {
		q, r = q-1, r+int64(n)
	}
	if int64(i) <= r {
		return q + 1
	}
	return q
}

// SplitLevel divides a bucket's level (micro-tokens) into parcels for
// shards whose capacities (their shares of the bucket's capacity) are
// caps: the parcels sum to level exactly, and each is at most its
// capacity when level is at most their sum (it is: a level never exceeds
// the capacity). A level ≥ 0 is divided in whole tokens where the
// capacities allow (Share of the whole tokens, each clamped to its
// capacity), and what is left (the sub-token fraction, or what a clamp
// kept back) goes to the first shards with room: so whole-token takes can
// use every whole token, as on the unsplit key, instead of leaving a
// fraction on every shard. A debt (level < 0) is divided with Share.
func SplitLevel(level int64, caps []int64) []int64 {
	n := len(caps)
	out := make([]int64, n)
	if level < 0 {
		for i := range out {
			out[i] = Share(level, n, i+1)
		}
		return out
	}
	whole, rest := level/Micro, level
	for i := range out {
		out[i] = min(Share(whole, n, i+1)*Micro, max(caps[i], 0))
		rest -= out[i]
	}
	for i := range out {
		if rest == 0 {
			break
		}
		add := min(rest, max(caps[i]-out[i], 0))
		out[i] += add
		rest -= add
	}
	out[0] += rest // only when level exceeds the capacities (never): keep the sum
	return out
}

// ShareLimit is shard i's share of l among n shards (possibly zero).
func ShareLimit(l Limit, n, i int) Limit {
	return Limit{Capacity: Share(l.Capacity, n, i), Refill: Share(l.Refill, n, i)}
}

// MinShare is the smallest of the n shares of total (total ≥ 0).
func MinShare(total int64, n int) int64 {
	if n <= 1 {
		return total
	}
	return total / int64(n)
}

// Rate estimates events per second over a sliding window of one second:
// the count of the previous whole window, weighted by how much of it the
// last second still overlaps, plus the current window's count. Time is
// Unix nanoseconds; a time before Start counts as Start.
type Rate struct {
	Start     int64
	Cur, Prev int64
}

const rateWindow = int64(time.Second)

func (r Rate) roll(now int64) Rate {
	if r.Start == 0 && r.Cur == 0 && r.Prev == 0 {
		return Rate{Start: now}
	}
	if now < r.Start {
		return r
	}
	switch k := (now - r.Start) / rateWindow; {
	case k == 0:
	case k == 1:
		r = Rate{Start: r.Start + rateWindow, Prev: r.Cur}
	default:
		r = Rate{Start: r.Start + k*rateWindow}
	}
	return r
}

// Add counts n events at now.
func (r Rate) Add(now, n int64) Rate {
	r = r.roll(now)
	r.Cur += n
	return r
}

// PerSecond is the estimate at now.
func (r Rate) PerSecond(now int64) float64 {
	r = r.roll(now)
	elapsed := max(now-r.Start, 0)
	return float64(r.Prev)*float64(rateWindow-elapsed)/float64(rateWindow) + float64(r.Cur)
}

// GrantTakes is how many takes of amounts one grant may cover, given the
// levels (micro-tokens) left after the take: at most maxTakes, and for
// every bucket named with a positive amount at most 1/grantFraction of its
// whole tokens. Zero when nothing positive is asked.
func GrantTakes(levels, amounts map[string]int64, maxTakes int) int64 {
	k, any := int64(maxTakes), false
	for name, a := range amounts {
		if a <= 0 {
			continue
		}
		any = true
		whole := max(levels[name], 0) / Micro
		k = min(k, whole/(grantFraction*a))
	}
	if !any {
		return 0
	}
	return max(k, 0)
}

// HotMode is where an actor stands in a split.
type HotMode uint8

const (
	// HotNormal: an unsplit parent, or a shard never initialised.
	HotNormal HotMode = iota
	// HotSplit: a parent whose tokens were handed to Shards shards.
	HotSplit
	// HotMerging: a parent taking its shards' tokens back.
	HotMerging
	// ShardActive: a shard holding its share for generation Gen.
	ShardActive
	// ShardRetired: a shard that gave its tokens back for generation Gen.
	ShardRetired
)

// Parcel is tokens in transit: micro-tokens per bucket.
type Parcel map[string]int64

// HotState is the stored hot-key state of one actor (parent or shard).
// The zero value is an unsplit parent, or a shard never initialised.
type HotState struct {
	Mode   HotMode
	Shards int
	Gen    uint64
	// Since is when Mode was entered (Unix ns).
	Since int64
	// Parcels: HotSplit/HotMerging, shard i's parcel at [i-1];
	// ShardRetired, the parcel it gave back at [0] (if Initialised).
	Parcels []Parcel
	// Returned: HotMerging, shard i returned at [i-1].
	Returned []bool
	// Initialised: ShardRetired, whether it had been initialised.
	Initialised bool
	// Grants: the sequence of grant IDs, how many grants are outstanding,
	// and the time after which every grant made is past expiry + grace.
	GrantSeq    uint64
	Outstanding int
	GrantsUntil int64
}

// GrantsClear reports whether no grant can still be credited at now.
func (st HotState) GrantsClear(now int64) bool { return st.Outstanding <= 0 || now >= st.GrantsUntil }

// zeroLimits are limits of nothing for every name of full.
func zeroLimits(full map[string]Limit) map[string]Limit {
	out := make(map[string]Limit, len(full))
	for name := range full {
		out[name] = Limit{}
	}
	return out
}

// Effective returns the limits an actor applies to its own buckets, given
// the key's full limits: the parent of static shards and a split parent
// hold nothing; a merging parent the full limits minus the shares of the
// shards not yet returned; a shard (static, or active) its share; a shard
// not initialised or retired nothing. static > 1 means static shards.
func (st HotState) Effective(full map[string]Limit, shard uint32, static int) map[string]Limit {
	switch {
	case static > 1 && shard == 0:
		return zeroLimits(full)
	case static > 1 && int(shard) <= static:
		out := make(map[string]Limit, len(full))
		for name, l := range full {
			out[name] = ShareLimit(l, static, int(shard))
		}
		return out
	case static > 1:
		return zeroLimits(full)
	case shard == 0 && st.Mode == HotSplit:
		return zeroLimits(full)
	case shard == 0 && st.Mode == HotMerging:
		out := make(map[string]Limit, len(full))
		for name, l := range full {
			e := l
			for i, back := range st.Returned {
				if !back {
					s := ShareLimit(l, st.Shards, i+1)
					e.Capacity -= s.Capacity
					e.Refill -= s.Refill
				}
			}
			out[name] = e
		}
		return out
	case shard == 0:
		return full
	case st.Mode == ShardActive:
		out := make(map[string]Limit, len(full))
		for name, l := range full {
			out[name] = ShareLimit(l, st.Shards, int(shard))
		}
		return out
	}
	return zeroLimits(full)
}

// levelAt is bucket name's state at now under l (full if it has none).
func levelAt(l Limit, buckets map[string]Bucket, name string, now int64) Bucket {
	b, ok := buckets[name]
	if !ok {
		return Bucket{Level: l.Capacity, Last: now}
	}
	return b.refill(l, now)
}

func emptyAt(b Bucket, now int64) Bucket { return Bucket{Level: 0, Last: max(now, b.Last)} }

// ErrHotState is wrapped when a split step meets an actor in a state that
// step cannot apply to (a stale or conflicting generation).
var ErrHotState = errors.New("hot-key state conflict")

// BeginSplit is step 1 on an unsplit parent: every bucket of full is
// refilled to now and its level divided into n parcels; the parent's
// buckets are emptied. It returns the new state (HotSplit, generation
// st.Gen+1) and the buckets to store. Grants are forgotten (the caller
// checked GrantsClear and deletes their records).
func BeginSplit(st HotState, full map[string]Limit, buckets map[string]Bucket, now int64, n int) (HotState, map[string]Bucket, error) {
	if st.Mode != HotNormal || n < 2 || n > MaxHotShards {
		return st, nil, fmt.Errorf("ratelimit: split into %d shards from mode %d: %w", n, st.Mode, ErrHotState)
	}
	parcels := make([]Parcel, n)
	for i := range parcels {
		parcels[i] = Parcel{}
	}
	changed := make(map[string]Bucket, len(full))
	for _, name := range slices.Sorted(maps.Keys(full)) {
		l := full[name]
		b := levelAt(l, buckets, name, now)
		caps := make([]int64, n)
		for i := range caps {
			caps[i] = Share(l.Capacity, n, i+1)
		}
		for i, p := range SplitLevel(b.Level, caps) {
			parcels[i][name] = p
		}
		changed[name] = emptyAt(b, now)
	}
	return HotState{Mode: HotSplit, Shards: n, Gen: st.Gen + 1, Since: now, Parcels: parcels, GrantSeq: st.GrantSeq}, changed, nil
}

// InitOutcome is what InitShard did.
type InitOutcome int

const (
	// Initialised: the shard took its parcel.
	Initialised InitOutcome = iota
	// AlreadyActive: it already had, for this generation: nothing changed.
	AlreadyActive
	// Refused: it retired this generation (or is of a later one): the
	// caller's view is stale; nothing changed.
	Refused
)

// InitShard is step 2 on shard `shard` of a split (n, gen): it takes
// parcel (clamped to its share) unless it already did or retired that
// generation.
func InitShard(st HotState, shard uint32, full map[string]Limit, buckets map[string]Bucket, now int64, n int, gen uint64, parcel Parcel) (HotState, map[string]Bucket, InitOutcome, error) {
	if shard == 0 || int(shard) > n || n < 2 || n > MaxHotShards || gen == 0 {
		return st, nil, Refused, fmt.Errorf("ratelimit: init of shard %d of %d at generation %d: %w", shard, n, gen, ErrHotState)
	}
	switch {
	case st.Mode == ShardActive && st.Gen == gen:
		return st, nil, AlreadyActive, nil
	case (st.Mode == ShardActive || st.Mode == ShardRetired) && st.Gen >= gen:
		return st, nil, Refused, nil
	case st.Mode == ShardActive:
		// Active at an older generation: a merge never completed without
		// retiring it, so this cannot be a real split; never add to it.
		return st, nil, Refused, fmt.Errorf("ratelimit: shard %d active at generation %d, init for %d: %w", shard, st.Gen, gen, ErrHotState)
	case st.Mode != HotNormal && st.Mode != ShardRetired:
		return st, nil, Refused, fmt.Errorf("ratelimit: shard %d in mode %d: %w", shard, st.Mode, ErrHotState)
	}
	changed := map[string]Bucket{}
	for _, name := range slices.Sorted(maps.Keys(parcel)) {
		l, ok := full[name]
		if !ok {
			continue // the limit was removed: its tokens are gone
		}
		s := ShareLimit(l, n, int(shard))
		changed[name] = Bucket{Level: max(min(parcel[name], s.Capacity), -MaxMicros), Last: now}
	}
	return HotState{Mode: ShardActive, Shards: n, Gen: gen, Since: now, GrantSeq: st.GrantSeq}, changed, Initialised, nil
}

// RetireOutcome is what RetireShard did.
type RetireOutcome struct {
	// Parcel is what the shard gave back (nil if never initialised).
	Parcel      Parcel
	Initialised bool
	// Pending: grants are outstanding; nothing changed; retry later.
	Pending bool
}

// RetireShard is step 3 on shard `shard` for generation gen: it gives back
// its levels (refilled to now under its share) and empties its buckets.
// A repeat returns the same parcel; a shard never initialised (or retired
// at an older generation) records that it retired gen uninitialised.
func RetireShard(st HotState, shard uint32, full map[string]Limit, buckets map[string]Bucket, now int64, gen uint64) (HotState, map[string]Bucket, RetireOutcome, error) {
	switch {
	case st.Mode == ShardActive && st.Gen == gen:
		if !st.GrantsClear(now) {
			return st, nil, RetireOutcome{Pending: true}, nil
		}
		parcel, changed := Parcel{}, map[string]Bucket{}
		for _, name := range slices.Sorted(maps.Keys(full)) {
			b := levelAt(ShareLimit(full[name], st.Shards, int(shard)), buckets, name, now)
			parcel[name] = b.Level
			changed[name] = emptyAt(b, now)
		}
		return HotState{Mode: ShardRetired, Shards: st.Shards, Gen: gen, Since: now, Parcels: []Parcel{parcel}, Initialised: true, GrantSeq: st.GrantSeq},
			changed, RetireOutcome{Parcel: parcel, Initialised: true}, nil
	case st.Mode == ShardRetired && st.Gen == gen:
		out := RetireOutcome{Initialised: st.Initialised}
		if st.Initialised && len(st.Parcels) == 1 {
			out.Parcel = st.Parcels[0]
		}
		return st, nil, out, nil
	case st.Mode == HotNormal || (st.Mode == ShardRetired && st.Gen < gen):
		return HotState{Mode: ShardRetired, Shards: st.Shards, Gen: gen, Since: now, GrantSeq: st.GrantSeq}, nil, RetireOutcome{}, nil
	}
	return st, nil, RetireOutcome{}, fmt.Errorf("ratelimit: retire of shard %d (mode %d, generation %d) for generation %d: %w", shard, st.Mode, st.Gen, gen, ErrHotState)
}

// AcceptReturn is step 4 on the parent: shard's tokens come back (its
// parcel, or the one the parent kept when it was never initialised), at
// most once per shard. A split parent starts merging on the first return;
// when every shard has returned it is unsplit again (done). A return for
// a generation the parent already merged is a no-op.
func AcceptReturn(st HotState, full map[string]Limit, buckets map[string]Bucket, now int64, gen uint64, shard uint32, initialised bool, parcel Parcel) (HotState, map[string]Bucket, bool, error) {
	if st.Mode == HotNormal && st.Gen == gen {
		return st, nil, true, nil
	}
	if (st.Mode != HotSplit && st.Mode != HotMerging) || st.Gen != gen || shard == 0 || int(shard) > st.Shards {
		return st, nil, false, fmt.Errorf("ratelimit: return of shard %d for generation %d to a parent in mode %d at %d: %w", shard, gen, st.Mode, st.Gen, ErrHotState)
	}
	next := st
	next.Returned = slices.Clone(st.Returned)
	if st.Mode == HotSplit {
		next.Mode, next.Since, next.Returned = HotMerging, now, make([]bool, st.Shards)
	}
	if next.Returned[shard-1] {
		return st, nil, false, nil
	}
	before := next.Effective(full, 0, 0)
	next.Returned[shard-1] = true
	after := next.Effective(full, 0, 0)
	add := st.Parcels[shard-1]
	if initialised {
		add = parcel
	}
	changed := make(map[string]Bucket, len(full))
	for _, name := range slices.Sorted(maps.Keys(full)) {
		b := levelAt(before[name], buckets, name, now)
		lvl := min(max(b.Level, -MaxMicros)+add[name], after[name].Capacity)
		changed[name] = Bucket{Level: max(lvl, -MaxMicros), Last: b.Last}
	}
	if !slices.Contains(next.Returned, false) {
		return HotState{Mode: HotNormal, Gen: st.Gen, Since: now, GrantSeq: st.GrantSeq}, changed, true, nil
	}
	return next, changed, false, nil
}

// Encoding of HotState: tag 0x41, then Mode, Shards, Gen uvarint, Since
// zigzag, GrantSeq, Outstanding uvarint, GrantsUntil zigzag, Initialised
// uvarint (0/1), the Returned count and one uvarint (0/1) each, the parcel
// count and per parcel its entry count and, in strictly increasing name
// order, name length, name, level zigzag.
const tagHotV1 = 0x41

// MarshalBinary encodes st.
func (st HotState) MarshalBinary() ([]byte, error) {
	b := []byte{tagHotV1}
	b = binary.AppendUvarint(b, uint64(st.Mode))
	b = binary.AppendUvarint(b, uint64(st.Shards))
	b = binary.AppendUvarint(b, st.Gen)
	b = binary.AppendVarint(b, st.Since)
	b = binary.AppendUvarint(b, st.GrantSeq)
	b = binary.AppendUvarint(b, uint64(max(st.Outstanding, 0)))
	b = binary.AppendVarint(b, st.GrantsUntil)
	init := uint64(0)
	if st.Initialised {
		init = 1
	}
	b = binary.AppendUvarint(b, init)
	b = binary.AppendUvarint(b, uint64(len(st.Returned)))
	for _, r := range st.Returned {
		v := uint64(0)
		if r {
			v = 1
		}
		b = binary.AppendUvarint(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(st.Parcels)))
	for _, p := range st.Parcels {
		b = appendParcel(b, p)
	}
	return b, nil
}

func appendParcel(b []byte, p Parcel) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	for _, name := range slices.Sorted(maps.Keys(p)) {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendVarint(b, p[name])
	}
	return b
}

func (d *decoder) parcel() Parcel {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("parcel size exceeds the data")
		return nil
	}
	p := make(Parcel, n)
	prev := ""
	for i := uint64(0); d.err == nil && i < n; i++ {
		name := d.str()
		if i > 0 && name <= prev {
			d.fail("parcel names not in strictly increasing order")
			return nil
		}
		prev = name
		p[name] = d.zigzag()
	}
	return p
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("truncated string")
		return ""
	}
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// UnmarshalBinary decodes data into st; anything malformed wraps
// ErrCorrupt and leaves st alone.
func (st *HotState) UnmarshalBinary(data []byte) error {
	d := decoder{what: "hot state", b: data}
	d.tag(tagHotV1)
	v := HotState{Mode: HotMode(d.uvarint()), Shards: int(d.uvarint()), Gen: d.uvarint(), Since: d.zigzag(),
		GrantSeq: d.uvarint(), Outstanding: int(d.uvarint()), GrantsUntil: d.zigzag(), Initialised: d.uvarint() == 1}
	if d.err == nil && (v.Mode > ShardRetired || v.Shards > MaxStaticShards || v.Outstanding < 0) {
		d.fail("field out of range")
	}
	nr := d.uvarint()
	if d.err == nil && nr > uint64(len(d.b)) {
		d.fail("returned count exceeds the data")
	}
	for i := uint64(0); d.err == nil && i < nr; i++ {
		v.Returned = append(v.Returned, d.uvarint() == 1)
	}
	np := d.uvarint()
	if d.err == nil && np > uint64(len(d.b)) {
		d.fail("parcel count exceeds the data")
	}
	for i := uint64(0); d.err == nil && i < np; i++ {
		v.Parcels = append(v.Parcels, d.parcel())
	}
	d.end()
	if d.err != nil {
		return d.err
	}
	if (v.Mode == HotSplit || v.Mode == HotMerging) && len(v.Parcels) != v.Shards {
		return fmt.Errorf("ratelimit: decode hot state: %w: %d parcels for %d shards", ErrCorrupt, len(v.Parcels), v.Shards)
	}
	if v.Mode == HotMerging && len(v.Returned) != v.Shards {
		return fmt.Errorf("ratelimit: decode hot state: %w: %d returned marks for %d shards", ErrCorrupt, len(v.Returned), v.Shards)
	}
	*st = v
	return nil
}

// Grant is the owner's record of one allowance.
type Grant struct {
	// Expires is when the calling node stops using it (Unix ns); it is
	// credited back if returned before Expires + AllowanceGrace.
	Expires int64
	// Tokens are whole tokens per bucket.
	Tokens map[string]int64
	// Origin is the calling node.
	Origin string
}

const tagGrantV1 = 0x51

// MarshalBinary encodes g: tag, Expires zigzag, Origin, then the tokens
// as a parcel.
func (g Grant) MarshalBinary() ([]byte, error) {
	b := []byte{tagGrantV1}
	b = binary.AppendVarint(b, g.Expires)
	b = binary.AppendUvarint(b, uint64(len(g.Origin)))
	b = append(b, g.Origin...)
	return appendParcel(b, g.Tokens), nil
}

// UnmarshalBinary decodes data into g (ErrCorrupt when malformed).
func (g *Grant) UnmarshalBinary(data []byte) error {
	d := decoder{what: "grant", b: data}
	d.tag(tagGrantV1)
	v := Grant{Expires: d.zigzag(), Origin: d.str()}
	v.Tokens = d.parcel()
	d.end()
	if d.err != nil {
		return d.err
	}
	for _, n := range v.Tokens {
		if n < 0 {
			return fmt.Errorf("ratelimit: decode grant: %w: negative tokens", ErrCorrupt)
		}
	}
	*g = v
	return nil
}
