package actor_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/actor/kv"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// fnHandler runs the function the test put in the message registry: the
// message is a StringValue naming the function.
type fnHandler struct {
	fns   map[string]func(t *actor.Turn) (proto.Message, error)
	alarm func(t *actor.Turn) error
}

func (h *fnHandler) Receive(t *actor.Turn, msg proto.Message) (proto.Message, error) {
	if s, ok := msg.(*wrapperspb.StringValue); ok {
		if f := h.fns[s.GetValue()]; f != nil {
			return f(t)
		}
	}
	return kv.Handler{}.Receive(t, msg)
}

func (h *fnHandler) Alarm(t *actor.Turn) error {
	if h.alarm != nil {
		return h.alarm(t)
	}
	return nil
}

type env struct {
	t     *testing.T
	rt    *actor.Runtime
	clk   *clock.Fake
	store actor.Store
	h     *fnHandler
	cfg   actor.Config
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newEnv starts a runtime with namespaces "kv" (local), "mem" (memory) and
// "fn" (local, test functions) over store.
func newEnv(t *testing.T, store actor.Store, mutate ...func(*actor.Config)) *env {
	t.Helper()
	e := &env{t: t, clk: clock.NewFake(t0), store: store, h: &fnHandler{fns: map[string]func(*actor.Turn) (proto.Message, error){}}}
	e.cfg = actor.DefaultConfig()
	e.cfg.Clock = e.clk
	e.cfg.Logger = quietLogger()
	e.cfg.Partitions = 16
	for _, m := range mutate {
		m(&e.cfg)
	}
	rt, err := actor.New(e.cfg, store, []actor.NamespaceConfig{
		{Name: "kv", Durability: actor.Local, New: kv.New()},
		{Name: "mem", Durability: actor.Memory, New: kv.New()},
		{Name: "fn", Durability: actor.Local, New: func(actor.ID) actor.Handler { return e.h }},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.rt = rt
	t.Cleanup(func() { rt.Shutdown(context.Background()) })
	return e
}

func openBolt(t *testing.T, dir string) *actor.BoltStore {
	t.Helper()
	s, err := actor.OpenBoltStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ref(ns, key string) actor.ID { return actor.ID{Namespace: ns, Key: key} }

func (e *env) put(ns, key, k, v, reqID string) error {
	_, err := e.rt.Call(context.Background(), ref(ns, key), &holdfastv1.KvPutRequest{RequestId: reqID, Entries: []*holdfastv1.Entry{{Key: k, Value: []byte(v)}}})
	return err
}

func (e *env) get(ns, key, k string) (string, bool) {
	e.t.Helper()
	resp, err := e.rt.Call(context.Background(), ref(ns, key), &holdfastv1.KvGetRequest{Keys: []string{k}})
	if err != nil {
		e.t.Fatalf("get %s: %v", k, err)
	}
	ents := resp.(*holdfastv1.KvGetResponse).GetEntries()
	if len(ents) == 0 {
		return "", false
	}
	return string(ents[0].GetValue()), true
}

func (e *env) list(ns, key string, req *holdfastv1.KvListRequest) []string {
	e.t.Helper()
	resp, err := e.rt.Call(context.Background(), ref(ns, key), req)
	if err != nil {
		e.t.Fatalf("list: %v", err)
	}
	var out []string
	for _, en := range resp.(*holdfastv1.KvListResponse).GetEntries() {
		out = append(out, en.GetKey()+"="+string(en.GetValue()))
	}
	return out
}

func (e *env) fn(name string, f func(t *actor.Turn) (proto.Message, error)) {
	e.h.fns[name] = f
}

func (e *env) callFn(key, name string) (proto.Message, error) {
	return e.rt.Call(context.Background(), ref("fn", key), wrapperspb.String(name))
}

// waitFor polls cond, yielding, until it holds; fails after many tries.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
