package account_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/gateway/account"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// BenchmarkAdmit is the gateway's admit turn alone, as the gateway runs
// it (actor.Runtime.CallEarly, no request ID, the gate waited on), on a
// memory namespace with the real clock: the CPU and allocations an admit
// adds to a call's path to the first byte. no_limits reads the user's
// limits and takes nothing; limits takes from three buckets and checks
// the daily budget (none reached). With a user's own limits stored in the
// actor's state (own_limits) or in Settings (settings), the admit reads
// them instead of the defaults.
func BenchmarkAdmit(b *testing.B) {
	every := account.Defaults{
		RequestsPerMinute: 1_000_000_000, InputTokensPerMinute: account.MaxPerMinute,
		OutputTokensPerMinute: account.MaxPerMinute, DailyBudgetNanos: 1_000_000 * 1_000_000_000,
	}
	own := &holdfastv1.AccountLimits{RequestsPerMinute: 1_000_000_000, InputTokensPerMinute: account.MaxPerMinute,
		OutputTokensPerMinute: account.MaxPerMinute, DailyBudgetNanos: 1_000_000 * 1_000_000_000}
	b.Run("no_limits", func(b *testing.B) { benchAdmit(b, account.Defaults{}, nil) })
	b.Run("limits", func(b *testing.B) { benchAdmit(b, every, nil) })
	b.Run("own_limits", func(b *testing.B) { benchAdmit(b, account.Defaults{}, own) })
	b.Run("settings", func(b *testing.B) {
		benchAdmit(b, account.Defaults{Settings: &memSettings{}}, own)
	})
}

func benchAdmit(b *testing.B, d account.Defaults, own *holdfastv1.AccountLimits) {
	cfg := actor.DefaultConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Clock = clock.Real{}
	cfg.Partitions = 16
	cfg.IdleTimeout = time.Hour
	rt, err := actor.New(cfg, actor.NewMemStore(), []actor.NamespaceConfig{
		{Name: account.DefaultNamespace, Durability: actor.Memory, New: account.New(d)},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Shutdown(context.Background()) })
	ctx := context.Background()
	if own != nil {
		svc := &account.Service{Caller: rt}
		if _, err := svc.SetLimits(ctx, &holdfastv1.SetLimitsRequest{User: "alice", Limits: own,
			Fields: []string{account.RequestsPerMinute, account.InputTokensPerMinute, account.OutputTokensPerMinute, account.DailyBudgetNanos}}); err != nil {
			b.Fatal(err)
		}
	}
	id := actor.ID{Namespace: account.DefaultNamespace, Key: "alice"}
	b.ReportAllocs()
	for b.Loop() {
		req := &holdfastv1.AccountAdmitRequest{
			Actor:    &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key},
			Provider: "anthropic", Model: "claude-sonnet-4-5",
			InputTokensEstimate: 100, OutputTokensEstimate: 1000, SpendEstimateNanos: 1000,
		}
		resp, gate, err := rt.CallEarly(ctx, id, req)
		if err != nil {
			b.Fatal(err)
		}
		if err := gate.Wait(ctx); err != nil {
			b.Fatal(err)
		}
		if !resp.(*holdfastv1.AccountAdmitResponse).GetAllowed() {
			b.Fatalf("refused: %v", resp)
		}
	}
}
