package gateway

import (
	"sync/atomic"
	"time"
)

// Deferred admit commits (gateway.defer_admit_commits).
//
// With speculative_upstream the request goes upstream while the admit's
// write commits, and the client's first byte waits for that commit (the
// admit's output gate). A provider that takes tens or hundreds of
// milliseconds to its first byte, as every hosted LLM does, leaves the
// commit nothing to race: the admit may as well wait, up to
// runtime.commit_defer, to share a commit with the other admits and the
// settles of that while (actor.WithCommitDeferred), and the gateway starts
// the commit itself the moment the provider's answer begins (relay) or
// any answer is there to send (waitAdmit): it hurries the gate. At 1,000
// calls/s that is one commit per commit_defer instead of one per call.
//
// A provider whose first byte came sooner than the threshold (twice
// commit_defer) at any time in the last deferWindow does not get it: for
// it the deferral would add up to commit_defer to the client's first
// byte. Its streamed and unstreamed requests are tracked apart, and it
// starts out counted fast.

// firstBytesOf returns the tracker of c's kind of request at its provider.
func (c *call) firstBytesOf() *firstBytes {
	if c.stream {
		return &c.p.firstBytes[1]
	}
	return &c.p.firstBytes[0]
}

// deferWindow is how long a provider's first bytes must all have been
// slow before its admits are deferred.
const deferWindow = 10 * time.Second

// firstBytes tracks how soon a provider's answers begin. Safe for
// concurrent use.
type firstBytes struct {
	// since is the origin of the times below (the gateway's start): they
	// are durations on the monotonic clock, so a step of the wall clock
	// cannot make a provider look slow or fast.
	since time.Time
	// The last first byte that came sooner than the threshold (at start:
	// 0, counted fast), and the last one that did not.
	lastFast, lastSlow atomic.Int64
}

// observe records one first byte, ttfb after its request was sent.
func (f *firstBytes) observe(now time.Time, ttfb, threshold time.Duration) {
	at := int64(now.Sub(f.since))
	last := &f.lastSlow
	if ttfb < threshold {
		last = &f.lastFast
	}
	for { // never move back: calls finish out of order
		prev := last.Load()
		if at <= prev || last.CompareAndSwap(prev, at) {
			return
		}
	}
}

// slow reports whether every first byte of the last deferWindow was at or
// past the threshold, and there was at least one.
func (f *firstBytes) slow(now time.Time) bool {
	fast := f.lastFast.Load()
	return f.lastSlow.Load() > fast && int64(now.Sub(f.since))-fast >= int64(deferWindow)
}

// deferThreshold is the first-byte time from which a provider's admits
// are deferred, or 0 when none are: the option is off, runtime
// commit_defer is 0, or admits wait for their commit anyway (no early
// caller, or speculative_upstream off).
func deferThreshold(cfg Config, opts Options) time.Duration {
	if !cfg.DeferAdmitCommits || opts.CommitDefer <= 0 || opts.Early == nil || !cfg.SpeculativeUpstream {
		return 0
	}
	return 2 * opts.CommitDefer
}
