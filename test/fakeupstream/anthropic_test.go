package fakeupstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
)

func TestAnthropicSDKStreamAccumulatesTextAndUsage(t *testing.T) {
	fake := newFake(t)
	usage := &Usage{InputTokens: 11, OutputTokens: 7, CacheCreation5m: 100, CacheCreation1h: 200, CacheRead: 3000}
	fake.Push(Script{Chunks: []string{"Hel", "lo, ", "wor", "ld"}, Model: "claude-test-1", Usage: usage, Pings: true})

	client := anthropicClient(fake)
	stream := client.Messages.NewStreaming(t.Context(), anthropicParams("hi"))
	var msg anthropic.Message
	for stream.Next() {
		if err := msg.Accumulate(stream.Current()); err != nil {
			t.Fatalf("accumulate: %v", err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if len(msg.Content) != 1 || msg.Content[0].Text != "Hello, world" {
		t.Fatalf("content = %+v", msg.Content)
	}
	if msg.Model != "claude-test-1" || msg.StopReason != "end_turn" || !strings.HasPrefix(msg.ID, "msg_") {
		t.Fatalf("model %q stop %q id %q", msg.Model, msg.StopReason, msg.ID)
	}
	u := msg.Usage
	if u.InputTokens != 11 || u.OutputTokens != 7 || u.CacheCreationInputTokens != 300 || u.CacheReadInputTokens != 3000 ||
		u.CacheCreation.Ephemeral5mInputTokens != 100 || u.CacheCreation.Ephemeral1hInputTokens != 200 {
		t.Fatalf("usage = %+v", u)
	}

	rec := fake.Last()
	// anthropic-sdk-go v2.15 sends WithAPIKey as "authorization: Bearer", not x-api-key.
	key := rec.Header.Get("X-Api-Key") + strings.TrimPrefix(rec.Header.Get("Authorization"), "Bearer ")
	if rec.Method != http.MethodPost || rec.Path != "/v1/messages" || key != "sk-ant-test" ||
		rec.Header.Get("Anthropic-Version") == "" || !bytes.Contains(rec.Body, []byte(`"stream":true`)) {
		t.Fatalf("recorded %s %s %v", rec.Method, rec.Path, rec.Header)
	}
	if !bytes.Equal(rec.Sent, Render(rec.Script, rec)) {
		t.Fatalf("Render differs from what was sent:\n%s\n---\n%s", rec.Sent, Render(rec.Script, rec))
	}
}

func TestAnthropicStreamWireFormat(t *testing.T) {
	fake := newFake(t)
	fake.Push(Script{Chunks: []string{"a", "b"}, Pings: true,
		Usage: &Usage{InputTokens: 5, OutputTokens: 2, CacheCreation1h: 9, CacheRead: 4}})
	resp := post(t, fake.URL()+"/v1/messages", []byte(`{"model":"claude-x","max_tokens":5,"stream":true,"messages":[]}`), nil)
	body := readAll(t, resp.Body)

	if got := resp.Header.Get("Content-Type"); got != "text/event-stream; charset=utf-8" {
		t.Errorf("content-type %q", got)
	}
	if resp.Header.Get("Cache-Control") != "no-cache" || !strings.HasPrefix(resp.Header.Get("Request-Id"), "req_") ||
		resp.Header.Get("Anthropic-Ratelimit-Requests-Limit") == "" || resp.Header.Get("Anthropic-Ratelimit-Tokens-Reset") == "" {
		t.Errorf("headers %v", resp.Header)
	}
	var names []string
	for _, ev := range sseEvents(t, body) {
		names = append(names, ev[0])
		var typ struct{ Type string }
		if err := json.Unmarshal([]byte(ev[1]), &typ); err != nil || typ.Type != ev[0] {
			t.Errorf("event %s has data type %q (%v)", ev[0], typ.Type, err)
		}
	}
	want := "message_start content_block_start ping content_block_delta ping content_block_delta content_block_stop message_delta message_stop"
	if strings.Join(names, " ") != want {
		t.Fatalf("events\n got %s\nwant %s", strings.Join(names, " "), want)
	}
	for _, part := range []string{
		`event: message_start` + "\n" + `data: {"type":"message_start","message":{"model":"claude-x","id":"msg_`,
		`"type":"message","role":"assistant","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"cache_creation_input_tokens":9,"cache_read_input_tokens":4,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":9},"output_tokens":1,`,
		"event: ping\ndata: {\"type\": \"ping\"}\n\n",
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"b"}}`,
		`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":5,"cache_creation_input_tokens":9,"cache_read_input_tokens":4,"output_tokens":2}}`,
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
	} {
		if !bytes.Contains(body, []byte(part)) {
			t.Errorf("stream lacks %s\n%s", part, body)
		}
	}
}

func TestAnthropicSDKNonStreamAndCountTokens(t *testing.T) {
	fake := newFake(t)
	client := anthropicClient(fake)
	fake.Push(Reply("plain answer"))
	msg, err := client.Messages.New(t.Context(), anthropicParams("question"))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Content[0].Text != "plain answer" || msg.Usage.OutputTokens != int64(Tokens("plain answer")) {
		t.Fatalf("message %+v", msg)
	}
	if want := int64(EstimateInputTokens(fake.Last().Body)); msg.Usage.InputTokens != want || want == 0 {
		t.Fatalf("input tokens %d, want %d", msg.Usage.InputTokens, want)
	}
	if ct := fake.Last().Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("request content-type %q", ct)
	}

	count, err := client.Messages.CountTokens(t.Context(), anthropic.MessageCountTokensParams{
		Model:    "claude-sonnet-4-5",
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("question"))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fake.Last().Path != "/v1/messages/count_tokens" || count.InputTokens != msg.Usage.InputTokens {
		t.Fatalf("count_tokens %d at %s, messages said %d", count.InputTokens, fake.Last().Path, msg.Usage.InputTokens)
	}
}

func TestAnthropicSDKTypedErrors(t *testing.T) {
	for _, tc := range []struct {
		script Script
		status int
		typ    string
	}{
		{RateLimited(7), 429, "rate_limit_error"},
		{Overloaded(), 529, "overloaded_error"},
		{HTTPError(500), 500, "api_error"},
		{HTTPError(401), 401, "authentication_error"},
	} {
		fake := newFake(t)
		fake.Push(tc.script)
		_, err := anthropicClient(fake).Messages.New(t.Context(), anthropicParams("x"))
		var apiErr *anthropic.Error
		if !errors.As(err, &apiErr) {
			t.Fatalf("%d: error %T %v is not *anthropic.Error", tc.status, err, err)
		}
		if apiErr.StatusCode != tc.status || string(apiErr.Type()) != tc.typ || !strings.HasPrefix(apiErr.RequestID, "req_") {
			t.Fatalf("%d: status %d type %q request-id %q", tc.status, apiErr.StatusCode, apiErr.Type(), apiErr.RequestID)
		}
		if fake.Count() != 1 {
			t.Fatalf("%d: %d requests with MaxRetries 0", tc.status, fake.Count())
		}
		if tc.status == 429 && apiErr.Response.Header.Get("Retry-After") != "7" {
			t.Fatalf("retry-after %q", apiErr.Response.Header.Get("Retry-After"))
		}
		want := `{"type":"error","error":{"type":"` + tc.typ + `","message":`
		if rec := fake.Last(); !bytes.HasPrefix(rec.Sent, []byte(want)) || !bytes.Contains(rec.Sent, []byte(`"request_id":"req_`)) {
			t.Fatalf("error body %s", rec.Sent)
		}
	}
}

func TestAnthropicSDKSurfacesMidStreamOverload(t *testing.T) {
	fake := newFake(t)
	fake.Push(StreamErrorAfter(3)) // message_start, content_block_start, one delta
	stream := anthropicClient(fake).Messages.NewStreaming(t.Context(), anthropicParams("x"))
	var types []string
	for stream.Next() {
		types = append(types, stream.Current().Type)
	}
	var apiErr *anthropic.Error
	if !errors.As(stream.Err(), &apiErr) || apiErr.Type() != "overloaded_error" || apiErr.Message != "Overloaded" {
		t.Fatalf("stream error %T %v", stream.Err(), stream.Err())
	}
	if strings.Join(types, " ") != "message_start content_block_start content_block_delta" {
		t.Fatalf("events before the error: %v", types)
	}
	sent := fake.Last().Sent
	wantTail := "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
	if !bytes.HasSuffix(sent, []byte(wantTail)) {
		t.Fatalf("stream does not end with the exact error event:\n%s", sent)
	}
}
