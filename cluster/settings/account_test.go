package settings

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/gateway/account"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/nats-io/nats.go/jetstream"
)

// A gateway user's limits set on one node reach another node's cache
// through the bucket, and hold on that node's fresh account state (an
// owner loss under on_owner_loss reset); the ratelimit kind's settings in
// the same bucket are not confused with them; a deposed owner's stale
// write is fenced.
func TestAccountLimitsSurviveOwnerLoss(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir())
	jsA, _ := connect(t, srv, "a")
	jsB, _ := connect(t, srv, "b")
	open := func(js jetstream.JetStream) *Cache[*holdfastv1.AccountLimits] {
		c, err := Open(ctxT(t, 20*time.Second), js, Account, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	cacheA, cacheB := open(jsA), open(jsB)
	rlA := openCache(t, jsA, nil)
	runtime := func(st account.Settings) *account.Service {
		cfg := actor.DefaultConfig()
		cfg.Clock = clock.NewFake(time.Date(2030, 11, 27, 12, 0, 0, 0, time.UTC))
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		cfg.Partitions = 8
		rt, err := actor.New(cfg, actor.NewMemStore(), []actor.NamespaceConfig{
			{Name: account.DefaultNamespace, Durability: actor.Local, New: account.New(account.Defaults{RequestsPerMinute: 100, Settings: st})},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Shutdown(context.Background()) })
		return &account.Service{Caller: rt, Lister: rt}
	}
	ctx := ctxT(t, 20*time.Second)
	svcA := runtime(cacheA)
	if _, err := svcA.SetLimits(ctx, &holdfastv1.SetLimitsRequest{User: "alice", Limits: &holdfastv1.AccountLimits{RequestsPerMinute: 2, DailyBudgetNanos: 5}, Fields: []string{"requests_per_minute", "daily_budget_nanos"}}); err != nil {
		t.Fatal(err)
	}
	_, revA, _ := cacheA.Get(account.DefaultNamespace, "alice")
	waitFor(t, 10*time.Second, "node B's cache", func() bool { _, rev, _ := cacheB.Get(account.DefaultNamespace, "alice"); return rev == revA })
	if _, rev, found := rlA.Get(account.DefaultNamespace, "alice"); found || rev != 0 {
		t.Fatalf("account limits seen as ratelimit settings: rev %d found %v", rev, found)
	}

	svcB := runtime(cacheB) // a fresh state: levels lost, limits kept
	got, err := svcB.GetLimits(ctx, &holdfastv1.GetLimitsRequest{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetOwn().GetRequestsPerMinute() != 2 || got.GetEffective().GetDailyBudgetNanos() != 5 {
		t.Fatalf("node B: %v", got)
	}
	if _, err := svcB.SetLimits(ctx, &holdfastv1.SetLimitsRequest{User: "alice", Limits: &holdfastv1.AccountLimits{RequestsPerMinute: 3}, Fields: []string{"requests_per_minute"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cacheA.Put(ctx, account.DefaultNamespace, "alice", &holdfastv1.AccountLimits{RequestsPerMinute: 1}, revA); !errors.Is(err, ratelimit.ErrSettingsConflict) {
		t.Fatalf("deposed owner's write with its stale revision: %v", err)
	}
	if l, _, _ := cacheA.Get(account.DefaultNamespace, "alice"); l.GetRequestsPerMinute() != 3 || l.GetDailyBudgetNanos() != 5 {
		t.Fatalf("node A after the conflict: %v", l)
	}
}
