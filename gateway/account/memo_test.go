package account_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/gateway/account"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// The handler memoizes the user's decoded limits (limitsMemo), keyed by
// what the turn read. These tests change the limits between admits in
// every way they can change and check that the very next admit acts on
// the new ones.

func (e *env) setLimits(user string, l *holdfastv1.AccountLimits, fields ...string) {
	e.t.Helper()
	if _, err := e.svc.SetLimits(ctx(), &holdfastv1.SetLimitsRequest{User: user, Limits: l, Fields: fields}); err != nil {
		e.t.Fatalf("set limits: %v", err)
	}
}

func wantRefusedBy(t *testing.T, r *holdfastv1.AccountAdmitResponse, by string) {
	t.Helper()
	if r.GetAllowed() || r.GetRefusedBy() != by {
		t.Fatalf("got allowed=%v refused_by=%q, want refused by %q", r.GetAllowed(), r.GetRefusedBy(), by)
	}
}

// Limits kept in the actor's state (a single node): each set, whatever it
// changes, is seen by the next admit.
func TestAdmitSeesEveryLimitsSet(t *testing.T) {
	e := newEnv(t, account.Defaults{})
	spend := &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 10}
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{})) // no limits stored yet

	e.setLimits("alice", &holdfastv1.AccountLimits{RequestsPerMinute: 1}, account.RequestsPerMinute)
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}))
	wantRefusedBy(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}), account.RequestsPerMinute)

	// Stored limits replaced by other stored limits.
	e.setLimits("alice", &holdfastv1.AccountLimits{DailyBudgetNanos: 5}, account.RequestsPerMinute, account.DailyBudgetNanos)
	wantRefused(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 10, RequestId: "b1"}), account.RefusedDailyBudget, -1)
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 5}))

	// Back to none: the key is deleted.
	e.setLimits("alice", &holdfastv1.AccountLimits{}, account.DailyBudgetNanos)
	if _, ok := e.userDump("alice")["limits"]; ok {
		t.Fatal("limits key still stored")
	}
	wantAllowed(t, e.admit("alice", spend))

	// DeleteActor wipes the state (and discards the handler).
	e.setLimits("alice", &holdfastv1.AccountLimits{DailyBudgetNanos: 5}, account.DailyBudgetNanos)
	wantRefused(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 10}), account.RefusedDailyBudget, -1)
	if _, err := e.rt.DeleteActor(ctx(), actor.ID{Namespace: account.DefaultNamespace, Key: "alice"}); err != nil {
		t.Fatal(err)
	}
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 10}))
}

// An admit that reads a limits set whose write is not durable yet waits
// for it (GateOnReads counts the read): the memo never stands in for the
// read, even when it already holds the limits from before the set.
func TestAdmitWaitsForThePendingLimitsItActsOn(t *testing.T) {
	e := newEnvAt(t, account.Defaults{}, t0)
	gs := actor.NewGatedStore(actor.NewMemStore())
	e.start(gs)
	t.Cleanup(gs.Open)
	id := actor.ID{Namespace: account.DefaultNamespace, Key: "alice"}
	admit := func() (*holdfastv1.AccountAdmitResponse, actor.OutputGate) {
		t.Helper()
		resp, gate, err := e.rt.CallEarly(ctx(), id, &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 10})
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*holdfastv1.AccountAdmitResponse), gate
	}
	r, gate := admit() // fills the memo: no limits
	wantAllowed(t, r)
	if !gate.Resolved() {
		t.Fatal("an admit that read nothing pending has a pending gate")
	}
	if err := gate.Wait(ctx()); err != nil {
		t.Fatal(err)
	}

	gs.Hold()
	set := make(chan error, 1)
	go func() {
		_, err := e.svc.SetLimits(ctx(), &holdfastv1.SetLimitsRequest{User: "alice",
			Limits: &holdfastv1.AccountLimits{DailyBudgetNanos: 5}, Fields: []string{account.DailyBudgetNanos}})
		set <- err
	}()
	waitQueuedPast(t, e, e.rt.DurableSeq())
	r, gate = admit()
	wantRefused(t, r, account.RefusedDailyBudget, -1)
	if gate.Resolved() {
		t.Fatal("the admit's gate is open while the limits it acted on are not durable")
	}
	gs.Open()
	if err := gate.Wait(ctx()); err != nil {
		t.Fatal(err)
	}
	answered(t, "the set", set)
}

// fixedSettings is an account.Settings whose answer the test sets: the
// same pointer under another revision or found flag included, which the
// real cache would not produce but a memo keyed on less would confuse.
type fixedSettings struct {
	mu    sync.Mutex
	l     *holdfastv1.AccountLimits
	rev   uint64
	found bool
}

func (s *fixedSettings) set(l *holdfastv1.AccountLimits, rev uint64, found bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.l, s.rev, s.found = l, rev, found
}

func (s *fixedSettings) Get(string, string) (*holdfastv1.AccountLimits, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.l, s.rev, s.found
}

func (s *fixedSettings) Put(context.Context, string, string, *holdfastv1.AccountLimits, uint64) (uint64, error) {
	panic("the test sets its answer itself")
}

// Limits kept in Settings (a cluster): a change of the entry, made by
// another node and seen here through the settings cache, is seen by the
// next admit; so is an entry deleted, and none at all (the actor's state
// decides: a single node's data that joined a cluster).
func TestAdmitSeesEverySettingsChange(t *testing.T) {
	e := newEnvAt(t, account.Defaults{}, t0)
	store := actor.NewMemStore()
	e.start(store)
	e.setLimits("alice", &holdfastv1.AccountLimits{DailyBudgetNanos: 5}, account.DailyBudgetNanos) // in the state
	st := &fixedSettings{}
	e.d.Settings = st
	e.stop()
	e.start(store)
	admit := func(spend int64) *holdfastv1.AccountAdmitResponse {
		return e.admit("alice", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: spend})
	}
	wantRefused(t, admit(10), account.RefusedDailyBudget, -1) // revision 0: the state's limits

	st.set(nil, 1, false) // written to Settings once, deleted since: no own limits
	wantAllowed(t, admit(10))

	a := &holdfastv1.AccountLimits{DailyBudgetNanos: 15}
	st.set(a, 2, true)
	wantRefused(t, admit(20), account.RefusedDailyBudget, -1)
	wantAllowed(t, admit(15))

	st.set(a, 3, false) // the same entry, deleted
	wantAllowed(t, admit(20))

	b := &holdfastv1.AccountLimits{DailyBudgetNanos: 25}
	st.set(b, 3, true) // another entry under the same revision
	wantRefused(t, admit(30), account.RefusedDailyBudget, -1)
	wantAllowed(t, admit(25))

	st.set(nil, 0, false) // the state again
	wantRefused(t, admit(10), account.RefusedDailyBudget, -1)

	st.set(b, 4, true) // back to Settings, after the state was read
	wantAllowed(t, admit(25))

	// A user with nothing in the state: Settings, then the state.
	wantRefused(t, e.admit("bob", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 30}), account.RefusedDailyBudget, -1)
	st.set(nil, 0, false)
	wantAllowed(t, e.admit("bob", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 30}))
}

// An actor evicted after an admit, whose limits change in Settings
// meanwhile, acts on the new ones when it is activated again.
func TestAdmitAfterEvictionSeesNewSettings(t *testing.T) {
	st := &memSettings{}
	e := newEnv(t, account.Defaults{Settings: st})
	e.setLimits("alice", &holdfastv1.AccountLimits{DailyBudgetNanos: 5}, account.DailyBudgetNanos)
	wantRefused(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 10}), account.RefusedDailyBudget, -1)

	if e.rt.ActorsInMemory() == 0 {
		t.Fatal("no actor in memory to evict")
	}
	e.clk.Advance(2 * time.Hour) // past the idle timeout (1 h): the janitor runs
	e.rt.EvictIdle()
	if n := e.rt.ActorsInMemory(); n != 0 {
		t.Fatalf("%d actors still in memory", n)
	}
	// Another node's set, seen through the settings cache.
	_, rev, _ := st.Get(account.DefaultNamespace, "alice")
	if _, err := st.Put(ctx(), account.DefaultNamespace, "alice", &holdfastv1.AccountLimits{DailyBudgetNanos: 50}, rev); err != nil {
		t.Fatal(err)
	}
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 10}))
	wantRefused(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 60}), account.RefusedDailyBudget, -1)

	// And without an eviction in between.
	_, rev, _ = st.Get(account.DefaultNamespace, "alice")
	if _, err := st.Put(ctx(), account.DefaultNamespace, "alice", &holdfastv1.AccountLimits{DailyBudgetNanos: 100}, rev); err != nil {
		t.Fatal(err)
	}
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 60}))
}

// The daily budget's day comes from the turn's clock, to the nanosecond,
// in both directions: the day's spend up to its last nanosecond, a new
// budget at midnight, and the old day's spend again when the clock is set
// back (the day key is never one day's kept for another).
func TestAdmitBudgetDayFollowsTheClock(t *testing.T) {
	e := newEnv(t, account.Defaults{DailyBudgetNanos: 100})
	midnight := time.Date(2030, 11, 28, 0, 0, 0, 0, time.UTC)
	e.settle("alice", &holdfastv1.AccountSettleRequest{CostNanos: 100}) // at noon: the whole budget
	spend := func() *holdfastv1.AccountAdmitRequest { return &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 1} }

	e.clk.Set(midnight.Add(-time.Nanosecond))
	wantRefused(t, e.admit("alice", spend()), account.RefusedDailyBudget, 1)
	e.clk.Set(midnight)
	wantAllowed(t, e.admit("alice", spend()))
	e.clk.Set(midnight.Add(-time.Nanosecond))
	wantRefused(t, e.admit("alice", spend()), account.RefusedDailyBudget, 1)
	e.clk.Set(midnight.Add(time.Nanosecond))
	r := e.admit("alice", spend())
	wantAllowed(t, r)
	if r.GetBudgetRemainingNanos() != 100 {
		t.Fatalf("budget remaining %d on the new day, want 100", r.GetBudgetRemainingNanos())
	}
}

// An admit takes from a scope's buckets only when the scope has a
// per-minute limit, each scope judged by its own: a key's buckets with
// no limits of the user's, and the user's under a key that only has a
// budget.
func TestAdmitScopesWithAndWithoutBuckets(t *testing.T) {
	e := newEnv(t, account.Defaults{})
	k := e.createKey(&holdfastv1.CreateKeyRequest{User: "alice", Limits: &holdfastv1.AccountLimits{RequestsPerMinute: 1}})
	withKey := func(k key) *holdfastv1.AccountAdmitRequest {
		return &holdfastv1.AccountAdmitRequest{KeyId: k.id, KeyHash: k.hash}
	}
	wantAllowed(t, e.admit("alice", withKey(k)))
	wantRefusedBy(t, e.admit("alice", withKey(k)), account.RequestsPerMinute)
	if _, ok := e.userDump("alice")["bucket/requests_per_minute"]; ok {
		t.Fatal("a user without limits got a bucket")
	}

	e2 := newEnv(t, account.Defaults{RequestsPerMinute: 1})
	b := e2.createKey(&holdfastv1.CreateKeyRequest{User: "bob", Limits: &holdfastv1.AccountLimits{DailyBudgetNanos: 100}})
	wantAllowed(t, e2.admit("bob", withKey(b)))
	wantRefusedBy(t, e2.admit("bob", withKey(b)), account.RequestsPerMinute)
	for key := range e2.userDump("bob") {
		if strings.HasPrefix(key, "keybucket/") {
			t.Fatalf("a key with no per-minute limit got a bucket: %s", key)
		}
	}
}
