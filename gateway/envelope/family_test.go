package envelope

import "testing"

func TestFamilyForPath(t *testing.T) {
	tests := []struct {
		path string
		want Family // 0 = none
	}{
		{"/v1/messages", Anthropic},
		{"/v1/messages/count_tokens", Anthropic},
		{"/v1/messages/batches/msgbatch_1", Anthropic},
		{"/v1/messages?beta=true", Anthropic},
		{"/v1/messagesx", OpenAI}, // not the messages route
		{"/v1/chat/completions", OpenAI},
		{"/v1/completions", OpenAI},
		{"/v1/embeddings", OpenAI},
		{"/v1/models", OpenAI},
		{"/v1/models/gpt-4o", OpenAI},
		{"/v1/models/ft:gpt-4o:acme::abc123", OpenAI}, // colons, but no Gemini method
		{"/v1/models/gemini-2.5-pro:generateContent", Gemini},
		{"/v1beta/models/gemini-2.5-pro:generateContent", Gemini},
		{"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", Gemini},
		{"/v1beta/models/gemini-2.5-flash:countTokens", Gemini},
		{"/v1alpha/models/x:generateContent", Gemini},
		{"/v1", 0},
		{"/v1beta", 0},
		{"/", 0},
		{"", 0},
		{"/healthz", 0},
		{"/v2/messages", 0},
	}
	for _, tc := range tests {
		got, ok := FamilyForPath(tc.path)
		if got != tc.want || ok != (tc.want != 0) {
			t.Errorf("FamilyForPath(%q) = %v, %v; want %v", tc.path, got, ok, tc.want)
		}
	}
}

func TestStrings(t *testing.T) {
	if Anthropic.String() != "anthropic" || OpenAI.String() != "openai" || Gemini.String() != "gemini" || Family(0).String() != "unknown" {
		t.Error("Family.String")
	}
	if RateLimited.String() != "rate_limited" || Overloaded.String() != "unavailable" || Kind(0).String() != "unknown" {
		t.Error("Kind.String")
	}
}
