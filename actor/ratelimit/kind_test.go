package ratelimit_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/actor/ratelimit"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

var t0 = time.Date(2026, 11, 27, 23, 59, 0, 0, time.UTC)

type env struct {
	t   *testing.T
	rt  *actor.Runtime
	clk *clock.Fake
}

func newEnv(t *testing.T, d ratelimit.Defaults) *env {
	t.Helper()
	clk := clock.NewFake(t0)
	cfg := actor.DefaultConfig()
	cfg.Clock = clk
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Partitions = 8
	rt, err := actor.New(cfg, actor.NewMemStore(), []actor.NamespaceConfig{{Name: "ratelimit", Durability: actor.Local, New: ratelimit.New(d)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Shutdown(context.Background()) })
	return &env{t: t, rt: rt, clk: clk}
}

var alice = actor.ID{Namespace: "ratelimit", Key: "alice"}

func (e *env) take(reqID string, amounts map[string]int64, spend int64) *holdfastv1.RateLimitTakeResponse {
	e.t.Helper()
	resp, err := e.rt.Call(context.Background(), alice, &holdfastv1.RateLimitTakeRequest{RequestId: reqID, Amounts: amounts, SpendEstimateNanos: spend})
	if err != nil {
		e.t.Fatalf("take: %v", err)
	}
	return resp.(*holdfastv1.RateLimitTakeResponse)
}

func (e *env) set(buckets map[string]*holdfastv1.BucketLimit, budget int64) *holdfastv1.RateLimitState {
	e.t.Helper()
	resp, err := e.rt.Call(context.Background(), alice, &holdfastv1.RateLimitSetRequest{Buckets: buckets, DailyBudgetNanos: budget})
	if err != nil {
		e.t.Fatalf("set: %v", err)
	}
	return resp.(*holdfastv1.RateLimitState)
}

func TestTakeExhaustRefill(t *testing.T) {
	e := newEnv(t, ratelimit.Defaults{})
	e.set(map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 3, RefillPerSecond: 0.5}}, 0)
	for i := 0; i < 3; i++ {
		if r := e.take("", map[string]int64{"requests": 1}, 0); !r.GetAllowed() || r.GetRemaining()["requests"] != float64(2-i) {
			t.Fatalf("take %d: %v", i, r)
		}
	}
	r := e.take("", map[string]int64{"requests": 1}, 0)
	if r.GetAllowed() || r.GetRetryAfterMs() != 2000 || r.GetRefusedBy() != "requests" {
		t.Fatalf("exhausted take: %v", r)
	}
	e.clk.Advance(1999 * time.Millisecond)
	if r := e.take("", map[string]int64{"requests": 1}, 0); r.GetAllowed() || r.GetRetryAfterMs() != 1 {
		t.Fatalf("early take: %v", r)
	}
	e.clk.Advance(time.Millisecond)
	if r := e.take("", map[string]int64{"requests": 1}, 0); !r.GetAllowed() {
		t.Fatalf("refilled take refused: %v", r)
	}
}

func TestMultiBucketAllOrNothingAndAdjust(t *testing.T) {
	e := newEnv(t, ratelimit.Defaults{Buckets: map[string]ratelimit.Limit{
		"requests":      {Capacity: 10 * ratelimit.Micro, Refill: ratelimit.Micro},
		"input_tokens":  {Capacity: 1000 * ratelimit.Micro, Refill: 10 * ratelimit.Micro},
		"output_tokens": {Capacity: 500 * ratelimit.Micro, Refill: 5 * ratelimit.Micro},
	}})
	r := e.take("", map[string]int64{"requests": 1, "input_tokens": 900, "output_tokens": 600}, 0)
	if r.GetAllowed() || r.GetRetryAfterMs() != -1 || r.GetRefusedBy() != "output_tokens" {
		t.Fatalf("over-capacity take: %v", r)
	}
	r = e.take("", map[string]int64{"requests": 1, "input_tokens": 900, "output_tokens": 400}, 0)
	if !r.GetAllowed() {
		t.Fatalf("take refused: %v", r)
	}
	r = e.take("", map[string]int64{"requests": 1, "input_tokens": 200}, 0)
	if r.GetAllowed() || r.GetRefusedBy() != "input_tokens" || r.GetRemaining()["requests"] != 9 {
		t.Fatalf("partial take must change nothing: %v", r)
	}
	// Actual input was 1400, not the estimated 900: the bucket goes negative.
	resp, err := e.rt.Call(context.Background(), alice, &holdfastv1.RateLimitAdjustRequest{RequestId: "adj-1", Deltas: map[string]int64{"input_tokens": 500}})
	if err != nil {
		t.Fatal(err)
	}
	st := resp.(*holdfastv1.RateLimitState)
	for _, b := range st.GetBuckets() {
		if b.GetName() == "input_tokens" && b.GetLevel() != -400 {
			t.Fatalf("input level after adjust %v", b.GetLevel())
		}
	}
	// The retried adjust counts once.
	if _, err := e.rt.Call(context.Background(), alice, &holdfastv1.RateLimitAdjustRequest{RequestId: "adj-1", Deltas: map[string]int64{"input_tokens": 500}}); err != nil {
		t.Fatal(err)
	}
	r = e.take("", map[string]int64{"input_tokens": 1}, 0)
	if r.GetAllowed() || r.GetRetryAfterMs() != 40100 {
		t.Fatalf("after adjust: %v (want retry 40.1 s: 401 tokens at 10/s)", r)
	}
}

func TestUnknownBucketIsTypedError(t *testing.T) {
	e := newEnv(t, ratelimit.Defaults{})
	_, err := e.rt.Call(context.Background(), alice, &holdfastv1.RateLimitTakeRequest{Amounts: map[string]int64{"requests": 1}})
	var re *ratelimit.Error
	if !errors.As(err, &re) || re.Reason() != "UNKNOWN_BUCKET" || re.Metadata()["bucket"] != "requests" || !strings.Contains(err.Error(), `"requests"`) {
		t.Fatalf("got %v", err)
	}
	if !errors.Is(err, actor.ErrInvalidArgument) {
		t.Fatal("not an invalid argument")
	}
	_, err = e.rt.Call(context.Background(), alice, &holdfastv1.RateLimitTakeRequest{Amounts: map[string]int64{"x": -1}})
	if !errors.Is(err, actor.ErrInvalidArgument) {
		t.Fatalf("negative amount: %v", err)
	}
}

func TestPerKeyLimitsOverNamespaceDefaults(t *testing.T) {
	e := newEnv(t, ratelimit.Defaults{Buckets: map[string]ratelimit.Limit{"requests": {Capacity: 100 * ratelimit.Micro, Refill: ratelimit.Micro}}})
	st := e.set(map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 2, RefillPerSecond: 1}}, 0)
	if b := st.GetBuckets()[0]; b.GetSource() != "key" || b.GetCapacity() != 2 || b.GetLevel() != 2 {
		t.Fatalf("state %v", st)
	}
	e.take("", map[string]int64{"requests": 2}, 0)
	if r := e.take("", map[string]int64{"requests": 1}, 0); r.GetAllowed() {
		t.Fatal("per-key limit not applied")
	}
	resp, err := e.rt.Call(context.Background(), alice, &holdfastv1.RateLimitSetRequest{Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	if b := resp.(*holdfastv1.RateLimitState).GetBuckets()[0]; b.GetSource() != "namespace" || b.GetCapacity() != 100 {
		t.Fatalf("after replace: %v", b)
	}
}

func TestDailyBudgetDayKeyedAndTidy(t *testing.T) {
	e := newEnv(t, ratelimit.Defaults{SpendRetentionDays: 1, Buckets: map[string]ratelimit.Limit{"requests": {Capacity: 1000 * ratelimit.Micro, Refill: ratelimit.Micro}}})
	e.set(nil, 1_000_000_000) // $1
	spend := func(n int64) *holdfastv1.RateLimitState {
		resp, err := e.rt.Call(context.Background(), alice, &holdfastv1.RateLimitAdjustRequest{SpendNanos: n})
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*holdfastv1.RateLimitState)
	}
	if st := spend(900_000_000); st.GetSpendTodayNanos() != 900_000_000 || st.GetDay() != "2026-11-27" {
		t.Fatalf("state %v", st)
	}
	if r := e.take("", map[string]int64{"requests": 1}, 200_000_000); r.GetAllowed() || r.GetRefusedBy() != "daily_budget" || r.GetRetryAfterMs() != 60_000 {
		t.Fatalf("over budget take: %v", r)
	}
	// Midnight: a new day, a fresh budget; yesterday's spend is kept.
	e.clk.Advance(time.Minute)
	if r := e.take("", map[string]int64{"requests": 1}, 200_000_000); !r.GetAllowed() {
		t.Fatalf("new day refused: %v", r)
	}
	if st := spend(5); st.GetSpendTodayNanos() != 5 {
		t.Fatalf("new day spend %v", st)
	}
	// The tidy alarm fires after each midnight and never touches today.
	// Time moves in steps so no turn sees the clock jump past its deadline.
	e.clk.Advance(2 * time.Minute)
	waitAlarmFired(t, e, 1)
	e.clk.Advance(24 * time.Hour)
	waitAlarmFired(t, e, 2)
	dump, err := e.rt.GetActor(context.Background(), alice, 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range dump.Entries {
		if strings.HasPrefix(kv.Key, "spend/2026-11-27") {
			t.Fatalf("old day not tidied: %v", kv.Key)
		}
	}
}

func waitAlarmFired(t *testing.T, e *env, n int64) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := e.rt.Call(context.Background(), alice, &holdfastv1.AlarmGetRequest{})
		if err == nil && resp.(*holdfastv1.AlarmState).GetFiredCount() >= n {
			return
		}
		if time.Now().After(deadline) {
			st, _ := e.rt.Call(context.Background(), alice, &holdfastv1.AlarmGetRequest{})
			t.Fatalf("tidy alarm did not fire %d times: alarm %v, clock %v, pending timers %d", n, st, e.clk.Now(), e.clk.Pending())
		}
		time.Sleep(time.Millisecond)
	}
}

// Plain takes reuse their Set (kind.go, takeSets): nothing of one actor's
// limits or levels may reach the next actor's take.
func TestTakesOfActorsShareNothing(t *testing.T) {
	e := newEnv(t, ratelimit.Defaults{Buckets: map[string]ratelimit.Limit{"requests": {Capacity: 5 * ratelimit.Micro, Refill: ratelimit.Micro}}})
	bob := actor.ID{Namespace: "ratelimit", Key: "bob"}
	e.set(map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 1, RefillPerSecond: 0.001}}, 0) // alice: her own limit
	takeOf := func(id actor.ID) *holdfastv1.RateLimitTakeResponse {
		t.Helper()
		resp, err := e.rt.Call(context.Background(), id, &holdfastv1.RateLimitTakeRequest{Amounts: map[string]int64{"requests": 1}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*holdfastv1.RateLimitTakeResponse)
	}
	for i := range 5 {
		if r := takeOf(alice); r.GetAllowed() != (i == 0) {
			t.Fatalf("alice's take %d: %v (capacity 1)", i, r)
		}
		// Bob has the namespace's limit and his own level, whatever alice's
		// take just loaded.
		if r := takeOf(bob); !r.GetAllowed() || r.GetRemaining()["requests"] != float64(4-i) {
			t.Fatalf("bob's take %d: %v (capacity 5)", i, r)
		}
	}
	if r := takeOf(bob); r.GetAllowed() {
		t.Fatalf("bob's sixth take: %v", r)
	}
	// A bucket only alice has a limit for stays unknown to bob.
	e.set(map[string]*holdfastv1.BucketLimit{"vip": {Capacity: 10, RefillPerSecond: 1}}, 0)
	vip := &holdfastv1.RateLimitTakeRequest{Amounts: map[string]int64{"vip": 1}}
	if _, err := e.rt.Call(context.Background(), alice, vip); err != nil {
		t.Fatalf("alice's vip take: %v", err)
	}
	if resp, err := e.rt.Call(context.Background(), bob, vip); !errors.Is(err, actor.ErrInvalidArgument) {
		t.Fatalf("bob's vip take: %v, %v; want an unknown bucket", resp, err)
	}
}
