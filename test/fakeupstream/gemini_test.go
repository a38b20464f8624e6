package fakeupstream

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

type geminiTestResponse struct {
	Candidates []struct {
		Content struct {
			Parts []struct{ Text string }
			Role  string
		}
		FinishReason string
	}
	UsageMetadata struct {
		PromptTokenCount, CandidatesTokenCount, TotalTokenCount, CachedContentTokenCount int
	}
	ModelVersion string
}

func (g geminiTestResponse) text() string {
	s := ""
	for _, c := range g.Candidates {
		for _, p := range c.Content.Parts {
			s += p.Text
		}
	}
	return s
}

const geminiPath = "/v1beta/models/gemini-2.5-flash"

var geminiUsageScript = Script{Chunks: []string{"Bonjour", " le", " monde"}, Usage: &Usage{InputTokens: 10, OutputTokens: 6, CacheRead: 30}}

func checkGeminiFinal(t *testing.T, text string, last geminiTestResponse) {
	t.Helper()
	u := last.UsageMetadata
	if text != "Bonjour le monde" || last.Candidates[0].FinishReason != "STOP" || last.ModelVersion != "gemini-2.5-flash" ||
		u.PromptTokenCount != 40 || u.CachedContentTokenCount != 30 || u.CandidatesTokenCount != 6 || u.TotalTokenCount != 46 {
		t.Fatalf("text %q last %+v", text, last)
	}
}

func TestGeminiSSE(t *testing.T) {
	fake := newFake(t)
	fake.Push(geminiUsageScript)
	resp := post(t, fake.URL()+geminiPath+":streamGenerateContent?alt=sse&key=k", []byte(`{"contents":[{"parts":[{"text":"hi"}]}]}`), nil)
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content-type %q", resp.Header.Get("Content-Type"))
	}
	body := string(readAll(t, resp.Body))
	if !strings.HasSuffix(body, "}\r\n\r\n") || strings.Contains(body, "[DONE]") {
		t.Fatalf("body %q", body)
	}
	var text string
	var last geminiTestResponse
	for _, ev := range strings.Split(strings.TrimSuffix(body, "\r\n\r\n"), "\r\n\r\n") {
		data, ok := strings.CutPrefix(ev, "data: ")
		if !ok {
			t.Fatalf("event %q", ev)
		}
		last = geminiTestResponse{}
		if err := json.Unmarshal([]byte(data), &last); err != nil {
			t.Fatal(err)
		}
		text += last.text()
	}
	checkGeminiFinal(t, text, last)
	if rec := fake.Last(); rec.RawQuery != "alt=sse&key=k" {
		t.Fatalf("raw query %q", rec.RawQuery)
	}
}

func TestGeminiJSONArrayStreamAndNonStream(t *testing.T) {
	fake := newFake(t)
	fake.Push(geminiUsageScript, geminiUsageScript)
	resp := post(t, fake.URL()+geminiPath+":streamGenerateContent", []byte(`{}`), nil)
	var arr []geminiTestResponse
	if err := json.NewDecoder(resp.Body).Decode(&arr); err != nil {
		t.Fatal(err)
	}
	text := ""
	for _, r := range arr {
		text += r.text()
	}
	checkGeminiFinal(t, text, arr[len(arr)-1])

	resp = post(t, fake.URL()+geminiPath+":generateContent", []byte(`{}`), nil)
	var one geminiTestResponse
	if err := json.NewDecoder(resp.Body).Decode(&one); err != nil {
		t.Fatal(err)
	}
	checkGeminiFinal(t, one.text(), one)
}

func TestGeminiError(t *testing.T) {
	fake := newFake(t)
	fake.Push(RateLimited(2))
	resp := post(t, fake.URL()+geminiPath+":generateContent", []byte(`{}`), nil)
	body, _ := io.ReadAll(resp.Body)
	var e struct {
		Error struct {
			Code            int
			Message, Status string
		}
	}
	if err := json.Unmarshal(body, &e); err != nil || resp.StatusCode != 429 || e.Error.Code != 429 ||
		e.Error.Status != "RESOURCE_EXHAUSTED" || resp.Header.Get("Retry-After") != "2" || !bytes.HasPrefix(body, []byte("{\n  \"error\": {")) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}
