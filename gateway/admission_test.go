package gateway

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/holdfast/holdfast/gateway/envelope"
	"github.com/holdfast/holdfast/test/fakeupstream"
)

func TestConcurrencyLimit(t *testing.T) {
	for _, tc := range []struct {
		configured int
		nofile     uint64
		want       int64
	}{
		{5, 20000, 5},
		{-1, 20000, 0},
		{0, 0, 0},
		{0, 20000, (20000 - 256) / 2},
		{0, 300, 64},
		{0, 1 << 40, (1<<30 - 256) / 2},
	} {
		if got := concurrencyLimit(tc.configured, tc.nofile); got != tc.want {
			t.Errorf("concurrencyLimit(%d, %d) = %d, want %d", tc.configured, tc.nofile, got, tc.want)
		}
	}
}

// A call beyond max_concurrent_calls is answered at once, in its family's
// envelope, without reaching an actor or the upstream; once a slot frees
// calls go through again.
func TestMaxConcurrentCalls(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.MaxConcurrentCalls = 1 }))
	gate := fakeupstream.NewGate()
	e.fake.Push(fakeupstream.Script{Chunks: []string{"held"}, Gate: gate})
	held := postAsync(t, e, "/v1/messages", streamBody)
	<-gate.Reached(0) // one call in flight, holding the only slot
	if v := e.metric("holdfast_gateway_calls_active"); v != 1 {
		t.Fatalf("calls_active %v, want 1", v)
	}
	admitsBefore := len(e.caller.admitList())
	for _, tc := range []struct {
		path string
		body []byte
		fam  envelope.Family
		want string
	}{
		{"/v1/messages", streamBody, envelope.Anthropic, `"overloaded_error"`},
		{"/v1/chat/completions", []byte(`{"model":"gpt-4o","messages":[]}`), envelope.OpenAI, `"server_error"`},
		{"/v1beta/models/gemini-2.5-flash:generateContent", []byte(`{"contents":[]}`), envelope.Gemini, `"UNAVAILABLE"`},
	} {
		resp := e.post(tc.path, tc.body, nil)
		b := readAll(t, resp.Body)
		if want := envelope.Status(tc.fam, envelope.Unavailable); resp.StatusCode != want || !bytes.Contains(b, []byte(tc.want)) || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d %s (retry-after %q), want %d with %s", tc.path, resp.StatusCode, b, resp.Header.Get("Retry-After"), want, tc.want)
		}
	}
	if n := len(e.caller.admitList()); n != admitsBefore || e.fake.Count() != 1 {
		t.Fatalf("refused calls reached the actors (%d admits) or the upstream (%d requests)", n-admitsBefore, e.fake.Count())
	}
	if v := e.metric("holdfast_gateway_failures_total", "failure", "gateway_overloaded"); v != 3 {
		t.Fatalf("gateway_overloaded failures %v, want 3", v)
	}
	gate.Open()
	if r := <-held; r.err != nil || r.resp.StatusCode != http.StatusOK {
		t.Fatalf("the held call: %v %v", r.resp, r.err)
	}
	if resp := e.post("/v1/messages", streamBody, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the slot freed: %d", resp.StatusCode)
	} else {
		readAll(t, resp.Body)
	}
}
