package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/test/fakeupstream"
)

var streamBody = []byte(`{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)

// Each event reaches the client while the upstream has not sent the
// next one yet: the gateway buffers nothing.
func TestStreamEventByEvent(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		body       []byte
	}{
		{"anthropic", "/v1/messages", streamBody},
		{"openai", "/v1/chat/completions", []byte(`{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[]}`)},
		{"gemini", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", []byte(`{"contents":[]}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			gate := fakeupstream.NewGate()
			sc := fakeupstream.Script{Chunks: []string{"one", " two", " three"}, Gate: gate, Pings: true}
			e.fake.Push(sc)
			type result struct {
				resp *http.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+tc.path, bytes.NewReader(tc.body))
				resp, err := http.DefaultClient.Do(req)
				done <- result{resp, err}
			}()
			<-gate.Reached(0)
			want := fakeupstream.RenderEvents(sc, e.fake.Last())
			gate.Next() // event 0: the gateway sends its headers with it
			r := <-done
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.resp.Body.Close()
			h := r.resp.Header
			if !isSSE(h.Get("Content-Type")) || h.Get("Cache-Control") != "no-cache" || r.resp.ContentLength != -1 || h.Get("Content-Length") != "" {
				t.Fatalf("stream headers %v", h)
			}
			if h.Get(HeaderRequestID) == "" {
				t.Fatal("no x-holdfast-request-id")
			}
			if tc.name == "anthropic" && (h.Get("Request-Id") == "" || h.Get("Anthropic-Ratelimit-Requests-Limit") == "") {
				t.Fatalf("provider headers not passed: %v", h)
			}
			if tc.name == "openai" && h.Get("X-Ratelimit-Limit-Requests") == "" {
				t.Fatalf("provider headers not passed: %v", h)
			}
			br := bufio.NewReader(r.resp.Body)
			for i := range want {
				if i > 0 {
					gate.Next()
				}
				ev, err := fakeupstream.ReadEvent(br)
				if !bytes.Equal(ev, want[i]) {
					t.Fatalf("event %d: %q, %v; want %q", i, ev, err, want[i])
				}
				if sent := e.fake.Last().Sent; !bytes.Equal(sent, bytes.Join(want[:i+1], nil)) {
					t.Fatalf("client has event %d while the upstream sent %d bytes more", i, len(sent)-len(bytes.Join(want[:i+1], nil)))
				}
			}
			if rest, _ := io.ReadAll(br); len(rest) != 0 {
				t.Fatalf("extra bytes %q", rest)
			}
		})
	}
}

// recordingTransport lets a test see when the gateway's upstream
// request context ends.
type recordingTransport struct {
	next     http.RoundTripper
	mu       sync.Mutex
	canceled []chan struct{}
	headers  []http.Header
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ch := make(chan struct{})
	rt.mu.Lock()
	rt.canceled = append(rt.canceled, ch)
	rt.headers = append(rt.headers, req.Header.Clone())
	rt.mu.Unlock()
	context.AfterFunc(req.Context(), func() { close(ch) })
	return rt.next.RoundTrip(req)
}

func (rt *recordingTransport) cancelled(i int) <-chan struct{} {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.canceled[i]
}

func TestClientDisconnectCancelsUpstream(t *testing.T) {
	rec := &recordingTransport{}
	e := newEnv(t, func(o *envOpts) {
		o.transport = func(next http.RoundTripper) http.RoundTripper { rec.next = next; return rec }
	})
	sc := fakeupstream.StallAfter(1, nil)
	e.fake.Push(sc)
	ctx, cancel := context.WithCancel(t.Context())
	resp := e.postCtx(ctx, "/v1/messages", streamBody, nil)
	br := bufio.NewReader(resp.Body)
	if ev, err := fakeupstream.ReadEvent(br); err != nil || !bytes.Equal(ev, fakeupstream.RenderEvents(sc, e.fake.Last())[0]) {
		t.Fatalf("first event %q %v", ev, err)
	}
	seq := e.fake.Last().Seq
	cancel()
	select {
	case <-rec.cancelled(0):
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream request was not cancelled after the client left")
	}
	// The fake upstream saw its client (the gateway) go away mid-response.
	<-e.fake.Done(seq)
	if !e.fake.Last().ClientGone {
		t.Fatal("the upstream did not see the request cancelled")
	}
	s := e.caller.waitSettle(t)
	// Charged what was reported before the cut: message_start's figures.
	if s.GetFailed() || s.GetUsage().GetInputTokens() == 0 || s.GetUsage().GetOutputTokens() != 1 {
		t.Fatalf("settle %v", s)
	}
	e.quiesce()
	if e.metric("holdfast_gateway_failures_total", "failure", "client_cancelled") != 1 {
		t.Fatalf("client_cancelled not counted; log %s", e.logs.String())
	}
	if n := len(e.fake.Last().Sent); n != len(fakeupstream.RenderEvents(sc, e.fake.Last())[0]) {
		t.Fatalf("upstream kept sending: %d bytes", n)
	}
}

func TestSSEStallEndsTheStream(t *testing.T) {
	rec := &recordingTransport{}
	e := newEnv(t, func(o *envOpts) {
		o.transport = func(next http.RoundTripper) http.RoundTripper { rec.next = next; return rec }
	})
	e.fake.Push(fakeupstream.StallAfter(3, nil))
	stream := e.anthropic("k").Messages.NewStreaming(t.Context(), anthropicParams("hi"))
	n := 0
	for stream.Next() {
		n++
		if n == 3 {
			// The gateway is now waiting on a silent upstream: let the
			// idle timeout pass on its clock.
			e.clk.Advance(DefaultConfig().StreamIdleTimeout)
		}
	}
	var apiErr *anthropic.Error
	if stream.Err() == nil || errors.As(stream.Err(), &apiErr) || n != 3 {
		t.Fatalf("after %d events: err %T %v (want a broken stream, nothing fabricated)", n, stream.Err(), stream.Err())
	}
	<-rec.cancelled(0)
	<-e.fake.Done(e.fake.Last().Seq)
	if !e.fake.Last().ClientGone {
		t.Fatal("the stalled upstream request was not cancelled")
	}
	s := e.caller.waitSettle(t)
	if s.GetFailed() || s.GetUsage().GetInputTokens() == 0 {
		t.Fatalf("settle %v", s)
	}
	e.quiesce()
	if e.metric("holdfast_gateway_failures_total", "failure", "sse_stall") != 1 {
		t.Fatalf("sse_stall not counted; log %s", e.logs.String())
	}
	if e.fake.Count() != 1 {
		t.Fatal("a stream with output was retried")
	}
}

// armClock signals every AfterFunc of a given duration, so a test knows
// when the gateway armed a particular timer.
type armClock struct {
	*clock.Fake
	d     time.Duration
	armed chan struct{}
}

func (c *armClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := c.Fake.AfterFunc(d, f)
	if d == c.d {
		c.armed <- struct{}{}
	}
	return t
}

func TestStallBeforeFirstEventIsRetried(t *testing.T) {
	var ac *armClock
	e := newEnv(t,
		withConfig(func(c *Config) { c.UpstreamHeaderTimeout, c.StreamIdleTimeout = 30*time.Second, 45*time.Second }),
		func(o *envOpts) {
			o.wrapClock = func(f *clock.Fake) clock.Clock {
				ac = &armClock{Fake: f, d: 45 * time.Second, armed: make(chan struct{}, 4)}
				return ac
			}
		})
	e.fake.Push(fakeupstream.StallAfter(0, nil))
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/v1/messages", bytes.NewReader(streamBody))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	<-ac.armed // the gateway got the headers and watches the silent body
	e.clk.Advance(45 * time.Second)
	resp := <-done
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	out := readAll(t, resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(out, []byte("message_stop")) || e.fake.Count() != 2 {
		t.Fatalf("status %d, %d upstream requests", resp.StatusCode, e.fake.Count())
	}
	if w := e.sleep.list(); len(w) != 1 {
		t.Fatalf("waits %v", w)
	}
}

// blockingTransport never answers: only the request's context ends it.
type blockingTransport struct{}

func (blockingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	<-req.Context().Done()
	return nil, context.Cause(req.Context())
}

func TestHeaderTimeoutRetriedThenGivenUp(t *testing.T) {
	var ac *armClock
	e := newEnv(t,
		withConfig(func(c *Config) { c.UpstreamHeaderTimeout = 20 * time.Second }),
		func(o *envOpts) {
			o.transport = func(http.RoundTripper) http.RoundTripper { return blockingTransport{} }
			o.wrapClock = func(f *clock.Fake) clock.Clock {
				ac = &armClock{Fake: f, d: 20 * time.Second, armed: make(chan struct{}, 4)}
				return ac
			}
		})
	done := make(chan *http.Response, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/v1/messages", bytes.NewReader(streamBody))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
		}
		done <- resp
	}()
	for range 3 { // the first attempt and two retries
		<-ac.armed
		e.clk.Advance(20 * time.Second)
	}
	resp := <-done
	if resp == nil {
		return
	}
	defer resp.Body.Close()
	env := decodeEnvelope(t, resp)
	if resp.StatusCode != 504 || env.Error.Type != "timeout_error" || resp.Header.Get("X-Should-Retry") != "false" {
		t.Fatalf("%d %+v %v", resp.StatusCode, env, resp.Header)
	}
	s := e.caller.waitSettle(t)
	e.quiesce()
	if !s.GetFailed() || e.metric("holdfast_gateway_failures_total", "failure", "upstream_timeout") != 3 || len(e.sleep.list()) != 2 {
		t.Fatalf("settle %v; log %s", s, e.logs.String())
	}
	// A non-streaming call waits longer for its headers: its generation
	// happens before them.
	c := &call{g: e.gw}
	if c.headerTimeout() != minNonStreamHeaderTimeout {
		t.Fatal(c.headerTimeout())
	}
}

// TestUpstreamHeaderDoesNotAlias: the forwarded header shares the client's
// value slices; setting the provider key or appending must never change
// the client's request header (a retry builds it again from there).
func TestUpstreamHeaderDoesNotAlias(t *testing.T) {
	beta := make([]string, 2, 4) // spare capacity, as net/http's parsed headers may have
	beta[0], beta[1] = "a", "b"
	in := http.Header{"X-Api-Key": {"client"}, "Anthropic-Beta": beta, "User-Agent": {"sdk"}}
	req, _ := http.NewRequest(http.MethodPost, "http://x", nil)
	req.Header = upstreamHeader(in)
	setProviderKey(req, TypeAnthropic, "provider")
	req.Header.Add("Anthropic-Beta", "c")
	req.Header.Set("User-Agent", "other")
	if got := in["Anthropic-Beta"]; len(got) != 2 || got[0] != "a" || got[1] != "b" || beta[:3][2] != "" || in.Get("User-Agent") != "sdk" || in.Get("X-Api-Key") != "client" {
		t.Fatalf("client header changed: %v", in)
	}
	if got := req.Header["Anthropic-Beta"]; len(got) != 3 || req.Header.Get("X-Api-Key") != "provider" {
		t.Fatalf("upstream header %v", req.Header)
	}
}
