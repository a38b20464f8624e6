package account_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/gateway/account"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc/codes"
)

// Limits whose refill rates are exact: 0.1 requests/s, 10 and 5 tokens/s.
var exact = account.Defaults{RequestsPerMinute: 6, InputTokensPerMinute: 600, OutputTokensPerMinute: 300, DailyBudgetNanos: 1000}

func TestAdmitAllOrNothing(t *testing.T) {
	e := newEnv(t, exact)
	r := e.admit("alice", &holdfastv1.AccountAdmitRequest{InputTokensEstimate: 400, OutputTokensEstimate: 100, SpendEstimateNanos: 10})
	wantAllowed(t, r)
	if r.GetInputTokensRemaining() != 200 || r.GetInputTokensLimit() != 600 || r.GetBudgetRemainingNanos() != 1000 {
		t.Fatalf("after first admit: %v", r)
	}
	if lv, _ := e.level("alice", "bucket/output_tokens_per_minute"); lv != 200 {
		t.Fatalf("output level %d, want 200", lv)
	}
	before := e.userDump("alice")

	for _, c := range []struct {
		name        string
		in, out, sp int64
		by          string
		retry       int64
	}{
		{"input short by 100 at 10/s", 300, 0, 0, account.InputTokensPerMinute, 10_000},
		{"output short by 60 at 5/s", 0, 260, 0, account.OutputTokensPerMinute, 12_000},
		{"both short: the longest wait", 300, 260, 0, account.OutputTokensPerMinute, 12_000},
		{"input above capacity", 601, 0, 0, account.InputTokensPerMinute, -1},
		{"output above capacity, input short", 300, 301, 0, account.OutputTokensPerMinute, -1},
		{"spend above the whole budget", 0, 0, 1001, account.RefusedDailyBudget, -1},
		{"never beats a finite wait", 300, 0, 1001, account.RefusedDailyBudget, -1},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.admit("alice", &holdfastv1.AccountAdmitRequest{InputTokensEstimate: c.in, OutputTokensEstimate: c.out, SpendEstimateNanos: c.sp})
			wantRefused(t, r, c.by, c.retry)
			if r.GetInputTokensRemaining() != 200 || r.GetInputTokensLimit() != 600 {
				t.Errorf("refusal reports input %d/%d, want 200/600", r.GetInputTokensRemaining(), r.GetInputTokensLimit())
			}
			if after := e.userDump("alice"); !equalMaps(before, after) {
				t.Fatalf("a refused admit changed the state:\nbefore %q\nafter  %q", before, after)
			}
		})
	}

	// Exactly what is left fits.
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{InputTokensEstimate: 200, OutputTokensEstimate: 200}))
	// Requests: 2 of 6 used; 4 more fit, the 7th waits one token at 0.1/s.
	for range 4 {
		wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}))
	}
	wantRefused(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}), account.RequestsPerMinute, 10_000)
	e.clk.Advance(10*time.Second - time.Millisecond)
	wantRefused(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}), account.RequestsPerMinute, 1)
	e.clk.Advance(time.Millisecond)
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}))
}

func TestAdmitDailyBudget(t *testing.T) {
	e := newEnv(t, exact)
	e.settle("bob", &holdfastv1.AccountSettleRequest{CostNanos: 990})
	r := e.admit("bob", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 10})
	wantAllowed(t, r)
	if r.GetBudgetRemainingNanos() != 10 {
		t.Fatalf("budget remaining %d", r.GetBudgetRemainingNanos())
	}
	// 11 > 10 left: wait for the next UTC midnight, 12 h from noon.
	wantRefused(t, e.admit("bob", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 11}), account.RefusedDailyBudget, 12*3600*1000)
	e.settle("bob", &holdfastv1.AccountSettleRequest{CostNanos: 10})
	before := e.userDump("bob")
	// Used up: even a zero estimate is refused.
	r = e.admit("bob", &holdfastv1.AccountAdmitRequest{InputTokensEstimate: 1})
	wantRefused(t, r, account.RefusedDailyBudget, 12*3600*1000)
	if r.GetBudgetRemainingNanos() != 0 {
		t.Fatalf("budget remaining %d", r.GetBudgetRemainingNanos())
	}
	if !equalMaps(before, e.userDump("bob")) {
		t.Fatal("a budget refusal took from the buckets")
	}
	e.clk.Set(t0.Truncate(24 * time.Hour).Add(24 * time.Hour))
	r = e.admit("bob", &holdfastv1.AccountAdmitRequest{SpendEstimateNanos: 1000})
	wantAllowed(t, r)
	if r.GetBudgetRemainingNanos() != 1000 {
		t.Fatalf("new day's budget remaining %d", r.GetBudgetRemainingNanos())
	}
}

func TestAdmitWithoutLimitsAndIdempotent(t *testing.T) {
	e := newEnv(t, account.Defaults{RequestsPerMinute: 3})
	r := e.admit("carol", &holdfastv1.AccountAdmitRequest{RequestId: "x", InputTokensEstimate: 1 << 40})
	wantAllowed(t, r)
	if r.GetInputTokensLimit() != 0 || r.GetBudgetRemainingNanos() != -1 {
		t.Fatalf("unlimited input/budget reported as %v", r)
	}
	// The same request again is answered from its record: one request used.
	wantAllowed(t, e.admit("carol", &holdfastv1.AccountAdmitRequest{RequestId: "x"}))
	wantAllowed(t, e.admit("carol", &holdfastv1.AccountAdmitRequest{RequestId: "y"}))
	wantAllowed(t, e.admit("carol", &holdfastv1.AccountAdmitRequest{RequestId: "w"}))
	wantRefused(t, e.admit("carol", &holdfastv1.AccountAdmitRequest{RequestId: "z"}), account.RequestsPerMinute, 20_000)
	// A refusal is not recorded: the same request succeeds once it can.
	e.clk.Advance(20 * time.Second)
	wantAllowed(t, e.admit("carol", &holdfastv1.AccountAdmitRequest{RequestId: "z"}))

	_, err := e.cl.Admit(ctx(), "carol", &holdfastv1.AccountAdmitRequest{OutputTokensEstimate: -1})
	if !errors.Is(err, account.ErrInvalidUsage) || !errors.Is(err, actor.ErrInvalidArgument) {
		t.Fatalf("negative estimate: %v", err)
	}
	if _, err := e.cl.Admit(ctx(), "", &holdfastv1.AccountAdmitRequest{}); !errors.Is(err, account.ErrInvalidUser) {
		t.Fatalf("empty user: %v", err)
	}
}

func TestKeyCheck(t *testing.T) {
	e := newEnv(t, account.Defaults{RequestsPerMinute: 60})
	k := e.createKey(&holdfastv1.CreateKeyRequest{User: "alice", AllowedProviders: []string{"anthropic", "openai"}, AllowedModels: []string{"claude-*", "gpt-4o"}})
	other := e.createKey(&holdfastv1.CreateKeyRequest{User: "alice"})
	bobs := e.createKey(&holdfastv1.CreateKeyRequest{User: "bob"})
	ok := func() *holdfastv1.AccountAdmitRequest {
		return &holdfastv1.AccountAdmitRequest{KeyId: k.id, KeyHash: k.hash, Provider: "anthropic", Model: "claude-sonnet-4-5"}
	}
	wantAllowed(t, e.admit("alice", ok()))
	before := e.userDump("alice")

	for _, c := range []struct {
		name string
		mut  func(*holdfastv1.AccountAdmitRequest)
		user string
		by   string
	}{
		{"another key's hash", func(r *holdfastv1.AccountAdmitRequest) { r.KeyHash = other.hash }, "alice", account.RefusedKeyUnknown},
		{"short hash", func(r *holdfastv1.AccountAdmitRequest) { r.KeyHash = k.hash[:31] }, "alice", account.RefusedKeyUnknown},
		{"no hash", func(r *holdfastv1.AccountAdmitRequest) { r.KeyHash = nil }, "alice", account.RefusedKeyUnknown},
		{"flipped bit", func(r *holdfastv1.AccountAdmitRequest) {
			r.KeyHash = bytes.Clone(k.hash)
			r.KeyHash[31] ^= 1
		}, "alice", account.RefusedKeyUnknown},
		{"unknown key ID", func(r *holdfastv1.AccountAdmitRequest) { r.KeyId = "0123456789abcdef" }, "alice", account.RefusedKeyUnknown},
		{"malformed key ID", func(r *holdfastv1.AccountAdmitRequest) { r.KeyId = "../key/x" }, "alice", account.RefusedKeyUnknown},
		{"bob's key at alice", func(r *holdfastv1.AccountAdmitRequest) { r.KeyId, r.KeyHash = bobs.id, bobs.hash }, "alice", account.RefusedKeyUnknown},
		{"alice's key at bob", func(r *holdfastv1.AccountAdmitRequest) {}, "bob", account.RefusedKeyUnknown},
		{"provider", func(r *holdfastv1.AccountAdmitRequest) { r.Provider = "gemini" }, "alice", account.RefusedProviderNotAllowed},
		{"model prefix needs its dash", func(r *holdfastv1.AccountAdmitRequest) { r.Model = "claude" }, "alice", account.RefusedModelNotAllowed},
		{"model exact only", func(r *holdfastv1.AccountAdmitRequest) { r.Model = "gpt-4o-mini" }, "alice", account.RefusedModelNotAllowed},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ok()
			c.mut(r)
			wantRefused(t, e.admit(c.user, r), c.by, -1)
			if c.user == "alice" && !equalMaps(before, e.userDump("alice")) {
				t.Fatal("a refused key check changed the state")
			}
		})
	}
	r := ok()
	r.Provider, r.Model = "openai", "gpt-4o"
	wantAllowed(t, e.admit("alice", r))

	if _, err := e.svc.RevokeKey(ctx(), &holdfastv1.RevokeKeyRequest{KeyId: k.id}); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, e.admit("alice", ok()), account.RefusedKeyRevoked, -1)
	// Revocation is told only to the key's holder.
	r = ok()
	r.KeyHash = other.hash
	wantRefused(t, e.admit("alice", r), account.RefusedKeyUnknown, -1)
	// Other keys are unaffected; no key at all (byok mode) is no key check.
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{KeyId: other.id, KeyHash: other.hash}))
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}))
}

func TestKeyLimitsApplyOnTop(t *testing.T) {
	e := newEnv(t, account.Defaults{RequestsPerMinute: 60, InputTokensPerMinute: 6000})
	k := e.createKey(&holdfastv1.CreateKeyRequest{User: "alice", Limits: &holdfastv1.AccountLimits{
		RequestsPerMinute: 3, InputTokensPerMinute: 600, DailyBudgetNanos: 100,
	}})
	free := e.createKey(&holdfastv1.CreateKeyRequest{User: "alice"})
	withKey := func(in int64) *holdfastv1.AccountAdmitRequest {
		return &holdfastv1.AccountAdmitRequest{KeyId: k.id, KeyHash: k.hash, InputTokensEstimate: in}
	}
	r := e.admit("alice", withKey(100))
	wantAllowed(t, r)
	// The tighter input bucket is reported: the key's.
	if r.GetInputTokensRemaining() != 500 || r.GetInputTokensLimit() != 600 {
		t.Fatalf("input %d/%d, want the key's 500/600", r.GetInputTokensRemaining(), r.GetInputTokensLimit())
	}
	if lv, _ := e.level("alice", "bucket/input_tokens_per_minute"); lv != 5900 {
		t.Fatalf("user input level %d, want 5900", lv)
	}
	wantAllowed(t, e.admit("alice", withKey(0)))
	wantAllowed(t, e.admit("alice", withKey(0)))
	before := e.userDump("alice")
	// The key's 3 requests per minute are used (1 per 20 s); the user's 57
	// left do not help, and the refusal leaves the user's buckets alone.
	wantRefused(t, e.admit("alice", withKey(0)), account.RequestsPerMinute, 20_000)
	// Above the key's capacity, although within the user's.
	wantRefused(t, e.admit("alice", withKey(601)), account.InputTokensPerMinute, -1)
	if !equalMaps(before, e.userDump("alice")) {
		t.Fatal("a refusal by the key's limits changed the user's state")
	}
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{KeyId: free.id, KeyHash: free.hash, InputTokensEstimate: 1000}))
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}))
	if lv, _ := e.level("alice", "bucket/requests_per_minute"); lv != 55 {
		t.Fatalf("user requests level %d, want 55", lv)
	}

	// The key's budget: spent by settles made with the key only.
	e.clk.Advance(time.Minute)
	e.settle("alice", &holdfastv1.AccountSettleRequest{CostNanos: 500})
	wantAllowed(t, e.admit("alice", withKey(0)))
	e.settle("alice", &holdfastv1.AccountSettleRequest{KeyId: k.id, CostNanos: 100})
	wantRefused(t, e.admit("alice", withKey(0)), account.RefusedDailyBudget, 12*3600*1000-60_000)
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{KeyId: free.id, KeyHash: free.hash}))
	if d := e.usage("alice", "").GetDay(); d.GetCostNanos() != 600 || d.GetRequests() != 2 {
		t.Fatalf("day totals %v", d)
	}
}

func TestLimitsSetGet(t *testing.T) {
	e := newEnv(t, account.Defaults{RequestsPerMinute: 60, DailyBudgetNanos: 5_000_000_000})
	got, err := e.svc.GetLimits(ctx(), &holdfastv1.GetLimitsRequest{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetOwn().GetRequestsPerMinute() != 0 || got.GetEffective().GetRequestsPerMinute() != 60 || got.GetEffective().GetDailyBudgetNanos() != 5_000_000_000 {
		t.Fatalf("limits %v", got)
	}
	set := func(l *holdfastv1.AccountLimits, fields ...string) *holdfastv1.AccountLimitsResponse {
		t.Helper()
		r, err := e.svc.SetLimits(ctx(), &holdfastv1.SetLimitsRequest{User: "alice", Limits: l, Fields: fields})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := set(&holdfastv1.AccountLimits{RequestsPerMinute: 12, InputTokensPerMinute: 1000, OutputTokensPerMinute: 7}, "requests_per_minute", "input_tokens_per_minute")
	if r.GetOwn().GetRequestsPerMinute() != 12 || r.GetOwn().GetInputTokensPerMinute() != 1000 || r.GetOwn().GetOutputTokensPerMinute() != 0 ||
		r.GetEffective().GetRequestsPerMinute() != 12 || r.GetEffective().GetOutputTokensPerMinute() != 0 || r.GetEffective().GetDailyBudgetNanos() != 5_000_000_000 {
		t.Fatalf("after set: %v", r)
	}
	// A lower limit clamps the bucket: 12 − 4 = 8 left, capacity now 6.
	for range 4 {
		wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{InputTokensEstimate: 1}))
	}
	set(&holdfastv1.AccountLimits{RequestsPerMinute: 6}, "requests_per_minute")
	if lv, _ := e.level("alice", "bucket/requests_per_minute"); lv != 6 {
		t.Fatalf("level after lowering the limit: %d, want 6", lv)
	}
	for range 6 {
		wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}))
	}
	wantRefused(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}), account.RequestsPerMinute, 10_000)
	if _, ok := e.userDump("alice")["bucket/input_tokens_per_minute"]; !ok {
		t.Fatal("no input bucket stored")
	}
	// 0 returns to the default; a limit going away drops its bucket.
	r = set(&holdfastv1.AccountLimits{}, "requests_per_minute", "daily_budget_nanos")
	if r.GetOwn().GetRequestsPerMinute() != 0 || r.GetEffective().GetRequestsPerMinute() != 60 || r.GetEffective().GetDailyBudgetNanos() != 5_000_000_000 {
		t.Fatalf("after reset: %v", r)
	}
	set(&holdfastv1.AccountLimits{}, "input_tokens_per_minute")
	if _, ok := e.userDump("alice")["bucket/input_tokens_per_minute"]; ok {
		t.Fatal("bucket of a removed limit kept")
	}
	if _, ok := e.userDump("alice")["limits"]; ok {
		t.Fatal("empty own limits kept")
	}

	for _, c := range []struct {
		req    *holdfastv1.SetLimitsRequest
		reason string
	}{
		{&holdfastv1.SetLimitsRequest{User: "alice", Limits: &holdfastv1.AccountLimits{RequestsPerMinute: -1}, Fields: []string{"requests_per_minute"}}, "INVALID_LIMIT"},
		{&holdfastv1.SetLimitsRequest{User: "alice", Limits: &holdfastv1.AccountLimits{InputTokensPerMinute: account.MaxPerMinute + 1}, Fields: []string{"input_tokens_per_minute"}}, "INVALID_LIMIT"},
		{&holdfastv1.SetLimitsRequest{User: "alice", Fields: []string{"tokens"}}, "INVALID_ARGUMENT"},
		{&holdfastv1.SetLimitsRequest{User: "alice"}, "INVALID_ARGUMENT"},
		{&holdfastv1.SetLimitsRequest{User: "", Fields: []string{"requests_per_minute"}}, "INVALID_USER"},
	} {
		_, err := e.svc.SetLimits(ctx(), c.req)
		wantStatus(t, err, codes.InvalidArgument, c.reason)
	}
}
