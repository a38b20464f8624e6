package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/actor/kv"
	"github.com/holdfast/holdfast/gateway/account"
	"github.com/holdfast/holdfast/gateway/vkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// accountNode is a real runtime with the account kind and its index,
// serving account.Service over gRPC on a loopback port.
type accountNode struct {
	rt  *actor.Runtime
	svc *account.Service
	cl  *account.Client

	mu         sync.Mutex
	requestIDs []string
}

func startAccountNode(t *testing.T) (*accountNode, string) {
	t.Helper()
	cfg := actor.DefaultConfig()
	cfg.Clock = clock.NewFake(fixedNow)
	cfg.CommitDefer = 0 // settles defer their commit to a timer of the fake clock, which never moves here
	cfg.Partitions = 16
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	rt, err := actor.New(cfg, actor.NewMemStore(), []actor.NamespaceConfig{
		{Name: "account", Durability: actor.Local, New: account.New(account.Defaults{
			RequestsPerMinute: 100, InputTokensPerMinute: 100_000, DailyBudgetNanos: 5_000_000_000,
		})},
		{Name: "account_index", Durability: actor.Local, New: kv.New()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Shutdown(context.Background()) })
	n := &accountNode{rt: rt, svc: account.NewService(rt, rt), cl: &account.Client{Caller: rt}}
	n.svc.Logger = cfg.Logger
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if r, ok := req.(interface{ GetRequestId() string }); ok {
			n.mu.Lock()
			n.requestIDs = append(n.requestIDs, r.GetRequestId())
			n.mu.Unlock()
		}
		return h(ctx, req)
	}))
	holdfastv1.RegisterAccountServiceServer(srv, n.svc)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return n, lis.Addr().String()
}

// fixedKey makes the node's next key deterministic: key ID and secret are
// the byte b repeated.
func (n *accountNode) fixedKey(t *testing.T, user string, b byte) vkey.Key {
	t.Helper()
	n.svc.Rand = bytes.NewReader(bytes.Repeat([]byte{b}, 40))
	k, err := vkey.New(user, bytes.NewReader(bytes.Repeat([]byte{b}, 40)))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeysCreateListRevoke(t *testing.T) {
	n, addr := startAccountNode(t)
	run := func(args ...string) result { return holdctl(t, nil, append([]string{"--addr", addr}, args...)...) }

	alice := n.fixedKey(t, "alice", 1)
	r := run("keys", "create", "--user", "alice", "--name", "laptop", "--allow-model", "claude-*", "--allow-model", "gpt-4o", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"key":"`+alice.Token+`","user":"alice","key_id":"0101010101010101"}`)

	bob := n.fixedKey(t, "bob", 2)
	r = run("keys", "create", "--user", "bob", "--allow-provider", "anthropic", "--requests-per-minute", "5", "--daily-budget-usd", "0.25")
	wantCode(t, r, 0)
	for _, s := range []string{"key_id  0202020202020202", "key     " + bob.Token, "shown once"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("create text lacks %q:\n%s", s, r.stdout)
		}
	}
	n.svc.Rand = nil

	r = run("keys", "list", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"keys":[
		{"key_id":"0101010101010101","user":"alice","name":"laptop","created":"2030-01-02T03:04:05Z","revoked":false,"revoked_at":null,
		 "allowed_providers":[],"allowed_models":["claude-*","gpt-4o"],"limits":null},
		{"key_id":"0202020202020202","user":"bob","name":"","created":"2030-01-02T03:04:05Z","revoked":false,"revoked_at":null,
		 "allowed_providers":["anthropic"],"allowed_models":[],
		 "limits":{"requests_per_minute":5,"input_tokens_per_minute":0,"output_tokens_per_minute":0,"daily_budget_usd":0.25}}]}`)
	for _, tok := range []string{alice.Token, bob.Token} {
		if strings.Contains(r.stdout, tok) {
			t.Fatal("keys list shows a key")
		}
	}

	r = run("keys", "list", "--user", "alice")
	wantCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "KEY_ID USER NAME CREATED REVOKED" ||
		strings.Join(strings.Fields(lines[1]), " ") != "0101010101010101 alice laptop 2030-01-02T03:04:05Z no" {
		t.Fatalf("keys list text:\n%s", r.stdout)
	}

	r = run("keys", "revoke", "0101010101010101", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"key_id":"0101010101010101","user":"alice","revoked":true,"revoked_at":"2030-01-02T03:04:05Z"}`)
	r = run("keys", "list", "--user", "alice")
	if !strings.HasSuffix(strings.TrimSpace(r.stdout), "2030-01-02T03:04:05Z  2030-01-02T03:04:05Z") {
		t.Fatalf("revoked key listed as:\n%s", r.stdout)
	}
	// Revoked everywhere at once: the next admit with it is refused.
	h, _ := vkey.Hash(alice.Token)
	resp, err := n.cl.Admit(context.Background(), "alice", &holdfastv1.AccountAdmitRequest{KeyId: alice.ID, KeyHash: h[:]})
	if err != nil || resp.GetAllowed() || resp.GetRefusedBy() != "key_revoked" {
		t.Fatalf("admit after revoke: %v, %v", resp, err)
	}
	r = run("keys", "revoke", "0202020202020202")
	wantCode(t, r, 0)
	if r.stdout != "revoked key 0202020202020202 of user bob at 2030-01-02T03:04:05Z\n" {
		t.Fatalf("revoke text %q", r.stdout)
	}

	r = run("keys", "revoke", "ffffffffffffffff")
	wantCode(t, r, exitNotFound)
	if !strings.Contains(r.stderr, "not found") {
		t.Errorf("stderr %q", r.stderr)
	}
	for _, args := range [][]string{
		{"keys", "revoke", alice.Token}, {"keys", "revoke", "0101"}, {"keys", "revoke"},
		{"keys", "create"}, {"keys", "create", "--user", ""}, {"keys", "create", "--user", "a", "extra"},
		{"keys", "create", "--user", "a", "--requests-per-minute", "-1"}, {"keys", "create", "--user", "a", "--allow-model", ""},
		{"keys", "list", "--user", strings.Repeat("u", 129)},
	} {
		r := run(args...)
		wantCode(t, r, exitUsage)
		if strings.Contains(r.stderr, alice.Token) {
			t.Fatal("a usage error echoes the key")
		}
	}
	// The server's own checks: exit 1 with the reason.
	r = run("keys", "create", "--user", "a", "--input-tokens-per-minute", "1000000000001")
	wantCode(t, r, exitFail)
	if !strings.Contains(r.stderr, "INVALID_LIMIT") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestLimitsCommands(t *testing.T) {
	_, addr := startAccountNode(t)
	run := func(args ...string) result { return holdctl(t, nil, append([]string{"--addr", addr}, args...)...) }

	r := run("limits", "set", "alice", "requests_per_minute=60", "daily_budget_usd=1.5", "output_tokens_per_minute=700", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"user":"alice",
		"own":{"requests_per_minute":60,"input_tokens_per_minute":0,"output_tokens_per_minute":700,"daily_budget_usd":1.5},
		"effective":{"requests_per_minute":60,"input_tokens_per_minute":100000,"output_tokens_per_minute":700,"daily_budget_usd":1.5}}`)

	r = run("limits", "set", "alice", "daily_budget_usd=0")
	wantCode(t, r, 0)
	want := [][]string{
		{"LIMIT", "OWN", "EFFECTIVE"},
		{"requests_per_minute", "60", "60"},
		{"input_tokens_per_minute", "default", "100000"},
		{"output_tokens_per_minute", "700", "700"},
		{"daily_budget_usd", "default", "$5.00"},
	}
	checkTable := func(out string) {
		t.Helper()
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != len(want) {
			t.Fatalf("limits text:\n%s", out)
		}
		for i, l := range lines {
			if strings.Join(strings.Fields(l), " ") != strings.Join(want[i], " ") {
				t.Fatalf("limits line %d %q, want %q", i, l, want[i])
			}
		}
	}
	checkTable(r.stdout)
	r = run("limits", "get", "alice")
	wantCode(t, r, 0)
	checkTable(r.stdout)
	r = run("limits", "get", "nobody", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"user":"nobody",
		"own":{"requests_per_minute":0,"input_tokens_per_minute":0,"output_tokens_per_minute":0,"daily_budget_usd":0},
		"effective":{"requests_per_minute":100,"input_tokens_per_minute":100000,"output_tokens_per_minute":0,"daily_budget_usd":5}}`)

	for _, args := range [][]string{
		{"limits", "set", "alice"},
		{"limits", "set", "alice", "tokens=5"},
		{"limits", "set", "alice", "requests_per_minute"},
		{"limits", "set", "alice", "requests_per_minute=-1"},
		{"limits", "set", "alice", "requests_per_minute=1.5"},
		{"limits", "set", "alice", "requests_per_minute=1", "requests_per_minute=2"},
		{"limits", "set", "alice", "daily_budget_usd=0.0000000001"},
		{"limits", "set", "", "requests_per_minute=1"},
		{"limits", "get"},
		{"limits", "get", "a", "b"},
	} {
		wantCode(t, run(args...), exitUsage)
	}
	r = run("limits", "set", "alice", "requests_per_minute=1000000000001")
	wantCode(t, r, exitFail)
	if !strings.Contains(r.stderr, "INVALID_LIMIT") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestUsageCommand(t *testing.T) {
	n, addr := startAccountNode(t)
	run := func(args ...string) result { return holdctl(t, nil, append([]string{"--addr", addr}, args...)...) }
	for _, s := range []*holdfastv1.AccountSettleRequest{
		{Usage: &holdfastv1.TokenUsage{InputTokens: 10, OutputTokens: 20, CacheCreationInputTokens: 30, CacheReadInputTokens: 40}, CostNanos: 1_000_000},
		{Usage: &holdfastv1.TokenUsage{InputTokens: 1, OutputTokens: 2, CacheCreationInputTokens: 3, CacheReadInputTokens: 4}, CostNanos: 234_567},
		{Failed: true},
	} {
		if _, err := n.cl.Settle(context.Background(), "alice", s); err != nil {
			t.Fatal(err)
		}
	}

	r := run("usage", "alice", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"requests":2,"input_tokens":11,"output_tokens":22,"cache_creation_input_tokens":33,
		"cache_read_input_tokens":44,"cost_usd":0.001234567}`)
	r = run("usage", "alice", "--day", "2030-01-02", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"requests":2,"input_tokens":11,"output_tokens":22,"cache_creation_input_tokens":33,
		"cache_read_input_tokens":44,"cost_usd":0.001234567}`)
	r = run("usage", "alice", "--day", "2030-01-01", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"requests":0,"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,
		"cache_read_input_tokens":0,"cost_usd":0}`)

	r = run("usage", "alice")
	wantCode(t, r, 0)
	for _, s := range []string{"usage of alice on 2030-01-02 (UTC)", "errors", "$0.001234567", "HOUR", "03:00"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("usage text lacks %q:\n%s", s, r.stdout)
		}
	}
	hourRow := strings.Fields(strings.Split(strings.TrimSpace(r.stdout), "\n")[len(strings.Split(strings.TrimSpace(r.stdout), "\n"))-1])
	if strings.Join(hourRow, " ") != "03:00 2 1 11 22 33 44 $0.001234567" {
		t.Errorf("hour row %q", hourRow)
	}
	for _, args := range [][]string{
		{"usage"}, {"usage", "alice", "--day", "2030-1-2"}, {"usage", "alice", "--day", "yesterday"}, {"usage", ""},
	} {
		wantCode(t, run(args...), exitUsage)
	}
}

func TestAccountMutationsSendRequestIDs(t *testing.T) {
	n, addr := startAccountNode(t)
	for _, args := range [][]string{
		{"keys", "create", "--user", "alice"},
		{"limits", "set", "alice", "requests_per_minute=5"},
	} {
		wantCode(t, holdctl(t, nil, append([]string{"--addr", addr}, args...)...), 0)
	}
	keys, err := n.svc.ListKeys(context.Background(), &holdfastv1.ListKeysRequest{User: "alice"})
	if err != nil || len(keys.GetKeys()) != 1 {
		t.Fatal(keys, err)
	}
	wantCode(t, holdctl(t, nil, "--addr", addr, "keys", "revoke", keys.GetKeys()[0].GetKeyId()), 0)
	wantCode(t, holdctl(t, nil, "--addr", addr, "keys", "revoke", keys.GetKeys()[0].GetKeyId(), "--request-id", "mine"), 0)
	n.mu.Lock()
	ids := append([]string(nil), n.requestIDs...)
	n.mu.Unlock()
	if len(ids) != 4 || ids[3] != "mine" {
		t.Fatalf("request ids %q", ids)
	}
	seen := map[string]bool{}
	for _, id := range ids[:3] {
		if !hexID.MatchString(id) || seen[id] {
			t.Fatalf("request ids %q", ids)
		}
		seen[id] = true
	}
}

func TestAccountHelpAndUSDNumber(t *testing.T) {
	for _, args := range [][]string{{"keys", "-h"}, {"limits", "help"}, {"help", "keys", "create"}, {"help", "usage"}, {"usage", "-h"}} {
		r := holdctl(t, nil, args...)
		wantCode(t, r, 0)
		if !strings.HasPrefix(r.stdout, "Usage: holdctl") {
			t.Errorf("%v: %q", args, r.stdout)
		}
	}
	if r := holdctl(t, nil, "help", "keys", "create"); !strings.Contains(r.stdout, "--allow-model") || !strings.Contains(r.stdout, "shown once") {
		t.Errorf("keys create help:\n%s", r.stdout)
	}
	for nanos, want := range map[int64]string{
		0: "0", 1: "0.000000001", 1_234_567: "0.001234567", 1_500_000_000: "1.5", 12_000_000_000: "12",
		10_000_000_000: "10", 100_250_000_000: "100.25", 9_223_372_036_854_775_807: "9223372036.854775807",
	} {
		if got := string(usdNumber(nanos)); got != want {
			t.Errorf("usdNumber(%d) = %s, want %s", nanos, got, want)
		}
	}
}
