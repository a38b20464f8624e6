package ratelimit

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// Wire reasons of the hot-key errors (actor.ReasonError, INVALID_ARGUMENT).
// A client calling through a node's hot-key layer (cluster/hotkey) sees
// only TAKE_EXCEEDS_SHARD_SHARE; the others reach a client that calls a
// parent or a shard directly (no layer, or holdctl --shard).
const (
	// ReasonTakeExceedsShardShare: a take asks a bucket for more than one
	// shard's share; metadata bucket, amount, share (tokens), shards.
	ReasonTakeExceedsShardShare = "TAKE_EXCEEDS_SHARD_SHARE"
	// ReasonKeySplit: the key's tokens are on its shards; metadata shards,
	// generation.
	ReasonKeySplit = "KEY_SPLIT"
	// ReasonShardNotReady: the shard has not been given its tokens yet.
	ReasonShardNotReady = "SHARD_NOT_READY"
	// ReasonShardRetired: the shard was merged back into its parent.
	ReasonShardRetired = "SHARD_RETIRED"
	// ReasonHotStateConflict: a split step met a state it cannot apply to.
	ReasonHotStateConflict = "HOT_STATE_CONFLICT"
)

// mergingRetryMs is the retry hint of a take a merging parent cannot hold
// yet (its capacity grows as its shards return).
const mergingRetryMs = 100

// reportEvery throttles a hot actor's reports to the registry.
const reportEvery = int64(100 * time.Millisecond)

// view is a turn's hot-key context: whether the namespace has hot-key
// handling, which shard this actor is, and its stored HotState. full is
// the key's limits, kept by effective before it replaces them with this
// actor's own.
type view struct {
	on     bool
	shard  uint32
	static int
	st     HotState
	full   map[string]Limit
}

// view fills v, a zero view of the turn's own (the caller's variable:
// a view on the heap for every turn was a measurable share of a take).
func (h *handler) view(t *actor.Turn, v *view) error {
	v.on, v.shard = h.d.Hot.Enabled(), t.ID().Shard
	if !v.on {
		return nil
	}
	if h.d.Hot.Shards > 1 {
		v.static = h.d.Hot.Shards
	}
	raw, ok, err := t.Get(keyHot)
	if err != nil {
		return err
	}
	if ok {
		if err := v.st.UnmarshalBinary(raw); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// check refuses a shard beyond the static shard count.
func (v *view) check() error {
	if v.static > 1 && int(v.shard) > v.static {
		return actor.NewReasonError("INVALID_ARGUMENT", map[string]string{"shard": strconv.Itoa(int(v.shard)), "shards": strconv.Itoa(v.static)},
			fmt.Errorf("shard %d does not exist: the namespace has %d shards", v.shard, v.static))
	}
	return nil
}

// shards is the shard count this actor divides by (1: none).
func (v *view) shards() int {
	switch {
	case v.static > 1:
		return v.static
	case v.st.Mode != HotNormal && v.st.Shards > 1:
		return v.st.Shards
	}
	return 1
}

// status is OK when this actor holds tokens (or is a parent with a budget
// check to answer), else where its tokens are.
func (v *view) status() holdfastv1.HotReply_Status {
	switch {
	case !v.on:
		return holdfastv1.HotReply_OK
	case v.shard == 0 && (v.static > 1 || v.st.Mode == HotSplit):
		return holdfastv1.HotReply_SPLIT
	case v.shard == 0, v.static > 1:
		return holdfastv1.HotReply_OK
	case v.st.Mode == ShardActive:
		return holdfastv1.HotReply_OK
	case v.st.Mode == ShardRetired:
		return holdfastv1.HotReply_RETIRED
	}
	return holdfastv1.HotReply_NOT_READY
}

func (v *view) mode() string {
	switch {
	case v.shard == 0 && v.static > 1:
		return "static"
	case v.shard == 0 && v.st.Mode == HotSplit:
		return "split"
	case v.shard == 0 && v.st.Mode == HotMerging:
		return "merging"
	case v.shard == 0:
		return "unsplit"
	case v.static > 1 || v.st.Mode == ShardActive:
		return "shard"
	case v.st.Mode == ShardRetired:
		return "retired"
	}
	return "uninitialised"
}

// plainError turns a status a client cannot act on into its error.
func (v *view) plainError(r *holdfastv1.HotReply) error {
	switch r.GetStatus() {
	case holdfastv1.HotReply_SPLIT:
		sp := r.GetSplit()
		return actor.NewReasonError(ReasonKeySplit, map[string]string{"shards": strconv.Itoa(int(sp.GetShards())), "generation": strconv.FormatUint(sp.GetGeneration(), 10)},
			fmt.Errorf("the key is split over %d shards (generation %d): call it through a node (its hot-key layer spreads the call), or a shard directly", sp.GetShards(), sp.GetGeneration()))
	case holdfastv1.HotReply_NOT_READY:
		return actor.NewReasonError(ReasonShardNotReady, map[string]string{"shard": strconv.Itoa(int(v.shard))},
			fmt.Errorf("shard %d has not been given its tokens yet: call the key through a node", v.shard))
	case holdfastv1.HotReply_RETIRED:
		return actor.NewReasonError(ReasonShardRetired, map[string]string{"shard": strconv.Itoa(int(v.shard))},
			fmt.Errorf("shard %d was merged back into its key: call the key (shard 0)", v.shard))
	}
	return nil
}

// effective replaces s's limits (the key's) with this actor's own.
func (h *handler) effective(v *view, s *Set) {
	if !v.on {
		v.full = s.Limits
		return
	}
	v.full = s.Limits
	s.Limits = v.st.Effective(v.full, v.shard, v.static)
	s.zeroOK = true
}

// shareCheck refuses, on a shard, a take above the smallest share.
func (v *view) shareCheck(amounts map[string]int64) error {
	if !v.on || v.shard == 0 {
		return nil
	}
	n := v.shards()
	for _, name := range slices.Sorted(maps.Keys(amounts)) {
		l, ok := v.full[name]
		a := amounts[name]
		if !ok || a <= 0 {
			continue
		}
		share := MinShare(l.Capacity, n)
		if a > share/Micro {
			return actor.NewReasonError(ReasonTakeExceedsShardShare, map[string]string{
				"bucket": name, "amount": strconv.FormatInt(a, 10), "share": formatMicros(share), "shards": strconv.Itoa(n),
			}, fmt.Errorf("bucket %q: take of %d tokens exceeds one shard's share (%s of %s tokens over %d shards): take at most %s at a time",
				name, a, formatMicros(share), formatMicros(l.Capacity), n, formatMicros(share/Micro*Micro)))
		}
	}
	return nil
}

// observe counts n turns (or takes answered from an allowance) at now and
// updates the hot latch and the low-rate clock.
func (h *handler) observe(now int64, v *view, n int64) {
	h.rate = h.rate.Add(now, n)
	key := h.rate.PerSecond(now) * float64(v.shards())
	h.hot = h.d.Hot.IsHot(key, h.hot)
	if h.d.Hot.ThresholdTPS > 0 && key < h.d.Hot.ThresholdTPS/2 {
		if h.belowSince == 0 {
			h.belowSince = now
		}
	} else {
		h.belowSince = 0
	}
}

func (h *handler) info(now int64, v *view) *holdfastv1.HotInfo {
	rate := h.rate.PerSecond(now)
	in := &holdfastv1.HotInfo{
		Mode: v.mode(), Shards: uint32(v.shards()), Generation: v.st.Gen,
		TurnsPerSecond: rate, KeyTurnsPerSecond: rate * float64(v.shards()),
	}
	if v.shards() == 1 {
		in.Shards = 0
	}
	if v.shard != 0 && v.static <= 1 {
		in.MergeSuggested = h.d.Hot.ShouldMerge(v.st, in.KeyTurnsPerSecond, h.belowSince, now)
	}
	if v.shard == 0 && v.st.Mode == HotMerging {
		for i, back := range v.st.Returned {
			if !back {
				in.Pending = append(in.Pending, uint32(i+1))
			}
		}
	}
	return in
}

// report tells the registry about this actor while it is hot or part of a
// split (at most every 100 ms, or on a change of mode), and forgets it
// when it is neither.
func (h *handler) report(t *actor.Turn, v *view) {
	reg := h.d.Hot.Registry
	if reg == nil {
		return
	}
	now := t.Now()
	mode := v.mode()
	interesting := h.hot || mode == "split" || mode == "merging" || (mode == "shard" && v.static <= 1)
	if !interesting {
		if h.reported != 0 {
			reg.Forget(t.ID())
			h.reported = 0
		}
		return
	}
	if mode == h.lastMode && now.UnixNano()-h.reported < reportEvery {
		return
	}
	in := h.info(now.UnixNano(), v)
	reg.Report(HotEntry{ID: t.ID(), Mode: mode, Shards: int(in.GetShards()), Generation: in.GetGeneration(),
		TurnsPerSecond: in.GetTurnsPerSecond(), KeyTurnsPerSecond: in.GetKeyTurnsPerSecond(),
		GrantsOutstanding: v.st.Outstanding, Updated: now})
	h.reported, h.lastMode = now.UnixNano(), mode
}

func (h *handler) saveHot(t *actor.Turn, v *view, st HotState) error {
	b, err := st.MarshalBinary()
	if err != nil {
		return err
	}
	v.st = st
	return t.Put(keyHot, b)
}

// hotCall answers one operation of the hot-key layer.
func (h *handler) hotCall(t *actor.Turn, v *view, m *holdfastv1.HotCall) (*holdfastv1.HotReply, error) {
	var r *holdfastv1.HotReply
	var err error
	switch op := m.GetOp().(type) {
	case *holdfastv1.HotCall_Take:
		r, err = h.take(t, v, op.Take, m, &holdfastv1.HotReply{})
	case *holdfastv1.HotCall_Adjust:
		r, err = h.adjust(t, v, op.Adjust)
	case *holdfastv1.HotCall_Get:
		r, err = h.hotGet(t, v)
	case *holdfastv1.HotCall_Set:
		var st *holdfastv1.RateLimitState
		st, err = h.set(t, v, op.Set)
		r = &holdfastv1.HotReply{State: st}
	case *holdfastv1.HotCall_AllowanceReturn:
		r, err = h.allowanceReturn(t, v, op.AllowanceReturn)
	case *holdfastv1.HotCall_ShardInit:
		r, err = h.shardInit(t, v, m)
	case *holdfastv1.HotCall_ShardRetire:
		r, err = h.shardRetire(t, v, m)
	case *holdfastv1.HotCall_MergeReturn:
		r, err = h.mergeReturn(t, v, m)
	default:
		return nil, wrap(errors.New("hot call names no operation"))
	}
	if err != nil {
		return nil, err
	}
	if v.on {
		r.Info = h.info(t.Now().UnixNano(), v)
	}
	return r, nil
}

func (h *handler) hotGet(t *actor.Turn, v *view) (*holdfastv1.HotReply, error) {
	if err := v.check(); err != nil {
		return nil, err
	}
	st, err := h.state(t, v, nil)
	if err != nil {
		return nil, err
	}
	r := &holdfastv1.HotReply{State: st}
	if s := v.status(); s != holdfastv1.HotReply_SPLIT {
		r.Status = s
		return r, nil
	}
	sp, err := h.splitReply(t, v, nil)
	if err != nil {
		return nil, err
	}
	sp.State = st
	return sp, nil
}

// splitReply is SPLIT with the split's description.
func (h *handler) splitReply(t *actor.Turn, v *view, own *KeySettings) (*holdfastv1.HotReply, error) {
	if own == nil {
		own = h.own(t)
	}
	budget, err := h.budget(t, v, own)
	if err != nil {
		return nil, err
	}
	sp := &holdfastv1.SplitInfo{Shards: uint32(v.shards()), Generation: v.st.Gen, Budget: budget > 0}
	if v.static <= 1 {
		for _, p := range v.st.Parcels {
			sp.Parcels = append(sp.Parcels, &holdfastv1.ShardParcel{Levels: maps.Clone(p)})
		}
		if h.d.Settings == nil {
			s, perKey, err := h.load(t, nil, nil)
			if err != nil {
				return nil, err
			}
			for name := range perKey {
				if sp.KeyLimits == nil {
					sp.KeyLimits = map[string]*holdfastv1.KeyLimit{}
				}
				sp.KeyLimits[name] = &holdfastv1.KeyLimit{Capacity: s.Limits[name].Capacity, Refill: s.Limits[name].Refill}
			}
		}
	}
	return &holdfastv1.HotReply{Status: holdfastv1.HotReply_SPLIT, Split: sp}, nil
}

// loadAll reads the key's full limits and every bucket state.
func (h *handler) loadAll(t *actor.Turn, own *KeySettings) (*Set, error) {
	s, _, err := h.load(t, nil, own)
	return s, err
}

// saveStep stores one split or merge step in its turn: the buckets it
// changed, the end of every allowance grant when dropGrants (the step
// takes this actor's tokens away), and the new hot state.
func (h *handler) saveStep(t *actor.Turn, v *view, st HotState, changed map[string]Bucket, dropGrants bool) error {
	if err := h.saveChanged(t, changed); err != nil {
		return err
	}
	if dropGrants {
		if err := h.dropGrants(t); err != nil {
			return err
		}
	}
	return h.saveHot(t, v, st)
}

func (h *handler) saveChanged(t *actor.Turn, changed map[string]Bucket) error {
	s := &Set{Buckets: changed}
	return h.saveBuckets(t, s, slices.Sorted(maps.Keys(changed)))
}

// split is step 1 (hot.go): hand every level to the shards, answer SPLIT.
func (h *handler) split(t *actor.Turn, v *view, own *KeySettings) (*holdfastv1.HotReply, error) {
	now := t.Now().UnixNano()
	s, err := h.loadAll(t, own)
	if err != nil {
		return nil, err
	}
	st, changed, err := BeginSplit(v.st, s.Limits, s.Buckets, now, h.d.Hot.HotShards)
	if err != nil {
		return nil, hotConflict(err)
	}
	if err := h.saveStep(t, v, st, changed, true); err != nil {
		return nil, err
	}
	t.Logger().Info("ratelimit: hot key split", "actor", t.ID().String(), "shards", st.Shards, "generation", st.Gen,
		"turns_per_second", h.rate.PerSecond(now))
	return h.splitReply(t, v, own)
}

func hotConflict(err error) error {
	return actor.NewReasonError(ReasonHotStateConflict, nil, err)
}

// shardInit is step 2 on a shard. Without a settings store (a single
// node) the parcel carries the key's own limits, which the shard stores as
// its own when it takes the parcel.
func (h *handler) shardInit(t *actor.Turn, v *view, m *holdfastv1.HotCall) (*holdfastv1.HotReply, error) {
	if !v.on || v.shard == 0 || v.static > 1 {
		return nil, wrap(errors.New("shard_init applies to a shard of an automatic split"))
	}
	s, perKey, err := h.load(t, nil, h.own(t))
	if err != nil {
		return nil, err
	}
	in := m.GetShardInit()
	keyLimits := map[string]Limit{}
	if h.d.Settings == nil && len(in.GetKeyLimits()) > 0 {
		for name, kl := range in.GetKeyLimits() {
			l := Limit{Capacity: kl.GetCapacity(), Refill: kl.GetRefill()}
			if !validBucketName(name) || l.Validate() != nil {
				return nil, wrap(fmt.Errorf("shard_init: invalid limit for bucket %q", name))
			}
			keyLimits[name] = l
		}
		for name := range perKey {
			if d, ok := h.d.Buckets[name]; ok {
				s.Limits[name] = d
			} else {
				delete(s.Limits, name)
			}
		}
		maps.Copy(s.Limits, keyLimits)
	}
	now := t.Now().UnixNano()
	st, changed, outcome, err := InitShard(v.st, v.shard, s.Limits, s.Buckets, now, int(m.GetShards()), m.GetGeneration(), Parcel(in.GetLevels()))
	if err != nil {
		return nil, hotConflict(err)
	}
	switch outcome {
	case Refused:
		return &holdfastv1.HotReply{Status: holdfastv1.HotReply_RETIRED}, nil
	case AlreadyActive:
		return &holdfastv1.HotReply{}, nil
	}
	if len(keyLimits) > 0 {
		for name := range perKey {
			if _, keep := keyLimits[name]; !keep {
				if _, err := t.Delete(keyLimitPrefix + name); err != nil {
					return nil, err
				}
			}
		}
		for _, name := range slices.Sorted(maps.Keys(keyLimits)) {
			raw, err := keyLimits[name].MarshalBinary()
			if err != nil {
				return nil, wrap(err)
			}
			if err := t.Put(keyLimitPrefix+name, raw); err != nil {
				return nil, err
			}
		}
	}
	if err := h.saveStep(t, v, st, changed, false); err != nil {
		return nil, err
	}
	return &holdfastv1.HotReply{}, nil
}

// shardRetire is step 3 on a shard.
func (h *handler) shardRetire(t *actor.Turn, v *view, m *holdfastv1.HotCall) (*holdfastv1.HotReply, error) {
	if !v.on || v.shard == 0 || v.static > 1 {
		return nil, wrap(errors.New("shard_retire applies to a shard of an automatic split"))
	}
	s, err := h.loadAll(t, nil)
	if err != nil {
		return nil, err
	}
	now := t.Now().UnixNano()
	st, changed, out, err := RetireShard(v.st, v.shard, s.Limits, s.Buckets, now, m.GetGeneration())
	if err != nil {
		return nil, hotConflict(err)
	}
	if out.Pending {
		return &holdfastv1.HotReply{Status: holdfastv1.HotReply_PENDING, RetryAfterMs: max((v.st.GrantsUntil-now+int64(time.Millisecond)-1)/int64(time.Millisecond), 1)}, nil
	}
	if changed != nil || st.Mode != v.st.Mode || st.Gen != v.st.Gen {
		if err := h.saveStep(t, v, st, changed, true); err != nil {
			return nil, err
		}
	}
	r := &holdfastv1.HotReply{Initialised: out.Initialised}
	if out.Parcel != nil {
		r.Parcel = &holdfastv1.ShardParcel{Levels: maps.Clone(out.Parcel)}
	}
	return r, nil
}

// mergeReturn is step 4 on the parent.
func (h *handler) mergeReturn(t *actor.Turn, v *view, m *holdfastv1.HotCall) (*holdfastv1.HotReply, error) {
	if !v.on || v.shard != 0 || v.static > 1 {
		return nil, wrap(errors.New("merge_return applies to the parent of an automatic split"))
	}
	s, err := h.loadAll(t, nil)
	if err != nil {
		return nil, err
	}
	now := t.Now().UnixNano()
	mr := m.GetMergeReturn()
	st, changed, done, err := AcceptReturn(v.st, s.Limits, s.Buckets, now, m.GetGeneration(), mr.GetShard(), mr.GetInitialised(), Parcel(mr.GetParcel().GetLevels()))
	if err != nil {
		return nil, hotConflict(err)
	}
	if changed != nil {
		if err := h.saveStep(t, v, st, changed, false); err != nil {
			return nil, err
		}
		if done {
			t.Logger().Info("ratelimit: hot key merged", "actor", t.ID().String(), "generation", st.Gen)
		}
	}
	return &holdfastv1.HotReply{}, nil
}

// grant is an allowance for takes of amounts, deducted from s (already
// holding the take) when this actor holds tokens, its key is hot and
// allowances are on: at most AllowanceMaxTakes takes, and at most a
// quarter of each bucket (GrantTakes). nil when none.
func (h *handler) grant(t *actor.Turn, v *view, s *Set, amounts map[string]int64, call *holdfastv1.HotCall) (*holdfastv1.Allowance, error) {
	c := h.d.Hot
	if c.AllowanceLifetime <= 0 || !h.hot || !v.on || v.status() != holdfastv1.HotReply_OK || (v.shard == 0 && (c.AutoSplit() || v.st.Mode != HotNormal)) {
		return nil, nil
	}
	levels := map[string]int64{}
	for name, a := range amounts {
		if a > 0 {
			levels[name] = s.Buckets[name].Level
		}
	}
	k := GrantTakes(levels, amounts, c.AllowanceMaxTakes)
	if k == 0 {
		return nil, nil
	}
	now := t.Now().UnixNano()
	if err := h.purgeGrants(t, v, now); err != nil {
		return nil, err
	}
	tokens := map[string]int64{}
	for name, a := range amounts {
		if a > 0 {
			tokens[name] = a * k
			b := s.Buckets[name]
			b.Level -= a * k * Micro
			s.Buckets[name] = b
		}
	}
	st := v.st
	st.GrantSeq++
	id := strconv.FormatUint(st.GrantSeq, 36)
	g := Grant{Expires: now + int64(c.AllowanceLifetime), Tokens: tokens, Origin: call.GetOriginNode()}
	raw, err := g.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if err := t.Put(keyGrantPrefix+id, raw); err != nil {
		return nil, err
	}
	st.Outstanding++
	st.GrantsUntil = max(st.GrantsUntil, g.Expires+int64(AllowanceGrace))
	if err := h.saveHot(t, v, st); err != nil {
		return nil, err
	}
	return &holdfastv1.Allowance{Id: id, Tokens: tokens, LifetimeMs: c.AllowanceLifetime.Milliseconds(), Nonce: call.GetNonce()}, nil
}

// purgeGrants deletes the records of grants past expiry + grace (their
// returns are no longer credited) and recounts the outstanding ones.
func (h *handler) purgeGrants(t *actor.Turn, v *view, now int64) error {
	kvs, _, err := t.List(actor.ListOptions{Prefix: keyGrantPrefix})
	if err != nil {
		return err
	}
	left := 0
	for _, kv := range kvs {
		var g Grant
		if err := g.UnmarshalBinary(kv.Value); err != nil || now > g.Expires+int64(AllowanceGrace) {
			if _, err := t.Delete(kv.Key); err != nil {
				return err
			}
			continue
		}
		left++
	}
	v.st.Outstanding = left
	return nil
}

// dropGrants deletes every grant record (a split or a retirement, once no
// grant can be credited any more).
func (h *handler) dropGrants(t *actor.Turn) error {
	kvs, _, err := t.List(actor.ListOptions{Prefix: keyGrantPrefix})
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		if _, err := t.Delete(kv.Key); err != nil {
			return err
		}
	}
	return nil
}

// allowanceReturn credits back what a node did not use of grant id, at
// most what was granted, once: the record is deleted. An unknown grant
// (already returned, never made, or purged past expiry + grace) credits
// nothing.
func (h *handler) allowanceReturn(t *actor.Turn, v *view, m *holdfastv1.AllowanceReturn) (*holdfastv1.HotReply, error) {
	now := t.Now().UnixNano()
	if v.on && m.GetUsedTakes() > 0 {
		h.observe(now, v, m.GetUsedTakes())
	}
	key := keyGrantPrefix + m.GetId()
	if m.GetId() == "" || strings.Contains(m.GetId(), "/") {
		return nil, wrap(errors.New("allowance_return names no grant"))
	}
	raw, ok, err := t.Get(key)
	if err != nil || !ok {
		return &holdfastv1.HotReply{}, err
	}
	var g Grant
	if err := g.UnmarshalBinary(raw); err != nil {
		return nil, wrap(err)
	}
	if _, err := t.Delete(key); err != nil {
		return nil, err
	}
	st := v.st
	st.Outstanding = max(st.Outstanding-1, 0)
	if now <= g.Expires+int64(AllowanceGrace) && v.status() == holdfastv1.HotReply_OK {
		names := slices.Sorted(maps.Keys(g.Tokens))
		s, _, err := h.load(t, names, nil)
		if err != nil {
			return nil, err
		}
		h.effective(v, s)
		var credited []string
		for _, name := range names {
			back := min(max(m.GetUnused()[name], 0), g.Tokens[name])
			if _, ok := s.Limits[name]; !ok || back == 0 {
				continue // the limit was removed: its tokens are gone
			}
			if _, err := s.Adjust(now, name, -back); err != nil {
				return nil, wrap(err)
			}
			credited = append(credited, name)
		}
		if err := h.saveBuckets(t, s, credited); err != nil {
			return nil, err
		}
	}
	if err := h.saveHot(t, v, st); err != nil {
		return nil, err
	}
	return &holdfastv1.HotReply{}, nil
}

// refreshAll brings every bucket to now under this actor's current
// limits (before a set changes them).
func (h *handler) refreshAll(t *actor.Turn, v *view, own *KeySettings) error {
	s, _, err := h.load(t, nil, own)
	if err != nil {
		return err
	}
	h.effective(v, s)
	now := t.Now().UnixNano()
	var names []string
	for name, b := range s.Buckets {
		l, err := s.limit(name)
		if err != nil {
			continue
		}
		s.Buckets[name] = b.refill(l, now)
		names = append(names, name)
	}
	return h.saveBuckets(t, s, names)
}

func anyPositive(m map[string]int64) bool {
	for _, v := range m {
		if v > 0 {
			return true
		}
	}
	return false
}

func anyNonZero(m map[string]int64) bool {
	for _, v := range m {
		if v != 0 {
			return true
		}
	}
	return false
}
