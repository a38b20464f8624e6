package gateway

import (
	"bufio"
	"encoding/json"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/holdfast/holdfast/test/fakeupstream"
	"github.com/openai/openai-go/v3"
)

// The out-of-the-box node: no providers configured, auth none, the mock
// answers all three formats in-process.
func mockEnv(t *testing.T) *env {
	return newEnv(t, func(o *envOpts) {
		o.providers = func(string) map[string]ProviderConfig { return nil }
	})
}

func TestMockStreamingCurl(t *testing.T) {
	e := mockEnv(t)
	// The README's first example.
	resp := e.post("/v1/messages", []byte(`{"model":"claude-sonnet-4-5","max_tokens":256,"stream":true,"messages":[{"role":"user","content":"Hello"}]}`), nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("status %d, content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get(HeaderRequestID) == "" || resp.Header.Get("Cache-Control") != "no-cache" || resp.ContentLength != -1 {
		t.Fatalf("headers %v", resp.Header)
	}
	var names []string
	br := bufio.NewReader(resp.Body)
	for {
		ev, err := fakeupstream.ReadEvent(br)
		if len(ev) > 0 {
			names = append(names, strings.TrimPrefix(strings.SplitN(string(ev), "\n", 2)[0], "event: "))
		}
		if err != nil {
			break
		}
	}
	if names[0] != "message_start" || names[len(names)-1] != "message_stop" {
		t.Fatalf("events %v", names)
	}
	e.quiesce()
	if e.caller.count() != 2 { // admit + settle on the "local" user
		t.Fatalf("caller calls %d", e.caller.count())
	}
	if a := e.caller.admitList()[0]; a.GetActor().GetKey() != LocalUser || a.GetProvider() != "mock" {
		t.Fatalf("admit %v", a)
	}
}

func TestMockWithSDKs(t *testing.T) {
	e := mockEnv(t)
	ac := e.anthropic("anything")
	stream := ac.Messages.NewStreaming(t.Context(), anthropicParams("hi"))
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != mockText || msg.Usage.OutputTokens == 0 || msg.Usage.InputTokens == 0 {
		t.Fatalf("message %+v", msg)
	}

	oc := e.openai("anything")
	os := oc.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	var text strings.Builder
	var sawUsage bool
	for os.Next() {
		ch := os.Current()
		if len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
		if ch.Usage.TotalTokens > 0 {
			sawUsage = true
		}
	}
	if err := os.Err(); err != nil {
		t.Fatal(err)
	}
	if text.String() != mockText || sawUsage {
		t.Fatalf("openai text %q, usage chunk seen %v (the gateway inserted include_usage: it must be dropped)", text.String(), sawUsage)
	}

	// Gemini, raw.
	resp := e.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", []byte(`{"contents":[{"parts":[{"text":"hi"}]}]}`), nil)
	evs := splitEvents(readAll(t, resp.Body))
	var last struct {
		UsageMetadata struct{ CandidatesTokenCount int } `json:"usageMetadata"`
	}
	data := strings.TrimSpace(strings.TrimPrefix(string(evs[len(evs)-1]), "data: "))
	if err := json.Unmarshal([]byte(data), &last); err != nil || last.UsageMetadata.CandidatesTokenCount == 0 {
		t.Fatalf("gemini last event %q: %v", evs[len(evs)-1], err)
	}
	e.quiesce()
	// Usage is accounted for all three.
	if got := e.metric("holdfast_gateway_tokens_total", "provider", "mock", "kind", "output", "estimated", "false"); got == 0 {
		t.Fatal("no output tokens counted")
	}
}
