package actor_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func alarmState(t *testing.T, e *env, ns, key string) *holdfastv1.AlarmState {
	t.Helper()
	resp, err := e.rt.Call(context.Background(), ref(ns, key), &holdfastv1.AlarmGetRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.(*holdfastv1.AlarmState)
}

func TestAlarmFiresOnceAtItsTime(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()))
	var fired atomic.Int32
	e.h.alarm = func(tn *actor.Turn) error {
		fired.Add(1)
		return tn.Put("fired-at", []byte(tn.Now().Format(time.RFC3339)))
	}
	if _, err := e.rt.Call(context.Background(), ref("fn", "a"), &holdfastv1.AlarmSetRequest{InMs: 5000}); err != nil {
		t.Fatal(err)
	}
	st := alarmState(t, e, "fn", "a")
	if !st.GetScheduled() || !st.GetAt().AsTime().Equal(t0.Add(5*time.Second)) {
		t.Fatalf("alarm state %v", st)
	}
	e.clk.Advance(4 * time.Second)
	if fired.Load() != 0 {
		t.Fatal("alarm fired early")
	}
	e.clk.Advance(time.Second)
	waitFor(t, "alarm fire", func() bool { return alarmState(t, e, "fn", "a").GetFiredCount() == 1 })
	if fired.Load() != 1 {
		t.Fatalf("fired %d times", fired.Load())
	}
	if v, _ := e.get("fn", "a", "fired-at"); v != t0.Add(5*time.Second).Format(time.RFC3339) {
		t.Fatalf("alarm turn wrote %q", v)
	}
	st = alarmState(t, e, "fn", "a")
	if st.GetScheduled() || !st.GetLastFired().AsTime().Equal(t0.Add(5*time.Second)) {
		t.Fatalf("after fire: %v", st)
	}
	if e.rt.AlarmsPending() != 0 {
		t.Fatalf("pending %d", e.rt.AlarmsPending())
	}
}

func TestAlarmReplaceAndDelete(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()))
	var fired atomic.Int32
	e.h.alarm = func(*actor.Turn) error { fired.Add(1); return nil }
	e.rt.Call(context.Background(), ref("fn", "a"), &holdfastv1.AlarmSetRequest{InMs: 1000})
	e.rt.Call(context.Background(), ref("fn", "a"), &holdfastv1.AlarmSetRequest{At: timestamppb.New(t0.Add(10 * time.Second))})
	e.rt.Call(context.Background(), ref("fn", "b"), &holdfastv1.AlarmSetRequest{InMs: 1000})
	e.rt.Call(context.Background(), ref("fn", "b"), &holdfastv1.AlarmDeleteRequest{})
	e.clk.Advance(5 * time.Second)
	if fired.Load() != 0 {
		t.Fatal("replaced or deleted alarm fired")
	}
	e.clk.Advance(5 * time.Second)
	waitFor(t, "replaced alarm", func() bool { return fired.Load() == 1 })
	if alarmState(t, e, "fn", "b").GetScheduled() {
		t.Fatal("deleted alarm still scheduled")
	}
}

func TestAlarmRetriesWithBackoffThenGivesUp(t *testing.T) {
	e := newEnv(t, openBolt(t, t.TempDir()))
	var attempts atomic.Int32
	e.h.alarm = func(*actor.Turn) error {
		attempts.Add(1)
		return errors.New("downstream unavailable")
	}
	e.rt.Call(context.Background(), ref("fn", "a"), &holdfastv1.AlarmSetRequest{InMs: 0})
	e.clk.Advance(0)
	waitFor(t, "first attempt", func() bool { return attempts.Load() == 1 && alarmState(t, e, "fn", "a").GetRetries() == 1 })
	// Retries at +2s, +4s, +8s, +16s, +32s, +64s after each failure.
	backoff := 2 * time.Second
	for i := 2; i <= 7; i++ {
		e.clk.Advance(backoff - time.Millisecond)
		if got := attempts.Load(); got != int32(i-1) {
			t.Fatalf("attempt %d came early (attempts %d)", i, got)
		}
		e.clk.Advance(time.Millisecond)
		want := int32(i)
		// Wait until the failed attempt has scheduled its retry (retries
		// counts it) before moving the clock again; the last one is dropped.
		waitFor(t, "retry", func() bool {
			return attempts.Load() == want && (i == 7 || alarmState(t, e, "fn", "a").GetRetries() == int64(i))
		})
		backoff *= 2
	}
	waitFor(t, "alarm dropped", func() bool { return !alarmState(t, e, "fn", "a").GetScheduled() })
	e.clk.Advance(time.Hour)
	if got := attempts.Load(); got != 7 {
		t.Fatalf("attempts %d, want 1 + 6 retries", got)
	}
}

func TestAlarmOfEvictedActorFiresAfterRestart(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, openBolt(t, dir))
	if _, err := e.rt.Call(context.Background(), ref("kv", "sleepy"), &holdfastv1.AlarmSetRequest{InMs: 60_000}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(e.cfg.IdleTimeout / 2)
	e.rt.EvictIdle()
	e.rt.Shutdown(context.Background())

	e2 := newEnv(t, openBolt(t, dir))
	if e2.rt.AlarmsPending() != 1 {
		t.Fatalf("alarms pending after restart: %d", e2.rt.AlarmsPending())
	}
	e2.clk.Advance(time.Minute)
	waitFor(t, "alarm after restart", func() bool { return alarmState(t, e2, "kv", "sleepy").GetFiredCount() == 1 })
}

func TestDataDirRefusals(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	os.WriteFile(file, []byte("x"), 0o600)
	_, err := actor.OpenBoltStore(file)
	var dde *actor.DataDirError
	if !errors.As(err, &dde) || !strings.Contains(err.Error(), "not a directory") || !strings.Contains(err.Error(), file) {
		t.Fatalf("not a directory: %v", err)
	}

	dir := filepath.Join(base, "data")
	s := openBolt(t, dir)
	start := time.Now()
	_, err = actor.OpenBoltStore(dir)
	if !errors.As(err, &dde) || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("locked: %v", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("refusing a locked data dir hung for %v", took)
	}
	s.Close()

	ro := filepath.Join(base, "ro")
	os.Mkdir(ro, 0o755)
	if err := syscall.Mount("tmpfs", ro, "tmpfs", syscall.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot mount a read-only tmpfs here (%v); read-only case not tested", err)
	}
	defer syscall.Unmount(ro, 0)
	_, err = actor.OpenBoltStore(ro)
	if !errors.As(err, &dde) || !strings.Contains(err.Error(), "read-only") || !strings.Contains(err.Error(), ro) {
		t.Fatalf("read-only: %v", err)
	}
}
