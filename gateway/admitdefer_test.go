package gateway

import (
	"net/http"
	"testing"
	"time"
)

// A provider counts as slow only when every first byte of the last
// deferWindow came at or past the threshold, and there was one.
func TestFirstBytesSlow(t *testing.T) {
	const threshold = 20 * time.Millisecond
	t0 := time.Unix(1_700_000_000, 0)
	f := firstBytes{since: t0} // as buildProviders: fast until shown slow
	if f.slow(t0.Add(time.Hour)) {
		t.Fatal("slow with no slow first byte seen")
	}
	f.observe(t0.Add(time.Second), 500*time.Millisecond, threshold)
	if f.slow(t0.Add(deferWindow - time.Nanosecond)) {
		t.Fatal("slow before deferWindow passed since the last fast first byte")
	}
	if !f.slow(t0.Add(deferWindow)) {
		t.Fatal("not slow: deferWindow of slow first bytes only")
	}
	fast := t0.Add(deferWindow + time.Second)
	f.observe(fast, threshold-time.Nanosecond, threshold)
	if f.slow(fast.Add(time.Second)) {
		t.Fatal("still slow right after a fast first byte")
	}
	f.observe(fast.Add(2*time.Second), threshold, threshold) // at the threshold: slow
	if f.slow(fast.Add(deferWindow - time.Nanosecond)) {
		t.Fatal("slow before deferWindow passed since the fast one")
	}
	if !f.slow(fast.Add(deferWindow)) {
		t.Fatal("not slow deferWindow after the last fast first byte, slow ones since")
	}
}

// deferThreshold: off unless every condition holds.
func TestDeferThreshold(t *testing.T) {
	ec := &earlyCaller{}
	on := DefaultConfig()
	if d := deferThreshold(on, Options{CommitDefer: 10 * time.Millisecond, Early: ec}); d != 20*time.Millisecond {
		t.Fatalf("threshold %v, want 2× commit_defer", d)
	}
	off := on
	off.DeferAdmitCommits = false
	noSpec := on
	noSpec.SpeculativeUpstream = false
	for name, d := range map[string]time.Duration{
		"defer_admit_commits false": deferThreshold(off, Options{CommitDefer: 10 * time.Millisecond, Early: ec}),
		"speculative_upstream off":  deferThreshold(noSpec, Options{CommitDefer: 10 * time.Millisecond, Early: ec}),
		"commit_defer 0":            deferThreshold(on, Options{Early: ec}),
		"no early caller":           deferThreshold(on, Options{CommitDefer: 10 * time.Millisecond}),
	} {
		if d != 0 {
			t.Errorf("%s: threshold %v, want 0 (never defer)", name, d)
		}
	}
}

// A slow provider's admit goes out marked actor.WithCommitDeferred, and
// the gateway hurries its gate before the client's first byte; a fast
// provider's does not, and each first byte is observed.
func TestSlowProvidersAdmitIsDeferredAndHurried(t *testing.T) {
	e, ec := speculativeEnv(t, nil, func(o *envOpts) { o.commitDefer = 10 * time.Millisecond })
	var p *provider
	for _, q := range e.gw.all {
		if q.name == "anthropic" {
			p = q
		}
	}

	call := func() *heldGate {
		t.Helper()
		done := postAsync(t, e, "/v1/messages", streamBody)
		g := <-ec.gates
		waitUntil(t, "the upstream's answer", func() bool { return e.fake.Count() > 0 })
		<-e.fake.Done(e.fake.Last().Seq)
		close(g.open)
		r := <-done
		if r.err != nil || r.resp.StatusCode != http.StatusOK {
			t.Fatalf("call: %v %v", r.err, r.resp)
		}
		return g
	}

	// Fast (the fake clock stands still during a call: every first byte
	// at 0), a second after the provider was built.
	e.clk.Advance(time.Second)
	g := call()
	if n := ec.deferred.Load(); n != 0 {
		t.Fatalf("%d admits deferred for a provider counted fast", n)
	}
	if got := p.firstBytes[1].lastFast.Load(); got != int64(time.Second) {
		t.Fatalf("the first byte was not observed as fast (lastFast %d)", got)
	}
	if g.hurries.Load() == 0 {
		t.Fatal("the gate was not hurried (a no-op for an undeferred admit, but waitAdmit calls it on every path)")
	}

	// Slow: a slow first byte, then deferWindow with no fast one.
	e.clk.Advance(time.Second)
	p.firstBytes[0].observe(e.clk.Now(), time.Second, e.gw.deferFrom) // an unstreamed answer: not the streams'
	e.clk.Advance(deferWindow)
	call()
	if n := ec.deferred.Load(); n != 0 {
		t.Fatalf("a slow unstreamed answer deferred a stream's admit (%d)", n)
	}
	e.clk.Advance(time.Second)
	p.firstBytes[1].observe(e.clk.Now(), time.Second, e.gw.deferFrom)
	e.clk.Advance(deferWindow)
	g = call()
	if n := ec.deferred.Load(); n != 1 {
		t.Fatalf("%d admits deferred, want 1", n)
	}
	if g.hurries.Load() == 0 {
		t.Fatal("the deferred admit's gate was never hurried")
	}
	if v := e.metric("holdfast_gateway_admits_deferred_total"); v != 1 {
		t.Fatalf("admits_deferred_total %v, want 1", v)
	}
}

// Calls finish out of order: an older first byte never moves a time back.
func TestFirstBytesNeverMoveBack(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	f := firstBytes{since: t0}
	f.observe(t0.Add(5*time.Second), time.Second, 20*time.Millisecond)
	f.observe(t0.Add(3*time.Second), time.Second, 20*time.Millisecond)
	if got := f.lastSlow.Load(); got != int64(5*time.Second) {
		t.Fatalf("lastSlow %v, want 5s", time.Duration(got))
	}
}
