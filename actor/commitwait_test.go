package actor_test

import (
	"context"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// commitWaits returns holdfast_commit_wait_seconds' count and sum.
func commitWaits(t *testing.T, reg *prometheus.Registry) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "holdfast_commit_wait_seconds" {
			var h *dto.Histogram = mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatal("no holdfast_commit_wait_seconds")
	return 0, 0
}

// holdfast_commit_wait_seconds counts what replies wait for: an urgent
// write from when it was queued, and a deferred write from when it was
// hurried (OutputGate.Hurry), not from when it was queued. A deferred write
// nobody hurried is not counted.
func TestCommitWaitCountsHurriedDeferredWritesFromTheHurry(t *testing.T) {
	gs := actor.NewGatedStore(openBolt(t, t.TempDir()))
	t.Cleanup(gs.Open)
	reg := prometheus.NewRegistry()
	e := newEnv(t, gs, func(c *actor.Config) {
		c.CommitDefer = actor.MaxCommitDefer // the fake clock never gets there
		c.Registerer = reg
	})
	e.fn("write", func(tn *actor.Turn) (proto.Message, error) {
		return wrapperspb.String("ok"), tn.Put("k", []byte("v"))
	})
	deferredPut(e)

	// A deferred CallEarly, hurried 7 ms after it queued; the commit then
	// takes 3 ms.
	_, gate, err := e.rt.CallEarly(actor.WithCommitDeferred(context.Background()), ref("fn", "a"), wrapperspb.String("write"))
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(7 * time.Millisecond)
	gs.Hold()
	gate.Hurry()
	if n := <-gs.Entered; n != 1 {
		t.Fatalf("the hurried commit carries %d writes", n)
	}
	e.clk.Advance(3 * time.Millisecond)
	gs.Open()
	if err := gate.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the commit observed", func() bool { n, _ := commitWaits(t, reg); return n == 1 })
	if _, sum := commitWaits(t, reg); sum < 0.0029 || sum > 0.0031 {
		t.Fatalf("the hurried write waited %v s by the metric, want 0.003 (from the hurry, not the queueing)", sum)
	}

	// A deferred write nobody hurries rides along in an urgent commit: the
	// urgent write is counted, the deferred one is not.
	deferred := goCall(e, "d", "defer")
	waitFor(t, "the deferred write queued", func() bool { return e.rt.EnqueuedSeq() == 2 })
	if err := e.put("kv", "u", "k", "v", ""); err != nil {
		t.Fatal(err)
	}
	within(t, "the deferred call", deferred)
	waitFor(t, "the second commit observed", func() bool { n, _ := commitWaits(t, reg); return n >= 2 })
	if n, _ := commitWaits(t, reg); n != 2 {
		t.Fatalf("%d writes counted, want 2 (the deferred rider is not waited on)", n)
	}
}
