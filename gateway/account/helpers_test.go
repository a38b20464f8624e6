package account_test

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/actor/kv"
	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/gateway/account"
	"github.com/holdfast/holdfast/gateway/vkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// t0 is noon UTC, so the wait until midnight is exactly 12 h. It lies in
// the future so that a runtime turning its fake-clock deadline into a
// real-time context does not see every turn as late.
var t0 = time.Date(2030, 11, 27, 12, 0, 0, 0, time.UTC)

// logBuffer collects every log line of a test.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// env is a real runtime with namespaces account (the kind under test) and
// account_index (kv), a fake clock, a Client and a Service over it.
type env struct {
	t    *testing.T
	d    account.Defaults
	clk  *clock.Fake
	rt   *actor.Runtime
	cl   *account.Client
	svc  *account.Service
	logs *logBuffer
	log  *slog.Logger
	// commitDefer is the runtime's CommitDefer (0 unless a test sets it
	// before start).
	commitDefer time.Duration
}

func newEnv(t *testing.T, d account.Defaults) *env {
	t.Helper()
	e := newEnvAt(t, d, t0)
	e.start(actor.NewMemStore())
	return e
}

func newEnvAt(t *testing.T, d account.Defaults, start time.Time) *env {
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	return &env{
		t: t, d: d, clk: clock.NewFake(start), logs: logs,
		log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// start runs a runtime over store (again, after a stop, to restart).
func (e *env) start(store actor.Store) {
	e.t.Helper()
	cfg := actor.DefaultConfig()
	cfg.Clock = e.clk
	cfg.Logger = e.log
	cfg.Partitions = 16
	cfg.IdleTimeout = time.Hour
	// Settles defer their commits (Turn.DeferCommit) until a timer of the
	// fake clock, which these tests do not advance for it; defer_test.go
	// covers the deferral.
	cfg.CommitDefer = e.commitDefer
	rt, err := actor.New(cfg, store, []actor.NamespaceConfig{
		{Name: account.DefaultNamespace, Durability: actor.Local, New: account.New(e.d)},
		{Name: account.DefaultIndexNamespace, Durability: actor.Local, New: kv.New()},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { rt.Shutdown(context.Background()) })
	e.rt = rt
	e.cl = &account.Client{Caller: rt}
	e.svc = &account.Service{Caller: rt, Lister: rt, Logger: e.log}
}

func (e *env) stop() {
	e.t.Helper()
	if err := e.rt.Shutdown(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func openBolt(t *testing.T, dir string) *actor.BoltStore {
	t.Helper()
	s, err := actor.OpenBoltStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctx() context.Context { return context.Background() }

func (e *env) admit(user string, req *holdfastv1.AccountAdmitRequest) *holdfastv1.AccountAdmitResponse {
	e.t.Helper()
	resp, err := e.cl.Admit(ctx(), user, req)
	if err != nil {
		e.t.Fatalf("admit: %v", err)
	}
	return resp
}

func (e *env) settle(user string, req *holdfastv1.AccountSettleRequest) *holdfastv1.UsageTotals {
	e.t.Helper()
	resp, err := e.cl.Settle(ctx(), user, req)
	if err != nil {
		e.t.Fatalf("settle: %v", err)
	}
	return resp
}

func (e *env) usage(user, day string) *holdfastv1.AccountUsageResponse {
	e.t.Helper()
	resp, err := e.svc.GetUsage(ctx(), &holdfastv1.GetUsageRequest{User: user, Day: day})
	if err != nil {
		e.t.Fatalf("usage: %v", err)
	}
	return resp
}

// dump returns the stored state of an actor.
func (e *env) dump(ns, key string) map[string]string {
	e.t.Helper()
	d, err := e.rt.GetActor(ctx(), actor.ID{Namespace: ns, Key: key}, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range d.Entries {
		out[kv.Key] = string(kv.Value)
	}
	return out
}

func (e *env) userDump(user string) map[string]string { return e.dump(account.DefaultNamespace, user) }

// level is the stored level of a bucket in whole tokens (exactly: it
// fails on a fractional level), and false when no state is stored.
func (e *env) level(user, key string) (int64, bool) {
	e.t.Helper()
	v, ok := e.userDump(user)[key]
	if !ok {
		return 0, false
	}
	var b ratelimit.Bucket
	if err := b.UnmarshalBinary([]byte(v)); err != nil {
		e.t.Fatal(err)
	}
	if b.Level%ratelimit.Micro != 0 {
		e.t.Fatalf("%s level %d micro-tokens is fractional", key, b.Level)
	}
	return b.Level / ratelimit.Micro, true
}

// key is a key created through the service.
type key struct {
	token string
	id    string
	hash  []byte
}

func (e *env) createKey(req *holdfastv1.CreateKeyRequest) key {
	e.t.Helper()
	resp, err := e.svc.CreateKey(ctx(), req)
	if err != nil {
		e.t.Fatalf("create key: %v", err)
	}
	h, err := vkey.Hash(resp.GetKey())
	if err != nil {
		e.t.Fatal(err)
	}
	return key{token: resp.GetKey(), id: resp.GetInfo().GetKeyId(), hash: h[:]}
}

// waitAlarmFired waits until the actor's alarm has fired n times in all.
// Alarm turns run on the runtime's goroutines; this yields until the turn
// is recorded, without sleeping on a timer.
func (e *env) waitAlarmFired(user string, n int64) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := e.rt.Call(ctx(), actor.ID{Namespace: account.DefaultNamespace, Key: user}, &holdfastv1.AlarmGetRequest{})
		if err != nil {
			e.t.Fatal(err)
		}
		if resp.(*holdfastv1.AlarmState).GetFiredCount() >= n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("alarm of %s did not fire %d times", user, n)
		}
		runtime.Gosched()
	}
}

func (e *env) alarm(user string) *holdfastv1.AlarmState {
	e.t.Helper()
	resp, err := e.rt.Call(ctx(), actor.ID{Namespace: account.DefaultNamespace, Key: user}, &holdfastv1.AlarmGetRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.(*holdfastv1.AlarmState)
}

// wantRefused checks a refusal.
func wantRefused(t *testing.T, r *holdfastv1.AccountAdmitResponse, by string, retryMs int64) {
	t.Helper()
	if r.GetAllowed() || r.GetRefusedBy() != by || r.GetRetryAfterMs() != retryMs {
		t.Fatalf("got allowed=%v refused_by=%q retry_after_ms=%d, want refused by %q after %d ms",
			r.GetAllowed(), r.GetRefusedBy(), r.GetRetryAfterMs(), by, retryMs)
	}
}

func wantAllowed(t *testing.T, r *holdfastv1.AccountAdmitResponse) {
	t.Helper()
	if !r.GetAllowed() || r.GetRefusedBy() != "" || r.GetRetryAfterMs() != 0 {
		t.Fatalf("refused: %v", r)
	}
}

// wantStatus checks a gRPC error's code and ErrorInfo reason ("" for any).
func wantStatus(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code {
		t.Fatalf("error %v, want code %v", err, code)
	}
	if reason == "" {
		return
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetReason() == reason {
			return
		}
	}
	t.Fatalf("error %v lacks reason %s", err, reason)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
