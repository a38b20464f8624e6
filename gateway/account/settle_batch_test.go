package account_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/gateway/account"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

func batchSettles(n int) []*holdfastv1.AccountSettleRequest {
	var out []*holdfastv1.AccountSettleRequest
	for i := range n {
		out = append(out, &holdfastv1.AccountSettleRequest{
			Provider: "anthropic", Model: "claude-sonnet-4-5",
			Usage:                &holdfastv1.TokenUsage{InputTokens: int64(100 + i), CacheCreationInputTokens: int64(i), CacheReadInputTokens: int64(3 * i), OutputTokens: int64(50 + 7*i)},
			CostNanos:            int64(1_000_003 * (i + 1)),
			InputTokensEstimate:  400,
			OutputTokensEstimate: int64(200 - i),
			Failed:               i%5 == 4,
		})
	}
	return out
}

func (e *env) settleBatch(user string, req *holdfastv1.AccountSettleBatchRequest) (*holdfastv1.AccountSettleBatchResponse, error) {
	req.Actor = &holdfastv1.ActorRef{Namespace: account.DefaultNamespace, Key: user}
	resp, err := e.rt.Call(ctx(), actor.ID{Namespace: account.DefaultNamespace, Key: user}, req)
	if err != nil {
		return nil, err
	}
	return resp.(*holdfastv1.AccountSettleBatchResponse), nil
}

// A batch leaves exactly the state its settles leave one by one, skips
// an invalid settle (reported by index), and counts once when retried.
func TestSettleBatchEqualsSettlesOneByOne(t *testing.T) {
	d := account.Defaults{InputTokensPerMinute: 60000, OutputTokensPerMinute: 30000, RequestsPerMinute: 100}
	one, batch := newEnv(t, d), newEnv(t, d)
	settles := batchSettles(12)
	bad := proto.Clone(settles[0]).(*holdfastv1.AccountSettleRequest)
	bad.Usage.OutputTokens = -1
	for _, e := range []*env{one, batch} {
		for range 12 {
			wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{InputTokensEstimate: 400, OutputTokensEstimate: 200}))
		}
	}
	for i, s := range settles {
		s := proto.Clone(s).(*holdfastv1.AccountSettleRequest)
		s.RequestId = fmt.Sprintf("s%d", i)
		one.settle("alice", s)
	}
	withBad := append(append([]*holdfastv1.AccountSettleRequest{}, settles[:5]...), append([]*holdfastv1.AccountSettleRequest{bad}, settles[5:]...)...)
	resp, err := batch.settleBatch("alice", &holdfastv1.AccountSettleBatchRequest{RequestId: "b1", Settles: withBad})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetFailed()) != 1 || resp.GetFailed()[0] != 5 || len(resp.GetErrors()) != 1 {
		t.Fatalf("failed %v errors %v, want the invalid settle at index 5", resp.GetFailed(), resp.GetErrors())
	}
	if want := one.usage("alice", "").GetDay(); !proto.Equal(resp.GetDay(), want) {
		t.Fatalf("batch day totals %v, one by one %v", resp.GetDay(), want)
	}
	// Compare the state but for the idempotency records (twelve IDs
	// against one).
	strip := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			if len(k) > 0 && k[0] >= 'a' && k[0] <= 'z' {
				out[k] = v
			}
		}
		return out
	}
	if a, b := strip(one.userDump("alice")), strip(batch.userDump("alice")); !equalMaps(a, b) || len(a) == 0 {
		t.Fatalf("state after the batch differs from the settles one by one:\nbatch %v\none   %v", b, a)
	}
	before := batch.userDump("alice")
	again, err := batch.settleBatch("alice", &holdfastv1.AccountSettleBatchRequest{RequestId: "b1", Settles: withBad})
	if err != nil || !proto.Equal(again, resp) {
		t.Fatalf("retried batch: %v %v", again, err)
	}
	if !equalMaps(before, batch.userDump("alice")) {
		t.Fatal("a retried batch changed the state")
	}
}

func TestSettleBatchLimit(t *testing.T) {
	e := newEnv(t, account.Defaults{})
	_, err := e.settleBatch("alice", &holdfastv1.AccountSettleBatchRequest{RequestId: "big", Settles: batchSettles(account.MaxSettlesPerBatch + 1)})
	var le *actor.LimitError
	if !errors.As(err, &le) || le.Limit != "max_settles_per_batch" || le.Max != account.MaxSettlesPerBatch {
		t.Fatalf("got %v, want LimitError max_settles_per_batch", err)
	}
	if d := e.userDump("alice"); len(d) != 0 {
		t.Fatalf("an over-limit batch stored %v", d)
	}
}

// With virtual keys: a batch of settles on keys (one with limits of its
// own, one unknown) leaves the state its settles leave one by one. alice
// settles one by one, bob in a batch; their states match once the key IDs
// are named alike.
func TestSettleBatchWithKeysEqualsSettlesOneByOne(t *testing.T) {
	e := newEnv(t, account.Defaults{InputTokensPerMinute: 60000, OutputTokensPerMinute: 30000, RequestsPerMinute: 100, DailyBudgetNanos: 1e12})
	lim := &holdfastv1.AccountLimits{InputTokensPerMinute: 9000, OutputTokensPerMinute: 4000, DailyBudgetNanos: 5e11}
	keys := map[string]key{}
	for _, u := range []string{"alice", "bob"} {
		k := e.createKey(&holdfastv1.CreateKeyRequest{User: u, Limits: lim})
		keys[u] = k
		for range 6 {
			wantAllowed(t, e.admit(u, &holdfastv1.AccountAdmitRequest{KeyId: k.id, KeyHash: k.hash, InputTokensEstimate: 400, OutputTokensEstimate: 200}))
		}
	}
	settlesOf := func(u string) []*holdfastv1.AccountSettleRequest {
		s := batchSettles(9)
		for i := range s {
			switch i % 3 {
			case 0:
				s[i].KeyId = keys[u].id
			case 1:
				s[i].KeyId = "0123456789abcdef" // no such key: the user is charged, no key
			}
		}
		return s
	}
	for i, s := range settlesOf("alice") {
		s.RequestId = fmt.Sprintf("s%d", i)
		e.settle("alice", s)
	}
	resp, err := e.settleBatch("bob", &holdfastv1.AccountSettleBatchRequest{RequestId: "b1", Settles: settlesOf("bob")})
	if err != nil || len(resp.GetFailed()) != 0 {
		t.Fatalf("batch: %v %v", resp, err)
	}
	if want := e.usage("alice", "").GetDay(); !proto.Equal(resp.GetDay(), want) {
		t.Fatalf("batch day totals %v, one by one %v", resp.GetDay(), want)
	}
	norm := func(u string) map[string]string {
		out := map[string]string{}
		for k, v := range e.userDump(u) {
			if len(k) == 0 || k[0] < 'a' || k[0] > 'z' {
				continue // idempotency records and the alarm
			}
			if strings.HasPrefix(k, "key/") || strings.HasPrefix(k, "keyhash/") {
				continue // the key records: each user's own, no settle writes them
			}
			out[strings.ReplaceAll(k, keys[u].id, "KEY")] = v
		}
		return out
	}
	a, b := norm("alice"), norm("bob")
	keyed := 0
	for k := range a {
		if strings.Contains(k, "KEY") {
			keyed++
		}
	}
	if !equalMaps(a, b) || keyed == 0 {
		t.Fatalf("state after the batch differs from the settles one by one (or has no key state):\nbatch %v\none   %v", b, a)
	}
	// And the figures are the settles' own: the key's spend is the cost of
	// the settles on it, the user's the cost of them all.
	var keyCost, allCost int64
	for i, s := range settlesOf("bob") {
		allCost += s.GetCostNanos()
		if i%3 == 0 {
			keyCost += s.GetCostNanos()
		}
	}
	for name, want := range map[string]int64{"keyspend/KEY/": keyCost, "spend/": allCost} {
		found := false
		for k, v := range b {
			if strings.HasPrefix(k, name) {
				found = true
				if got := int64(binary.BigEndian.Uint64([]byte(v))); got != want {
					t.Errorf("%s: %d, want %d", k, got, want)
				}
			}
		}
		if !found {
			t.Errorf("no %s counter", name)
		}
	}
}
