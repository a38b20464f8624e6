package gateway

import "testing"

// A key's shape is checked against its vendor only on the vendor's own
// API: OpenAI-compatible providers have keys of their own shapes.
func TestBYOKShapeByProvider(t *testing.T) {
	for _, c := range []struct {
		typ, base, key string
		ok             bool
	}{
		{TypeAnthropic, "https://api.anthropic.com", "sk-ant-api03-0123456789abcdef", true},
		{TypeAnthropic, "https://api.anthropic.com", "sk-proj-0123456789abcdefgh", false},
		{TypeOpenAI, "https://api.openai.com/v1", "sk-proj-0123456789abcdefgh", true},
		{TypeOpenAI, "https://api.openai.com/v1", "gsk_0123456789abcdefghijkl", false},
		{TypeOpenAI, "https://api.groq.com/openai/v1", "gsk_0123456789abcdefghijkl", true},
		{TypeOpenAI, "https://api.cerebras.ai/v1", "csk-0123456789abcdefghijkl", true},
		{TypeOpenAI, "http://127.0.0.1:9000/v1", "local-key-0123456789abcdef", true},
		{TypeGemini, "https://generativelanguage.googleapis.com", "AIzaSy0123456789abcdefghij", true},
		{TypeGemini, "https://generativelanguage.googleapis.com", "sk-0123456789abcdefghijklmn", false},
		{TypeOpenAI, "https://api.groq.com/openai/v1", "short", false},
		{TypeOpenAI, "https://api.groq.com/openai/v1", "gsk_0123456789 abcdefghijkl", false},
	} {
		p := &provider{typ: c.typ, base: c.base, keyPrefix: vendorKeyPrefix(c.typ, c.base)}
		if got := byokShapeOK(p, c.key); got != c.ok {
			t.Errorf("%s %s %q: %v, want %v", c.typ, c.base, c.key, got, c.ok)
		}
	}
}
