package fakeupstream

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestRecordsBodyByteForByte(t *testing.T) {
	fake := newFake(t)
	odd := []byte("{ \"messages\" :[ {\"role\":\"user\",\t\"content\":\"h\\u00e9\\n\"} ],\r\n  \"model\":\"claude-x\" ,\"cache_control\":{\"type\":\"ephemeral\"}\n}\n\n  ")
	resp := post(t, fake.URL()+"/v1/messages?beta=true", odd, http.Header{"X-Api-Key": {"k1"}, "Anthropic-Beta": {"a,b"}})
	readAll(t, resp.Body)

	big := make([]byte, 10<<20)
	for i := range big {
		big[i] = byte('a' + i*7%26)
	}
	copy(big, `{"model":"gpt-4o","messages":[{"role":"user","content":"`)
	copy(big[len(big)-4:], `"}]}`)
	resp = post(t, fake.URL()+"/v1/chat/completions", big, nil)
	readAll(t, resp.Body)

	reqs := fake.Requests()
	if len(reqs) != 2 || fake.Count() != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	r := reqs[0]
	if !bytes.Equal(r.Body, odd) || r.RawQuery != "beta=true" || r.Path != "/v1/messages" || r.Seq != 1 ||
		r.Header.Get("X-Api-Key") != "k1" || r.Header.Get("Anthropic-Beta") != "a,b" || !strings.HasPrefix(r.Host, "127.0.0.1:") {
		t.Fatalf("recorded %+v", r)
	}
	if !bytes.Equal(reqs[1].Body, big) || reqs[1].Seq != 2 {
		t.Fatalf("10 MB body differs (len %d)", len(reqs[1].Body))
	}
	if got, want := fake.Last().Seq, 2; got != want {
		t.Fatalf("Last().Seq = %d", got)
	}
}

func TestScriptQueues(t *testing.T) {
	fake := newFake(t)
	fake.Push(Reply("first"), Reply("second"))
	fake.PushFor("/v1/chat/completions", Reply("chat"))
	if fake.Pending() != 3 {
		t.Fatalf("pending %d", fake.Pending())
	}
	answer := func(path string) string {
		resp := post(t, fake.URL()+path, []byte(`{"model":"m"}`), nil)
		return string(readAll(t, resp.Body))
	}
	for _, step := range []struct{ path, want string }{
		{"/v1/messages", `"text":"first"`},
		{"/v1/chat/completions", `"content": "chat"`},
		{"/v1/chat/completions", `"content": "second"`},
		{"/v1/messages", `"text":"` + DefaultText + `"`},
	} {
		if got := answer(step.path); !strings.Contains(got, step.want) {
			t.Fatalf("%s: want %s in %s", step.path, step.want, got)
		}
	}
	resp := post(t, fake.URL()+"/v2/unknown", nil, nil)
	readAll(t, resp.Body)
	if resp.StatusCode != 404 || fake.Count() != 5 {
		t.Fatalf("unknown path: %d, %d recorded", resp.StatusCode, fake.Count())
	}
	fake.Push(Reply("dropped"))
	fake.Reset()
	if fake.Count() != 0 || fake.Pending() != 0 || fake.Last().Seq != 0 {
		t.Fatal("Reset kept state")
	}
	readAll(t, post(t, fake.URL()+"/v1/messages", []byte(`{}`), nil).Body)
	if fake.Last().Seq != 6 {
		t.Fatalf("seq after reset %d", fake.Last().Seq)
	}
}

func TestDefaultOption(t *testing.T) {
	fake := New(Options{Default: &Script{Status: 500}})
	defer fake.Close()
	resp := post(t, fake.URL()+"/v1/messages", []byte(`{}`), nil)
	readAll(t, resp.Body)
	if resp.StatusCode != 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestConcurrentRequests(t *testing.T) {
	fake := newFake(t)
	const n = 32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := fmt.Appendf(nil, `{"model":"m%d","stream":true}`, i)
			req, _ := http.NewRequest(http.MethodPost, fake.URL()+"/v1/messages", bytes.NewReader(body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(resp.Body); err != nil || !bytes.Contains(buf.Bytes(), fmt.Appendf(nil, `"model":"m%d"`, i)) {
				t.Errorf("request %d: %v %s", i, err, buf.Bytes())
			}
		})
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, r := range fake.Requests() {
		seen[r.Seq] = true
		if !bytes.Equal(r.Sent, Render(r.Script, r)) {
			t.Errorf("request %d: sent differs from Render", r.Seq)
		}
	}
	if len(seen) != n || fake.Count() != n {
		t.Fatalf("%d distinct of %d", len(seen), fake.Count())
	}
}
