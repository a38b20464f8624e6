package hotkey_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/cluster/hotkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC)

// env is one runtime with a ratelimit namespace "rl" (hot-key handling
// hot), a layer in front of it, on a fake clock.
type env struct {
	t     *testing.T
	rt    *actor.Runtime
	clk   *clock.Fake
	layer *hotkey.Layer
	reg   *ratelimit.HotRegistry
}

func newEnv(t *testing.T, hot ratelimit.HotConfig, buckets map[string]ratelimit.Limit) *env {
	t.Helper()
	clk := clock.NewFake(t0)
	reg := ratelimit.NewHotRegistry()
	hot.Registry = reg
	cfg := actor.DefaultConfig()
	cfg.Clock = clk
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Partitions = 8
	rt, err := actor.New(cfg, actor.NewMemStore(), []actor.NamespaceConfig{{Name: "rl", Durability: actor.Local,
		New: ratelimit.New(ratelimit.Defaults{Buckets: buckets, Hot: hot})}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := hotkey.New(hotkey.Config{NodeID: "n1", Clock: clk, Logger: cfg.Logger,
		Namespaces: map[string]hotkey.Namespace{"rl": {Allowances: hot.AllowanceLifetime > 0, CacheTTL: time.Hour}}}, rt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close(context.Background())
		rt.Shutdown(context.Background())
	})
	return &env{t: t, rt: rt, clk: clk, layer: l, reg: reg}
}

var key = actor.ID{Namespace: "rl", Key: "hot"}

func (e *env) take(reqID string, n int64) (*holdfastv1.RateLimitTakeResponse, error) {
	resp, err := e.layer.Call(context.Background(), key, &holdfastv1.RateLimitTakeRequest{Actor: ref(key), RequestId: reqID, Amounts: map[string]int64{"r": n}})
	if err != nil {
		return nil, err
	}
	return resp.(*holdfastv1.RateLimitTakeResponse), nil
}

func (e *env) mustTake(reqID string, n int64) bool {
	e.t.Helper()
	r, err := e.take(reqID, n)
	if err != nil {
		e.t.Fatalf("take: %v", err)
	}
	return r.GetAllowed()
}

func (e *env) get() *holdfastv1.BucketState {
	e.t.Helper()
	resp, err := e.layer.Call(context.Background(), key, &holdfastv1.RateLimitGetRequest{Actor: ref(key)})
	if err != nil {
		e.t.Fatalf("get: %v", err)
	}
	for _, b := range resp.(*holdfastv1.RateLimitState).GetBuckets() {
		if b.GetName() == "r" {
			return b
		}
	}
	e.t.Fatalf("get: no bucket r in %v", resp)
	return nil
}

// direct calls one actor without the layer.
func (e *env) direct(shard uint32, msg *holdfastv1.HotCall) *holdfastv1.HotReply {
	e.t.Helper()
	id := key
	id.Shard = shard
	msg.Actor = ref(id)
	resp, err := e.rt.Call(context.Background(), id, msg)
	if err != nil {
		e.t.Fatalf("direct call to shard %d: %v", shard, err)
	}
	return resp.(*holdfastv1.HotReply)
}

func (e *env) info(shard uint32) *holdfastv1.HotInfo {
	return e.direct(shard, &holdfastv1.HotCall{Op: &holdfastv1.HotCall_Get{Get: &holdfastv1.RateLimitGetRequest{}}}).GetInfo()
}

func ref(id actor.ID) *holdfastv1.ActorRef {
	return &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key, Shard: id.Shard}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tiny is a refill of one micro-token per second: "refill ~0".
const tiny = 1

func TestStaticShards(t *testing.T) {
	e := newEnv(t, ratelimit.HotConfig{Shards: 4}, map[string]ratelimit.Limit{"r": {Capacity: 100 * ratelimit.Micro, Refill: tiny}})
	if b := e.get(); b.GetCapacity() != 100 || b.GetLevel() != 100 {
		t.Fatalf("static key: %v", b)
	}
	// Each shard holds a quarter; the parent nothing.
	for i := uint32(1); i <= 4; i++ {
		st := e.direct(i, &holdfastv1.HotCall{Op: &holdfastv1.HotCall_Get{Get: &holdfastv1.RateLimitGetRequest{}}}).GetState()
		if c := st.GetBuckets()[0].GetCapacity(); c != 25 {
			t.Fatalf("shard %d capacity %v, want 25", i, c)
		}
	}
	// Round-robin with the fullest shard as second try: exactly the
	// capacity is admitted.
	admitted := 0
	for range 130 {
		if e.mustTake("", 1) {
			admitted++
		}
	}
	if admitted != 100 {
		t.Fatalf("admitted %d of 100", admitted)
	}
	if b := e.get(); b.GetLevel() > 0.001 {
		t.Fatalf("level after exhaustion %v", b.GetLevel())
	}
	// A take above one shard's share is refused with an error that says so.
	_, err := e.take("", 26)
	var re interface {
		Reason() string
		Metadata() map[string]string
	}
	if !errors.As(err, &re) || re.Reason() != ratelimit.ReasonTakeExceedsShardShare || re.Metadata()["share"] != "25" || re.Metadata()["shards"] != "4" {
		t.Fatalf("take of 26 over 4 shards of 25: %v", err)
	}
	// Give back 8 tokens: split over the shards, all credited.
	resp, err := e.layer.Call(context.Background(), key, &holdfastv1.RateLimitAdjustRequest{Actor: ref(key), RequestId: "adj-1", Deltas: map[string]int64{"r": -8}})
	if err != nil {
		t.Fatal(err)
	}
	if lv := resp.(*holdfastv1.RateLimitState).GetBuckets()[0].GetLevel(); math.Abs(lv-8) > 0.001 {
		t.Fatalf("level after giving back 8: %v", lv)
	}
	// A take by request ID is answered once: its retry replays.
	first, again := e.mustTake("req-a", 1), e.mustTake("req-a", 1)
	if !first || !again {
		t.Fatal("take req-a refused")
	}
	if lv := e.get().GetLevel(); math.Abs(lv-7) > 0.001 {
		t.Fatalf("level after one take retried: %v, want 7", lv)
	}
	// set fans out: every shard gets a quarter of the new limit.
	if _, err := e.layer.Call(context.Background(), key, &holdfastv1.RateLimitSetRequest{Actor: ref(key), Buckets: map[string]*holdfastv1.BucketLimit{"r": {Capacity: 400, RefillPerSecond: 0.000004}}}); err != nil {
		t.Fatal(err)
	}
	if b := e.get(); b.GetCapacity() != 400 || b.GetSource() != "key" {
		t.Fatalf("after set: %v", b)
	}
	// Without the layer, the parent says where the tokens are.
	_, err = e.rt.Call(context.Background(), key, &holdfastv1.RateLimitTakeRequest{Actor: ref(key), Amounts: map[string]int64{"r": 1}})
	if !errors.As(err, &re) || re.Reason() != ratelimit.ReasonKeySplit {
		t.Fatalf("plain take on a static parent: %v", err)
	}
	// A shard beyond the count does not exist.
	_, err = e.rt.Call(context.Background(), actor.ID{Namespace: "rl", Key: "hot", Shard: 5}, &holdfastv1.RateLimitGetRequest{})
	if !errors.Is(err, actor.ErrInvalidArgument) {
		t.Fatalf("get of shard 5 of 4: %v", err)
	}
}

func TestAutoSplitAndMerge(t *testing.T) {
	const capacity = 1000
	e := newEnv(t, ratelimit.HotConfig{ThresholdTPS: 50, HotShards: 4, MergeAfter: 2 * time.Second},
		map[string]ratelimit.Limit{"r": {Capacity: capacity * ratelimit.Micro, Refill: tiny}})
	admitted := 0
	// 60 takes within one instant: above 50 turns/s, the parent splits.
	for range 60 {
		if e.mustTake("", 1) {
			admitted++
		}
	}
	if in := e.info(0); in.GetMode() != "split" || in.GetShards() != 4 || in.GetGeneration() != 1 {
		t.Fatalf("parent after 60 takes at once: %v", in)
	}
	if in := e.info(1); in.GetMode() != "shard" {
		t.Fatalf("shard 1: %v", in)
	}
	found := false
	for _, h := range e.reg.List(e.clk.Now()) {
		if h.ID == key && h.Mode == "split" {
			found = true
		}
	}
	if !found {
		t.Fatalf("registry: %v", e.reg.List(e.clk.Now()))
	}
	// Tokens are conserved by the split: the sum over parent and shards.
	if b := e.get(); math.Abs(b.GetLevel()-float64(capacity-admitted)) > 1e-5 || b.GetCapacity() != capacity {
		t.Fatalf("after the split: %v, want level %d", b, capacity-admitted)
	}
	for range 100 {
		if e.mustTake("", 1) {
			admitted++
		}
	}
	// Quiet: the shards' rate falls; after MergeAfter a shard suggests the
	// merge and the layer performs it.
	// (Four takes each time: round-robin, one per shard.)
	for range 2 {
		e.clk.Advance(3 * time.Second)
		for range 4 {
			if e.mustTake("", 1) {
				admitted++
			}
		}
	}
	waitFor(t, "the merge", func() bool { return e.info(0).GetMode() == "unsplit" })
	elapsed := 6e-6 // refill over 6 s at one micro-token per second
	if b := e.get(); math.Abs(b.GetLevel()-float64(capacity-admitted)) > elapsed+1e-9 || b.GetCapacity() != capacity {
		t.Fatalf("after the merge: %v, want level %d", b, capacity-admitted)
	}
	for i := uint32(1); i <= 4; i++ {
		if in := e.info(i); in.GetMode() != "retired" {
			t.Fatalf("shard %d after the merge: %v", i, in)
		}
	}
	// The layer's cached split is gone: takes reach the parent again, and
	// every token left is admitted.
	for {
		if !e.mustTake("", 1) {
			break
		}
		admitted++
	}
	if admitted != capacity {
		t.Fatalf("admitted %d over split and merge, want %d", admitted, capacity)
	}
}

func TestAllowances(t *testing.T) {
	const capacity = 10_000
	e := newEnv(t, ratelimit.HotConfig{ThresholdTPS: 20, HotShards: 1, AllowanceLifetime: time.Second, AllowanceMaxTakes: 50},
		map[string]ratelimit.Limit{"r": {Capacity: capacity * ratelimit.Micro, Refill: tiny}})
	admitted := 0
	for range 300 {
		if e.mustTake("", 1) {
			admitted++
		}
	}
	st := e.layer.Stats()
	if st.Granted == 0 || st.Served == 0 {
		t.Fatalf("no allowance used: %+v", st)
	}
	held := e.layer.Held()
	if len(held) != 1 || held[0].ID != key || held[0].Grants == 0 {
		t.Fatalf("held: %+v", held)
	}
	// Conservation: what is admitted, held and left is the capacity.
	lvl := e.get().GetLevel()
	if got := float64(admitted) + float64(e.layer.Stats().Outstanding) + lvl; math.Abs(got-capacity) > 1e-9 {
		t.Fatalf("admitted %d + held %d + level %v = %v, want %d", admitted, e.layer.Stats().Outstanding, lvl, got, capacity)
	}
	// A take with a spend estimate never uses an allowance.
	before := e.layer.Stats().Served
	if _, err := e.layer.Call(context.Background(), key, &holdfastv1.RateLimitTakeRequest{Actor: ref(key), Amounts: map[string]int64{"r": 1}, SpendEstimateNanos: 5}); err != nil {
		t.Fatal(err)
	}
	admitted++
	if e.layer.Stats().Served != before {
		t.Fatal("a take with a spend estimate was answered from an allowance")
	}
	// The lifetime ends: the allowance is returned, its tokens credited.
	e.clk.Advance(time.Second)
	waitFor(t, "the allowances returned", func() bool { return e.layer.Stats().Outstanding == 0 })
	if lvl := e.get().GetLevel(); math.Abs(lvl-float64(capacity-admitted)) > 1e-5 {
		t.Fatalf("level after the returns %v, want %d", lvl, capacity-admitted)
	}
	if in := e.info(0); in.GetMode() != "unsplit" {
		t.Fatalf("hot_shards 1 split the key: %v", in)
	}
}

// A reply replayed from the idempotency record (a client's retry) never
// hands its allowance out again.
func TestReplayedGrantNotReused(t *testing.T) {
	e := newEnv(t, ratelimit.HotConfig{ThresholdTPS: 5, HotShards: 1, AllowanceLifetime: time.Second},
		map[string]ratelimit.Limit{"r": {Capacity: 10_000 * ratelimit.Micro, Refill: tiny}})
	for i := range 10 {
		e.mustTake(fmt.Sprintf("warm-%d", i), 1)
	}
	e.clk.Advance(time.Second)
	waitFor(t, "returns", func() bool { return e.layer.Stats().Outstanding == 0 })
	granted := e.layer.Stats().Granted
	for range 6 {
		e.mustTake("same", 1) // hot: the first gets a grant; the rest replay it
	}
	got := e.layer.Stats().Granted - granted
	if got == 0 || got > 64 {
		t.Fatalf("granted %d tokens to one request ID retried 6 times (want one grant)", got)
	}
}

// Below the threshold nothing splits and no allowance is granted: every
// take reaches the owner, and exactly the capacity is admitted.
func TestBelowThreshold(t *testing.T) {
	e := newEnv(t, ratelimit.HotConfig{ThresholdTPS: 1e6, AllowanceLifetime: time.Second},
		map[string]ratelimit.Limit{"r": {Capacity: 50 * ratelimit.Micro, Refill: tiny}})
	admitted := 0
	for range 80 {
		if e.mustTake("", 1) {
			admitted++
		}
	}
	if admitted != 50 || e.layer.Stats().Granted != 0 || e.info(0).GetMode() != "unsplit" {
		t.Fatalf("admitted %d, stats %+v, mode %s", admitted, e.layer.Stats(), e.info(0).GetMode())
	}
}

// Per-key limits set before the split (single node: in the parent's
// state) reach the shards with their parcels; a budget is checked on the
// parent before shard takes.
func TestSplitKeepsKeyLimitsAndBudget(t *testing.T) {
	e := newEnv(t, ratelimit.HotConfig{ThresholdTPS: 10, HotShards: 2, MergeAfter: time.Hour},
		map[string]ratelimit.Limit{"r": {Capacity: 10 * ratelimit.Micro, Refill: tiny}})
	if _, err := e.layer.Call(context.Background(), key, &holdfastv1.RateLimitSetRequest{Actor: ref(key),
		Buckets: map[string]*holdfastv1.BucketLimit{"r": {Capacity: 1000, RefillPerSecond: 0.000001}}, DailyBudgetNanos: 100}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		e.mustTake("", 1)
	}
	if e.info(0).GetMode() != "split" {
		t.Fatal("no split")
	}
	if b := e.get(); b.GetCapacity() != 1000 || math.Abs(b.GetLevel()-980) > 1e-5 {
		t.Fatalf("split key: %v", b)
	}
	// Spend 100 nano-dollars: the budget is used up; takes are refused by
	// the parent's check although the shards hold tokens.
	if _, err := e.layer.Call(context.Background(), key, &holdfastv1.RateLimitAdjustRequest{Actor: ref(key), SpendNanos: 100}); err != nil {
		t.Fatal(err)
	}
	r, err := e.take("", 1)
	if err != nil || r.GetAllowed() || r.GetRefusedBy() != "daily_budget" {
		t.Fatalf("take over the budget on a split key: %v, %v", r, err)
	}
}

// The caller that made the key split vanishes before it initialised any
// shard; another node's layer finds the shards not ready and initialises
// them from the parcels the parent keeps. Later a third layer, with a
// stale split cached, meets a shard another layer retired: it finishes
// that merge step and goes back to the parent. No token is lost or made.
func TestSplitFinishedByOtherCallers(t *testing.T) {
	const capacity = 400
	e := newEnv(t, ratelimit.HotConfig{ThresholdTPS: 20, HotShards: 4, MergeAfter: 2 * time.Second},
		map[string]ratelimit.Limit{"r": {Capacity: capacity * ratelimit.Micro, Refill: tiny}})
	taken := 0
	// The vanished caller: takes straight to the parent until it splits.
	for i := 0; ; i++ {
		r := e.direct(0, &holdfastv1.HotCall{Op: &holdfastv1.HotCall_Take{Take: &holdfastv1.RateLimitTakeRequest{Amounts: map[string]int64{"r": 1}}}})
		if r.GetStatus() == holdfastv1.HotReply_SPLIT {
			break
		}
		if !r.GetTake().GetAllowed() || i > 100 {
			t.Fatalf("take %d: %v", i, r)
		}
		taken++
	}
	for i := uint32(1); i <= 4; i++ {
		if in := e.info(i); in.GetMode() != "uninitialised" {
			t.Fatalf("shard %d: %v", i, in)
		}
	}
	// Called directly (no layer), a shard not ready says so.
	_, err := e.rt.Call(context.Background(), actor.ID{Namespace: "rl", Key: "hot", Shard: 1}, &holdfastv1.RateLimitTakeRequest{Amounts: map[string]int64{"r": 1}})
	var re interface{ Reason() string }
	if !errors.As(err, &re) || re.Reason() != ratelimit.ReasonShardNotReady {
		t.Fatalf("plain take on a shard not ready: %v", err)
	}
	other := func() *hotkey.Layer {
		l, err := hotkey.New(hotkey.Config{NodeID: "n2", Clock: e.clk, Namespaces: map[string]hotkey.Namespace{"rl": {CacheTTL: time.Hour}}}, e.rt)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close(context.Background()) })
		return l
	}
	b, c := other(), other()
	take := func(l *hotkey.Layer) bool {
		resp, err := l.Call(context.Background(), key, &holdfastv1.RateLimitTakeRequest{Actor: ref(key), Amounts: map[string]int64{"r": 1}})
		if err != nil {
			t.Fatalf("take: %v", err)
		}
		return resp.(*holdfastv1.RateLimitTakeResponse).GetAllowed()
	}
	for range 40 {
		if take(b) {
			taken++
		}
	}
	if take(c) { // c caches the split too
		taken++
	}
	if lv := e.get().GetLevel(); math.Abs(lv-float64(capacity-taken)) > 1e-5 {
		t.Fatalf("after the lazy initialisation: level %v, want %d", lv, capacity-taken)
	}
	// Quiet, then b merges (c's cache is now stale).
	for range 2 {
		e.clk.Advance(3 * time.Second)
		for range 4 {
			if take(b) {
				taken++
			}
		}
	}
	waitFor(t, "the merge", func() bool { return e.info(0).GetMode() == "unsplit" })
	for range 8 {
		if take(c) {
			taken++
		}
	}
	if lv := e.get().GetLevel(); math.Abs(lv-float64(capacity-taken)) > 1e-5 {
		t.Fatalf("after the merge: level %v, want %d", lv, capacity-taken)
	}
}
