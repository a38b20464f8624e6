package gateway

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/holdfast/holdfast/test/fakeupstream"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
)

func streamAnthropic(t *testing.T, c *anthropic.Client) (anthropic.Message, int, error) {
	t.Helper()
	stream := c.Messages.NewStreaming(t.Context(), anthropicParams("hi"))
	var msg anthropic.Message
	n := 0
	for stream.Next() {
		n++
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	return msg, n, stream.Err()
}

func TestAnthropicSDKStreamsThroughTheGateway(t *testing.T) {
	e := newEnv(t)
	u := &fakeupstream.Usage{InputTokens: 12, OutputTokens: 7, CacheCreation5m: 100, CacheCreation1h: 50, CacheRead: 300}
	e.fake.Push(fakeupstream.Script{Chunks: []string{"Hello", ", ", "world"}, Usage: u, Pings: true})
	msg, _, err := streamAnthropic(t, e.anthropic("client-key"))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Content[0].Text != "Hello, world" || msg.Usage.InputTokens != 12 || msg.Usage.OutputTokens != 7 ||
		msg.Usage.CacheReadInputTokens != 300 || msg.Usage.CacheCreationInputTokens != 150 {
		t.Fatalf("message %+v", msg)
	}
	// The client's key never went upstream; the provider's did.
	if h := e.fake.Last().Header; h.Get("X-Api-Key") != anthropicKey || h.Get("Authorization") != "" || h.Get("Anthropic-Version") == "" {
		t.Fatalf("upstream headers %v", h)
	}
	// Non-streaming too.
	m, err := e.anthropic("client-key").Messages.New(t.Context(), anthropicParams("hi"))
	if err != nil || m.Content[0].Text != fakeupstream.DefaultText {
		t.Fatalf("%v %+v", err, m)
	}
}

func TestRetry529ThenSuccess(t *testing.T) {
	e := newEnv(t)
	e.fake.Push(fakeupstream.Overloaded())
	msg, _, err := streamAnthropic(t, e.anthropic("k"))
	if err != nil || msg.Content[0].Text != fakeupstream.DefaultText {
		t.Fatalf("SDK saw %v", err)
	}
	if e.fake.Count() != 2 {
		t.Fatalf("%d upstream requests", e.fake.Count())
	}
	w := e.sleep.list()
	if len(w) != 1 || w[0] < 500*time.Millisecond || w[0] >= 625*time.Millisecond {
		t.Fatalf("waits %v, want one in [500ms, 625ms)", w)
	}
	e.quiesce()
	if e.metric("holdfast_gateway_retries_total", "reason", "overload_529") != 1 ||
		e.metric("holdfast_gateway_failures_total", "failure", "overload_529") != 1 {
		t.Fatal("retry or failure not counted")
	}
}

func TestRetry429HonoursRetryAfter(t *testing.T) {
	e := newEnv(t)
	e.fake.Push(fakeupstream.RateLimited(3), fakeupstream.RateLimited(1))
	msg, _, err := streamAnthropic(t, e.anthropic("k"))
	if err != nil || msg.Content[0].Text == "" {
		t.Fatalf("SDK saw %v", err)
	}
	// max(retry-after, backoff): 3s over 500ms+jitter; then 1s over 1s+jitter.
	w := e.sleep.list()
	if len(w) != 2 || w[0] != 3*time.Second || w[1] < time.Second || w[1] >= 1250*time.Millisecond {
		t.Fatalf("waits %v", w)
	}
	if e.fake.Count() != 3 {
		t.Fatalf("%d upstream requests", e.fake.Count())
	}
}

func TestGiveUpPassesTheLastErrorWithShouldRetryFalse(t *testing.T) {
	e := newEnv(t)
	e.fake.Push(fakeupstream.Overloaded(), fakeupstream.Overloaded(), fakeupstream.Script{Status: 529, ErrorMessage: "still overloaded"})
	// The SDK's own retries ON: x-should-retry: false must stop them.
	c := e.anthropic("k", aoption.WithMaxRetries(2))
	_, err := c.Messages.New(t.Context(), anthropicParams("hi"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 529 || apiErr.Type() != "overloaded_error" || apiErr.Message != "still overloaded" {
		t.Fatalf("SDK error %T %v", err, err)
	}
	if apiErr.Response.Header.Get("X-Should-Retry") != "false" || apiErr.Response.Header.Get("Request-Id") == "" {
		t.Fatalf("headers %v", apiErr.Response.Header)
	}
	if e.fake.Count() != 3 || len(e.sleep.list()) != 2 {
		t.Fatalf("%d upstream requests, waits %v: want 3 and 2 (gateway retries only)", e.fake.Count(), e.sleep.list())
	}
	s := e.caller.waitSettle(t)
	if !s.GetFailed() || s.GetCostNanos() != 0 {
		t.Fatalf("failed call settled %v", s)
	}
}

func TestNonRetryableErrorPassesUnchanged(t *testing.T) {
	e := newEnv(t)
	e.fake.Push(fakeupstream.Script{Status: 400, ErrorMessage: "max_tokens: too big"})
	_, err := e.anthropic("k").Messages.New(t.Context(), anthropicParams("hi"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || apiErr.Message != "max_tokens: too big" {
		t.Fatalf("%v", err)
	}
	if apiErr.Response.Header.Get("X-Should-Retry") != "" || e.fake.Count() != 1 {
		t.Fatal("a 400 must not be retried nor marked")
	}
}

func TestMidStreamOverloadedIsNotRetried(t *testing.T) {
	e := newEnv(t)
	e.fake.Push(fakeupstream.StreamErrorAfter(4))
	msg, n, err := streamAnthropic(t, e.anthropic("k"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.Type() != "overloaded_error" || n != 4 {
		t.Fatalf("after %d events: %T %v", n, err, err)
	}
	if e.fake.Count() != 1 || len(e.sleep.list()) != 0 {
		t.Fatal("an in-stream error was retried")
	}
	s := e.caller.waitSettle(t)
	if s.GetFailed() || s.GetUsage().GetInputTokens() != msg.Usage.InputTokens {
		t.Fatalf("settle %v", s)
	}
	e.quiesce()
	if e.metric("holdfast_gateway_failures_total", "failure", "in_stream_overloaded") != 1 {
		t.Fatalf("in_stream_overloaded not counted: %s", e.logs.String())
	}
}

func TestResetBeforeHeadersIsRetried(t *testing.T) {
	e := newEnv(t)
	e.fake.Push(fakeupstream.ResetBeforeHeaders())
	msg, _, err := streamAnthropic(t, e.anthropic("k"))
	if err != nil || msg.Content[0].Text == "" || e.fake.Count() != 2 {
		t.Fatalf("%v, %d upstream requests", err, e.fake.Count())
	}
	// Reset before headers, every time: the SDK gets a 529 envelope
	// (overloaded, as Anthropic says when it cannot serve) marked not to retry.
	e.fake.Push(fakeupstream.ResetBeforeHeaders(), fakeupstream.ResetBeforeHeaders(), fakeupstream.ResetBeforeHeaders())
	_, err = e.anthropic("k", aoption.WithMaxRetries(2)).Messages.New(t.Context(), anthropicParams("hi"))
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 529 || apiErr.Response.Header.Get("X-Should-Retry") != "false" {
		t.Fatalf("%T %v", err, err)
	}
}

func TestResetMidStreamCutsTheClientStream(t *testing.T) {
	e := newEnv(t)
	e.fake.Push(fakeupstream.ResetAfter(3))
	_, n, err := streamAnthropic(t, e.anthropic("k"))
	var apiErr *anthropic.Error
	if err == nil || errors.As(err, &apiErr) || n != 3 {
		t.Fatalf("after %d events: %T %v", n, err, err)
	}
	if e.fake.Count() != 1 {
		t.Fatal("retried after output")
	}
}

func TestOpenAISDK(t *testing.T) {
	e := newEnv(t)
	c := e.openai("sk-client")
	u := &fakeupstream.Usage{InputTokens: 40, CacheRead: 60, OutputTokens: 5}

	// The client asks for usage: it gets the usage chunk.
	e.fake.Push(fakeupstream.Script{Chunks: []string{"a", "b"}, Usage: u})
	st := c.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model:         "gpt-4o",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	acc := openai.ChatCompletionAccumulator{}
	for st.Next() {
		acc.AddChunk(st.Current())
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != "ab" || acc.Usage.PromptTokens != 100 || acc.Usage.PromptTokensDetails.CachedTokens != 60 {
		t.Fatalf("accumulated %+v", acc.ChatCompletion)
	}
	if h := e.fake.Last().Header; h.Get("Authorization") != "Bearer "+openaiKey {
		t.Fatal("provider key not used upstream")
	}

	// 500 then success: retried by the gateway.
	e.fake.Push(fakeupstream.HTTPError(500))
	r, err := c.Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
		Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	if err != nil || r.Choices[0].Message.Content != fakeupstream.DefaultText {
		t.Fatalf("%v", err)
	}

	// 429 three times: the SDK (own retries on) gets it once.
	e.fake.Push(fakeupstream.RateLimited(1), fakeupstream.RateLimited(1), fakeupstream.RateLimited(1))
	before := e.fake.Count()
	_, err = e.openai("sk-client", ooption.WithMaxRetries(2)).Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{
		Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "rate_limit_exceeded" || e.fake.Count()-before != 3 {
		t.Fatalf("%T %v; %d upstream requests", err, err, e.fake.Count()-before)
	}

	// A mid-stream error chunk surfaces as a stream error, not retried.
	e.fake.Push(fakeupstream.StreamErrorAfter(2))
	before = e.fake.Count()
	st = c.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model: "gpt-4o", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}})
	for st.Next() {
	}
	if st.Err() == nil || e.fake.Count()-before != 1 {
		t.Fatalf("stream error %v", st.Err())
	}
}

func TestGeminiRoutes(t *testing.T) {
	e := newEnv(t)
	resp := e.post("/v1beta/models/gemini-2.5-flash:generateContent?key=client-key", []byte(`{"contents":[{"parts":[{"text":"hi"}]}]}`), nil)
	body := readAll(t, resp.Body)
	rec := e.fake.Last()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "usageMetadata") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if rec.RawQuery != "" || rec.Header.Get("X-Goog-Api-Key") != geminiKey || rec.Path != "/v1beta/models/gemini-2.5-flash:generateContent" {
		t.Fatalf("upstream saw query %q, key header %q, path %q", rec.RawQuery, rec.Header.Get("X-Goog-Api-Key"), rec.Path)
	}
	s := e.caller.waitSettle(t)
	if s.GetUsage().GetOutputTokens() == 0 || s.GetModel() != "gemini-2.5-flash" || s.GetCostNanos() == 0 {
		t.Fatalf("settle %v", s)
	}
	// JSON-array stream (no alt=sse): passed through, usage read at the end.
	resp = e.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent", []byte(`{"contents":[]}`), http.Header{"X-Goog-Api-Key": {"client"}})
	body = readAll(t, resp.Body)
	if string(body) != string(e.fake.Last().Sent) || body[0] != '[' {
		t.Fatalf("array stream altered: %q", body)
	}
	if s := e.caller.waitSettle(t); s.GetUsage().GetOutputTokens() == 0 {
		t.Fatalf("settle %v", s)
	}
	// A Gemini error envelope passes through.
	e.fake.Push(fakeupstream.HTTPError(403))
	resp = e.post("/v1beta/models/gemini-2.5-flash:generateContent", []byte(`{}`), nil)
	if body := readAll(t, resp.Body); resp.StatusCode != 403 || string(body) != string(e.fake.Last().Sent) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}
