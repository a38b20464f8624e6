package gateway

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/holdfast/holdfast/gateway/vkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/fakeupstream"
)

// recordingSink is a fake EventSink: it keeps every event.
type recordingSink struct {
	mu  sync.Mutex
	evs []Event
}

func (s *recordingSink) Publish(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evs = append(s.evs, ev)
}

func (s *recordingSink) events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.evs)
}

func (s *recordingSink) JSON(t *testing.T) string {
	var b strings.Builder
	for _, ev := range s.events() {
		j, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

func withSink(s EventSink) func(*envOpts) { return func(o *envOpts) { o.events = s } }

func TestUsageEventFields(t *testing.T) {
	sink := &recordingSink{}
	e := newEnv(t, keysMode, withSink(sink))
	vk := newVKey(t, "erin")
	parsed, err := vkey.Parse(vk)
	if err != nil {
		t.Fatal(err)
	}
	const prompt, answer = "PROMPT-TEXT-must-not-be-published", "ANSWER-TEXT-must-not-be-published"
	e.fake.Push(fakeupstream.Script{Chunks: []string{answer, " end"},
		Usage: &fakeupstream.Usage{InputTokens: 12, OutputTokens: 7, CacheCreation5m: 100, CacheCreation1h: 50, CacheRead: 300}})
	body := []byte(`{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"` + prompt + `"}]}`)
	resp := e.post("/v1/messages", body, http.Header{"X-Api-Key": {vk}})
	if got := string(readAll(t, resp.Body)); resp.StatusCode != 200 || !strings.Contains(got, answer) {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
	s := e.caller.waitSettle(t)
	e.quiesce()

	evs := sink.events()
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1: %+v", len(evs), evs)
	}
	ev := evs[0]
	want := Event{
		Time: testStart, RequestID: resp.Header.Get(HeaderRequestID), User: "erin", KeyID: parsed.ID,
		Route: "anthropic.messages", Provider: "anthropic", Model: "claude-sonnet-4-5", Status: 200, Streamed: true,
		InputTokens: 12, OutputTokens: 7, CacheCreationInputTokens: 150, CacheReadInputTokens: 300,
		CostNanos: s.GetCostNanos(), Attempts: 1, SampleRate: 1,
		LatencyMs: ev.LatencyMs, TTFBMs: ev.TTFBMs, // wall figures on the fake clock: checked below
	}
	if ev != want {
		t.Fatalf("event\n got %+v\nwant %+v", ev, want)
	}
	if ev.RequestID == "" || ev.CostNanos == 0 || ev.LatencyMs < 0 || ev.TTFBMs < 0 {
		t.Fatalf("event %+v", ev)
	}
	// The same figures the actor was charged.
	u := s.GetUsage()
	if u.GetInputTokens() != ev.InputTokens || u.GetOutputTokens() != ev.OutputTokens ||
		u.GetCacheCreationInputTokens() != ev.CacheCreationInputTokens || u.GetCacheReadInputTokens() != ev.CacheReadInputTokens {
		t.Fatalf("settle %v vs event %+v", u, ev)
	}
	// Stable JSON names; no key, prompt or answer text.
	js := sink.JSON(t)
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.TrimSpace(js)), &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	wantKeys := []string{"attempts", "cache_creation_input_tokens", "cache_read_input_tokens", "cost_nanos", "estimated",
		"input_tokens", "key_id", "latency_ms", "model", "output_tokens", "provider", "request_id", "route", "sample_rate",
		"status", "streamed", "time", "ttfb_ms", "user"}
	if !slices.Equal(keys, wantKeys) {
		t.Fatalf("JSON fields %v, want %v", keys, wantKeys)
	}
	for name, secret := range map[string]string{"virtual key": vk, "provider key": anthropicKey, "prompt": prompt, "answer": answer} {
		if strings.Contains(js, secret) {
			t.Errorf("%s in the event: %s", name, js)
		}
	}
}

// Every failure is published; successes at success_sample_rate, exactly.
func TestUsageEventsSampling(t *testing.T) {
	sink := &recordingSink{}
	e := newEnv(t, withSink(sink), withConfig(func(c *Config) { c.UsageEvents.SuccessSampleRate = 0.25 }))
	for range 8 {
		readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	}
	// Upstream 500 given up after the retries.
	e.fake.Push(fakeupstream.HTTPError(500), fakeupstream.HTTPError(500), fakeupstream.HTTPError(500))
	if resp := e.post("/v1/messages", streamBody, nil); resp.StatusCode != 500 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// An in-stream error under a 200.
	e.fake.Push(fakeupstream.StreamErrorAfter(2))
	readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	// Bad input (a user is known: auth none), and a refusal by the actor.
	readAll(t, e.post("/v1/messages", []byte(`{"messages":[]}`), nil).Body)
	e.caller.decide = func(n int, r *holdfastv1.AccountAdmitRequest) (*holdfastv1.AccountAdmitResponse, error) {
		return &holdfastv1.AccountAdmitResponse{RefusedBy: "requests_per_minute", RetryAfterMs: 1000}, nil
	}
	if resp := e.post("/v1/messages", streamBody, nil); resp.StatusCode != 429 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// No route: no user to file it under, not published.
	readAll(t, e.post("/v1/nope", []byte(`{}`), nil).Body)
	e.quiesce()

	var ok int
	failures := map[string]Event{}
	for _, ev := range sink.events() {
		if ev.User != LocalUser {
			t.Errorf("event of user %q", ev.User)
		}
		if ev.ErrorType == "" && ev.ProviderErrorType == "" && ev.Status < 400 {
			ok++
			if ev.SampleRate != 0.25 {
				t.Errorf("success sampled at %v", ev.SampleRate)
			}
			continue
		}
		if ev.SampleRate != 1 {
			t.Errorf("failure sampled at %v: %+v", ev.SampleRate, ev)
		}
		failures[ev.ErrorType] = ev
	}
	if ok != 2 {
		t.Errorf("%d successes published of 8 at rate 0.25, want exactly 2", ok)
	}
	if ev := failures["upstream_5xx"]; ev.Status != 500 || ev.Attempts != 3 {
		t.Errorf("upstream 500: %+v", ev)
	}
	if ev := failures["in_stream_overloaded"]; ev.Status != 200 || ev.ProviderErrorType != "overloaded_error" {
		t.Errorf("in-stream error: %+v (all: %v)", ev, failures)
	}
	if ev := failures["bad_request"]; ev.Status != 400 {
		t.Errorf("bad request: %+v", ev)
	}
	if ev := failures["rate_limited"]; ev.Status != 429 || ev.Provider != "anthropic" {
		t.Errorf("refusal: %+v", ev)
	}
	if len(failures) != 4 {
		t.Errorf("failures published: %v", failures)
	}
	if sent, out := e.metric("holdfast_gateway_usage_events_total", "result", "sent"), e.metric("holdfast_gateway_usage_events_total", "result", "sampled_out"); sent != 6 || out != 6 {
		t.Errorf("usage_events_total sent=%v sampled_out=%v, want 6 and 6", sent, out)
	}
}

func TestUsageEventsOffAndRateZero(t *testing.T) {
	off := &recordingSink{}
	e := newEnv(t, withSink(off), withConfig(func(c *Config) { c.UsageEvents.Enabled = false }))
	e.fake.Push(fakeupstream.HTTPError(400))
	readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	e.quiesce()
	if n := len(off.events()); n != 0 {
		t.Fatalf("usage_events.enabled false published %d events", n)
	}

	zero := &recordingSink{}
	e = newEnv(t, withSink(zero), withConfig(func(c *Config) { c.UsageEvents.SuccessSampleRate = 0 }))
	e.fake.Push(fakeupstream.HTTPError(400))
	readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	for range 5 {
		readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	}
	e.quiesce()
	evs := zero.events()
	if len(evs) != 1 || evs[0].Status != 400 || evs[0].ErrorType != "upstream_4xx" {
		t.Fatalf("rate 0: %+v", evs)
	}
}

func TestUsageEventsConfigValidate(t *testing.T) {
	for _, r := range []float64{-0.1, 1.5} {
		c := DefaultConfig()
		c.UsageEvents.SuccessSampleRate = r
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "gateway.usage_events.success_sample_rate") {
			t.Errorf("rate %v: %v", r, err)
		}
	}
	if d := DefaultConfig().UsageEvents; !d.Enabled || d.SuccessSampleRate != 1 {
		t.Errorf("defaults %+v", d)
	}
}

func TestSamplerKeepsExactShare(t *testing.T) {
	for _, rate := range []float64{0, 0.01, 0.1, 1.0 / 3, 0.5, 0.99, 1} {
		s := &sampler{rate: rate}
		kept := 0
		for range 1000 {
			if s.keep() {
				kept++
			}
		}
		if want := int(1000 * rate); kept != want && kept != want+1 {
			t.Errorf("rate %v kept %d of 1000", rate, kept)
		}
	}
}
