package ratelimit_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/ratelimit"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// racySettings wraps a MemSettings: before each Put it runs race (when
// set), which can write first to make the Put conflict, and counts Puts.
type racySettings struct {
	*ratelimit.MemSettings
	race func()
	puts atomic.Int64
}

func (r *racySettings) Put(ctx context.Context, ns, key string, ks ratelimit.KeySettings, rev uint64) (uint64, error) {
	r.puts.Add(1)
	if r.race != nil {
		r.race()
	}
	return r.MemSettings.Put(ctx, ns, key, ks, rev)
}

var nsDefaults = map[string]ratelimit.Limit{"requests": {Capacity: 100 * ratelimit.Micro, Refill: 1}}

func (e *env) state() *holdfastv1.RateLimitState {
	e.t.Helper()
	resp, err := e.rt.Call(context.Background(), alice, &holdfastv1.RateLimitGetRequest{})
	if err != nil {
		e.t.Fatalf("get: %v", err)
	}
	return resp.(*holdfastv1.RateLimitState)
}

func (e *env) call(msg *holdfastv1.RateLimitSetRequest) (*holdfastv1.RateLimitState, error) {
	resp, err := e.rt.Call(context.Background(), alice, msg)
	if err != nil {
		return nil, err
	}
	return resp.(*holdfastv1.RateLimitState), nil
}

func bucketOf(st *holdfastv1.RateLimitState, name string) *holdfastv1.BucketState {
	for _, b := range st.GetBuckets() {
		if b.GetName() == name {
			return b
		}
	}
	return nil
}

// stateKeys returns the storage keys of alice's actor state.
func (e *env) stateKeys() []string {
	e.t.Helper()
	dump, err := e.rt.GetActor(context.Background(), alice, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var keys []string
	for _, kv := range dump.Entries {
		keys = append(keys, kv.Key)
	}
	return keys
}

func hasPrefix(keys []string, prefix string) bool {
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// A fresh actor state (a new runtime on a new store: a new owner after a
// crash under on_owner_loss reset) keeps the per-key limits and budget:
// takes are judged by them, not by the namespace defaults. Levels reset.
func TestSettingsSurviveFreshState(t *testing.T) {
	st := ratelimit.NewMemSettings()
	d := ratelimit.Defaults{Buckets: nsDefaults, Settings: st}
	e := newEnv(t, d)
	e.set(map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 2, RefillPerSecond: 0.001}}, 5_000)
	for i := 0; i < 2; i++ {
		if r := e.take("", map[string]int64{"requests": 1}, 0); !r.GetAllowed() {
			t.Fatalf("take %d refused: %v", i, r)
		}
	}
	if r := e.take("", map[string]int64{"requests": 1}, 0); r.GetAllowed() {
		t.Fatalf("third take allowed: %v", r)
	}
	keys := e.stateKeys()
	if hasPrefix(keys, "limit/") || hasPrefix(keys, "budget") || !hasPrefix(keys, "bucket/requests") {
		t.Fatalf("with Settings, limits must not be in the actor state: %v", keys)
	}
	ks, rev, ok := st.Get("ratelimit", "alice")
	if !ok || rev == 0 || ks.Limits["requests"] != (ratelimit.Limit{Capacity: 2 * ratelimit.Micro, Refill: 1000}) || ks.DailyBudgetNanos != 5_000 {
		t.Fatalf("settings %v rev %d found %v", ks, rev, ok)
	}

	for _, reset := range []string{"fresh runtime", "deleted actor"} {
		e2 := e
		if reset == "fresh runtime" {
			e2 = newEnv(t, d)
		} else if _, err := e.rt.DeleteActor(context.Background(), alice); err != nil {
			t.Fatal(err)
		}
		s := e2.state()
		if b := bucketOf(s, "requests"); b == nil || b.GetSource() != "key" || b.GetCapacity() != 2 || b.GetLevel() != 2 || s.GetDailyBudgetNanos() != 5_000 {
			t.Fatalf("%s: state %v", reset, s)
		}
		for i := 0; i < 2; i++ {
			if r := e2.take("", map[string]int64{"requests": 1}, 0); !r.GetAllowed() {
				t.Fatalf("%s: take %d refused: %v", reset, i, r)
			}
		}
		// The namespace default (100) would allow it; the key's limit does not.
		if r := e2.take("", map[string]int64{"requests": 1}, 0); r.GetAllowed() || r.GetRefusedBy() != "requests" {
			t.Fatalf("%s: take over the per-key limit: %v", reset, r)
		}
		// The budget too: 5000 nano-dollars; an estimate of 6000 does not fit.
		if r := e2.take("", map[string]int64{"requests": 0}, 6_000); r.GetAllowed() || r.GetRefusedBy() != "daily_budget" {
			t.Fatalf("%s: take over the per-key budget: %v", reset, r)
		}
	}
}

func TestSettingsBudgetSurvivesAndSemantics(t *testing.T) {
	st := ratelimit.NewMemSettings()
	d := ratelimit.Defaults{Buckets: nsDefaults, DailyBudgetNanos: 1_000_000, Settings: st}
	e := newEnv(t, d)
	if s := e.set(nil, 5_000); s.GetDailyBudgetNanos() != 5_000 {
		t.Fatalf("budget %v", s)
	}
	e2 := newEnv(t, d) // fresh state: spend lost, budget kept
	if r := e2.take("", map[string]int64{"requests": 1}, 6_000); r.GetAllowed() || r.GetRefusedBy() != "daily_budget" || r.GetBudgetRemainingNanos() != 5_000 {
		t.Fatalf("take over the per-key budget on a fresh state: %v", r)
	}
	// 0: unchanged.
	if s := e2.set(map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 3, RefillPerSecond: 1}}, 0); s.GetDailyBudgetNanos() != 5_000 {
		t.Fatalf("budget 0 changed it: %v", s)
	}
	// Below -1: refused, nothing written.
	_, rev, _ := st.Get("ratelimit", "alice")
	_, err := e2.call(&holdfastv1.RateLimitSetRequest{DailyBudgetNanos: -2, Buckets: map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 1, RefillPerSecond: 1}}})
	if !errors.Is(err, actor.ErrInvalidArgument) || !errors.Is(err, ratelimit.ErrInvalidBudget) {
		t.Fatalf("budget -2: %v", err)
	}
	if ks, rev2, _ := st.Get("ratelimit", "alice"); rev2 != rev || ks.Limits["requests"].Capacity != 3*ratelimit.Micro {
		t.Fatalf("refused set wrote settings: %v rev %d -> %d", ks, rev, rev2)
	}
	// -1: cleared, back to the namespace default.
	if s := e2.set(nil, -1); s.GetDailyBudgetNanos() != 1_000_000 {
		t.Fatalf("budget after clear: %v", s)
	}
	if ks, _, _ := st.Get("ratelimit", "alice"); ks.DailyBudgetNanos != 0 || ks.Limits["requests"].Capacity != 3*ratelimit.Micro {
		t.Fatalf("settings after clear: %v", ks)
	}
	if r := e.take("", map[string]int64{"requests": 1}, 6_000); !r.GetAllowed() || r.GetBudgetRemainingNanos() != 1_000_000 {
		t.Fatalf("take under the default budget: %v", r)
	}
}

func TestSettingsReplace(t *testing.T) {
	st := ratelimit.NewMemSettings()
	e := newEnv(t, ratelimit.Defaults{Buckets: nsDefaults, Settings: st})
	e.set(map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 2, RefillPerSecond: 1}, "tokens": {Capacity: 10, RefillPerSecond: 1}}, 7)
	e.take("", map[string]int64{"tokens": 4}, 0)
	s, err := e.call(&holdfastv1.RateLimitSetRequest{Replace: true, Buckets: map[string]*holdfastv1.BucketLimit{"other": {Capacity: 5, RefillPerSecond: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if b := bucketOf(s, "requests"); b == nil || b.GetSource() != "namespace" || b.GetCapacity() != 100 {
		t.Fatalf("requests after replace: %v", s)
	}
	if b := bucketOf(s, "other"); b == nil || b.GetSource() != "key" || b.GetCapacity() != 5 {
		t.Fatalf("other after replace: %v", s)
	}
	if bucketOf(s, "tokens") != nil || s.GetDailyBudgetNanos() != 7 {
		t.Fatalf("replace keeps the budget and drops tokens: %v", s)
	}
	ks, _, _ := st.Get("ratelimit", "alice")
	if !maps.Equal(ks.Limits, map[string]ratelimit.Limit{"other": {Capacity: 5 * ratelimit.Micro, Refill: ratelimit.Micro}}) || ks.DailyBudgetNanos != 7 {
		t.Fatalf("settings after replace: %v", ks)
	}
	_, err = e.rt.Call(context.Background(), alice, &holdfastv1.RateLimitTakeRequest{Amounts: map[string]int64{"tokens": 1}})
	var re *ratelimit.Error
	if !errors.As(err, &re) || re.Reason() != "UNKNOWN_BUCKET" {
		t.Fatalf("take of a replaced-away bucket: %v", err)
	}
}

// A set whose compare-and-set loses (another writer got in between) fails
// and changes neither the settings nor the state; a retry then works.
func TestSettingsConflictFailsTurn(t *testing.T) {
	mem := ratelimit.NewMemSettings()
	rs := &racySettings{MemSettings: mem}
	e := newEnv(t, ratelimit.Defaults{Buckets: nsDefaults, Settings: rs})
	e.take("", map[string]int64{"requests": 10}, 0) // level 90 under the default
	rs.race = func() {
		rs.race = nil
		ks, rev, _ := mem.Get("ratelimit", "alice")
		ks = ks.Clone()
		ks.Limits["tokens"] = ratelimit.Limit{Capacity: ratelimit.Micro, Refill: 1}
		if _, err := mem.Put(context.Background(), "ratelimit", "alice", ks, rev); err != nil {
			t.Error(err)
		}
	}
	_, err := e.call(&holdfastv1.RateLimitSetRequest{Buckets: map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 5, RefillPerSecond: 1}}})
	if !errors.Is(err, ratelimit.ErrSettingsConflict) || !errors.Is(err, actor.ErrStorage) {
		t.Fatalf("set against a concurrent write: %v", err)
	}
	ks, _, _ := mem.Get("ratelimit", "alice")
	if _, ok := ks.Limits["requests"]; ok || len(ks.Limits) != 1 {
		t.Fatalf("settings after the failed set: %v", ks)
	}
	s := e.state()
	if b := bucketOf(s, "requests"); b.GetCapacity() != 100 || b.GetLevel() != 90 || b.GetSource() != "namespace" {
		t.Fatalf("state after the failed set: %v", b)
	}
	// The retry reads the new revision and applies on top of it; the level
	// is clamped to the new capacity.
	s = e.set(map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 5, RefillPerSecond: 1}}, 0)
	if b := bucketOf(s, "requests"); b.GetCapacity() != 5 || b.GetLevel() != 5 || bucketOf(s, "tokens") == nil {
		t.Fatalf("state after the retried set: %v", s)
	}
	// A set that changes nothing writes nothing.
	n := rs.puts.Load()
	e.set(map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 5, RefillPerSecond: 1}}, 0)
	if rs.puts.Load() != n {
		t.Fatal("a no-op set wrote the settings")
	}
}

// Without Settings (a single node) limits stay in the actor's state, as
// before: a fresh state forgets them.
func TestNoSettingsKeepsLimitsInState(t *testing.T) {
	e := newEnv(t, ratelimit.Defaults{Buckets: nsDefaults})
	e.set(map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 2, RefillPerSecond: 1}}, 5)
	keys := e.stateKeys()
	if !hasPrefix(keys, "limit/requests") || !hasPrefix(keys, "budget") {
		t.Fatalf("state keys %v", keys)
	}
	if _, err := e.rt.DeleteActor(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	if b := bucketOf(e.state(), "requests"); b.GetSource() != "namespace" || b.GetCapacity() != 100 {
		t.Fatalf("after delete: %v", b)
	}
}

func TestKeySettingsEncoding(t *testing.T) {
	ks := ratelimit.KeySettings{DailyBudgetNanos: 1234, Limits: map[string]ratelimit.Limit{
		"b": {Capacity: 5, Refill: 300}, "a": {Capacity: ratelimit.MaxMicros, Refill: 1},
	}}
	b, err := ks.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got ratelimit.KeySettings
	if err := got.UnmarshalBinary(b); err != nil || !got.Equal(ks) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if err := got.UnmarshalBinary([]byte{0x31, 0, 0}); err != nil || len(got.Limits) != 0 || got.DailyBudgetNanos != 0 {
		t.Fatalf("empty: %v %v", got, err)
	}
	bad := map[string][]byte{
		"empty":      nil,
		"tag":        {0x32, 0, 0},
		"truncated":  b[:len(b)-1],
		"trailing":   append(append([]byte{}, b...), 0),
		"non-min":    {0x31, 0x80, 0x00, 0},
		"count":      {0x31, 0, 5},
		"order":      {0x31, 0, 2, 1, 'b', 1, 1, 1, 'a', 1, 1},
		"duplicate":  {0x31, 0, 2, 1, 'a', 1, 1, 1, 'a', 1, 1},
		"zero cap":   {0x31, 0, 1, 1, 'a', 0, 1},
		"slash name": {0x31, 0, 1, 1, '/', 1, 1},
		"empty name": {0x31, 0, 1, 0, 1, 1},
		"name len":   {0x31, 0, 1, 9, 'a'},
		"budget":     append([]byte{0x31}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0),
	}
	for name, data := range bad {
		keep := got
		if err := got.UnmarshalBinary(data); !errors.Is(err, ratelimit.ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
		if !got.Equal(keep) {
			t.Errorf("%s: a failed decode changed the value", name)
		}
	}
	for _, ks := range []ratelimit.KeySettings{
		{DailyBudgetNanos: -1},
		{Limits: map[string]ratelimit.Limit{"a/b": {Capacity: 1, Refill: 1}}},
		{Limits: map[string]ratelimit.Limit{"a": {Capacity: 1, Refill: 0}}},
	} {
		if _, err := ks.MarshalBinary(); err == nil {
			t.Errorf("%v encoded", ks)
		}
	}
}

func FuzzKeySettingsDecode(f *testing.F) {
	ks := ratelimit.KeySettings{DailyBudgetNanos: 9, Limits: map[string]ratelimit.Limit{"x": {Capacity: 7, Refill: 3}}}
	b, _ := ks.MarshalBinary()
	f.Add(b)
	f.Add([]byte{0x31, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var k ratelimit.KeySettings
		if k.UnmarshalBinary(data) != nil {
			return
		}
		out, err := k.MarshalBinary()
		if err != nil || string(out) != string(data) {
			t.Fatalf("decoded %v does not re-encode to the input: %x vs %x (%v)", k, out, data, err)
		}
	})
}
