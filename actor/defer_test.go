package actor_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// deferredPut registers "defer" on e: a turn that writes k=v with
// DeferCommit.
func deferredPut(e *env) {
	e.fn("defer", func(t *actor.Turn) (proto.Message, error) {
		t.DeferCommit()
		return wrapperspb.String("ok"), t.Put("k", []byte("v"))
	})
}

// goCall runs callFn on a goroutine; its error arrives on the channel.
func goCall(e *env, key, name string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := e.callFn(key, name)
		done <- err
	}()
	return done
}

func within(t *testing.T, what string, ch <-chan error) {
	t.Helper()
	select {
	case err := <-ch:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(20 * time.Second): // a deadlock guard, not a timing assertion
		t.Fatalf("%s: still blocked", what)
	}
}

// A deferred write starts no commit of its own: it rides along in the
// commit the next urgent write needs, one commit for both.
func TestDeferredWriteRidesAlongWithUrgentCommit(t *testing.T) {
	gs := actor.NewGatedStore(openBolt(t, t.TempDir()))
	e := newEnv(t, gs)
	deferredPut(e)

	gs.Hold()
	first := make(chan error, 1)
	go func() { first <- e.put("kv", "w0", "k", "v", "") }()
	if n := <-gs.Entered; n != 1 {
		t.Fatalf("first commit carries %d writes, want 1", n)
	}
	deferred := goCall(e, "d", "defer")
	waitFor(t, "the deferred write enqueued", func() bool { return e.rt.EnqueuedSeq() == 2 })
	gs.Open()
	within(t, "the urgent put", first)
	waitFor(t, "the first commit durable", func() bool { return e.rt.DurableSeq() == 1 })

	// Nothing is due: the deferred write waits (the fake clock stands still).
	select {
	case n := <-gs.Entered:
		t.Fatalf("a commit of %d writes started for the deferred write alone", n)
	case err := <-deferred:
		t.Fatalf("the deferred call returned (%v) before its write was committed", err)
	default:
	}
	if err := e.put("kv", "u", "k", "v", ""); err != nil {
		t.Fatal(err)
	}
	if n := <-gs.Entered; n != 2 {
		t.Fatalf("the urgent commit carries %d writes, want 2 (the deferred one rides along)", n)
	}
	within(t, "the deferred call", deferred)
	if d := e.rt.DurableSeq(); d != 3 {
		t.Fatalf("durable seq %d, want 3", d)
	}
}

// Alone, a deferred write is committed once CommitDefer has passed.
func TestDeferredWriteCommittedAfterCommitDefer(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()), func(c *actor.Config) { c.CommitDefer = 50 * time.Millisecond })
	deferredPut(e)
	done := goCall(e, "d", "defer")
	waitFor(t, "the deferred write enqueued", func() bool { return e.rt.EnqueuedSeq() == 1 })
	if e.rt.Commits() != 0 {
		t.Fatal("committed before CommitDefer passed")
	}
	// Step the fake clock until the timer fires (arming it races with
	// this goroutine; the outcome does not).
	returned := false
	waitFor(t, "the deferred call to return as the clock passes CommitDefer", func() bool {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			returned = true
			return true
		default:
			e.clk.Advance(10 * time.Millisecond)
			return false
		}
	})
	if !returned || e.rt.DurableSeq() != 1 {
		t.Fatalf("durable seq %d after the deferred call returned", e.rt.DurableSeq())
	}
}

// A turn that reads a deferred write is not deferred itself: it needs the
// write durable at once, and gets it without waiting out CommitDefer.
func TestReadOfDeferredWriteCommitsAtOnce(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()), func(c *actor.Config) { c.CommitDefer = actor.MaxCommitDefer })
	deferredPut(e)
	deferred := goCall(e, "d", "defer")
	waitFor(t, "the deferred write enqueued", func() bool { return e.rt.EnqueuedSeq() == 1 })
	read := make(chan error, 1)
	go func() {
		v, ok := e.get("fn", "d", "k")
		if !ok || v != "v" {
			t.Errorf("read %q %v, want the deferred write", v, ok)
		}
		read <- nil
	}()
	within(t, "the read", read)
	within(t, "the deferred call", deferred)
}

// Shutdown does not wait out CommitDefer for a deferred call in flight.
func TestShutdownHurriesDeferredWrites(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()), func(c *actor.Config) { c.CommitDefer = actor.MaxCommitDefer })
	deferredPut(e)
	deferred := goCall(e, "d", "defer")
	waitFor(t, "the deferred write enqueued", func() bool { return e.rt.EnqueuedSeq() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // deadlock guard
	defer cancel()
	if err := e.rt.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	within(t, "the deferred call", deferred)
	if d := e.rt.DurableSeq(); d != 1 {
		t.Fatalf("durable seq %d after Shutdown, want 1", d)
	}
}

// CommitDefer 0 commits a deferred turn's writes like any other.
func TestCommitDeferZeroCommitsAtOnce(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()), func(c *actor.Config) { c.CommitDefer = 0 })
	deferredPut(e)
	within(t, "the deferred call", goCall(e, "d", "defer"))
}

func TestCommitDeferValidated(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, actor.MaxCommitDefer + 1} {
		c := actor.DefaultConfig()
		c.CommitDefer = d
		if err := c.Validate(); err == nil {
			t.Errorf("CommitDefer %v accepted", d)
		}
	}
}

// HurryCommits commits a queued deferred write at once (a handoff holding
// its partition must not wait out CommitDefer for the turn).
func TestHurryCommitsCommitsDeferredWrites(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()), func(c *actor.Config) { c.CommitDefer = actor.MaxCommitDefer })
	deferredPut(e)
	deferred := goCall(e, "d", "defer")
	waitFor(t, "the deferred write enqueued", func() bool { return e.rt.EnqueuedSeq() == 1 })
	e.rt.HurryCommits()
	within(t, "the deferred call", deferred)
}

func TestCommitDeferBelowTurnDeadline(t *testing.T) {
	c := actor.DefaultConfig()
	c.Limits.TurnDeadline = 500 * time.Millisecond
	c.CommitDefer = 500 * time.Millisecond
	if err := c.Validate(); err == nil {
		t.Fatal("commit_defer equal to turn_deadline accepted")
	}
}

// A CallEarly turn that reads a deferred write starts its commit at once,
// before its gate is waited on.
func TestCallEarlyReadOfDeferredWriteCommitsAtOnce(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()), func(c *actor.Config) { c.CommitDefer = actor.MaxCommitDefer })
	deferredPut(e)
	deferred := goCall(e, "d", "defer")
	waitFor(t, "the deferred write enqueued", func() bool { return e.rt.EnqueuedSeq() == 1 })
	_, gate, err := e.rt.CallEarly(context.Background(), ref("fn", "d"), &holdfastv1.KvGetRequest{Keys: []string{"k"}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the deferred write durable before the gate is waited on", func() bool { return e.rt.DurableSeq() == 1 })
	if err := gate.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	within(t, "the deferred call", deferred)
}

// A deferred write whose commit fails is not acknowledged: its reply is
// ErrStorage, as any turn's, and the reply of the urgent write it rode
// along with too; nothing was reported durable.
func TestDeferredWriteFailedCommitIsReported(t *testing.T) {
	fs := &actor.FailingStore{Store: openBolt(t, t.TempDir())}
	e := newEnv(t, fs, func(c *actor.Config) { c.CommitDefer = actor.MaxCommitDefer })
	deferredPut(e)
	deferred := goCall(e, "d", "defer")
	waitFor(t, "the deferred write enqueued", func() bool { return e.rt.EnqueuedSeq() == 1 })
	fs.FailNext(1)
	if err := e.put("kv", "u", "k", "v", ""); !errors.Is(err, actor.ErrStorage) {
		t.Fatalf("urgent put: %v, want ErrStorage", err)
	}
	select {
	case err := <-deferred:
		if !errors.Is(err, actor.ErrStorage) {
			t.Fatalf("deferred call: %v, want ErrStorage", err)
		}
	case <-time.After(20 * time.Second): // deadlock guard
		t.Fatal("the deferred call is still waiting after the failed commit")
	}
	if d := e.rt.DurableSeq(); d != 0 {
		t.Fatalf("durable seq %d after the only commit failed", d)
	}
}

// A turn CallEarly runs with WithCommitDeferred starts no commit of its
// own: its gate's Hurry starts it (the gateway calls it when the provider's
// first byte arrives). Without the mark, CallEarly's commit starts at once.
func TestCallEarlyWithCommitDeferredCommitsOnHurry(t *testing.T) {
	gs := actor.NewGatedStore(openBolt(t, t.TempDir()))
	e := newEnv(t, gs, func(c *actor.Config) { c.CommitDefer = actor.MaxCommitDefer }) // the fake clock never gets there
	e.fn("write", func(tn *actor.Turn) (proto.Message, error) {
		return wrapperspb.String("ok"), tn.Put("k", []byte("v"))
	})
	call := func(ctx context.Context) actor.OutputGate {
		resp, gate, err := e.rt.CallEarly(ctx, ref("fn", "a"), wrapperspb.String("write"))
		if err != nil || resp.(*wrapperspb.StringValue).GetValue() != "ok" {
			t.Fatalf("CallEarly: %v %v", resp, err)
		}
		return gate
	}

	gate := call(actor.WithCommitDeferred(context.Background()))
	if e.rt.EnqueuedSeq() != 1 {
		t.Fatalf("enqueued seq %d, want 1", e.rt.EnqueuedSeq())
	}
	waited := make(chan error, 1)
	go func() { waited <- gate.Wait(context.Background()) }()
	select {
	case n := <-gs.Entered:
		t.Fatalf("a deferred turn's write started a commit (%d writes) before Hurry", n)
	case err := <-waited:
		t.Fatalf("the gate opened (%v) before the write was committed", err)
	default:
	}
	gate.Hurry()
	gate.Hurry() // idempotent
	if n := <-gs.Entered; n != 1 {
		t.Fatalf("the hurried commit carries %d writes", n)
	}
	within(t, "the hurried gate", waited)
	if e.rt.DurableSeq() != 1 {
		t.Fatalf("durable seq %d after the gate opened", e.rt.DurableSeq())
	}

	// Unmarked: the commit starts with no Hurry, and Hurry is a no-op.
	gate = call(context.Background())
	if n := <-gs.Entered; n != 1 {
		t.Fatalf("the commit carries %d writes", n)
	}
	gate.Hurry()
	within(t, "the gate", func() <-chan error {
		ch := make(chan error, 1)
		ch <- gate.Wait(context.Background())
		return ch
	}())
}

// HurryCommits (a handoff holding a partition) commits what is queued and
// makes the deferred writes queued within CommitDefer after it urgent too:
// a turn that was running when the partition was held must not make the
// handoff wait out CommitDefer. Past the window, writes defer again.
func TestHurryCommitsCoversWritesQueuedSoonAfter(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()), func(c *actor.Config) { c.CommitDefer = 50 * time.Millisecond })
	deferredPut(e)

	e.rt.HurryCommits()
	within(t, "a deferred write queued just after HurryCommits", goCall(e, "d", "defer"))
	if e.rt.Commits() != 1 {
		t.Fatalf("%d commits, want 1 (the deferred write committed at once)", e.rt.Commits())
	}

	e.clk.Advance(50 * time.Millisecond) // the window has passed
	done := goCall(e, "d", "defer")
	waitFor(t, "the second deferred write queued", func() bool { return e.rt.EnqueuedSeq() == 2 })
	if e.rt.Commits() != 1 {
		t.Fatalf("%d commits: the deferred write past the window was committed at once", e.rt.Commits())
	}
	select {
	case err := <-done:
		t.Fatalf("a deferred write past the window returned (%v) without its commit being due", err)
	default:
	}
	e.rt.HurryCommits()
	within(t, "the deferred write, hurried", done)
}

// A deferred CallEarly turn (WithCommitDeferred) whose commit fails when
// hurried: its gate answers ErrStorage, as any turn's, and nothing was
// reported durable. The gateway answers such an admit admit_unavailable
// and sends none of the provider's bytes.
func TestCallEarlyDeferredFailedCommitIsReported(t *testing.T) {
	fs := &actor.FailingStore{Store: openBolt(t, t.TempDir())}
	e := newEnv(t, fs, func(c *actor.Config) { c.CommitDefer = actor.MaxCommitDefer })
	e.fn("write", func(tn *actor.Turn) (proto.Message, error) {
		return wrapperspb.String("ok"), tn.Put("k", []byte("v"))
	})
	_, gate, err := e.rt.CallEarly(actor.WithCommitDeferred(context.Background()), ref("fn", "a"), wrapperspb.String("write"))
	if err != nil || gate.Resolved() {
		t.Fatalf("CallEarly: err %v, resolved %v: want a pending gate", err, gate.Resolved())
	}
	fs.FailNext(1)
	gate.Hurry()
	if err := gate.Wait(context.Background()); !errors.Is(err, actor.ErrStorage) {
		t.Fatalf("gate: %v, want ErrStorage", err)
	}
	if d := e.rt.DurableSeq(); d != 0 {
		t.Fatalf("durable seq %d after the only commit failed", d)
	}
}
