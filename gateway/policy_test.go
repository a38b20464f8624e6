package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/gateway/pricing"
	"github.com/holdfast/holdfast/gateway/vkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/fakeupstream"
	"github.com/openai/openai-go/v3"
)

func TestMalformedVirtualKeyRefusedWithoutAnyActor(t *testing.T) {
	e := newEnv(t, keysMode)
	good := newVKey(t, "alice")
	flipped := []byte(good)
	if flipped[10] == 'a' {
		flipped[10] = 'b'
	} else {
		flipped[10] = 'a'
	}
	for _, key := range []string{"", "not-a-key", "hf_1", string(flipped), good[:len(good)-1], strings.ToUpper(good)} {
		_, err := e.anthropic(key).Messages.New(t.Context(), anthropicParams("hi"))
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Type() != "authentication_error" {
			t.Fatalf("key %q: %T %v", key, err, err)
		}
		_, err = e.openai(key).Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "gpt-4o",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
		var oErr *openai.Error
		if !errors.As(err, &oErr) || oErr.StatusCode != 401 {
			t.Fatalf("openai key %q: %v", key, err)
		}
		resp := e.post("/v1beta/models/gemini-2.5-flash:generateContent?key="+key, []byte(`{}`), nil)
		if b := readAll(t, resp.Body); resp.StatusCode != 401 || !strings.Contains(string(b), "UNAUTHENTICATED") {
			t.Fatalf("gemini key %q: %d %s", key, resp.StatusCode, b)
		}
	}
	if n := e.caller.count(); n != 0 {
		t.Fatalf("%d actor calls for malformed keys", n)
	}
	if e.fake.Count() != 0 {
		t.Fatal("a refused request went upstream")
	}
}

func TestAdmitCarriesKeyAndEstimates(t *testing.T) {
	e := newEnv(t, keysMode)
	key := newVKey(t, "alice")
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":300,"messages":[{"role":"user","content":"count me"}]}`)
	resp := e.post("/v1/messages", body, http.Header{"X-Api-Key": {key}})
	readAll(t, resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	admits := e.caller.admitList()
	if len(admits) != 1 {
		t.Fatalf("%d admits", len(admits))
	}
	a := admits[0]
	parsed, _ := vkey.Parse(key)
	hash, _ := vkey.Hash(key)
	in := int64((len(body) + 3) / 4)
	spend, _ := pricing.DefaultTable().Cost("claude-sonnet-4-5", pricing.Usage{InputTokens: in, OutputTokens: 300})
	if a.GetKeyId() != parsed.ID || string(a.GetKeyHash()) != string(hash[:]) || a.GetProvider() != "anthropic" ||
		a.GetModel() != "claude-sonnet-4-5" || a.GetInputTokensEstimate() != in || a.GetOutputTokensEstimate() != 300 ||
		a.GetSpendEstimateNanos() != spend || a.GetRequestId() != "" || resp.Header.Get(HeaderRequestID) == "" {
		// The admit is never resent, so it carries no request ID (a record
		// would cost two keys per call); the call itself has one.
		t.Fatalf("admit %v", a)
	}
	e.quiesce()
	if id := e.caller.ids[0]; id.Namespace != "account" || id.Key != "alice" || a.GetActor().GetKey() != "alice" {
		t.Fatalf("actor %v", id)
	}
	// The virtual key never goes upstream.
	if h := e.fake.Last().Header; h.Get("X-Api-Key") != anthropicKey {
		t.Fatal("upstream did not get the provider key")
	}
}

func TestRefusedAdmitAnswersInEachEnvelope(t *testing.T) {
	e := newEnv(t, keysMode)
	key := newVKey(t, "bob")
	e.caller.decide = func(n int, r *holdfastv1.AccountAdmitRequest) (*holdfastv1.AccountAdmitResponse, error) {
		return &holdfastv1.AccountAdmitResponse{RefusedBy: "requests_per_minute", RetryAfterMs: 1500}, nil
	}
	_, err := e.anthropic(key).Messages.New(t.Context(), anthropicParams("hi"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Type() != "rate_limit_error" {
		t.Fatalf("%T %v", err, err)
	}
	h := apiErr.Response.Header
	if h.Get("Retry-After") != "2" || h.Get("Retry-After-Ms") != "1500" || apiErr.RequestID != h.Get(HeaderRequestID) {
		t.Fatalf("headers %v", h)
	}
	_, err = e.openai(key).Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
	var oErr *openai.Error
	if !errors.As(err, &oErr) || oErr.StatusCode != 429 || oErr.Code != "rate_limit_exceeded" {
		t.Fatalf("%v", err)
	}
	resp := e.post("/v1beta/models/gemini-2.5-flash:generateContent", []byte(`{}`), http.Header{"X-Goog-Api-Key": {key}})
	if b := readAll(t, resp.Body); resp.StatusCode != 429 || !strings.Contains(string(b), "RESOURCE_EXHAUSTED") || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("gemini %d %s", resp.StatusCode, b)
	}
	if e.fake.Count() != 0 {
		t.Fatal("refused calls went upstream")
	}

	// The SDK's own retry honours retry-after-ms and then succeeds.
	e.caller.decide = func(n int, r *holdfastv1.AccountAdmitRequest) (*holdfastv1.AccountAdmitResponse, error) {
		if n == 3 {
			return &holdfastv1.AccountAdmitResponse{RefusedBy: "input_tokens_per_minute", RetryAfterMs: 1}, nil
		}
		return &holdfastv1.AccountAdmitResponse{Allowed: true}, nil
	}
	if _, err := e.anthropic(key, aoption.WithMaxRetries(1)).Messages.New(t.Context(), anthropicParams("hi")); err != nil {
		t.Fatal(err)
	}
	if n := len(e.caller.admitList()); n != 5 {
		t.Fatalf("%d admits", n)
	}

	// Budget: BudgetExhausted, and the SDK must not retry.
	e.caller.decide = func(n int, r *holdfastv1.AccountAdmitRequest) (*holdfastv1.AccountAdmitResponse, error) {
		return &holdfastv1.AccountAdmitResponse{RefusedBy: "daily_budget", RetryAfterMs: 3_600_000}, nil
	}
	_, err = e.openai(key).Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
	if !errors.As(err, &oErr) || oErr.StatusCode != 429 || oErr.Code != "insufficient_quota" || oErr.Response.Header.Get("X-Should-Retry") != "false" {
		t.Fatalf("%v", err)
	}
	// Revoked key: 401.
	e.caller.decide = func(n int, r *holdfastv1.AccountAdmitRequest) (*holdfastv1.AccountAdmitResponse, error) {
		return &holdfastv1.AccountAdmitResponse{RefusedBy: "key_revoked"}, nil
	}
	_, err = e.anthropic(key).Messages.New(t.Context(), anthropicParams("hi"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("%v", err)
	}
	// The actor unavailable: 529 with retry-after (Anthropic's "try again").
	e.caller.decide = func(n int, r *holdfastv1.AccountAdmitRequest) (*holdfastv1.AccountAdmitResponse, error) {
		return nil, errors.New("no owner")
	}
	_, err = e.anthropic(key).Messages.New(t.Context(), anthropicParams("hi"))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 529 || apiErr.Response.Header.Get("Retry-After") != "1" {
		t.Fatalf("%v", err)
	}
	e.quiesce()
	if e.metric("holdfast_gateway_failures_total", "failure", "budget_exhausted") != 1 {
		t.Fatal("budget_exhausted not counted")
	}
	if len(e.caller.settles) != 1 {
		t.Fatalf("settles for refused calls: %d", len(e.caller.settles))
	}
}

func TestSettleExactUsageAndCost(t *testing.T) {
	e := newEnv(t, keysMode)
	key := newVKey(t, "carol")
	u := &fakeupstream.Usage{InputTokens: 100, OutputTokens: 50, CacheCreation5m: 200, CacheCreation1h: 300, CacheRead: 400}
	e.fake.Push(fakeupstream.Script{Usage: u, Pings: true})
	msg, _, err := streamAnthropic(t, e.anthropic(key))
	if err != nil {
		t.Fatal(err)
	}
	s := e.caller.waitSettle(t)
	// claude-sonnet-4-5: $3 in, $15 out per MTok = 3000 / 15000 n$ per token;
	// cache write 5m 1.25×, 1h 2×, read 0.1× of input.
	const want = 100*3000 + 50*15000 + 200*3750 + 300*6000 + 400*300
	g := s.GetUsage()
	if g.GetInputTokens() != 100 || g.GetOutputTokens() != 50 || g.GetCacheCreationInputTokens() != 500 ||
		g.GetCacheCreation_5MInputTokens() != 200 || g.GetCacheCreation_1HInputTokens() != 300 || g.GetCacheReadInputTokens() != 400 {
		t.Fatalf("usage %v", g)
	}
	if s.GetCostNanos() != want || s.GetFailed() || s.GetModel() != "claude-sonnet-4-5" || s.GetProvider() != "anthropic" {
		t.Fatalf("settle %v, want cost %d", s, want)
	}
	a := e.caller.admitList()[0]
	if !strings.HasSuffix(s.GetRequestId(), ".settle") || len(s.GetRequestId()) != 32+len(".settle") || s.GetKeyId() != a.GetKeyId() ||
		s.GetInputTokensEstimate() != a.GetInputTokensEstimate() || s.GetOutputTokensEstimate() != 1024 {
		t.Fatalf("settle %v vs admit %v", s, a)
	}
	if msg.Usage.OutputTokens != 50 {
		t.Fatal("client usage differs")
	}
	e.quiesce()
	if got := e.metric("holdfast_gateway_cost_nanodollars_total", "provider", "anthropic"); got != want {
		t.Fatalf("cost metric %v", got)
	}
	if e.metric("holdfast_gateway_tokens_total", "kind", "cache_read") != 400 || e.metric("holdfast_gateway_tokens_total", "kind", "cache_write_1h") != 300 {
		t.Fatal("token metrics")
	}
}

func TestSettleRetriedWithTheSameRequestID(t *testing.T) {
	e := newEnv(t)
	e.caller.settleErr = func(n int) error {
		if n == 0 {
			return errors.New("unknown outcome")
		}
		return nil
	}
	resp := e.post("/v1/messages", streamBody, nil)
	readAll(t, resp.Body)
	s := e.caller.waitSettle(t)
	e.quiesce()
	if e.caller.settleTry != 2 || s.GetRequestId() != resp.Header.Get(HeaderRequestID)+".settle" {
		t.Fatalf("tries %d, id %q", e.caller.settleTry, s.GetRequestId())
	}
}

// A settle refused for a full mailbox (the turn did not run) is retried
// until the actor takes it, and those refusals do not use up the three
// attempts other errors get.
func TestSettleWaitsOutAFullMailbox(t *testing.T) {
	e := newEnv(t)
	full := fmt.Errorf("actor account/local: %w: 1024 calls queued", actor.ErrOverloaded)
	e.caller.settleErr = func(n int) error {
		switch {
		case n < 10:
			return full
		case n < 12:
			return errors.New("unknown outcome")
		}
		return nil
	}
	resp := e.post("/v1/messages", streamBody, nil)
	readAll(t, resp.Body)
	e.caller.waitSettle(t)
	e.quiesce()
	if e.caller.settleTry != 13 || e.metric("holdfast_gateway_failures_total", "failure", "settle_failed") != 0 {
		t.Fatalf("settle tries %d, settle_failed %v", e.caller.settleTry, e.metric("holdfast_gateway_failures_total", "failure", "settle_failed"))
	}
	// A mailbox that stays full fails the settle in the end, counted.
	e.caller.settleErr = func(int) error { return full }
	readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	e.quiesce()
	if e.metric("holdfast_gateway_failures_total", "failure", "settle_failed") != 1 {
		t.Fatal("a settle refused for good was not counted")
	}
}

// Settles in flight to the actors are bounded: the rest wait in the
// gateway, not in the actor's mailbox, and all of them settle.
// blockSettles makes every settle turn wait for release, counting how many
// are inside at once.
type settleBlocker struct {
	mu              sync.Mutex
	inside, maxSeen int
	entered         chan struct{}
	release         chan struct{}
	once            sync.Once
}

func blockSettles(t *testing.T, e *env) *settleBlocker {
	b := &settleBlocker{entered: make(chan struct{}, 64), release: make(chan struct{})}
	t.Cleanup(b.open) // a failed check must not leave settles blocked
	e.caller.settleEnter = func() {
		b.mu.Lock()
		b.inside++
		b.maxSeen = max(b.maxSeen, b.inside)
		b.mu.Unlock()
		b.entered <- struct{}{}
		<-b.release
		b.mu.Lock()
		b.inside--
		b.mu.Unlock()
	}
	return b
}

func (b *settleBlocker) open() { b.once.Do(func() { close(b.release) }) }

// Settle turns in flight are bounded across users: the rest wait in the
// gateway, not in the actors' mailboxes.
func TestSettlesInFlightBounded(t *testing.T) {
	e := newEnv(t, keysMode)
	e.gw.settles = make(chan struct{}, 2)
	b := blockSettles(t, e)
	const calls = 5
	for i := range calls {
		h := http.Header{"X-Api-Key": {newVKey(t, fmt.Sprintf("user-%d", i))}}
		readAll(t, e.post("/v1/messages", streamBody, h).Body)
	}
	// Every call has answered, so every settle has started; two are
	// inside the actor call, the others must be waiting for a slot.
	<-b.entered
	<-b.entered
	if len(e.gw.settles) != 2 {
		t.Fatalf("%d settle slots taken", len(e.gw.settles))
	}
	b.open()
	e.quiesce()
	if len(e.caller.settles) != calls || b.maxSeen > 2 || e.caller.batches != 0 {
		t.Fatalf("%d settled, at most %d at once, %d batches (want single settles: one call per user)", len(e.caller.settles), b.maxSeen, e.caller.batches)
	}
}

// One user has one settle turn in flight at a time; the calls that finish
// meanwhile are settled together in the next turn, each with its own
// figures, and each call's log line follows its settle.
func TestSettlesOfOneUserBatched(t *testing.T) {
	e := newEnv(t)
	b := blockSettles(t, e)
	readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	<-b.entered // the first call's settle is inside the actor
	const queued = 7
	for i := range queued {
		body := []byte(fmt.Sprintf(`{"model":"claude-sonnet-4-5","max_tokens":%d,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, 100+i))
		readAll(t, e.post("/v1/messages", body, nil).Body)
	}
	if n := strings.Count(e.logs.String(), `"msg":"gateway call"`); n != 0 {
		t.Fatalf("%d log lines before any settle finished", n)
	}
	b.open()
	e.quiesce()
	if b.maxSeen != 1 {
		t.Fatalf("%d settle turns of one user at once, want 1", b.maxSeen)
	}
	if e.caller.settleTry != 2 || e.caller.batches != 1 || len(e.caller.settles) != 1+queued {
		t.Fatalf("%d settle turns (%d batches) for %d settles; want the %d queued calls in one batch", e.caller.settleTry, e.caller.batches, len(e.caller.settles), queued)
	}
	seen := map[int64]bool{}
	for _, s := range e.caller.settles[1:] {
		if !strings.HasSuffix(s.GetRequestId(), ".settles") || s.GetActor().GetKey() != LocalUser {
			t.Fatalf("batch settle %v", s)
		}
		seen[s.GetOutputTokensEstimate()] = true
	}
	for i := range queued {
		if !seen[int64(100+i)] {
			t.Fatalf("the call with max_tokens %d is missing from the batch: %v", 100+i, seen)
		}
	}
	if n := strings.Count(e.logs.String(), `"msg":"gateway call"`); n != 1+queued {
		t.Fatalf("%d log lines, want %d", n, 1+queued)
	}
}

// With gateway.settle_linger, a user's first finished call waits for
// more: calls finishing within the linger go to the account actor in one
// settle turn, and nothing is settled before the linger passed.
func TestSettleLinger(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.SettleLinger = 5 * time.Millisecond }))
	const calls = 4
	for i := range calls {
		body := []byte(fmt.Sprintf(`{"model":"claude-sonnet-4-5","max_tokens":%d,"stream":true,"messages":[{"role":"user","content":"hi"}]}`, 100+i))
		readAll(t, e.post("/v1/messages", body, nil).Body)
	}
	if n := e.caller.count(); n != calls {
		t.Fatalf("%d actor calls before the linger passed, want the %d admits only", n, calls)
	}
	e.clk.Advance(5 * time.Millisecond)
	e.quiesce()
	if e.caller.settleTry != 1 || e.caller.batches != 1 || len(e.caller.settles) != calls {
		t.Fatalf("%d settle turns (%d batches) for %d settles; want the %d calls in one batch", e.caller.settleTry, e.caller.batches, len(e.caller.settles), calls)
	}
}

func TestBYOK(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.Auth = AuthBYOK }), func(o *envOpts) {
		o.providers = func(u string) map[string]ProviderConfig {
			return map[string]ProviderConfig{
				"anthropic": {Type: TypeAnthropic, BaseURL: u},
				"openai":    {Type: TypeOpenAI, BaseURL: u + "/v1"},
			}
		}
	})
	client := "sk-ant-api03-client-own-key-0123456789"
	if _, err := e.anthropic(client).Messages.New(t.Context(), anthropicParams("hi")); err != nil {
		t.Fatal(err)
	}
	if got := e.fake.Last().Header.Get("X-Api-Key"); got != client {
		t.Fatal("byok key not forwarded")
	}
	a := e.caller.admitList()[0]
	sum := sha256.Sum256([]byte(client))
	if a.GetActor().GetKey() != hex.EncodeToString(sum[:])[:32] || a.GetKeyId() != "" || len(a.GetKeyHash()) != 0 {
		t.Fatalf("admit %v", a)
	}
	// Not the shape of any key (the vendor prefixes are checked only for
	// the vendors' own hosts: TestBYOKShapeByProvider): refused locally.
	_, err := e.anthropic("not a key, pasted by mistake").Messages.New(t.Context(), anthropicParams("hi"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || len(e.caller.admitList()) != 1 {
		t.Fatalf("%v", err)
	}
}

func TestNoneModeRefusedBeyondLoopback(t *testing.T) {
	cfg := DefaultConfig()
	for _, addr := range []string{"0.0.0.0:8080", ":8080", "10.0.0.1:80", ""} {
		if _, err := New(cfg, nil, nil, nil, nil, Options{BindAddr: addr}); err == nil || !strings.Contains(err.Error(), "force_no_auth") {
			t.Fatalf("%q: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:8080", "localhost:1", "[::1]:9"} {
		if _, err := New(cfg, nil, nil, nil, nil, Options{BindAddr: addr}); err != nil {
			t.Fatalf("%q: %v", addr, err)
		}
	}
	cfg.ForceNoAuth = true
	if _, err := New(cfg, nil, nil, nil, nil, Options{BindAddr: "0.0.0.0:8080"}); err != nil {
		t.Fatal(err)
	}
	cfg.Auth = AuthKeys
	if _, err := New(cfg, nil, nil, nil, nil, Options{BindAddr: "0.0.0.0:8080"}); err == nil {
		t.Fatal("keys mode without a caller")
	}
}

// Near the input-token limit, the admit gets count_tokens' exact figure.
func TestExactCountNearTheLimit(t *testing.T) {
	e := newEnv(t, keysMode)
	key := newVKey(t, "dave")
	e.caller.decide = func(n int, r *holdfastv1.AccountAdmitRequest) (*holdfastv1.AccountAdmitResponse, error) {
		return &holdfastv1.AccountAdmitResponse{Allowed: true, InputTokensRemaining: 150, InputTokensLimit: 1000}, nil
	}
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"temperature":0.5,"system":"be brief","messages":[{"role":"user","content":"hello"}]}`)
	for range 2 {
		resp := e.post("/v1/messages", body, http.Header{"X-Api-Key": {key}})
		readAll(t, resp.Body)
	}
	e.fake.PushFor("/v1/messages/count_tokens", fakeupstream.Script{Usage: &fakeupstream.Usage{InputTokens: 7}})
	resp := e.post("/v1/messages", body, http.Header{"X-Api-Key": {key}})
	readAll(t, resp.Body)
	reqs := e.fake.Requests()
	var counts []fakeupstream.Recorded
	for _, r := range reqs {
		if r.Path == "/v1/messages/count_tokens" {
			counts = append(counts, r)
		}
	}
	// First request: nothing cached. Second and third: the previous admit
	// left 15% ≤ 20%.
	if len(counts) != 2 {
		t.Fatalf("%d count_tokens calls", len(counts))
	}
	c := string(counts[1].Body)
	if strings.Contains(c, "max_tokens") || strings.Contains(c, "stream") || strings.Contains(c, "temperature") || !strings.Contains(c, `"system":"be brief"`) {
		t.Fatalf("count body %s", c)
	}
	if counts[1].Header.Get("X-Api-Key") != anthropicKey {
		t.Fatal("count_tokens without the provider key")
	}
	admits := e.caller.admitList()
	if admits[0].GetInputTokensEstimate() != int64((len(body)+3)/4) || admits[2].GetInputTokensEstimate() != 7 {
		t.Fatalf("estimates %d, %d", admits[0].GetInputTokensEstimate(), admits[2].GetInputTokensEstimate())
	}
}

func TestCountTokensRoute(t *testing.T) {
	e := newEnv(t)
	n, err := e.anthropic("k").Messages.CountTokens(t.Context(), anthropic.MessageCountTokensParams{
		Model:    "claude-sonnet-4-5",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("question"))},
	})
	if err != nil || n.InputTokens == 0 || e.fake.Last().Path != "/v1/messages/count_tokens" {
		t.Fatalf("%v %+v", err, n)
	}
	if a := e.caller.admitList()[0]; a.GetInputTokensEstimate() != 0 || a.GetSpendEstimateNanos() != 0 {
		t.Fatalf("count_tokens admitted with estimates %v", a)
	}
	if s := e.caller.waitSettle(t); s.GetCostNanos() != 0 || s.GetFailed() {
		t.Fatalf("settle %v", s)
	}
}

func TestCacheSilentMiss(t *testing.T) {
	e := newEnv(t)
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":5,"system":[{"type":"text","text":"long","cache_control":{"type":"ephemeral"}}],"messages":[{"role":"user","content":"q"}]}`)
	e.fake.Push(
		fakeupstream.Script{Usage: &fakeupstream.Usage{InputTokens: 3, CacheCreation5m: 900, OutputTokens: 1}},
		fakeupstream.Script{Usage: &fakeupstream.Usage{InputTokens: 3, CacheRead: 900, OutputTokens: 1}},
		fakeupstream.Script{Usage: &fakeupstream.Usage{InputTokens: 3, CacheCreation5m: 900, OutputTokens: 1}},
	)
	for range 3 {
		readAll(t, e.post("/v1/messages", body, nil).Body)
		e.quiesce()
	}
	if got := e.metric("holdfast_gateway_failures_total", "failure", "cache_silent_miss"); got != 1 {
		t.Fatalf("cache_silent_miss %v\n%s", got, e.logs.String())
	}
	if !strings.Contains(e.logs.String(), "cache_silent_miss") {
		t.Fatal("not in the log line")
	}
}

func TestHeadersForwarded(t *testing.T) {
	e := newEnv(t)
	h := http.Header{
		"Anthropic-Version":   {"2023-06-01"},
		"Anthropic-Beta":      {"prompt-caching-2024-07-31"},
		"X-Api-Key":           {"client"},
		"Connection":          {"X-Private"},
		"X-Private":           {"secret-hop"},
		"Keep-Alive":          {"timeout=5"},
		"X-Holdfast-Provider": {"anthropic"},
		"Cookie":              {"a=b"},
		"X-Forwarded-For":     {"10.1.2.3"},
		"User-Agent":          {"Anthropic/Go 2.15.0"},
	}
	resp := e.post("/v1/messages", streamBody, h)
	readAll(t, resp.Body)
	got := e.fake.Last().Header
	for _, k := range []string{"X-Private", "Keep-Alive", "X-Holdfast-Provider", "Cookie", "X-Forwarded-For"} {
		if got.Get(k) != "" {
			t.Errorf("%s forwarded", k)
		}
	}
	if got.Get("Anthropic-Version") != "2023-06-01" || got.Get("Anthropic-Beta") != "prompt-caching-2024-07-31" ||
		got.Get("X-Api-Key") != anthropicKey || got.Get("User-Agent") != "Anthropic/Go 2.15.0" || got.Get("Content-Type") != "application/json" {
		t.Errorf("upstream headers %v", got)
	}
}
