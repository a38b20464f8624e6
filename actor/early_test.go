package actor_test

import (
	"context"
	"errors"
	"testing"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func earlyPut(t *testing.T, e *env, key, k, v, reqID string) (actor.OutputGate, error) {
	t.Helper()
	_, gate, err := e.rt.CallEarly(context.Background(), ref("kv", key), &holdfastv1.KvPutRequest{RequestId: reqID, Entries: []*holdfastv1.Entry{{Key: k, Value: []byte(v)}}})
	if gate == nil {
		t.Fatal("CallEarly returned no gate")
	}
	return gate, err
}

// The reply comes back while the commit is held; Wait returns only once
// the write is durable.
func TestCallEarlyRepliesBeforeDurableAndGateWaits(t *testing.T) {
	gs := actor.NewGatedStore(openBolt(t, t.TempDir()))
	e := newEnv(t, gs)
	gs.Hold()
	gate, err := earlyPut(t, e, "a", "k", "v1", "")
	if err != nil {
		t.Fatal(err)
	}
	<-gs.Entered // the turn's commit is at the store's gate: not durable
	waited := make(chan error, 1)
	go func() { waited <- gate.Wait(context.Background()) }()
	select {
	case err := <-waited:
		t.Fatalf("Wait returned (%v) before the write was durable", err)
	default:
	}
	if d := e.rt.DurableSeq(); d != 0 {
		t.Fatalf("durable seq %d with the only commit held", d)
	}
	gs.Open()
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if d := e.rt.DurableSeq(); d == 0 {
		t.Fatal("Wait returned nil with nothing durable")
	}
	if err := gate.Wait(context.Background()); err != nil {
		t.Fatalf("second Wait: %v (want the first result)", err)
	}
	// Shutdown does not wait for a gate already waited on.
	if err := e.rt.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A failed commit replaces the early reply with ErrStorage.
func TestCallEarlyGateReportsFailedCommit(t *testing.T) {
	fs := &actor.FailingStore{Store: openBolt(t, t.TempDir())}
	e := newEnv(t, fs)
	fs.FailNext(1)
	gate, err := earlyPut(t, e, "a", "k", "v", "")
	if err != nil {
		t.Fatalf("the turn itself: %v", err)
	}
	if err := gate.Wait(context.Background()); !errors.Is(err, actor.ErrStorage) {
		t.Fatalf("Wait: %v, want ErrStorage", err)
	}
}

// Shutdown waits for a call whose gate was not waited on yet: the call is
// in flight until then.
func TestCallEarlyCountsInFlightUntilWait(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()))
	gate, err := earlyPut(t, e, "a", "k", "v", "")
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- e.rt.Shutdown(context.Background()) }()
	waitFor(t, "shutdown to begin", func() bool {
		_, err := e.rt.Call(context.Background(), ref("kv", "b"), &holdfastv1.KvGetRequest{Keys: []string{"k"}})
		return errors.Is(err, actor.ErrShuttingDown)
	})
	select {
	case err := <-stopped:
		t.Fatalf("Shutdown returned (%v) while a gate was not waited on", err)
	default:
	}
	if err := gate.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-stopped; err != nil {
		t.Fatalf("Shutdown after Wait: %v", err)
	}
}

// In a cluster the gate's done comes after Wait, and a Valid false after
// the commit turns the reply into an unknown outcome, as Call does.
func TestCallEarlyThroughClusterGate(t *testing.T) {
	gs := actor.NewGatedStore(openBolt(t, t.TempDir()))
	e, g := gatedEnv(t, gs)
	// Held, so that the commit cannot finish before CallEarly looks (it
	// would open the gate at once, and release the partition with it).
	gs.Hold()
	gate, err := earlyPut(t, e, "a", "k", "v", "r1")
	if err != nil {
		gs.Open()
		t.Fatal(err)
	}
	d, n := g.done.Load(), g.enteredTotal()
	gs.Open()
	if d != 0 || n != 1 {
		t.Fatalf("before Wait: done %d, entered %d; want 0 and 1 (the partition is held until Wait)", d, n)
	}
	if err := gate.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.balanced(t)

	g.valid.Store(false)
	gate, err = earlyPut(t, e, "a", "k", "v2", "r2")
	if err != nil {
		t.Fatal(err)
	}
	var uo *actor.UnknownOutcomeError
	if err := gate.Wait(context.Background()); !errors.As(err, &uo) || uo.RequestID != "r2" || !errors.Is(err, actor.ErrOwnershipLost) {
		t.Fatalf("Wait after ownership moved: %v, want UnknownOutcomeError{r2, ErrOwnershipLost}", err)
	}
	g.balanced(t)

	// Refused at the gate: an error and an open gate.
	g.valid.Store(true)
	p := partOf(t, e.rt, ref("kv", "b"))
	g.set(func() { g.refuse[p] = actor.ErrOwnershipLost })
	gate, err = earlyPut(t, e, "b", "k", "v", "")
	if !errors.Is(err, actor.ErrOwnershipLost) {
		t.Fatalf("refused by the gate: %v", err)
	}
	if err := gate.Wait(context.Background()); err != nil {
		t.Fatalf("the gate of a refused call: %v", err)
	}
	g.balanced(t)
}

// CallEarly opens the gate of a turn that has nothing to wait for at once
// (Resolved: the caller needs no goroutine to wait on it), and not the
// gate of one whose write is pending.
func TestCallEarlyResolvesAGateWithNothingToWaitFor(t *testing.T) {
	gs := actor.NewGatedStore(openBolt(t, t.TempDir()))
	e := newEnv(t, gs)
	t.Cleanup(gs.Open) // before the runtime's shutdown, should a check fail with the gate held
	e.fn("write", func(tn *actor.Turn) (proto.Message, error) {
		return wrapperspb.String("ok"), tn.Put("k", []byte("v"))
	})
	e.fn("read", func(tn *actor.Turn) (proto.Message, error) {
		_, _, err := tn.Get("k")
		return wrapperspb.String("ok"), err
	})
	_, gate, err := e.rt.CallEarly(context.Background(), ref("fn", "a"), wrapperspb.String("read"))
	if err != nil || !gate.Resolved() {
		t.Fatalf("a read of nothing pending: err %v, resolved %v, want a resolved gate", err, gate.Resolved())
	}
	if err := gate.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	gs.Hold()
	_, gate, err = e.rt.CallEarly(context.Background(), ref("fn", "a"), wrapperspb.String("write"))
	if err != nil {
		t.Fatal(err)
	}
	<-gs.Entered // its commit is held
	if gate.Resolved() {
		t.Fatal("the gate of a write not yet durable reads resolved")
	}
	gs.Open()
	if err := gate.Wait(context.Background()); err != nil || !gate.Resolved() {
		t.Fatalf("after Wait: err %v, resolved %v", err, gate.Resolved())
	}
}

// A turn with nothing to wait for whose ownership was lost meanwhile: its
// gate, resolved when CallEarly returns, reports the loss on every Wait,
// and the cluster gate's done was called exactly once.
func TestCallEarlyResolvedGateReportsOwnershipLost(t *testing.T) {
	e, g := gatedEnv(t, openBolt(t, t.TempDir()))
	g.valid.Store(false)
	_, gate, err := e.rt.CallEarly(context.Background(), ref("kv", "c"), &holdfastv1.KvGetRequest{Keys: []string{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	if !gate.Resolved() {
		t.Fatal("the gate of a read of nothing pending is not resolved")
	}
	for range 2 {
		if err := gate.Wait(context.Background()); !errors.Is(err, actor.ErrOwnershipLost) {
			t.Fatalf("Wait: %v, want ErrOwnershipLost", err)
		}
	}
	gate.Hurry() // does nothing, never blocks
	g.balanced(t)
}
