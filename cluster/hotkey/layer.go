package hotkey

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/actor/ratelimit"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

// Caller delivers a message to an actor wherever it lives (api.Caller).
type Caller interface {
	Call(ctx context.Context, id actor.ID, msg proto.Message) (proto.Message, error)
}

// Namespace is one ratelimit namespace's hot-key handling, as the layer
// needs it.
type Namespace struct {
	// CacheTTL bounds how long the layer uses a key's split (shards,
	// generation) without asking the parent again.
	CacheTTL time.Duration
	// Allowances: ask owners for allowances (granted above the hot
	// threshold only).
	Allowances bool
}

// Config configures a Layer.
type Config struct {
	// NodeID is recorded with the grants this node receives.
	NodeID string
	// Namespaces are the ratelimit namespaces with hot-key handling;
	// calls of every other namespace pass through.
	Namespaces map[string]Namespace
	// StepTimeout bounds one background call (an allowance return, one
	// merge step).
	StepTimeout time.Duration
	// Clock times allowances (default clock.Real).
	Clock  clock.Clock
	Logger *slog.Logger
}

// DefaultCacheTTL is Namespace.CacheTTL when zero.
const DefaultCacheTTL = 5 * time.Second

// DefaultConfig returns a Config with no namespace.
func DefaultConfig() Config {
	return Config{NodeID: "node-1", Namespaces: map[string]Namespace{}, StepTimeout: 5 * time.Second}
}

// ErrInvalidConfig is wrapped by Validate.
var ErrInvalidConfig = errors.New("invalid hot-key layer configuration")

// Validate reports an unusable setting.
func (c Config) Validate() error {
	if c.StepTimeout <= 0 {
		return fmt.Errorf("%w: step timeout %v must be positive", ErrInvalidConfig, c.StepTimeout)
	}
	for name, ns := range c.Namespaces {
		if ns.CacheTTL < 0 {
			return fmt.Errorf("%w: namespace %s: cache TTL %v must not be negative", ErrInvalidConfig, name, ns.CacheTTL)
		}
	}
	return nil
}

// ErrSplitChanged: a key's split changed under a call three times in a
// row; nothing was taken; the call may be retried.
var ErrSplitChanged = errors.New("the key's split changed during the call (retry)")

// maxRounds bounds how often one call re-resolves a key's split.
const maxRounds = 3

// maxCached: past this many cached splits (or merge backoffs), expired
// ones are dropped when a new one is added.
const maxCached = 4096

// mergeBackoff is how long after a merge attempt the layer waits before it
// tries that key again.
const mergeBackoff = time.Second

type keyID struct{ ns, key string }

// split is the layer's cached view of a split key.
type split struct {
	shards    int
	gen       uint64
	parcels   []*holdfastv1.ShardParcel
	keyLimits map[string]*holdfastv1.KeyLimit
	budget    bool
	expires   time.Time
	// merging: a parent taking its shards back (not cached; no parcels).
	merging bool

	mu   sync.Mutex
	seen []float64 // tokens last seen on shard i at [i-1] (+Inf: unknown)
}

// grant is an allowance held by this node.
type grant struct {
	id      string
	actor   actor.ID
	tokens  map[string]int64 // left
	used    int64
	expires time.Time
	timer   clock.Timer
	done    bool // expired or returning: serves nothing more
}

// Layer is the hot-key layer of one node. Create with New; stop with Close.
type Layer struct {
	cfg   Config
	next  Caller
	clock clock.Clock
	log   *slog.Logger
	rr    atomic.Uint64

	mu         sync.Mutex
	closed     bool
	splits     map[keyID]*split
	grants     map[keyID][]*grant
	merging    map[keyID]bool
	mergeAfter map[keyID]time.Time

	held     atomic.Int64 // tokens in allowances, until their return is answered
	returned atomic.Int64 // tokens returned (answered)
	granted  atomic.Int64 // tokens received in allowances
	served   atomic.Int64 // takes answered from allowances

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// New returns a layer over next.
func New(cfg Config, next Caller) (*Layer, error) {
	if cfg.StepTimeout == 0 {
		cfg.StepTimeout = DefaultConfig().StepTimeout
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ns := make(map[string]Namespace, len(cfg.Namespaces))
	for name, n := range cfg.Namespaces {
		if n.CacheTTL == 0 {
			n.CacheTTL = DefaultCacheTTL
		}
		ns[name] = n
	}
	cfg.Namespaces = ns
	l := &Layer{cfg: cfg, next: next, clock: cfg.Clock, log: cfg.Logger.With("component", "hotkey"),
		splits: map[keyID]*split{}, grants: map[keyID][]*grant{}, merging: map[keyID]bool{}, mergeAfter: map[keyID]time.Time{}}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l, nil
}

// goFunc starts every background goroutine of the layer.
func (l *Layer) goFunc(f func()) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
	return true
}

// Call implements Caller.
func (l *Layer) Call(ctx context.Context, id actor.ID, msg proto.Message) (proto.Message, error) {
	ns, ok := l.cfg.Namespaces[id.Namespace]
	if !ok || id.Shard != 0 {
		return l.next.Call(ctx, id, msg)
	}
	switch m := msg.(type) {
	case *holdfastv1.RateLimitTakeRequest:
		return l.take(ctx, ns, id, m)
	case *holdfastv1.RateLimitGetRequest:
		return l.get(ctx, ns, id)
	case *holdfastv1.RateLimitAdjustRequest:
		return l.adjust(ctx, ns, id, m, 0)
	case *holdfastv1.RateLimitSetRequest:
		return l.set(ctx, ns, id, m)
	}
	return l.next.Call(ctx, id, msg)
}

// hot sends one HotCall to id.
func (l *Layer) hot(ctx context.Context, id actor.ID, c *holdfastv1.HotCall) (*holdfastv1.HotReply, error) {
	c.Actor = &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key, Shard: id.Shard}
	c.OriginNode = l.cfg.NodeID
	resp, err := l.next.Call(ctx, id, c)
	if err != nil {
		return nil, err
	}
	r, ok := resp.(*holdfastv1.HotReply)
	if !ok {
		return nil, fmt.Errorf("hotkey: actor %s answered a hot call with %T (an owner without hot-key handling for %q? check the namespace's config on every node)", id, resp, id.Namespace)
	}
	return r, nil
}

func derive(reqID, suffix string) string {
	if reqID == "" {
		return ""
	}
	return reqID + suffix
}

func nonce() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func errStatus(id actor.ID, r *holdfastv1.HotReply) error {
	return fmt.Errorf("hotkey: actor %s answered %v unexpectedly", id, r.GetStatus())
}

// ---- splits ----

func (l *Layer) cached(k keyID) *split {
	l.mu.Lock()
	defer l.mu.Unlock()
	sp := l.splits[k]
	if sp != nil && !l.clock.Now().Before(sp.expires) {
		delete(l.splits, k)
		return nil
	}
	return sp
}

func (l *Layer) remember(ns Namespace, k keyID, in *holdfastv1.SplitInfo) *split {
	sp := &split{shards: int(in.GetShards()), gen: in.GetGeneration(), parcels: in.GetParcels(), keyLimits: in.GetKeyLimits(),
		budget: in.GetBudget(), expires: l.clock.Now().Add(ns.CacheTTL)}
	sp.seen = make([]float64, sp.shards)
	for i := range sp.seen {
		sp.seen[i] = math.Inf(1)
	}
	l.mu.Lock()
	if len(l.splits) >= maxCached {
		now := l.clock.Now()
		for key, old := range l.splits {
			if !now.Before(old.expires) {
				delete(l.splits, key)
			}
		}
	}
	l.splits[k] = sp
	l.mu.Unlock()
	return sp
}

func (l *Layer) forget(k keyID, sp *split) {
	l.mu.Lock()
	if l.splits[k] == sp {
		delete(l.splits, k)
	}
	l.mu.Unlock()
}

func shardID(id actor.ID, i int) actor.ID {
	return actor.ID{Namespace: id.Namespace, Key: id.Key, Shard: uint32(i)}
}

// errRetired: a shard was merged back; re-resolve the split.
var errRetired = errors.New("shard retired")

// retiredError names the retired shard (errors.Is(err, errRetired)).
type retiredError struct{ shard int }

func (e *retiredError) Error() string        { return fmt.Sprintf("shard %d retired", e.shard) }
func (e *retiredError) Is(target error) bool { return target == errRetired }

// initShard delivers shard i's parcel.
func (l *Layer) initShard(ctx context.Context, id actor.ID, sp *split, i int) error {
	if i > len(sp.parcels) {
		return fmt.Errorf("hotkey: shard %d of %s is not ready and this node has no parcel for it", i, id)
	}
	p := &holdfastv1.ShardParcel{Levels: sp.parcels[i-1].GetLevels(), KeyLimits: sp.keyLimits}
	r, err := l.hot(ctx, shardID(id, i), &holdfastv1.HotCall{Generation: sp.gen, Shards: uint32(sp.shards), Op: &holdfastv1.HotCall_ShardInit{ShardInit: p}})
	if err != nil {
		return err
	}
	switch r.GetStatus() {
	case holdfastv1.HotReply_OK:
		return nil
	case holdfastv1.HotReply_RETIRED:
		return &retiredError{shard: i}
	}
	return errStatus(shardID(id, i), r)
}

// onShard sends c to shard i, initialising it first if it is not ready
// (the retry carries reqID+"~i": the first answer is recorded under
// reqID). RETIRED is errRetired.
func (l *Layer) onShard(ctx context.Context, k keyID, id actor.ID, sp *split, i int, c func(reqSuffix string) *holdfastv1.HotCall) (*holdfastv1.HotReply, error) {
	sid := shardID(id, i)
	r, err := l.hot(ctx, sid, c(""))
	if err != nil {
		return nil, err
	}
	if r.GetStatus() == holdfastv1.HotReply_NOT_READY {
		if err := l.initShard(ctx, id, sp, i); err != nil {
			return nil, err
		}
		if r, err = l.hot(ctx, sid, c("~i")); err != nil {
			return nil, err
		}
	}
	l.noteInfo(k, id, r.GetInfo())
	if r.GetStatus() == holdfastv1.HotReply_RETIRED {
		return r, &retiredError{shard: i}
	}
	if r.GetStatus() != holdfastv1.HotReply_OK {
		return nil, errStatus(sid, r)
	}
	return r, nil
}

// noteInfo starts (or helps) a merge when an actor says so.
func (l *Layer) noteInfo(k keyID, id actor.ID, in *holdfastv1.HotInfo) {
	if in == nil {
		return
	}
	if in.GetMergeSuggested() || in.GetMode() == "merging" {
		l.helpMerge(k, id, int(in.GetShards()), in.GetGeneration(), in.GetPending())
	}
}

// ---- take ----

func (l *Layer) take(ctx context.Context, ns Namespace, id actor.ID, m *holdfastv1.RateLimitTakeRequest) (proto.Message, error) {
	k := keyID{id.Namespace, id.Key}
	if m.GetSpendEstimateNanos() == 0 {
		if r := l.fromAllowance(k, m.GetAmounts()); r != nil {
			return r, nil
		}
	}
	for round := range maxRounds {
		suffix := ""
		if round > 0 {
			suffix = fmt.Sprintf("~r%d", round)
		}
		sp := l.cached(k)
		if sp == nil {
			n, sent := nonce(), l.clock.Now()
			r, err := l.hot(ctx, id, &holdfastv1.HotCall{RequestId: derive(m.GetRequestId(), suffix), Nonce: n,
				WantAllowance: ns.Allowances && m.GetSpendEstimateNanos() == 0, Op: &holdfastv1.HotCall_Take{Take: m}})
			if err != nil {
				return nil, err
			}
			l.noteInfo(k, id, r.GetInfo())
			switch r.GetStatus() {
			case holdfastv1.HotReply_OK:
				l.keep(k, id, r.GetAllowance(), n, sent)
				return r.GetTake(), nil
			case holdfastv1.HotReply_SPLIT:
				sp = l.remember(ns, k, r.GetSplit())
			default:
				return nil, errStatus(id, r)
			}
		}
		resp, err := l.takeSplit(ctx, ns, k, id, sp, m, suffix)
		if errors.Is(err, errRetired) {
			l.forget(k, sp)
			l.finishRetired(k, id, sp, err)
			continue
		}
		return resp, err
	}
	return nil, fmt.Errorf("hotkey: take on %s: %w", id, ErrSplitChanged)
}

// pick returns the first shard to try and, when the second is fixed (a
// request ID), the second.
func (l *Layer) pick(sp *split, reqID string) (first, second int) {
	n := uint64(sp.shards)
	if reqID != "" {
		f := int(xxhash.Sum64String(reqID)%n) + 1
		return f, f%sp.shards + 1
	}
	return int(l.rr.Add(1)%n) + 1, 0
}

// fullest is the shard other than not with the most tokens last seen.
func (sp *split) fullest(not int) int {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	best, bestSeen := 0, math.Inf(-1)
	for d := 1; d < sp.shards; d++ {
		i := (not-1+d)%sp.shards + 1
		if s := sp.seen[i-1]; s > bestSeen {
			best, bestSeen = i, s
		}
	}
	return best
}

func (sp *split) see(i int, remaining map[string]float64, names map[string]int64) {
	total, any := 0.0, false
	for name := range names {
		if v, ok := remaining[name]; ok {
			total, any = total+v, true
		}
	}
	if !any {
		return
	}
	sp.mu.Lock()
	sp.seen[i-1] = total
	sp.mu.Unlock()
}

func (l *Layer) takeSplit(ctx context.Context, ns Namespace, k keyID, id actor.ID, sp *split, m *holdfastv1.RateLimitTakeRequest, suffix string) (proto.Message, error) {
	budgetLeft := int64(-1)
	if sp.budget || m.GetSpendEstimateNanos() > 0 {
		check := &holdfastv1.RateLimitTakeRequest{Actor: m.GetActor(), SpendEstimateNanos: m.GetSpendEstimateNanos()}
		r, err := l.hot(ctx, id, &holdfastv1.HotCall{Op: &holdfastv1.HotCall_Take{Take: check}})
		if err != nil {
			return nil, err
		}
		if r.GetStatus() != holdfastv1.HotReply_OK {
			return nil, errStatus(id, r)
		}
		if !r.GetTake().GetAllowed() {
			return r.GetTake(), nil
		}
		budgetLeft = r.GetTake().GetBudgetRemainingNanos()
	}
	shardTake := &holdfastv1.RateLimitTakeRequest{Actor: m.GetActor(), RequestId: m.GetRequestId(), Amounts: m.GetAmounts()}
	want := ns.Allowances && !sp.budget && m.GetSpendEstimateNanos() == 0
	first, second := l.pick(sp, m.GetRequestId())
	var best *holdfastv1.RateLimitTakeResponse
	for attempt := range min(2, sp.shards) {
		i := first
		if attempt == 1 {
			if i = second; i == 0 {
				i = sp.fullest(first)
			}
		}
		n, sent := nonce(), l.clock.Now()
		r, err := l.onShard(ctx, k, id, sp, i, func(s string) *holdfastv1.HotCall {
			return &holdfastv1.HotCall{RequestId: derive(m.GetRequestId(), suffix+s), Nonce: n, Generation: sp.gen, Shards: uint32(sp.shards),
				WantAllowance: want, Op: &holdfastv1.HotCall_Take{Take: shardTake}}
		})
		if err != nil {
			return nil, err
		}
		tk := r.GetTake()
		sp.see(i, tk.GetRemaining(), m.GetAmounts())
		if tk.GetAllowed() {
			l.keep(k, shardID(id, i), r.GetAllowance(), n, sent)
			tk.BudgetRemainingNanos = budgetLeft
			return tk, nil
		}
		tk.BudgetRemainingNanos = budgetLeft
		if tk.GetRetryAfterMs() < 0 {
			return tk, nil
		}
		if best == nil || tk.GetRetryAfterMs() < best.GetRetryAfterMs() {
			best = tk
		}
	}
	return best, nil
}

// ---- allowances ----

// fromAllowance answers a take from an allowance that covers every named
// bucket, or returns nil.
func (l *Layer) fromAllowance(k keyID, amounts map[string]int64) *holdfastv1.RateLimitTakeResponse {
	if len(amounts) == 0 {
		return nil
	}
	for _, a := range amounts {
		if a < 0 {
			return nil // the owner refuses it with its error
		}
	}
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, g := range l.grants[k] {
		if g.done || !now.Before(g.expires) {
			continue
		}
		ok := true
		for name, a := range amounts {
			if have, named := g.tokens[name]; !named || have < a {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		resp := &holdfastv1.RateLimitTakeResponse{Allowed: true, Remaining: map[string]float64{}, BudgetRemainingNanos: -1}
		var n int64
		for name, a := range amounts {
			g.tokens[name] -= a
			n += a
			resp.Remaining[name] = float64(g.tokens[name])
		}
		g.used++
		l.held.Add(-n)
		l.served.Add(1)
		return resp
	}
	return nil
}

// keep holds a granted allowance (only the one this call asked for) until
// sent + its lifetime.
func (l *Layer) keep(k keyID, owner actor.ID, a *holdfastv1.Allowance, n string, sent time.Time) {
	if a == nil || a.GetNonce() != n || len(a.GetTokens()) == 0 {
		return
	}
	life := min(time.Duration(a.GetLifetimeMs())*time.Millisecond, ratelimit.MaxAllowanceLifetime)
	g := &grant{id: a.GetId(), actor: owner, tokens: maps.Clone(a.GetTokens()), expires: sent.Add(life)}
	var total int64
	for _, v := range g.tokens {
		total += v
	}
	l.held.Add(total)
	l.granted.Add(total)
	now := l.clock.Now()
	l.mu.Lock()
	if l.closed || !now.Before(g.expires) {
		g.done = true
		l.mu.Unlock()
		l.giveBack(g, context.Background())
		return
	}
	l.grants[k] = append(l.grants[k], g)
	g.timer = l.clock.AfterFunc(g.expires.Sub(now), func() { l.expire(k, g) })
	l.mu.Unlock()
}

// expire stops using g and returns it in the background.
func (l *Layer) expire(k keyID, g *grant) {
	l.mu.Lock()
	if g.done {
		l.mu.Unlock()
		return
	}
	g.done = true
	l.grants[k] = slices.DeleteFunc(l.grants[k], func(x *grant) bool { return x == g })
	if len(l.grants[k]) == 0 {
		delete(l.grants, k)
	}
	l.mu.Unlock()
	if !l.goFunc(func() { l.giveBack(g, l.ctx) }) {
		l.giveBack(g, context.Background())
	}
}

// giveBack returns what is left of g (g.done is set: nothing uses it).
// A few tries; a return that never gets through loses its tokens.
func (l *Layer) giveBack(g *grant, parent context.Context) {
	var left int64
	for _, v := range g.tokens {
		left += v
	}
	defer func() {
		l.held.Add(-left)
		l.returned.Add(left)
	}()
	c := &holdfastv1.HotCall{Op: &holdfastv1.HotCall_AllowanceReturn{AllowanceReturn: &holdfastv1.AllowanceReturn{Id: g.id, Unused: g.tokens, UsedTakes: g.used}}}
	for try := range 3 {
		ctx, cancel := context.WithTimeout(parent, l.cfg.StepTimeout)
		_, err := l.hot(ctx, g.actor, c)
		cancel()
		if err == nil {
			return
		}
		if parent.Err() != nil || try == 2 {
			l.log.Warn("allowance not returned: its tokens are lost", "actor", g.actor.String(), "grant", g.id, "tokens", left, "err", err)
			return
		}
	}
}

// Held is what this node holds of one actor's allowances.
type Held struct {
	ID     actor.ID
	Grants int
	// Tokens left per bucket.
	Tokens map[string]int64
	// UsedTakes: takes answered from them so far.
	UsedTakes int64
}

// Held lists the allowances this node holds, by actor.
func (l *Layer) Held() []Held {
	l.mu.Lock()
	by := map[actor.ID]*Held{}
	for _, gs := range l.grants {
		for _, g := range gs {
			if g.done {
				continue
			}
			h := by[g.actor]
			if h == nil {
				h = &Held{ID: g.actor, Tokens: map[string]int64{}}
				by[g.actor] = h
			}
			h.Grants++
			h.UsedTakes += g.used
			for name, v := range g.tokens {
				h.Tokens[name] += v
			}
		}
	}
	l.mu.Unlock()
	out := make([]Held, 0, len(by))
	for _, h := range by {
		out = append(out, *h)
	}
	slices.SortFunc(out, func(a, b Held) int {
		switch {
		case a.ID.Namespace != b.ID.Namespace:
			return cmp(a.ID.Namespace, b.ID.Namespace)
		case a.ID.Key != b.ID.Key:
			return cmp(a.ID.Key, b.ID.Key)
		}
		return int(a.ID.Shard) - int(b.ID.Shard)
	})
	return out
}

func cmp(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Stats are the layer's allowance counters, in tokens (takes for Served).
type Stats struct {
	// Outstanding: tokens held in allowances, including returns not yet
	// answered.
	Outstanding int64
	Granted     int64
	Returned    int64
	Served      int64
}

// Stats returns the counters.
func (l *Layer) Stats() Stats {
	return Stats{Outstanding: l.held.Load(), Granted: l.granted.Load(), Returned: l.returned.Load(), Served: l.served.Load()}
}

// ---- get, adjust, set ----

// parentView asks the parent for its state, and whether the key's tokens
// are on shards (the split, or nil).
func (l *Layer) parentView(ctx context.Context, ns Namespace, k keyID, id actor.ID) (*holdfastv1.RateLimitState, *split, *holdfastv1.HotInfo, error) {
	r, err := l.hot(ctx, id, &holdfastv1.HotCall{Op: &holdfastv1.HotCall_Get{Get: &holdfastv1.RateLimitGetRequest{}}})
	if err != nil {
		return nil, nil, nil, err
	}
	l.noteInfo(k, id, r.GetInfo())
	switch r.GetStatus() {
	case holdfastv1.HotReply_SPLIT:
		return r.GetState(), l.remember(ns, k, r.GetSplit()), r.GetInfo(), nil
	case holdfastv1.HotReply_OK:
		if in := r.GetInfo(); in.GetMode() == "merging" {
			// Shards not yet returned still hold their tokens.
			return r.GetState(), &split{shards: int(in.GetShards()), gen: in.GetGeneration(), merging: true}, in, nil
		}
		return r.GetState(), nil, r.GetInfo(), nil
	}
	return nil, nil, nil, errStatus(id, r)
}

func (l *Layer) get(ctx context.Context, ns Namespace, id actor.ID) (proto.Message, error) {
	return l.parentAndShards(ctx, ns, keyID{id.Namespace, id.Key}, id, "get", func(_, _ int, _ string) *holdfastv1.HotCall {
		return &holdfastv1.HotCall{Op: &holdfastv1.HotCall_Get{Get: &holdfastv1.RateLimitGetRequest{}}}
	})
}

// parentAndShards reads the parent's view and, if the key is split, sends
// call(round, i, suffix) to every shard, summing the states; a split that
// changed under it (a shard retired, not merging) is forgotten and the
// round starts again, at most maxRounds times.
func (l *Layer) parentAndShards(ctx context.Context, ns Namespace, k keyID, id actor.ID, op string, call func(round, i int, suffix string) *holdfastv1.HotCall) (proto.Message, error) {
	for round := range maxRounds {
		st, sp, _, err := l.parentView(ctx, ns, k, id)
		if err != nil || sp == nil {
			return st, err
		}
		states, err := l.fanOut(ctx, k, id, sp, func(i int, s string) *holdfastv1.HotCall { return call(round, i, s) })
		if errors.Is(err, errRetired) {
			l.forget(k, sp)
			continue
		}
		if err != nil {
			return nil, err
		}
		return sum(st, states), nil
	}
	return nil, fmt.Errorf("hotkey: %s on %s: %w", op, id, ErrSplitChanged)
}

// fanOut sends c(i) to every shard in parallel and collects their states.
// A retired shard (merging) contributes its state (nothing) unless the
// split was not a merge: then errRetired.
func (l *Layer) fanOut(ctx context.Context, k keyID, id actor.ID, sp *split, c func(i int, suffix string) *holdfastv1.HotCall) ([]*holdfastv1.RateLimitState, error) {
	states := make([]*holdfastv1.RateLimitState, sp.shards)
	errs := make([]error, sp.shards)
	var wg sync.WaitGroup
	for i := 1; i <= sp.shards; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sid := shardID(id, i)
			if sp.merging {
				// No parcels to deliver: shards not ready hold nothing.
				r, err := l.hot(ctx, sid, c(i, ""))
				if err == nil {
					states[i-1] = r.GetState()
				}
				errs[i-1] = err
				return
			}
			r, err := l.onShard(ctx, k, id, sp, i, func(s string) *holdfastv1.HotCall { return c(i, s) })
			if err != nil {
				errs[i-1] = err
				return
			}
			states[i-1] = r.GetState()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if errors.Is(err, errRetired) {
			return nil, errRetired
		}
	}
	return states, errors.Join(errs...)
}

// sum adds shard states to the parent's, bucket by bucket, in exact
// micro-tokens. Spend, budget and day are the parent's.
func sum(parent *holdfastv1.RateLimitState, shards []*holdfastv1.RateLimitState) *holdfastv1.RateLimitState {
	type acc struct{ capacity, refill, level int64 }
	mic := func(f float64) int64 { return int64(math.Round(f * float64(ratelimit.Micro))) }
	tok := func(m int64) float64 { return float64(m) / float64(ratelimit.Micro) }
	by, source := map[string]*acc{}, map[string]string{}
	add := func(st *holdfastv1.RateLimitState) {
		for _, b := range st.GetBuckets() {
			a := by[b.GetName()]
			if a == nil {
				a = &acc{}
				by[b.GetName()] = a
			}
			a.capacity += mic(b.GetCapacity())
			a.refill += mic(b.GetRefillPerSecond())
			a.level += mic(b.GetLevel())
			if source[b.GetName()] == "" {
				source[b.GetName()] = b.GetSource()
			}
		}
	}
	add(parent)
	for _, s := range shards {
		add(s)
	}
	out := &holdfastv1.RateLimitState{Day: parent.GetDay(), SpendTodayNanos: parent.GetSpendTodayNanos(), DailyBudgetNanos: parent.GetDailyBudgetNanos()}
	for _, name := range slices.Sorted(maps.Keys(by)) {
		a := by[name]
		out.Buckets = append(out.Buckets, &holdfastv1.BucketState{Name: name, Capacity: tok(a.capacity), RefillPerSecond: tok(a.refill), Level: tok(a.level), Source: source[name]})
	}
	return out
}

func (l *Layer) adjust(ctx context.Context, ns Namespace, id actor.ID, m *holdfastv1.RateLimitAdjustRequest, round int) (proto.Message, error) {
	if round >= maxRounds {
		return nil, fmt.Errorf("hotkey: adjust on %s: %w", id, ErrSplitChanged)
	}
	k := keyID{id.Namespace, id.Key}
	suffix := ""
	if round > 0 {
		suffix = fmt.Sprintf("~r%d", round)
	}
	sp := l.cached(k)
	if sp == nil {
		r, err := l.hot(ctx, id, &holdfastv1.HotCall{RequestId: derive(m.GetRequestId(), suffix), Op: &holdfastv1.HotCall_Adjust{Adjust: m}})
		if err != nil {
			return nil, err
		}
		l.noteInfo(k, id, r.GetInfo())
		switch r.GetStatus() {
		case holdfastv1.HotReply_OK:
			return r.GetState(), nil
		case holdfastv1.HotReply_SPLIT:
			sp = l.remember(ns, k, r.GetSplit())
		default:
			return nil, errStatus(id, r)
		}
	}
	// Spend (and the parent's state) from the parent, deltas over the
	// shards.
	off := int(l.rr.Add(1))
	if m.GetRequestId() != "" {
		off = int(xxhash.Sum64String(m.GetRequestId()) % uint64(sp.shards))
	}
	parts := make([]map[string]int64, sp.shards)
	for i := range parts {
		parts[i] = map[string]int64{}
	}
	for name, d := range m.GetDeltas() {
		for i := 1; i <= sp.shards; i++ {
			rot := (i-1+off)%sp.shards + 1
			if p := ratelimit.Share(d, sp.shards, rot); p != 0 {
				parts[i-1][name] = p
			}
		}
	}
	var (
		parent    *holdfastv1.RateLimitState
		parentErr error
		wg        sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		pa := &holdfastv1.RateLimitAdjustRequest{Actor: m.GetActor(), SpendNanos: m.GetSpendNanos()}
		var r *holdfastv1.HotReply
		if r, parentErr = l.hot(ctx, id, &holdfastv1.HotCall{RequestId: derive(m.GetRequestId(), suffix+"#0"), Op: &holdfastv1.HotCall_Adjust{Adjust: pa}}); parentErr == nil {
			if r.GetStatus() != holdfastv1.HotReply_OK {
				parentErr = errStatus(id, r)
			}
			parent = r.GetState()
		}
	}()
	states := make([]*holdfastv1.RateLimitState, sp.shards)
	errs := make([]error, sp.shards)
	for i := 1; i <= sp.shards; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := l.onShard(ctx, k, id, sp, i, func(s string) *holdfastv1.HotCall {
				return &holdfastv1.HotCall{RequestId: derive(m.GetRequestId(), fmt.Sprintf("%s#%d%s", suffix, i, s)), Generation: sp.gen, Shards: uint32(sp.shards),
					Op: &holdfastv1.HotCall_Adjust{Adjust: &holdfastv1.RateLimitAdjustRequest{Actor: m.GetActor(), Deltas: parts[i-1]}}}
			})
			states[i-1], errs[i-1] = r.GetState(), err
		}()
	}
	wg.Wait()
	if parentErr != nil {
		return nil, parentErr
	}
	// Parts a retired shard did not apply go round again (to the parent,
	// or a new split).
	rest := map[string]int64{}
	for i, err := range errs {
		if errors.Is(err, errRetired) {
			for name, p := range parts[i] {
				rest[name] += p
			}
			errs[i] = nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(rest) > 0 {
		l.forget(k, sp)
		return l.adjust(ctx, ns, id, &holdfastv1.RateLimitAdjustRequest{Actor: m.GetActor(), RequestId: m.GetRequestId(), Deltas: rest}, round+1)
	}
	return sum(parent, states), nil
}

func (l *Layer) set(ctx context.Context, ns Namespace, id actor.ID, m *holdfastv1.RateLimitSetRequest) (proto.Message, error) {
	k := keyID{id.Namespace, id.Key}
	r, err := l.hot(ctx, id, &holdfastv1.HotCall{RequestId: m.GetRequestId(), Op: &holdfastv1.HotCall_Set{Set: m}})
	if err != nil {
		return nil, err
	}
	mode := r.GetInfo().GetMode()
	if mode != "split" && mode != "static" && mode != "merging" {
		return r.GetState(), nil
	}
	return l.parentAndShards(ctx, ns, k, id, "set", func(round, i int, s string) *holdfastv1.HotCall {
		return &holdfastv1.HotCall{RequestId: derive(m.GetRequestId(), fmt.Sprintf("~r%d#%d%s", round, i, s)), Op: &holdfastv1.HotCall_Set{Set: m}}
	})
}

// ---- merge ----

// helpMerge retires every shard of (shards, gen) that is still pending
// (all when pending is empty) and delivers each parcel to the parent, in
// the background, one merge per key at a time.
func (l *Layer) helpMerge(k keyID, id actor.ID, shards int, gen uint64, pending []uint32) {
	if shards < 2 || gen == 0 {
		return
	}
	now := l.clock.Now()
	l.mu.Lock()
	if l.closed || l.merging[k] || now.Before(l.mergeAfter[k]) {
		l.mu.Unlock()
		return
	}
	l.merging[k] = true
	if len(l.mergeAfter) >= maxCached {
		for key, t := range l.mergeAfter {
			if now.After(t) {
				delete(l.mergeAfter, key)
			}
		}
	}
	l.mergeAfter[k] = now.Add(mergeBackoff)
	l.mu.Unlock()
	list := slices.Clone(pending)
	if len(list) == 0 {
		for i := 1; i <= shards; i++ {
			list = append(list, uint32(i))
		}
	}
	parent := actor.ID{Namespace: id.Namespace, Key: id.Key}
	started := l.goFunc(func() {
		defer func() {
			l.mu.Lock()
			delete(l.merging, k)
			l.mu.Unlock()
		}()
		var wg sync.WaitGroup
		for _, i := range list {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := l.mergeShard(parent, gen, int(i)); err != nil {
					l.log.Debug("merge step not done (another caller, or a later attempt, finishes it)", "actor", shardID(parent, int(i)).String(), "generation", gen, "err", err)
				}
			}()
		}
		wg.Wait()
		l.mu.Lock()
		if sp := l.splits[k]; sp != nil && sp.gen <= gen {
			delete(l.splits, k)
		}
		l.mu.Unlock()
	})
	if !started {
		l.mu.Lock()
		delete(l.merging, k)
		l.mu.Unlock()
	}
}

// finishRetired delivers the parcel of a shard found retired to the parent
// (idempotent: the merge step any caller may take), so that the parent,
// if it still answered SPLIT, answers by itself from now on.
func (l *Layer) finishRetired(k keyID, id actor.ID, sp *split, err error) {
	var re *retiredError
	if !errors.As(err, &re) || sp.merging {
		return
	}
	parent := actor.ID{Namespace: id.Namespace, Key: id.Key}
	if err := l.mergeShard(parent, sp.gen, re.shard); err != nil {
		l.log.Debug("merge step of a retired shard not done", "actor", shardID(parent, re.shard).String(), "err", err)
	}
	l.helpMerge(k, id, sp.shards, sp.gen, nil)
}

// errPending: a shard still has allowances outstanding.
var errPending = errors.New("allowances outstanding")

func (l *Layer) mergeShard(parent actor.ID, gen uint64, i int) error {
	ctx, cancel := context.WithTimeout(l.ctx, l.cfg.StepTimeout)
	defer cancel()
	r, err := l.hot(ctx, shardID(parent, i), &holdfastv1.HotCall{Generation: gen, Op: &holdfastv1.HotCall_ShardRetire{ShardRetire: &holdfastv1.ShardRetire{}}})
	if err != nil {
		return err
	}
	switch r.GetStatus() {
	case holdfastv1.HotReply_PENDING:
		return errPending
	case holdfastv1.HotReply_OK:
	default:
		return errStatus(shardID(parent, i), r)
	}
	mr := &holdfastv1.MergeReturn{Shard: uint32(i), Initialised: r.GetInitialised(), Parcel: r.GetParcel()}
	pr, err := l.hot(ctx, parent, &holdfastv1.HotCall{Generation: gen, Op: &holdfastv1.HotCall_MergeReturn{MergeReturn: mr}})
	if err != nil {
		return err
	}
	if pr.GetStatus() != holdfastv1.HotReply_OK {
		return errStatus(parent, pr)
	}
	return nil
}

// ---- lifecycle ----

// Close stops using every allowance, returns them (bounded by ctx) and
// waits for the background work. Idempotent; calls after Close still pass
// through, without allowances.
func (l *Layer) Close(ctx context.Context) error {
	var all []*grant
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		for k, gs := range l.grants {
			for _, g := range gs {
				if !g.done {
					g.done = true
					if g.timer != nil {
						g.timer.Stop()
					}
					all = append(all, g)
				}
			}
			delete(l.grants, k)
		}
		l.mu.Unlock()
	})
	var wg sync.WaitGroup
	for _, g := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.giveBack(g, ctx)
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		l.cancel()
		<-done
		return ctx.Err()
	}
	l.cancel()
	return nil
}
