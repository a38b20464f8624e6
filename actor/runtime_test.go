package actor_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

func TestIDEncodingIsUnambiguous(t *testing.T) {
	a := actor.ID{Namespace: "rl", Key: "alice#0"}
	b := actor.ID{Namespace: "rl", Key: "alice", Shard: 0}
	c := actor.ID{Namespace: "rl#alice", Key: ""}
	if string(a.Encode()) == string(b.Encode()) || string(b.Encode()) == string(c.Encode()) {
		t.Fatal("distinct IDs share an encoding")
	}
	for _, id := range []actor.ID{a, b, c, {Namespace: "x", Key: strings.Repeat("k", 300), Shard: 7}} {
		got, err := actor.DecodeID(id.Encode())
		if err != nil || got != id {
			t.Fatalf("round trip of %v: %v %v", id, got, err)
		}
	}
	if _, err := actor.DecodeID(append(a.Encode(), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	if _, err := actor.DecodeID([]byte{200}); err == nil {
		t.Fatal("truncated id accepted")
	}
	if p := a.Partition(1024); p < 0 || p >= 1024 || p != a.Partition(1024) {
		t.Fatalf("partition %d", p)
	}
}

func TestStorageAPI(t *testing.T) {
	for _, ns := range []string{"kv", "mem"} {
		t.Run(ns, func(t *testing.T) {
			e := newEnv(t, openBolt(t, t.TempDir()))
			for i, k := range []string{"b", "a", "c/1", "c/2", "c/3", "d"} {
				if err := e.put(ns, "actor1", k, fmt.Sprint(i), ""); err != nil {
					t.Fatal(err)
				}
			}
			if v, ok := e.get(ns, "actor1", "c/2"); !ok || v != "3" {
				t.Fatalf("get c/2 = %q %v", v, ok)
			}
			if _, ok := e.get(ns, "other", "c/2"); ok {
				t.Fatal("another actor sees the key")
			}
			all := e.list(ns, "actor1", &holdfastv1.KvListRequest{})
			if got := strings.Join(all, ","); got != "a=1,b=0,c/1=2,c/2=3,c/3=4,d=5" {
				t.Fatalf("list = %s", got)
			}
			cases := []struct {
				req  *holdfastv1.KvListRequest
				want string
			}{
				{&holdfastv1.KvListRequest{Prefix: "c/"}, "c/1=2,c/2=3,c/3=4"},
				{&holdfastv1.KvListRequest{Prefix: "c/", Reverse: true, Limit: 2}, "c/3=4,c/2=3"},
				{&holdfastv1.KvListRequest{Start: "b", End: "c/3"}, "b=0,c/1=2,c/2=3"},
				{&holdfastv1.KvListRequest{Start: "b", End: "c/3", Reverse: true}, "c/2=3,c/1=2,b=0"},
				{&holdfastv1.KvListRequest{Limit: 1}, "a=1"},
			}
			for _, c := range cases {
				if got := strings.Join(e.list(ns, "actor1", c.req), ","); got != c.want {
					t.Errorf("list %v = %s, want %s", c.req, got, c.want)
				}
			}
			resp, err := e.rt.Call(context.Background(), ref(ns, "actor1"), &holdfastv1.KvDeleteRequest{Keys: []string{"a", "zz"}})
			if err != nil || resp.(*holdfastv1.KvDeleteResponse).GetDeleted() != 1 {
				t.Fatalf("delete: %v %v", resp, err)
			}
			resp, err = e.rt.Call(context.Background(), ref(ns, "actor1"), &holdfastv1.KvDeleteAllRequest{})
			if err != nil || resp.(*holdfastv1.KvDeleteAllResponse).GetDeleted() != 5 {
				t.Fatalf("delete all: %v %v", resp, err)
			}
			if got := e.list(ns, "actor1", &holdfastv1.KvListRequest{}); len(got) != 0 {
				t.Fatalf("after delete all: %v", got)
			}
			if err := e.put(ns, "actor1", "new", "x", ""); err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(e.list(ns, "actor1", &holdfastv1.KvListRequest{}), ","); got != "new=x" {
				t.Fatalf("after delete all and put: %s", got)
			}
		})
	}
}

func TestTransactionAllOrNothing(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()))
	if err := e.put("kv", "a", "balance", "10", ""); err != nil {
		t.Fatal(err)
	}
	tx := func(expect string) *holdfastv1.KvTransactionResponse {
		resp, err := e.rt.Call(context.Background(), ref("kv", "a"), &holdfastv1.KvTransactionRequest{Ops: []*holdfastv1.KvOp{
			{Op: &holdfastv1.KvOp_Put{Put: &holdfastv1.KvPutRequest{Entries: []*holdfastv1.Entry{{Key: "log", Value: []byte("spent")}}}}},
			{IfKey: "balance", IfValue: []byte(expect), Op: &holdfastv1.KvOp_Put{Put: &holdfastv1.KvPutRequest{Entries: []*holdfastv1.Entry{{Key: "balance", Value: []byte("5")}}}}},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*holdfastv1.KvTransactionResponse)
	}
	if r := tx("99"); r.GetCommitted() || r.GetFailedOp() != 1 {
		t.Fatalf("failed condition: %v", r)
	}
	if _, ok := e.get("kv", "a", "log"); ok {
		t.Fatal("write of an aborted transaction is visible")
	}
	if r := tx("10"); !r.GetCommitted() {
		t.Fatalf("transaction not committed: %v", r)
	}
	if v, _ := e.get("kv", "a", "balance"); v != "5" {
		t.Fatalf("balance %q", v)
	}
	if v, _ := e.get("kv", "a", "log"); v != "spent" {
		t.Fatalf("log %q", v)
	}
}

func TestLimitsAreTypedAndStoreNothing(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()), func(c *actor.Config) {
		c.Limits.MaxKeyBytes = 8
		c.Limits.MaxValueBytes = 16
		c.Limits.MaxKeysPerCall = 2
	})
	check := func(err error, limit string) {
		t.Helper()
		var le *actor.LimitError
		if !errors.As(err, &le) || le.Limit != limit || !strings.Contains(err.Error(), limit) {
			t.Fatalf("got %v, want a LimitError naming %s", err, limit)
		}
		if !errors.Is(err, actor.ErrInvalidArgument) {
			t.Fatalf("%v is not ErrInvalidArgument", err)
		}
	}
	check(e.put("kv", "a", "123456789", "v", ""), "max_key_bytes")
	check(e.put("kv", "a", "k", strings.Repeat("v", 17), ""), "max_value_bytes")
	_, err := e.rt.Call(context.Background(), ref("kv", "a"), &holdfastv1.KvPutRequest{Entries: []*holdfastv1.Entry{{Key: "x"}, {Key: "y"}, {Key: "z"}}})
	check(err, "max_keys_per_call")
	// A put of two entries where the second is too big stores neither.
	_, err = e.rt.Call(context.Background(), ref("kv", "a"), &holdfastv1.KvPutRequest{Entries: []*holdfastv1.Entry{{Key: "ok", Value: []byte("v")}, {Key: "big", Value: []byte(strings.Repeat("v", 99))}}})
	check(err, "max_value_bytes")
	if got := e.list("kv", "a", &holdfastv1.KvListRequest{}); len(got) != 0 {
		t.Fatalf("refused writes stored: %v", got)
	}
	_, err = e.rt.Call(context.Background(), actor.ID{Namespace: "nope", Key: "a"}, &holdfastv1.KvGetRequest{})
	if !errors.Is(err, actor.ErrUnknownNamespace) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown namespace: %v", err)
	}
	_, err = e.rt.Call(context.Background(), ref("kv", "a"), &holdfastv1.RateLimitGetRequest{})
	if !errors.Is(err, actor.ErrUnknownOperation) {
		t.Fatalf("unknown operation: %v", err)
	}
}

func TestIdempotentRequestAppliedOnce(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, openBolt(t, dir))
	n := 0
	e.fn("incr", func(tn *actor.Turn) (proto.Message, error) {
		n++
		v, _, _ := tn.Get("n")
		next := fmt.Sprint(len(v) + 1)
		return &holdfastv1.Entry{Key: next}, tn.Put("n", append(v, 'x'))
	})
	call := func(id string) string {
		resp, err := e.rt.Call(context.Background(), ref("fn", "c"), &holdfastv1.KvPutRequest{RequestId: id})
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*holdfastv1.Entry).GetKey()
	}
	e.h.fns["put-as-incr"] = nil
	// Route KvPutRequest to incr through a wrapper handler.
	e.h.fns = map[string]func(*actor.Turn) (proto.Message, error){}
	orig := e.h
	_ = orig
	wrap := &incrHandler{f: func(tn *actor.Turn) (proto.Message, error) {
		n++
		v, _, _ := tn.Get("n")
		return &holdfastv1.Entry{Key: fmt.Sprint(len(v) + 1)}, tn.Put("n", append(v, 'x'))
	}}
	rt2, err := actor.New(e.cfg, actor.NewMemStore(), []actor.NamespaceConfig{{Name: "fn", Durability: actor.Local, New: func(actor.ID) actor.Handler { return wrap }}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Shutdown(context.Background())
	e.rt = rt2
	if a, b := call("req-1"), call("req-1"); a != "1" || b != "1" {
		t.Fatalf("replies %s %s", a, b)
	}
	if c := call("req-2"); c != "2" {
		t.Fatalf("second request reply %s", c)
	}
	if d := call("req-1"); d != "1" {
		t.Fatalf("late duplicate reply %s", d)
	}
	if n != 2 {
		t.Fatalf("handler ran %d times, want 2", n)
	}
	// Past the window a request ID is new again.
	e.clk.Advance(e.cfg.IdempotencyWindow + time.Second)
	if d := call("req-1"); d != "3" || n != 3 {
		t.Fatalf("after the window: reply %s, runs %d", d, n)
	}
}

type incrHandler struct {
	f func(*actor.Turn) (proto.Message, error)
}

func (h *incrHandler) Receive(t *actor.Turn, _ proto.Message) (proto.Message, error) { return h.f(t) }

func TestPanicRollsBackAndNodeKeepsServing(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()))
	e.fn("boom", func(tn *actor.Turn) (proto.Message, error) {
		if err := tn.Put("half", []byte("written")); err != nil {
			return nil, err
		}
		panic("bug in actor code")
	})
	_, err := e.callFn("a", "boom")
	var pe *actor.PanicError
	if !errors.As(err, &pe) || !errors.Is(err, actor.ErrInternal) {
		t.Fatalf("got %v, want PanicError", err)
	}
	if _, ok := e.get("fn", "a", "half"); ok {
		t.Fatal("write of a panicked turn survived")
	}
	if err := e.put("fn", "a", "k", "v", ""); err != nil {
		t.Fatalf("actor not serving after panic: %v", err)
	}
	if v, _ := e.get("fn", "a", "k"); v != "v" {
		t.Fatalf("got %q", v)
	}
}

func TestHandlerErrorRollsBack(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()))
	e.fn("fail", func(tn *actor.Turn) (proto.Message, error) {
		tn.Put("x", []byte("1"))
		return nil, fmt.Errorf("%w: refused", actor.ErrInvalidArgument)
	})
	if _, err := e.callFn("a", "fail"); !errors.Is(err, actor.ErrInvalidArgument) {
		t.Fatalf("got %v", err)
	}
	if _, ok := e.get("fn", "a", "x"); ok {
		t.Fatal("write of a failed turn survived")
	}
}

func TestOutputGateHoldsEveryReply(t *testing.T) {
	gs := actor.NewGatedStore(openBolt(t, t.TempDir()))
	e := newEnv(t, gs)
	gs.Hold()
	putDone := make(chan error, 1)
	go func() { putDone <- e.put("kv", "a", "k", "v1", "") }()
	<-gs.Entered // the put's commit is at the gate: not durable
	// A read of the same actor observes the pending write, so its reply
	// must wait too.
	getDone := make(chan string, 1)
	go func() { v, _ := e.get("kv", "a", "k"); getDone <- v }()
	// A read of another actor observed nothing pending and is not held.
	if _, ok := e.get("kv", "b", "k"); ok {
		t.Fatal("unexpected value")
	}
	select {
	case err := <-putDone:
		t.Fatalf("put replied before its write was durable (err %v)", err)
	case v := <-getDone:
		t.Fatalf("read replied %q before what it observed was durable", v)
	default:
	}
	gs.Open()
	if err := <-putDone; err != nil {
		t.Fatal(err)
	}
	if v := <-getDone; v != "v1" {
		t.Fatalf("read got %q", v)
	}
}

func TestGroupCommitCoalesces(t *testing.T) {
	gs := actor.NewGatedStore(openBolt(t, t.TempDir()))
	e := newEnv(t, gs)
	gs.Hold()
	first := make(chan error, 1)
	go func() { first <- e.put("kv", "first", "k", "v", "") }()
	<-gs.Entered
	const n = 64
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- e.put("kv", fmt.Sprint("actor-", i), "k", "v", "")
		}(i)
	}
	// Wait until all n writes are queued behind the held commit.
	waitFor(t, "queued writes", func() bool { return e.rt.ActorsInMemory() >= n+1 && pendingCommits(e) })
	gs.Open()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if c := e.rt.Commits(); c >= n/2 {
		t.Fatalf("%d commits for %d writes: not coalesced", c, n+1)
	}
}

// pendingCommits reports that writes are waiting behind the held commit:
// every activated actor has enqueued (durable seq still 0).
func pendingCommits(e *env) bool { return e.rt.DurableSeq() == 0 }

func TestFailedCommitIsStickyAndLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	fs := &actor.FailingStore{Store: openBolt(t, dir)}
	e := newEnv(t, fs)
	if err := e.put("kv", "a", "acked", "1", ""); err != nil {
		t.Fatal(err)
	}
	fs.FailNext(1)
	err := e.put("kv", "a", "lost", "1", "")
	if !errors.Is(err, actor.ErrStorage) {
		t.Fatalf("got %v, want ErrStorage", err)
	}
	if err := e.put("kv", "b", "later", "1", ""); !errors.Is(err, actor.ErrStorage) {
		t.Fatalf("write after a failed commit: %v, want ErrStorage", err)
	}
	if e.rt.Healthy() == nil {
		t.Fatal("runtime reports healthy after a failed commit")
	}
	e.rt.Shutdown(context.Background())
	e2 := newEnv(t, openBolt(t, dir))
	if v, ok := e2.get("kv", "a", "acked"); !ok || v != "1" {
		t.Fatal("acknowledged write lost")
	}
	if _, ok := e2.get("kv", "a", "lost"); ok {
		t.Fatal("failed write present")
	}
}

func TestMailboxOverloadAndDeadline(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()), func(c *actor.Config) { c.Limits.MailboxDepth = 2 })
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	e.fn("block", func(tn *actor.Turn) (proto.Message, error) {
		entered <- struct{}{}
		<-release
		return nil, nil
	})
	e.fn("noop", func(tn *actor.Turn) (proto.Message, error) { return nil, nil })
	go e.callFn("a", "block")
	<-entered
	// Two callers wait in the mailbox; the third is refused.
	var wg sync.WaitGroup
	waitErrs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _, err := e.callFn("a", "noop"); waitErrs <- err }()
	}
	waitFor(t, "two waiting callers", func() bool {
		_, err := e.rt.Call(context.Background(), ref("fn", "probe"), &holdfastv1.KvGetRequest{})
		return err == nil && mailboxFull(e)
	})
	_, err := e.callFn("a", "noop")
	if !errors.Is(err, actor.ErrOverloaded) || !strings.Contains(err.Error(), "mailbox_depth") {
		t.Fatalf("got %v, want ErrOverloaded naming mailbox_depth", err)
	}
	close(release)
	wg.Wait()
	close(waitErrs)
	for err := range waitErrs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A caller whose deadline passes in the mailbox gets ErrTurnDeadline.
	release2 := make(chan struct{})
	e.fn("block2", func(tn *actor.Turn) (proto.Message, error) { entered <- struct{}{}; <-release2; return nil, nil })
	go e.callFn("b", "block2")
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = e.rt.Call(ctx, ref("fn", "b"), &holdfastv1.KvGetRequest{})
	if !errors.Is(err, actor.ErrTurnDeadline) {
		t.Fatalf("got %v, want ErrTurnDeadline", err)
	}
	close(release2)
}

// mailboxFull probes the overload path: a call is refused only when two
// callers already wait.
func mailboxFull(e *env) bool {
	return e.rt.MailboxDepth(ref("fn", "a")) >= 2
}

func TestEvictionKeepsState(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()))
	if err := e.put("kv", "a", "k", "v", ""); err != nil {
		t.Fatal(err)
	}
	if err := e.put("mem", "m", "k", "v", ""); err != nil {
		t.Fatal(err)
	}
	if e.rt.ActorsInMemory() != 2 {
		t.Fatalf("in memory %d", e.rt.ActorsInMemory())
	}
	e.clk.Advance(e.cfg.IdleTimeout - time.Second)
	if n := e.rt.EvictIdle(); n != 0 {
		t.Fatalf("evicted %d before the idle timeout", n)
	}
	e.clk.Advance(2 * time.Second)
	waitFor(t, "eviction", func() bool { return e.rt.ActorsInMemory() == 0 })
	if v, ok := e.get("kv", "a", "k"); !ok || v != "v" {
		t.Fatal("local state lost by eviction")
	}
	if v, ok := e.get("mem", "m", "k"); !ok || v != "v" {
		t.Fatal("memory state lost by eviction")
	}
}

func TestRestartKeepsLocalLosesMemory(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, openBolt(t, dir))
	e.put("kv", "a", "k", "v", "")
	e.put("mem", "a", "k", "v", "")
	e.rt.Shutdown(context.Background())
	e2 := newEnv(t, openBolt(t, dir))
	if _, ok := e2.get("kv", "a", "k"); !ok {
		t.Fatal("local write lost across restart")
	}
	if _, ok := e2.get("mem", "a", "k"); ok {
		t.Fatal("memory write survived a restart")
	}
}

func TestShutdownIsIdempotentAndRefusesCalls(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()))
	if err := e.rt.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.put("kv", "a", "k", "v", ""); !errors.Is(err, actor.ErrShuttingDown) {
		t.Fatalf("got %v", err)
	}
}

// A turn that writes nothing to the actor is still recorded under its
// request ID: its effect may lie outside the actor (the account and
// ratelimit kinds write limits to a cluster settings store), so a repeat
// is answered from the record and not run again.
func TestWriteFreeTurnIsRecordedToo(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()))
	runs := 0
	h := &incrHandler{f: func(tn *actor.Turn) (proto.Message, error) {
		runs++
		return &holdfastv1.Entry{Key: fmt.Sprint(runs)}, nil
	}}
	rt, err := actor.New(e.cfg, openBolt(t, t.TempDir()), []actor.NamespaceConfig{{Name: "fn", Durability: actor.Local, New: func(actor.ID) actor.Handler { return h }}})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Shutdown(context.Background())
	for i := 0; i < 2; i++ {
		resp, err := rt.Call(context.Background(), ref("fn", "c"), &holdfastv1.KvPutRequest{RequestId: "set-1"})
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.(*holdfastv1.Entry).GetKey(); got != "1" {
			t.Fatalf("call %d: reply %s, want 1 (replayed)", i+1, got)
		}
	}
	if runs != 1 {
		t.Fatalf("handler ran %d times, want 1", runs)
	}
}
