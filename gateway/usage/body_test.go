package usage

import "testing"

func TestFromBody(t *testing.T) {
	tests := []struct {
		name string
		p    Provider
		body string
		want Usage
	}{
		{"anthropic message", ProviderAnthropic,
			`{"id":"msg_01","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"Hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":3,"cache_creation_input_tokens":100,"cache_read_input_tokens":400,"cache_creation":{"ephemeral_5m_input_tokens":100,"ephemeral_1h_input_tokens":0},"output_tokens":9}}`,
			Usage{InputTokens: 3, OutputTokens: 9, CacheCreationInputTokens: 100, CacheCreation5mInputTokens: 100,
				CacheReadInputTokens: 400, Complete: true, Model: "claude-haiku-4-5", ID: "msg_01", StopReason: "end_turn"}},
		{"anthropic error", ProviderAnthropic,
			`{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"},"request_id":"req_011"}`,
			Usage{ErrorType: "rate_limit_error"}},
		{"openai completion", ProviderOpenAI,
			`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4.1-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1500,"completion_tokens":20,"total_tokens":1520,"prompt_tokens_details":{"cached_tokens":1024}}}`,
			Usage{InputTokens: 476, CacheReadInputTokens: 1024, OutputTokens: 20, Complete: true, Model: "gpt-4.1-mini", ID: "chatcmpl-1", StopReason: "stop"}},
		{"openai error", ProviderOpenAI,
			`{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`,
			Usage{ErrorType: "invalid_request_error"}},
		{"gemini response", ProviderGemini,
			`{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":50,"cachedContentTokenCount":20,"candidatesTokenCount":4,"thoughtsTokenCount":6,"totalTokenCount":60},"modelVersion":"gemini-2.5-pro","responseId":"r1"}`,
			Usage{InputTokens: 30, CacheReadInputTokens: 20, OutputTokens: 10, Complete: true, Model: "gemini-2.5-pro", ID: "r1", StopReason: "STOP"}},
		{"gemini stream read whole (JSON array)", ProviderGemini,
			`[{"candidates":[{"content":{"parts":[{"text":"a"}]}}],"usageMetadata":{"promptTokenCount":5,"totalTokenCount":5}},
			  {"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"MAX_TOKENS"}],"usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":8,"totalTokenCount":13}}]`,
			Usage{InputTokens: 5, OutputTokens: 8, Complete: true, StopReason: "MAX_TOKENS"}},
		{"gemini error", ProviderGemini,
			`{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}`,
			Usage{ErrorType: "RESOURCE_EXHAUSTED"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromBody(tt.p, []byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			checkUsage(t, got, tt.want)
		})
	}
}

func TestFromBodyErrors(t *testing.T) {
	for _, p := range []Provider{ProviderAnthropic, ProviderOpenAI, ProviderGemini} {
		for _, body := range []string{``, `{"usage":`, `"text"`} {
			if _, err := FromBody(p, []byte(body)); err == nil {
				t.Errorf("%v: no error for %q", p, body)
			}
		}
	}
	if _, err := FromBody(Provider(9), []byte(`{}`)); err == nil {
		t.Error("unknown provider accepted")
	}
	if _, err := NewAccumulator(Provider(0)); err == nil {
		t.Error("unknown provider accepted")
	}
	for _, p := range []Provider{ProviderAnthropic, ProviderOpenAI, ProviderGemini} {
		if a, err := NewAccumulator(p); err != nil || a == nil {
			t.Errorf("%v: %v", p, err)
		}
	}
}
