package ratelimit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

// Kind is the kind name used in configuration.
const Kind = "ratelimit"

// Defaults are a namespace's limits, used where a key has none of its own.
type Defaults struct {
	Buckets map[string]Limit
	// DailyBudgetNanos is the daily spend budget; 0: none.
	DailyBudgetNanos int64
	// SpendRetentionDays is how many days of spend counters to keep.
	SpendRetentionDays int
	// Settings, when non-nil, keeps each key's own limits and budget
	// (what `ratelimit set` writes) instead of the actor's state: a
	// cluster sets it to its replicated settings bucket, so that a fresh
	// actor state (on_owner_loss reset) loses bucket levels and spend
	// only, never limits. Nil (a single node): they live in the actor's
	// state, under keyLimitPrefix and keyBudget.
	Settings Settings
	// Hot is the namespace's hot-key handling (static shards, automatic
	// split, allowances; hot.go, hotkind.go). The zero value: none.
	Hot HotConfig

	bucketKeys map[string]string // set by New: see bucketKey
}

// settingsPutTimeout bounds a `set`'s write to Settings (also bounded by
// the caller's context and the turn deadline): the turn holds the actor's
// turn lock meanwhile.
const settingsPutTimeout = 5 * time.Second

// Storage keys of one ratelimit actor.
const (
	keyLimitPrefix  = "limit/"  // + bucket name -> Limit (per-key override)
	keyBucketPrefix = "bucket/" // + bucket name -> Bucket
	keySpendPrefix  = "spend/"  // + YYYY-MM-DD -> 8B nano-dollars
	keyBudget       = "budget"  // 8B nano-dollars (per-key override)
	keyHot          = "hot"     // HotState (hot-key namespaces only)
	keyGrantPrefix  = "grant/"  // + grant ID -> Grant (allowances granted)
)

// New returns the handler constructor of a ratelimit namespace.
func New(d Defaults) func(actor.ID) actor.Handler {
	if d.SpendRetentionDays <= 0 {
		d.SpendRetentionDays = 7
	}
	d.Hot = d.Hot.WithDefaults()
	d.bucketKeys = make(map[string]string, len(d.Buckets))
	for name := range d.Buckets {
		d.bucketKeys[name] = keyBucketPrefix + name
	}
	return func(actor.ID) actor.Handler { return &handler{d: d} }
}

// bucketKey is the storage key of bucket name's state: built once per
// default bucket (the key escapes into the turn's writes, so a fresh
// concatenation was an allocation per take).
func (d *Defaults) bucketKey(name string) string {
	if k, ok := d.bucketKeys[name]; ok {
		return k
	}
	return keyBucketPrefix + name
}

// handler is one ratelimit actor. It caches no state: every turn loads the
// few keys it needs, so an evicted, reset or rolled-back actor can never
// act on stale state. What it keeps in memory is a heuristic only (lost on
// eviction, harmlessly): the turn rate estimate of a hot-key namespace,
// its hot latch, since when the key's rate is low, and when it last
// reported to the registry.
type handler struct {
	d Defaults

	rate       Rate
	hot        bool
	belowSince int64
	reported   int64
	lastMode   string
}

// Error is an invalid request with its wire reason; it is an
// actor.ErrInvalidArgument.
type Error = actor.ReasonError

func wrap(err error) error {
	var ub *UnknownBucketError
	var le *LimitError
	switch {
	case errors.As(err, &ub):
		return actor.NewReasonError("UNKNOWN_BUCKET", map[string]string{"bucket": ub.Name},
			fmt.Errorf("bucket %q has neither a per-key nor a namespace limit (set one with `holdctl ratelimit set`)", ub.Name))
	case errors.As(err, &le):
		return actor.NewReasonError("INVALID_LIMIT", map[string]string{"bucket": le.Name}, err)
	case errors.Is(err, ErrNegativeAmount):
		return actor.NewReasonError("NEGATIVE_AMOUNT", nil, err)
	case errors.Is(err, ErrCorrupt):
		return fmt.Errorf("%w: %v", actor.ErrStorage, err)
	}
	return actor.NewReasonError("INVALID_ARGUMENT", nil, err)
}

// Receive implements actor.Handler.
func (h *handler) Receive(t *actor.Turn, msg proto.Message) (proto.Message, error) {
	var vv view
	if err := h.view(t, &vv); err != nil {
		return nil, err
	}
	v := &vv
	if v.on {
		h.observe(t.Now().UnixNano(), v, 1)
		defer h.report(t, v)
	}
	switch m := msg.(type) {
	case *holdfastv1.HotCall:
		return h.hotCall(t, v, m)
	case *holdfastv1.RateLimitTakeRequest:
		var out holdfastv1.HotReply // not returned: it may live on the stack
		r, err := h.take(t, v, m, nil, &out)
		if err != nil {
			return nil, err
		}
		if err := v.plainError(r); err != nil {
			return nil, err
		}
		return r.GetTake(), nil
	case *holdfastv1.RateLimitAdjustRequest:
		r, err := h.adjust(t, v, m)
		if err != nil {
			return nil, err
		}
		if err := v.plainError(r); err != nil {
			return nil, err
		}
		return r.GetState(), nil
	case *holdfastv1.RateLimitGetRequest:
		if err := v.check(); err != nil {
			return nil, err
		}
		return h.state(t, v, nil)
	case *holdfastv1.RateLimitSetRequest:
		return h.set(t, v, m)
	}
	return nil, fmt.Errorf("ratelimit: %w %T", actor.ErrUnknownOperation, msg)
}

// own returns the key's settings from Settings, or nil when there is no
// Settings (single node: they are read from the actor's state).
func (h *handler) own(t *actor.Turn) *KeySettings {
	if h.d.Settings == nil {
		return nil
	}
	id := t.ID()
	ks, _, _ := h.d.Settings.Get(id.Namespace, id.Key)
	return &ks
}

// load reads limits and bucket state for names (all configured names when
// names is nil) into a Set, plus which limits are per-key (nil: none). Named loads (a
// take, an adjust) read only their buckets' keys: no scan on the hot path.
// Per-key limits come from own when it is non-nil (Settings), else from
// the actor's state.
func (h *handler) load(t *actor.Turn, names []string, own *KeySettings) (*Set, map[string]bool, error) {
	s := &Set{Limits: make(map[string]Limit, len(names)), Buckets: make(map[string]Bucket, len(names))}
	perKey, err := h.loadInto(t, s, names, own)
	if err != nil {
		return nil, nil, err
	}
	return s, perKey, nil
}

// takeSets recycles the Sets of plain takes (takeSet): a Set's two maps
// were most of a take's allocations.
var takeSets = sync.Pool{New: func() any {
	return &Set{Limits: make(map[string]Limit, 1), Buckets: make(map[string]Bucket, 1)}
}}

// takeSet returns an empty Set for one turn; the caller gives it back with
// putTakeSet once nothing refers to it or its maps.
func takeSet() *Set { return takeSets.Get().(*Set) }

func putTakeSet(s *Set) {
	clear(s.Limits)
	clear(s.Buckets)
	s.zeroOK = false
	takeSets.Put(s)
}

// loadInto is load into s, an empty Set with non-nil maps.
func (h *handler) loadInto(t *actor.Turn, s *Set, names []string, own *KeySettings) (map[string]bool, error) {
	// perKey is made on the first per-key limit: most takes have none, and
	// a map is a large share of a take's allocations.
	var perKey map[string]bool
	keyLimit := func(name string, l Limit) {
		if perKey == nil {
			perKey = map[string]bool{}
		}
		s.Limits[name], perKey[name] = l, true
	}
	switch {
	case own != nil && names == nil:
		maps.Copy(s.Limits, h.d.Buckets)
		for name, l := range own.Limits {
			keyLimit(name, l)
		}
		names = slices.Sorted(maps.Keys(s.Limits))
	case own != nil:
		for _, name := range names {
			if l, ok := own.Limits[name]; ok {
				keyLimit(name, l)
			} else if l, ok := h.d.Buckets[name]; ok {
				s.Limits[name] = l
			}
		}
	case names == nil:
		for name, l := range h.d.Buckets {
			s.Limits[name] = l
		}
		stored, _, err := t.List(actor.ListOptions{Prefix: keyLimitPrefix})
		if err != nil {
			return nil, err
		}
		for _, kv := range stored {
			var l Limit
			if err := l.UnmarshalBinary(kv.Value); err != nil {
				return nil, wrap(err)
			}
			keyLimit(strings.TrimPrefix(kv.Key, keyLimitPrefix), l)
		}
		names = slices.Sorted(maps.Keys(s.Limits))
	default:
		for _, name := range names {
			v, ok, err := t.Get(keyLimitPrefix + name)
			if err != nil {
				return nil, err
			}
			if ok {
				var l Limit
				if err := l.UnmarshalBinary(v); err != nil {
					return nil, wrap(err)
				}
				keyLimit(name, l)
			} else if l, ok := h.d.Buckets[name]; ok {
				s.Limits[name] = l
			}
		}
	}
	for _, name := range names {
		v, ok, err := t.Get(keyBucketPrefix + name)
		if err != nil {
			return nil, err
		}
		if ok {
			var b Bucket
			if err := b.UnmarshalBinary(v); err != nil {
				return nil, wrap(err)
			}
			s.Buckets[name] = b
		}
	}
	return perKey, nil
}

func (h *handler) saveBuckets(t *actor.Turn, s *Set, names []string) error {
	for _, name := range names {
		b, ok := s.Buckets[name]
		if !ok {
			continue
		}
		v, err := b.MarshalBinary()
		if err != nil {
			return wrap(err)
		}
		if err := t.Put(h.d.bucketKey(name), v); err != nil {
			return err
		}
	}
	return nil
}

// budget returns the key's daily budget: its own (from own when non-nil,
// else from the actor's state) or the namespace default; none (0) on a
// shard of a hot-key namespace.
func (h *handler) budget(t *actor.Turn, v *view, own *KeySettings) (int64, error) {
	if v.on && v.shard != 0 {
		return 0, nil // shards keep no spend: the parent checks the budget
	}
	if own != nil {
		if own.DailyBudgetNanos > 0 {
			return own.DailyBudgetNanos, nil
		}
		return h.d.DailyBudgetNanos, nil
	}
	raw, ok, err := t.Get(keyBudget)
	if err != nil {
		return 0, err
	}
	if ok && len(raw) == 8 {
		return int64(binary.BigEndian.Uint64(raw)), nil
	}
	return h.d.DailyBudgetNanos, nil
}

func (h *handler) ledger(t *actor.Turn, day string) (Ledger, error) {
	l := Ledger{}
	v, ok, err := t.Get(keySpendPrefix + day)
	if err != nil {
		return nil, err
	}
	if ok && len(v) == 8 {
		l[day] = int64(binary.BigEndian.Uint64(v))
	}
	return l, nil
}

func micros(m int64) float64 { return float64(m) / float64(Micro) }

func untilMidnight(now int64) int64 {
	day := time.Unix(0, now).UTC().Truncate(24 * time.Hour)
	next := day.Add(24 * time.Hour)
	return (next.UnixNano() - now + int64(time.Millisecond) - 1) / int64(time.Millisecond)
}

// take answers a take: a client's (call nil) or the hot-key layer's (a
// HotCall, which may ask for an allowance and may trigger the split). On a
// parent of a split key, or a shard not ready or retired, it answers that
// status and takes nothing; a take naming no positive amount on a split
// parent is a budget check only (the layer's, before a shard take). The
// reply is out, filled in, unless the take split the key (a reply of its
// own): a client's take passes one on its stack, the reply it unwraps
// being a sixth of a take's allocated bytes.
func (h *handler) take(t *actor.Turn, v *view, m *holdfastv1.RateLimitTakeRequest, call *holdfastv1.HotCall, out *holdfastv1.HotReply) (*holdfastv1.HotReply, error) {
	if len(m.GetAmounts()) == 0 && !(call != nil && v.on && v.shard == 0) {
		return nil, wrap(errors.New("take names no bucket"))
	}
	if m.GetSpendEstimateNanos() < 0 {
		return nil, wrap(fmt.Errorf("%w: spend_estimate_nanos", ErrNegativeSpend))
	}
	now := t.Now().UnixNano()
	var nameBuf [4]string // most takes name one bucket: no allocation
	names := appendSortedKeys(nameBuf[:0], m.GetAmounts())
	own := h.own(t)
	asks := anyPositive(m.GetAmounts())
	if v.on {
		if err := v.check(); err != nil {
			return nil, err
		}
		switch st := v.status(); {
		case st == holdfastv1.HotReply_SPLIT && asks:
			return h.splitReply(t, v, own)
		case st == holdfastv1.HotReply_NOT_READY || st == holdfastv1.HotReply_RETIRED:
			out.Status = st
			return out, nil
		case call != nil && asks && v.shard == 0 && h.d.Hot.ShouldSplit(v.st, h.rate.PerSecond(now), now):
			return h.split(t, v, own)
		}
	}
	var s *Set
	if !v.on && call == nil {
		// A client's take on a plain key keeps nothing of its Set past
		// the turn (a grant or a hot key's effective limits may).
		s = takeSet()
		defer putTakeSet(s)
	} else {
		s = &Set{Limits: make(map[string]Limit, len(names)), Buckets: make(map[string]Bucket, len(names))}
	}
	if _, err := h.loadInto(t, s, names, own); err != nil {
		return nil, err
	}
	h.effective(v, s)
	if err := v.shareCheck(m.GetAmounts()); err != nil {
		return nil, err
	}
	resp := &holdfastv1.RateLimitTakeResponse{Remaining: make(map[string]float64, len(names)), BudgetRemainingNanos: -1}
	budget, err := h.budget(t, v, own)
	if err != nil {
		return nil, err
	}
	budgetOK := true
	if budget > 0 {
		led, err := h.ledger(t, DayKey(now))
		if err != nil {
			return nil, err
		}
		fits, remaining, err := led.Check(now, budget, m.GetSpendEstimateNanos())
		if err != nil {
			return nil, wrap(err)
		}
		budgetOK = fits
		resp.BudgetRemainingNanos = remaining
	}
	if len(names) == 0 {
		// The layer's budget check on a split parent: nothing to take.
		resp.Allowed = budgetOK
		if !budgetOK {
			resp.RefusedBy, resp.RetryAfterMs = "daily_budget", untilMidnight(now)
		}
		out.Take = resp
		return out, nil
	}
	amounts := m.GetAmounts()
	if !budgetOK {
		amounts = make(map[string]int64, len(names)) // look, don't take
		for _, n := range names {
			amounts[n] = 0
		}
	}
	var small [4]int64 // most takes name one bucket: no allocation
	levels := small[:]
	if len(names) > len(small) {
		levels = make([]int64, len(names))
	}
	res, err := s.take(now, names, amounts, levels)
	if err != nil {
		// Declared here, not above: errors.As moves ce to the heap, which
		// cost an allocation on every take.
		var ce *CapacityError
		if !errors.As(err, &ce) {
			return nil, wrap(err)
		}
		if _, lerr := s.take(now, names, zeroes(names), levels); lerr != nil {
			return nil, wrap(lerr)
		}
		for i, n := range names {
			resp.Remaining[n] = micros(levels[i])
		}
		resp.RetryAfterMs, resp.RefusedBy = -1, ce.Name
		if full, ok := v.full[ce.Name]; ok && v.st.Mode == HotMerging && v.shard == 0 && ce.Amount <= full.Capacity/Micro {
			// A merging parent's capacity grows as its shards return.
			resp.RetryAfterMs = mergingRetryMs
		}
		out.Take = resp
		return out, nil
	}
	for i, n := range names {
		resp.Remaining[n] = micros(levels[i])
	}
	out.Take = resp
	switch {
	case !budgetOK:
		resp.RefusedBy, resp.RetryAfterMs = "daily_budget", untilMidnight(now)
	case !res.Allowed:
		resp.RefusedBy, resp.RetryAfterMs = res.RefusedBy, res.RetryAfter.Milliseconds()
	default:
		resp.Allowed = true
		if call != nil && call.GetWantAllowance() && m.GetSpendEstimateNanos() == 0 && budget == 0 {
			if out.Allowance, err = h.grant(t, v, s, m.GetAmounts(), call); err != nil {
				return nil, err
			}
			for _, n := range names {
				if b, ok := s.Buckets[n]; ok {
					resp.Remaining[n] = micros(b.Level)
				}
			}
		}
		if err := h.saveBuckets(t, s, names); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func zeroes(names []string) map[string]int64 {
	z := make(map[string]int64, len(names))
	for _, n := range names {
		z[n] = 0
	}
	return z
}

// adjust applies deltas (and spend) after the fact. On a parent of a
// split key bucket deltas answer SPLIT (spend alone is applied: the parent
// keeps the ledger); a shard keeps no spend.
func (h *handler) adjust(t *actor.Turn, v *view, m *holdfastv1.RateLimitAdjustRequest) (*holdfastv1.HotReply, error) {
	now := t.Now().UnixNano()
	names := slices.Sorted(maps.Keys(m.GetDeltas()))
	own := h.own(t)
	if v.on {
		if err := v.check(); err != nil {
			return nil, err
		}
		moves := anyNonZero(m.GetDeltas())
		switch st := v.status(); {
		case st == holdfastv1.HotReply_SPLIT && moves:
			return h.splitReply(t, v, own)
		case st == holdfastv1.HotReply_NOT_READY || st == holdfastv1.HotReply_RETIRED:
			if moves || m.GetSpendNanos() != 0 {
				return &holdfastv1.HotReply{Status: st}, nil
			}
			state, err := h.state(t, v, own)
			return &holdfastv1.HotReply{Status: st, State: state}, err
		}
		if v.shard != 0 && m.GetSpendNanos() != 0 {
			return nil, wrap(fmt.Errorf("shard %d keeps no spend: adjust spend on the key's parent (shard 0)", v.shard))
		}
	}
	s, _, err := h.load(t, names, own)
	if err != nil {
		return nil, err
	}
	h.effective(v, s)
	for _, n := range names {
		if _, err := s.Adjust(now, n, m.GetDeltas()[n]); err != nil {
			return nil, wrap(err)
		}
	}
	if err := h.saveBuckets(t, s, names); err != nil {
		return nil, err
	}
	if d := m.GetSpendNanos(); d != 0 {
		day := DayKey(now)
		led, err := h.ledger(t, day)
		if err != nil {
			return nil, err
		}
		total, err := led.Add(day, d)
		if err != nil {
			return nil, wrap(err)
		}
		if err := t.Put(keySpendPrefix+day, binary.BigEndian.AppendUint64(nil, uint64(total))); err != nil {
			return nil, err
		}
		if _, ok := t.Alarm(); !ok {
			// Tidy old days a little after the next midnight.
			t.SetAlarm(time.Unix(0, now).UTC().Truncate(24 * time.Hour).Add(24*time.Hour + time.Minute))
		}
	}
	state, err := h.state(t, v, own)
	return &holdfastv1.HotReply{State: state}, err
}

// requestedLimit validates one bucket of a set request: its name and its
// limit (an invalid limit's error names the bucket).
func requestedLimit(name string, bl *holdfastv1.BucketLimit) (Limit, error) {
	if !validBucketName(name) {
		return Limit{}, wrap(fmt.Errorf("invalid bucket name %q (1-128 bytes, no '/')", name))
	}
	l, err := LimitFromFloat(bl.GetCapacity(), bl.GetRefillPerSecond())
	if err != nil {
		var le *LimitError
		if errors.As(err, &le) {
			le.Name = name
		}
		return Limit{}, wrap(err)
	}
	return l, nil
}

func (h *handler) set(t *actor.Turn, v *view, m *holdfastv1.RateLimitSetRequest) (*holdfastv1.RateLimitState, error) {
	if v.on {
		if err := v.check(); err != nil {
			return nil, err
		}
		if v.shard != 0 && h.d.Settings != nil {
			// Settings are per key, written once by the parent; a shard
			// applies them on its next turn (levels clamp to its share).
			return h.state(t, v, nil)
		}
		// Bring every level up to now under the limits in force before,
		// so the new ones apply from now on (SetLimit then refills
		// nothing: the buckets are already at now).
		if err := h.refreshAll(t, v, h.own(t)); err != nil {
			return nil, err
		}
	}
	if h.d.Settings != nil {
		return h.setShared(t, v, m)
	}
	now := t.Now().UnixNano()
	s, perKey, err := h.load(t, nil, nil)
	if err != nil {
		return nil, err
	}
	if m.GetReplace() {
		for name := range perKey {
			if _, err := t.Delete(keyLimitPrefix + name); err != nil {
				return nil, err
			}
			if d, ok := h.d.Buckets[name]; ok {
				s.Limits[name] = d
			} else {
				s.RemoveLimit(name)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetBuckets())) {
		l, err := requestedLimit(name, m.GetBuckets()[name])
		if err != nil {
			return nil, err
		}
		if err := s.SetLimit(now, name, l); err != nil {
			return nil, wrap(err)
		}
		v, err := l.MarshalBinary()
		if err != nil {
			return nil, wrap(err)
		}
		if err := t.Put(keyLimitPrefix+name, v); err != nil {
			return nil, err
		}
	}
	if err := h.saveBuckets(t, s, slices.Collect(maps.Keys(s.Buckets))); err != nil {
		return nil, err
	}
	switch b := m.GetDailyBudgetNanos(); {
	case b > 0:
		if err := t.Put(keyBudget, binary.BigEndian.AppendUint64(nil, uint64(b))); err != nil {
			return nil, err
		}
	case b == -1:
		if _, err := t.Delete(keyBudget); err != nil {
			return nil, err
		}
	case b < -1:
		return nil, wrap(fmt.Errorf("%w: daily_budget_nanos %d (use -1 to clear)", ErrInvalidBudget, b))
	}
	return h.state(t, v, nil)
}

// setShared is set with Settings: it applies the request to the key's
// current settings, writes them with a compare-and-set on the revision it
// read (the turn lock serializes sets on the owner; the revision fences a
// deposed owner or a lagging cache), and only then applies the bucket
// consequences (levels clamped to a smaller capacity) to the state. A
// failed write fails the turn: nothing is written to the state.
func (h *handler) setShared(t *actor.Turn, v *view, m *holdfastv1.RateLimitSetRequest) (*holdfastv1.RateLimitState, error) {
	now := t.Now().UnixNano()
	id := t.ID()
	cur, rev, _ := h.d.Settings.Get(id.Namespace, id.Key)
	ks := cur.Clone()
	s, _, err := h.load(t, nil, &ks)
	if err != nil {
		return nil, err
	}
	if m.GetReplace() {
		for _, name := range slices.Sorted(maps.Keys(ks.Limits)) {
			if d, ok := h.d.Buckets[name]; ok {
				s.Limits[name] = d
			} else {
				s.RemoveLimit(name)
			}
		}
		clear(ks.Limits)
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetBuckets())) {
		l, err := requestedLimit(name, m.GetBuckets()[name])
		if err != nil {
			return nil, err
		}
		if err := s.SetLimit(now, name, l); err != nil {
			return nil, wrap(err)
		}
		ks.Limits[name] = l
	}
	switch b := m.GetDailyBudgetNanos(); {
	case b > 0:
		ks.DailyBudgetNanos = b
	case b == -1:
		ks.DailyBudgetNanos = 0
	case b < -1:
		return nil, wrap(fmt.Errorf("%w: daily_budget_nanos %d (use -1 to clear)", ErrInvalidBudget, b))
	}
	if !ks.Equal(cur) {
		ctx := t.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		ctx, cancel := context.WithTimeout(ctx, min(settingsPutTimeout, t.Limits().TurnDeadline))
		_, err := h.d.Settings.Put(ctx, id.Namespace, id.Key, ks, rev)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("ratelimit: set: settings not written (retry): %w: %w", actor.ErrStorage, err)
		}
	}
	if err := h.saveBuckets(t, s, slices.Collect(maps.Keys(s.Buckets))); err != nil {
		return nil, err
	}
	return h.state(t, v, &ks)
}

// state reports the key's buckets, spend and budget. own is the key's
// settings when there is a Settings (nil: read them from Settings, or from
// the actor's state when there is none).
//
// On a hot-key namespace the buckets are this actor's own: a shard's
// share, a split parent's nothing (capacity 0), so that the states of a
// key's parent and shards sum to the key's; only the parent reports spend
// and budget.
func (h *handler) state(t *actor.Turn, v *view, own *KeySettings) (*holdfastv1.RateLimitState, error) {
	now := t.Now().UnixNano()
	if own == nil {
		own = h.own(t)
	}
	s, perKey, err := h.load(t, nil, own)
	if err != nil {
		return nil, err
	}
	h.effective(v, s)
	st := &holdfastv1.RateLimitState{Day: DayKey(now)}
	names := slices.Sorted(maps.Keys(s.Limits))
	look, err := s.Take(now, zeroes(names))
	if err != nil {
		return nil, wrap(err)
	}
	for _, name := range names {
		l := s.Limits[name]
		src := "namespace"
		if perKey[name] {
			src = "key"
		}
		st.Buckets = append(st.Buckets, &holdfastv1.BucketState{
			Name: name, Capacity: micros(l.Capacity), RefillPerSecond: micros(l.Refill),
			Level: micros(look.Remaining[name]), Source: src,
		})
	}
	led, err := h.ledger(t, st.Day)
	if err != nil {
		return nil, err
	}
	st.SpendTodayNanos = led[st.Day]
	if st.DailyBudgetNanos, err = h.budget(t, v, own); err != nil {
		return nil, err
	}
	return st, nil
}

// Alarm tidies spend counters older than the retention window, and re-arms
// itself while any remain.
func (h *handler) Alarm(t *actor.Turn) error {
	now := t.Now().UnixNano()
	days, _, err := t.List(actor.ListOptions{Prefix: keySpendPrefix})
	if err != nil {
		return err
	}
	led := Ledger{}
	for _, kv := range days {
		if len(kv.Value) == 8 {
			led[strings.TrimPrefix(kv.Key, keySpendPrefix)] = int64(binary.BigEndian.Uint64(kv.Value))
		}
	}
	for _, day := range led.Tidy(now, h.d.SpendRetentionDays) {
		if _, err := t.Delete(keySpendPrefix + day); err != nil {
			return err
		}
		delete(led, day)
	}
	if len(led) > 0 {
		return t.SetAlarm(time.Unix(0, now).UTC().Truncate(24 * time.Hour).Add(24*time.Hour + time.Minute))
	}
	return nil
}
