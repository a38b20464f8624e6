package jsonscan

import (
	"encoding/json"
	"strings"
	"testing"
)

// bigBody builds a realistic Anthropic request of at least size bytes, laid
// out as the SDKs write it: tools and messages first, model last.
func bigBody(size int) []byte {
	type block struct {
		Type         string         `json:"type"`
		Text         string         `json:"text,omitempty"`
		Name         string         `json:"name,omitempty"`
		Input        map[string]any `json:"input,omitempty"`
		CacheControl map[string]any `json:"cache_control,omitempty"`
	}
	type message struct {
		Role    string  `json:"role"`
		Content []block `json:"content"`
	}
	para := strings.Repeat("Refactor the \"scanner\" in main.go:\n\tfunc f(x int) { return x*2 } // naïve — café ✓ 😀\\ ", 20)
	var msgs []message
	n := 0
	for n < size {
		m := message{Role: "user", Content: []block{{Type: "text", Text: para}}}
		if len(msgs)%2 == 1 {
			m = message{Role: "assistant", Content: []block{
				{Type: "text", Text: para[:400]},
				{Type: "tool_use", Name: "edit", Input: map[string]any{"path": "main.go", "model": "nested", "lines": []int{1, 2, 3}, "ok": true, "ratio": -1.5e3}},
			}}
		}
		if len(msgs)%50 == 0 {
			m.Content[0].CacheControl = map[string]any{"type": "ephemeral", "ttl": "1h"}
		}
		msgs = append(msgs, m)
		n += len(para) + 100
	}
	raw, err := json.Marshal(msgs)
	if err != nil {
		panic(err)
	}
	body := `{"max_tokens":4096,"system":[{"type":"text","text":"be brief","cache_control":{"type":"ephemeral"}}],"messages":` +
		string(raw) + `,"stream":true,"model":"claude-opus-4-1"}`
	return []byte(body)
}

func TestBigBody(t *testing.T) {
	body := bigBody(1 << 20)
	f, err := Scan(body)
	if err != nil || f.Model != "claude-opus-4-1" || !f.Stream {
		t.Fatalf("%+v %v", f, err)
	}
}

func BenchmarkScan10MB(b *testing.B) {
	body := bigBody(10 << 20)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Scan(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValid10MB is the baseline: encoding/json's validator on the same body.
func BenchmarkValid10MB(b *testing.B) {
	body := bigBody(10 << 20)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if !json.Valid(body) {
			b.Fatal("invalid")
		}
	}
}
