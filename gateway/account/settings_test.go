package account_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/api"
	"github.com/holdfast/holdfast/gateway/account"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// memSettings is account.Settings in memory, with revisions and a
// switchable failure, as the replicated settings bucket behaves.
type memSettings struct {
	mu   sync.Mutex
	m    map[string]memEntry
	rev  uint64
	fail error // returned by Put while set
	puts int
}

type memEntry struct {
	l   *holdfastv1.AccountLimits
	rev uint64
}

func (s *memSettings) Get(ns, user string) (*holdfastv1.AccountLimits, uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[ns+"/"+user]
	return e.l, e.rev, ok
}

func (s *memSettings) Put(_ context.Context, ns, user string, l *holdfastv1.AccountLimits, rev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	if s.fail != nil {
		return 0, s.fail
	}
	if s.m == nil {
		s.m = map[string]memEntry{}
	}
	if cur := s.m[ns+"/"+user]; cur.rev != rev {
		return 0, fmt.Errorf("at %d, stored %d: %w", rev, cur.rev, ratelimit.ErrSettingsConflict)
	}
	s.rev++
	s.m[ns+"/"+user] = memEntry{l: proto.CloneOf(l), rev: s.rev}
	return s.rev, nil
}

// With Settings, a user's own limits live there, not in the actor's
// state: a fresh state (on_owner_loss reset, or a new owner) keeps them,
// while bucket levels start over. A failed write fails the set and
// changes nothing.
func TestLimitsInSettingsSurviveAFreshState(t *testing.T) {
	st := &memSettings{}
	e := newEnv(t, account.Defaults{RequestsPerMinute: 60, Settings: st})
	set := func(l *holdfastv1.AccountLimits, fields ...string) error {
		_, err := e.svc.SetLimits(ctx(), &holdfastv1.SetLimitsRequest{User: "alice", Limits: l, Fields: fields})
		return err
	}
	if err := set(&holdfastv1.AccountLimits{RequestsPerMinute: 2, DailyBudgetNanos: 7}, "requests_per_minute", "daily_budget_nanos"); err != nil {
		t.Fatal(err)
	}
	if l, rev, ok := st.Get(account.DefaultNamespace, "alice"); !ok || rev == 0 || l.GetRequestsPerMinute() != 2 || l.GetDailyBudgetNanos() != 7 {
		t.Fatalf("settings hold %v rev %d found %v", l, rev, ok)
	}
	if _, ok := e.userDump("alice")["limits"]; ok {
		t.Fatal("own limits written to the actor's state as well")
	}
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}))
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}))
	wantRefused(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}), account.RequestsPerMinute, 30_001)

	// A write that fails: the set fails, the limits and the bucket stay.
	st.fail = errors.New("no quorum")
	err := set(&holdfastv1.AccountLimits{RequestsPerMinute: 100}, "requests_per_minute")
	wantStatus(t, err, codes.Unavailable, api.ReasonStorage) // typed: a storage failure, retry
	st.fail = nil
	if l, _, _ := st.Get(account.DefaultNamespace, "alice"); l.GetRequestsPerMinute() != 2 {
		t.Fatalf("limits after a failed set: %v", l)
	}
	wantRefused(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}), account.RequestsPerMinute, 30_001)

	// A fresh state, as after an owner loss under reset: levels start
	// full, the limits hold.
	e.stop()
	e.start(actor.NewMemStore())
	got, err := e.svc.GetLimits(ctx(), &holdfastv1.GetLimitsRequest{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetOwn().GetRequestsPerMinute() != 2 || got.GetEffective().GetDailyBudgetNanos() != 7 {
		t.Fatalf("limits on a fresh state: %v", got)
	}
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}))
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}))
	wantRefused(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}), account.RequestsPerMinute, 30_001)
}

// A single node's data joining a cluster: limits in the actor's state are
// honoured until the first set through Settings, which moves them there
// (at revision 0, so that a first writer elsewhere is not overwritten)
// and deletes the state's copy.
func TestLimitsMoveFromStateToSettings(t *testing.T) {
	dir := t.TempDir()
	e := newEnvAt(t, account.Defaults{RequestsPerMinute: 60}, t0)
	e.start(openBolt(t, dir))
	setRPM := func(n int64) error {
		_, err := e.svc.SetLimits(ctx(), &holdfastv1.SetLimitsRequest{User: "alice", Limits: &holdfastv1.AccountLimits{RequestsPerMinute: n, InputTokensPerMinute: 500}, Fields: []string{"requests_per_minute", "input_tokens_per_minute"}})
		return err
	}
	if err := setRPM(3); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.userDump("alice")["limits"]; !ok {
		t.Fatal("a single node keeps own limits in the state")
	}

	// The same disk, now with Settings that hold nothing for alice.
	st := &memSettings{}
	e.d.Settings = st
	e.stop()
	e.start(openBolt(t, dir))
	got, err := e.svc.GetLimits(ctx(), &holdfastv1.GetLimitsRequest{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetOwn().GetRequestsPerMinute() != 3 || got.GetOwn().GetInputTokensPerMinute() != 500 {
		t.Fatalf("state limits not honoured: %v", got)
	}
	// Once written elsewhere, Settings win over the state's copy.
	if _, err := st.Put(ctx(), account.DefaultNamespace, "alice", &holdfastv1.AccountLimits{RequestsPerMinute: 9}, 0); err != nil {
		t.Fatal(err)
	}
	got, err = e.svc.GetLimits(ctx(), &holdfastv1.GetLimitsRequest{User: "alice"})
	if err != nil || got.GetOwn().GetRequestsPerMinute() != 9 {
		t.Fatalf("settings written elsewhere not preferred: %v %v", got, err)
	}
	if err := setRPM(4); err != nil {
		t.Fatal(err)
	}
	l, rev, _ := st.Get(account.DefaultNamespace, "alice")
	if rev != 2 || l.GetRequestsPerMinute() != 4 || l.GetInputTokensPerMinute() != 500 {
		t.Fatalf("settings after the set: %v rev %d", l, rev)
	}
	if _, ok := e.userDump("alice")["limits"]; ok {
		t.Fatal("the state's copy kept once the limits live in Settings")
	}
}

// A set racing a set elsewhere (the cache behind): a conflict fails the
// turn, which writes nothing, and the caller's retry succeeds.
func TestLimitsSetConflict(t *testing.T) {
	st := &stale{memSettings: &memSettings{}}
	e := newEnv(t, account.Defaults{Settings: st})
	if _, err := st.memSettings.Put(ctx(), account.DefaultNamespace, "alice", &holdfastv1.AccountLimits{RequestsPerMinute: 9}, 0); err != nil {
		t.Fatal(err)
	}
	st.lagging = true
	_, err := e.svc.SetLimits(ctx(), &holdfastv1.SetLimitsRequest{User: "alice", Limits: &holdfastv1.AccountLimits{RequestsPerMinute: 5}, Fields: []string{"requests_per_minute"}})
	wantStatus(t, err, codes.Unavailable, api.ReasonStorage) // the conflict: nothing written, retry
	if l, _, _ := st.memSettings.Get(account.DefaultNamespace, "alice"); l.GetRequestsPerMinute() != 9 {
		t.Fatalf("a conflicting set overwrote: %v", l)
	}
	st.lagging = false
	if _, err := e.svc.SetLimits(ctx(), &holdfastv1.SetLimitsRequest{User: "alice", Limits: &holdfastv1.AccountLimits{RequestsPerMinute: 5}, Fields: []string{"requests_per_minute"}}); err != nil {
		t.Fatal(err)
	}
	if l, _, _ := st.memSettings.Get(account.DefaultNamespace, "alice"); l.GetRequestsPerMinute() != 5 {
		t.Fatalf("retried set not applied: %v", l)
	}
}

// stale is a cache that has not yet seen the latest write while lagging.
type stale struct {
	*memSettings
	lagging bool
}

func (s *stale) Get(ns, user string) (*holdfastv1.AccountLimits, uint64, bool) {
	if s.lagging {
		return nil, 0, false
	}
	return s.memSettings.Get(ns, user)
}
