package gateway

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/gateway/envelope"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/fakeupstream"
	"google.golang.org/protobuf/proto"
)

// heldGate is an admit's output gate a test opens: Wait blocks until
// open, then returns err.
type heldGate struct {
	open    chan struct{}
	err     error
	waits   atomic.Int32
	hurries atomic.Int32
	called  chan struct{} // closed at the first Wait
}

func (g *heldGate) Hurry()         { g.hurries.Add(1) }
func (g *heldGate) Resolved() bool { return false }

func newHeldGate(err error) *heldGate {
	return &heldGate{open: make(chan struct{}), err: err, called: make(chan struct{})}
}

func (g *heldGate) Wait(context.Context) error {
	if g.waits.Add(1) == 1 {
		close(g.called)
	}
	<-g.open
	return g.err
}

// earlyCaller answers admits through the fake caller and hands out one
// held gate per admit.
type earlyCaller struct {
	f        *fakeCaller
	gates    chan *heldGate
	err      error // the gates' Wait result
	calls    atomic.Int32
	deferred atomic.Int32 // calls marked actor.WithCommitDeferred
	// resolved: hand out gates open already (resolvedGate), as the
	// runtime does for an admit with nothing to wait for.
	resolved *resolvedGate
}

// resolvedGate is a gate that has opened (or failed) already.
type resolvedGate struct {
	err   error
	waits atomic.Int32
}

func (g *resolvedGate) Wait(context.Context) error { g.waits.Add(1); return g.err }
func (g *resolvedGate) Hurry()                     {}
func (g *resolvedGate) Resolved() bool             { return true }

func (e *earlyCaller) CallEarly(ctx context.Context, id actor.ID, msg proto.Message) (proto.Message, actor.OutputGate, error) {
	e.calls.Add(1)
	if actor.CommitDeferred(ctx) {
		e.deferred.Add(1)
	}
	resp, err := e.f.Call(ctx, id, msg)
	if e.resolved != nil {
		return resp, e.resolved, err
	}
	g := newHeldGate(e.err)
	e.gates <- g
	return resp, g, err
}

func speculativeEnv(t *testing.T, gateErr error, mods ...func(*envOpts)) (*env, *earlyCaller) {
	ec := &earlyCaller{gates: make(chan *heldGate, 16), err: gateErr}
	e := newEnv(t, append([]func(*envOpts){func(o *envOpts) { o.early = ec }}, mods...)...)
	ec.f = e.caller
	return e, ec
}

type postResult struct {
	resp *http.Response
	body []byte
	err  error
}

func postAsync(t *testing.T, e *env, path string, body []byte) <-chan postResult {
	done := make(chan postResult, 1)
	go func() {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- postResult{err: err}
			return
		}
		b := readAll(t, resp.Body)
		resp.Body.Close()
		done <- postResult{resp: resp, body: b}
	}()
	return done
}

// The upstream request leaves while the admit is not durable yet; the
// client gets nothing, not even headers, until it is.
func TestSpeculativeUpstreamHoldsTheClientUntilDurable(t *testing.T) {
	e, ec := speculativeEnv(t, nil)
	done := postAsync(t, e, "/v1/messages", streamBody)
	g := <-ec.gates
	<-g.called // waited on at once, not at the first byte
	// The upstream gets the request and sends its whole answer while the
	// admit's gate is closed.
	waitUntil(t, "the upstream request", func() bool { return e.fake.Count() == 1 })
	<-e.fake.Done(e.fake.Last().Seq)
	select {
	case r := <-done:
		t.Fatalf("the client got an answer (%v) before the admit was durable", r.err)
	default:
	}
	close(g.open)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.resp.StatusCode != http.StatusOK || !bytes.Contains(r.body, []byte("message_stop")) {
		t.Fatalf("status %d body %q", r.resp.StatusCode, r.body)
	}
	e.caller.waitSettle(t)
	if n := g.waits.Load(); n != 1 {
		t.Fatalf("the gate was waited on %d times, want once", n)
	}
}

// An admit that does not become durable: the upstream request is
// cancelled, the client gets admit_unavailable (Anthropic: 529) and none of the
// provider's bytes, and the call is not settled.
func TestSpeculativeUpstreamAdmitNotDurable(t *testing.T) {
	e, ec := speculativeEnv(t, actor.ErrStorage)
	e.fake.Push(fakeupstream.StallAfter(1, nil)) // one event, then silence until cancelled
	done := postAsync(t, e, "/v1/messages", streamBody)
	g := <-ec.gates
	waitUntil(t, "the upstream's first event", func() bool { return e.fake.Count() == 1 && len(e.fake.Last().Sent) > 0 })
	close(g.open) // and the gate reports the commit failed
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if want := envelope.Status(envelope.Anthropic, envelope.Unavailable); r.resp.StatusCode != want || !bytes.Contains(r.body, []byte(`"overloaded_error"`)) {
		t.Fatalf("status %d body %s, want %d overloaded_error (Anthropic's unavailable)", r.resp.StatusCode, r.body, want)
	}
	if bytes.Contains(r.body, []byte("message_start")) {
		t.Fatalf("the provider's bytes reached the client: %s", r.body)
	}
	<-e.fake.Done(e.fake.Last().Seq)
	if !e.fake.Last().ClientGone {
		t.Fatal("the upstream request was not cancelled")
	}
	e.quiesce()
	if n := len(e.caller.settles); n != 0 {
		t.Fatalf("%d settles for a call whose admit was not durable", n)
	}
	if v := e.metric("holdfast_gateway_failures_total", "failure", "admit_unavailable"); v != 1 {
		t.Fatalf("admit_unavailable failures = %v, want 1", v)
	}
}

// A gate open already when the admit returns is waited on at once, on
// the call's goroutine, and its result counts as a pending one's: nil
// lets the answer through, an error stops it (admit_unavailable, no
// settle).
func TestSpeculativeResolvedGate(t *testing.T) {
	for _, gateErr := range []error{nil, actor.ErrStorage} {
		e, ec := speculativeEnv(t, nil)
		g := &resolvedGate{err: gateErr}
		ec.resolved = g
		r := <-postAsync(t, e, "/v1/messages", streamBody)
		if r.err != nil {
			t.Fatal(r.err)
		}
		if n := g.waits.Load(); n != 1 {
			t.Fatalf("gate error %v: waited on %d times, want once", gateErr, n)
		}
		if gateErr == nil {
			if r.resp.StatusCode != http.StatusOK || !bytes.Contains(r.body, []byte("message_stop")) {
				t.Fatalf("status %d body %q", r.resp.StatusCode, r.body)
			}
			e.caller.waitSettle(t)
			continue
		}
		if want := envelope.Status(envelope.Anthropic, envelope.Unavailable); r.resp.StatusCode != want || bytes.Contains(r.body, []byte("message_start")) {
			t.Fatalf("status %d body %s, want %d and none of the provider's bytes", r.resp.StatusCode, r.body, want)
		}
		e.quiesce()
		if n := len(e.caller.settles); n != 0 {
			t.Fatalf("%d settles for a call whose admit was not durable", n)
		}
		if v := e.metric("holdfast_gateway_failures_total", "failure", "admit_unavailable"); v != 1 {
			t.Fatalf("admit_unavailable failures = %v, want 1", v)
		}
	}
}

// A refusal is an answer too: it waits for the admit's gate.
func TestSpeculativeRefusalWaitsForTheGate(t *testing.T) {
	e, ec := speculativeEnv(t, nil)
	e.caller.decide = func(int, *holdfastv1.AccountAdmitRequest) (*holdfastv1.AccountAdmitResponse, error) {
		return &holdfastv1.AccountAdmitResponse{RefusedBy: "requests_per_minute", RetryAfterMs: 1500}, nil
	}
	done := postAsync(t, e, "/v1/messages", streamBody)
	g := <-ec.gates
	<-g.called
	select {
	case <-done:
		t.Fatal("the refusal left before the admit was durable")
	default:
	}
	close(g.open)
	r := <-done
	if r.err != nil || r.resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("got %v %v, want 429", r.resp, r.err)
	}
	if n := e.fake.Count(); n != 0 {
		t.Fatalf("a refused call reached the upstream %d times", n)
	}
}

// speculative_upstream: false waits for every admit in the caller.
func TestSpeculativeUpstreamOff(t *testing.T) {
	e, ec := speculativeEnv(t, errors.New("unused"), withConfig(func(c *Config) { c.SpeculativeUpstream = false }))
	r := <-postAsync(t, e, "/v1/messages", streamBody)
	if r.err != nil || r.resp.StatusCode != http.StatusOK {
		t.Fatalf("got %v %v", r.resp, r.err)
	}
	if n := ec.calls.Load(); n != 0 {
		t.Fatalf("CallEarly used %d times with speculative_upstream off", n)
	}
}

// waitUntil polls cond until it holds; fails after a generous guard (a
// deadlock guard, not a timing assertion).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// The admit's gate is waited on at once, not when the provider's first
// byte arrives: until then the runtime counts the call in flight and a
// cluster holds the partition's turn gate (handoffs, drains wait), and a
// provider's first byte may be seconds away.
func TestSpeculativeGateWaitedBeforeTheFirstByte(t *testing.T) {
	e, ec := speculativeEnv(t, nil)
	up := fakeupstream.NewGate()
	e.fake.Push(fakeupstream.Script{Chunks: []string{"late"}, Gate: up})
	done := postAsync(t, e, "/v1/messages", streamBody)
	g := <-ec.gates
	<-up.Reached(0) // the provider holds its first byte
	select {
	case <-g.called:
	case <-time.After(10 * time.Second):
		t.Fatal("the admit's gate was not waited on while the provider was silent")
	}
	close(g.open)
	up.Open()
	if r := <-done; r.err != nil || r.resp.StatusCode != http.StatusOK {
		t.Fatalf("got %v %v", r.resp, r.err)
	}
}
