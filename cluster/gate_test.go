package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func newTestGate() (*gate, *atomic.Int32) {
	var drained atomic.Int32
	g := newGate(4, func(int, uint64) bool { return true }, func(int) { drained.Add(1) })
	return g, &drained
}

// enterAsync starts an Enter and returns a channel with its error.
func enterAsync(g *gate, p int) chan error {
	ch := make(chan error, 1)
	go func() {
		_, done, err := g.Enter(context.Background(), p)
		if done != nil {
			done()
		}
		ch <- err
	}()
	return ch
}

func blocked(ch chan error) bool {
	select {
	case <-ch:
		return false
	case <-time.After(50 * time.Millisecond):
		return true
	}
}

func TestGateRefusesUnservedWithHint(t *testing.T) {
	g, _ := newTestGate()
	_, _, err := g.Enter(context.Background(), 1)
	var no *NotOwnerError
	if !errors.As(err, &no) {
		t.Fatalf("Enter on an unserved partition: %v", err)
	}
	g.serve(1, 3)
	epoch, done, err := g.Enter(context.Background(), 1)
	if err != nil || epoch != 3 {
		t.Fatalf("Enter = %d, %v", epoch, err)
	}
	done()
	g.stop(1, "node-9")
	if _, _, err := g.Enter(context.Background(), 1); !errors.As(err, &no) || no.Hint != "node-9" {
		t.Fatalf("after stop: %v", err)
	}
}

func TestGateHoldWaitsForRunningTurnsThenReleases(t *testing.T) {
	g, drained := newTestGate()
	g.serve(0, 1)
	_, done, err := g.Enter(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	g.hold(0)
	if drained.Load() != 0 {
		t.Fatal("drained with a turn running")
	}
	waiting := enterAsync(g, 0)
	if !blocked(waiting) {
		t.Fatal("a call on a held partition did not wait")
	}
	done()
	if drained.Load() != 1 {
		t.Fatalf("drained %d times, want 1", drained.Load())
	}
	g.stop(0, "node-2") // ReleaseHeld
	var no *NotOwnerError
	if err := <-waiting; !errors.As(err, &no) || no.Hint != "node-2" {
		t.Fatalf("released call: %v, want NOT_OWNER naming node-2", err)
	}
}

func TestGateResumeLetsHeldCallsRun(t *testing.T) {
	g, drained := newTestGate()
	g.serve(0, 1)
	g.hold(0)
	if drained.Load() != 1 {
		t.Fatal("an idle partition's hold did not report drained at once")
	}
	waiting := enterAsync(g, 0)
	if !blocked(waiting) {
		t.Fatal("did not wait")
	}
	g.resume(0)
	if err := <-waiting; err != nil {
		t.Fatalf("after resume: %v", err)
	}
}

func TestGateArrivingWaitsForServe(t *testing.T) {
	g, _ := newTestGate()
	g.arrive(2)
	waiting := enterAsync(g, 2)
	if !blocked(waiting) {
		t.Fatal("a call on an arriving partition did not wait")
	}
	g.serve(2, 5)
	if err := <-waiting; err != nil {
		t.Fatalf("after serve: %v", err)
	}
	// An arrival that is dropped lets the waiting calls go (NOT_OWNER).
	g.arrive(3)
	waiting = enterAsync(g, 3)
	if !blocked(waiting) {
		t.Fatal("did not wait")
	}
	g.unarrive(3)
	var no *NotOwnerError
	if err := <-waiting; !errors.As(err, &no) {
		t.Fatalf("after unarrive: %v", err)
	}
}

func TestGateWaitBoundedByContext(t *testing.T) {
	g, _ := newTestGate()
	g.serve(0, 1)
	g.hold(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := g.Enter(ctx, 0)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Enter with an ended context on a held partition: %v", err)
	}
}
