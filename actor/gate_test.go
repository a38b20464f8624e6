package actor_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// fakeGate is a Gate a test steers: per partition it refuses, holds (Enter
// waits until released or ctx ends) or serves; Valid answers valid.
type fakeGate struct {
	t     *testing.T
	epoch uint64
	valid atomic.Bool

	mu      sync.Mutex
	refuse  map[int]error
	held    map[int]chan struct{}
	waiting map[int]int // Enter calls blocked on a hold
	entered map[int]int // Enter calls that let a turn in

	done    atomic.Int64 // done calls
	doubled atomic.Int64 // done calls beyond the first of one Enter
}

func newFakeGate(t *testing.T) *fakeGate {
	g := &fakeGate{t: t, epoch: 7, refuse: map[int]error{}, held: map[int]chan struct{}{}, waiting: map[int]int{}, entered: map[int]int{}}
	g.valid.Store(true)
	return g
}

func (g *fakeGate) Enter(ctx context.Context, p int) (uint64, func(), error) {
	g.mu.Lock()
	if err := g.refuse[p]; err != nil {
		g.mu.Unlock()
		return 0, nil, err
	}
	if ch := g.held[p]; ch != nil {
		g.waiting[p]++
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			g.mu.Lock()
			g.waiting[p]--
			g.mu.Unlock()
			return 0, nil, ctx.Err()
		}
		g.mu.Lock()
		g.waiting[p]--
	}
	g.entered[p]++
	g.mu.Unlock()
	var once atomic.Bool
	return g.epoch, func() {
		if !once.CompareAndSwap(false, true) {
			g.doubled.Add(1)
		}
		g.done.Add(1)
	}, nil
}

func (g *fakeGate) Valid(p int, epoch uint64) bool {
	if epoch != g.epoch {
		g.t.Errorf("Valid(%d, %d): the turn's epoch is %d", p, epoch, g.epoch)
	}
	return g.valid.Load()
}

func (g *fakeGate) set(f func()) { g.mu.Lock(); defer g.mu.Unlock(); f() }

func (g *fakeGate) hold(p int) { g.set(func() { g.held[p] = make(chan struct{}) }) }

func (g *fakeGate) release(p int) {
	g.set(func() {
		if ch := g.held[p]; ch != nil {
			close(ch)
			delete(g.held, p)
		}
	})
}

func (g *fakeGate) waitingOn(p int) int { g.mu.Lock(); defer g.mu.Unlock(); return g.waiting[p] }

func (g *fakeGate) enteredTotal() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, v := range g.entered {
		n += v
	}
	return int64(n)
}

// balanced checks that every Enter that let a turn in got exactly one done.
func (g *fakeGate) balanced(t *testing.T) {
	t.Helper()
	waitFor(t, "done for every entered turn", func() bool { return g.done.Load() == g.enteredTotal() })
	if d := g.doubled.Load(); d != 0 {
		t.Fatalf("done called more than once %d times", d)
	}
}

func gatedEnv(t *testing.T, store actor.Store, mutate ...func(*actor.Config)) (*env, *fakeGate) {
	g := newFakeGate(t)
	e := newEnv(t, store, append([]func(*actor.Config){func(c *actor.Config) { c.Gate = g }}, mutate...)...)
	return e, g
}

func partOf(t *testing.T, rt *actor.Runtime, id actor.ID) int {
	t.Helper()
	p, err := rt.PartitionOf(id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var errNotOwner = errors.New("test: not the owner")

func TestGateRefusalIsReturnedUnchanged(t *testing.T) {
	e, g := gatedEnv(t, openBolt(t, t.TempDir()))
	p := partOf(t, e.rt, ref("kv", "a"))
	g.set(func() { g.refuse[p] = errNotOwner })
	_, err := e.rt.Call(context.Background(), ref("kv", "a"), &holdfastv1.KvGetRequest{Keys: []string{"k"}})
	if err != errNotOwner {
		t.Fatalf("got %v, want the gate's error unchanged", err)
	}
	if _, err := e.rt.DeleteActor(context.Background(), ref("kv", "a")); err != errNotOwner {
		t.Fatalf("admin delete: got %v", err)
	}
	g.set(func() { delete(g.refuse, p) })
	if err := e.put("kv", "a", "k", "v", "r1"); err != nil {
		t.Fatal(err)
	}
	g.balanced(t)
	if g.done.Load() != 1 {
		t.Fatalf("done %d times, want 1 (refused turns get no done)", g.done.Load())
	}
}

func TestGateHoldBlocksUntilReleaseOrContextEnd(t *testing.T) {
	e, g := gatedEnv(t, openBolt(t, t.TempDir()))
	p := partOf(t, e.rt, ref("kv", "a"))
	g.hold(p)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := e.rt.Call(ctx, ref("kv", "a"), &holdfastv1.KvGetRequest{Keys: []string{"k"}})
		errc <- err
	}()
	waitFor(t, "call waiting in Enter", func() bool { return g.waitingOn(p) == 1 })
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the gate's context error", err)
	}

	putc := make(chan error, 1)
	go func() { putc <- e.put("kv", "a", "k", "v", "") }()
	waitFor(t, "put waiting in Enter", func() bool { return g.waitingOn(p) == 1 })
	select {
	case err := <-putc:
		t.Fatalf("put ran through a held partition: %v", err)
	default:
	}
	g.release(p)
	if err := <-putc; err != nil {
		t.Fatal(err)
	}
	if v, _ := e.get("kv", "a", "k"); v != "v" {
		t.Fatalf("got %q", v)
	}
	g.balanced(t)
}

func TestGateValidFalseAfterTurn(t *testing.T) {
	e, g := gatedEnv(t, openBolt(t, t.TempDir()))
	g.valid.Store(false)
	err := e.put("kv", "a", "k", "v", "req-1")
	var uo *actor.UnknownOutcomeError
	if !errors.As(err, &uo) || uo.RequestID != "req-1" || !errors.Is(err, actor.ErrOwnershipLost) {
		t.Fatalf("write: got %v, want UnknownOutcomeError{req-1, ErrOwnershipLost}", err)
	}
	_, err = e.rt.Call(context.Background(), ref("kv", "a"), &holdfastv1.KvGetRequest{Keys: []string{"k"}})
	if !errors.Is(err, actor.ErrOwnershipLost) || errors.As(err, &uo) {
		t.Fatalf("read: got %v, want ErrOwnershipLost and no unknown outcome", err)
	}
	g.valid.Store(true)
	if v, _ := e.get("kv", "a", "k"); v != "v" {
		t.Fatalf("the write of the turn is durable; got %q", v)
	}
	g.balanced(t)
}

func TestGateDoneOnEveryPath(t *testing.T) {
	gs := actor.NewGatedStore(openBolt(t, t.TempDir()))
	e, g := gatedEnv(t, gs, func(c *actor.Config) { c.Limits.MailboxDepth = 1 })
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	e.fn("ok", func(tn *actor.Turn) (proto.Message, error) { return nil, tn.Put("x", []byte("1")) })
	e.fn("fail", func(tn *actor.Turn) (proto.Message, error) { return nil, errors.New("handler says no") })
	e.fn("panic", func(tn *actor.Turn) (proto.Message, error) { panic("boom") })
	e.fn("block", func(tn *actor.Turn) (proto.Message, error) { entered <- struct{}{}; <-release; return nil, nil })
	e.fn("noop", func(tn *actor.Turn) (proto.Message, error) { return nil, nil })

	step := func(name string, f func()) {
		t.Helper()
		before := g.done.Load()
		f()
		g.balanced(t)
		if g.done.Load() == before {
			t.Fatalf("%s: done not called", name)
		}
	}
	step("success", func() {
		if _, err := e.callFn("a", "ok"); err != nil {
			t.Fatal(err)
		}
	})
	step("handler error", func() {
		if _, err := e.callFn("a", "fail"); err == nil {
			t.Fatal("no error")
		}
	})
	step("panic", func() {
		if _, err := e.callFn("a", "panic"); !errors.Is(err, actor.ErrInternal) {
			t.Fatalf("got %v", err)
		}
	})
	step("deadline", func() {
		ctx, cancel := context.WithCancel(context.Background())
		e.fn("cancel", func(tn *actor.Turn) (proto.Message, error) { cancel(); return nil, tn.Put("y", nil) })
		if _, err := e.rt.Call(ctx, ref("fn", "a"), wrapperspb.String("cancel")); !errors.Is(err, actor.ErrTurnDeadline) {
			t.Fatalf("got %v", err)
		}
	})
	step("overloaded", func() {
		go e.callFn("b", "block")
		<-entered
		queued := make(chan error, 1)
		go func() { _, err := e.callFn("b", "noop"); queued <- err }()
		waitFor(t, "a queued caller", func() bool { return e.rt.MailboxDepth(ref("fn", "b")) == 1 })
		if _, err := e.callFn("b", "noop"); !errors.Is(err, actor.ErrOverloaded) {
			t.Fatalf("got %v", err)
		}
		close(release)
		if err := <-queued; err != nil {
			t.Fatal(err)
		}
	})
	// done comes after the output gate: not while the write is not durable.
	step("durability wait", func() {
		drain(gs.Entered)
		gs.Hold()
		before := g.done.Load()
		errc := make(chan error, 1)
		go func() { _, err := e.callFn("c", "ok"); errc <- err }()
		<-gs.Entered
		if g.done.Load() != before {
			t.Fatal("done called before the turn's write was durable")
		}
		gs.Open()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	})
	step("durability wait past the deadline", func() {
		drain(gs.Entered)
		gs.Hold()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := e.rt.Call(ctx, ref("kv", "d"), &holdfastv1.KvPutRequest{RequestId: "r9", Entries: []*holdfastv1.Entry{{Key: "k", Value: []byte("v")}}})
			errc <- err
		}()
		<-gs.Entered
		cancel()
		var uo *actor.UnknownOutcomeError
		if err := <-errc; !errors.As(err, &uo) {
			t.Fatalf("got %v", err)
		}
		gs.Open()
	})
}

// drain empties a channel of commits already reported.
func drain(c chan int) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

func TestGateRefusedAlarmLeavesTheSchedule(t *testing.T) {
	e, g := gatedEnv(t, openBolt(t, t.TempDir()))
	var fired atomic.Int32
	e.h.alarm = func(tn *actor.Turn) error { fired.Add(1); return nil }
	id := ref("fn", "a")
	p := partOf(t, e.rt, id)
	if _, err := e.rt.Call(context.Background(), id, &holdfastv1.AlarmSetRequest{InMs: 1000}); err != nil {
		t.Fatal(err)
	}
	g.set(func() { g.refuse[p] = errNotOwner })
	e.clk.Advance(time.Second)
	waitFor(t, "refused alarm dropped from the schedule", func() bool { return e.rt.AlarmsPending() == 0 })
	e.clk.Advance(time.Hour) // no retry is armed
	if fired.Load() != 0 {
		t.Fatal("alarm fired on a node the gate refused")
	}
	// The partition comes back: ServePartition reloads the alarm; it fires.
	g.set(func() { delete(g.refuse, p) })
	if err := e.rt.ServePartition(p); err != nil {
		t.Fatal(err)
	}
	if e.rt.AlarmsPending() != 1 {
		t.Fatalf("pending %d after ServePartition", e.rt.AlarmsPending())
	}
	e.clk.Advance(0)
	waitFor(t, "reloaded alarm fires", func() bool { return fired.Load() == 1 })
	waitFor(t, "fire recorded", func() bool { return alarmState(t, e, "fn", "a").GetFiredCount() == 1 })
	g.balanced(t)
}

func TestGateHeldAlarmDoesNotHoldShutdown(t *testing.T) {
	e, g := gatedEnv(t, openBolt(t, t.TempDir()))
	id := ref("fn", "a")
	p := partOf(t, e.rt, id)
	if _, err := e.rt.Call(context.Background(), id, &holdfastv1.AlarmSetRequest{InMs: 1000}); err != nil {
		t.Fatal(err)
	}
	g.hold(p)
	e.clk.Advance(time.Second)
	waitFor(t, "alarm fire waiting in Enter", func() bool { return g.waitingOn(p) == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.rt.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown with an alarm fire held: %v", err)
	}
}
