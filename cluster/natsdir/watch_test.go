package natsdir

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/holdfast/holdfast/cluster/ownership"
)

// recorder collects what Watch delivers and checks revisions increase.
type recorder struct {
	t      *testing.T
	mu     sync.Mutex
	inputs []ownership.Input
	last   uint64
	bad    string
}

func (r *recorder) deliver(in ownership.Input) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ev, ok := in.(ownership.WatchEvent); ok {
		if ev.Rev <= r.last && r.bad == "" {
			r.bad = fmt.Sprintf("revision %d delivered after %d", ev.Rev, r.last)
		}
		r.last = ev.Rev
	}
	r.inputs = append(r.inputs, in)
}

func (r *recorder) snapshot() []ownership.Input {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bad != "" {
		r.t.Error(r.bad)
	}
	return append([]ownership.Input(nil), r.inputs...)
}

func startWatch(t *testing.T, d *Directory) (*recorder, func()) {
	r := &recorder{t: t}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Watch(ctx, r.deliver) }()
	stop := func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	}
	return r, stop
}

func TestWatch(t *testing.T) {
	t.Parallel()
	s := startTestServer(t, singleConfig(t, t.TempDir()))
	d := openTestDirectory(t, jsFor(t, s, "w"), 1)
	ctx := ctxT(t, 30*time.Second)

	la := mustStatus(t, d.Do(ctx, leaseOp(1, ownership.OpCreate, "a", 0, 1)), ownership.StatusOK)
	p1 := mustStatus(t, d.Do(ctx, entryOp(2, ownership.OpCreate, 1, 0, "a", 1)), ownership.StatusOK)
	if err := d.CheckPlacement(ctx, PlacementRecord{Partitions: 4}); err != nil {
		t.Fatal(err)
	}
	p2 := mustStatus(t, d.Do(ctx, entryOp(3, ownership.OpCreate, 2, 0, "a", 1)), ownership.StatusOK)
	la2 := mustStatus(t, d.Do(ctx, leaseOp(4, ownership.OpCompareAndSet, "a", la.Rev, 2)), ownership.StatusOK)

	var mu sync.Mutex
	var watchers []jetstream.KeyWatcher
	d.testWatcher = func(w jetstream.KeyWatcher) {
		mu.Lock()
		watchers = append(watchers, w)
		mu.Unlock()
	}
	r, stop := startWatch(t, d)
	defer stop()
	waitFor(t, 10*time.Second, "initial sync", func() bool { return len(r.snapshot()) >= 4 })
	got := r.snapshot()
	want := []ownership.Input{
		ownership.WatchEvent{Key: ownership.EntryKey(1), Rev: p1.Rev, Entry: &ownership.Entry{Owner: "a", Epoch: 1, HandoffID: "h1"}},
		ownership.WatchEvent{Key: ownership.EntryKey(2), Rev: p2.Rev, Entry: &ownership.Entry{Owner: "a", Epoch: 1, HandoffID: "h1"}},
		ownership.WatchEvent{Key: ownership.LeaseKey("a"), Rev: la2.Rev, Lease: &ownership.Lease{NodeID: "a", Incarnation: 2, Nonce: "nonce2"}},
		ownership.WatchSynced{},
	}
	if !equalInputs(got, want) {
		t.Fatalf("initial inputs:\n got %s\nwant %s", fmtInputs(got), fmtInputs(want))
	}

	// Updates in order, deletes as nil values, meta keys skipped.
	p1b := mustStatus(t, d.Do(ctx, entryOp(5, ownership.OpCompareAndSet, 1, p1.Rev, "b", 2)), ownership.StatusOK)
	if _, err := d.kv.Put(ctx, "meta.other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := d.kv.Delete(ctx, "part.2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "updates", func() bool { return len(r.snapshot()) >= 6 })
	got = r.snapshot()
	if ev, ok := got[4].(ownership.WatchEvent); !ok || ev.Rev != p1b.Rev || ev.Entry == nil || ev.Entry.Owner != "b" {
		t.Fatalf("update: %s", fmtInputs(got[4:]))
	}
	if ev, ok := got[5].(ownership.WatchEvent); !ok || ev.Key != ownership.EntryKey(2) || ev.Entry != nil || ev.Lease != nil || ev.Rev <= p1b.Rev {
		t.Fatalf("delete: %s", fmtInputs(got[5:]))
	}

	// Break the watcher: Watch resumes after the last revision, no
	// duplicate, no second WatchSynced, later updates arrive.
	mu.Lock()
	_ = watchers[0].Stop()
	mu.Unlock()
	waitFor(t, 10*time.Second, "watch restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(watchers) >= 2
	})
	var lastRev uint64
	for i := range 5 {
		lastRev = mustStatus(t, d.Do(ctx, entryOp(ownership.OpID(10+i), ownership.OpCreate, ownership.Partition(100+i), 0, "a", 1)), ownership.StatusOK).Rev
	}
	waitFor(t, 10*time.Second, "updates after restart", func() bool { return len(r.snapshot()) >= 11 })
	got = r.snapshot()
	if len(got) != 11 {
		t.Fatalf("after restart: %s", fmtInputs(got[6:]))
	}
	for i, in := range got[6:] {
		ev, ok := in.(ownership.WatchEvent)
		if !ok || ev.Key != ownership.EntryKey(ownership.Partition(100+i)) {
			t.Fatalf("after restart #%d: %s", i, fmtInputs(got[6:]))
		}
	}
	if got[10].(ownership.WatchEvent).Rev != lastRev {
		t.Fatalf("last rev %d, want %d", got[10].(ownership.WatchEvent).Rev, lastRev)
	}
}

func equalInputs(a, b []ownership.Input) bool {
	return fmtInputs(a) == fmtInputs(b)
}

func fmtInputs(in []ownership.Input) string {
	s := ""
	for _, x := range in {
		switch v := x.(type) {
		case ownership.WatchEvent:
			s += fmt.Sprintf("[%s@%d", v.Key, v.Rev)
			if v.Lease != nil {
				s += fmt.Sprintf(" %+v", *v.Lease)
			}
			if v.Entry != nil {
				s += fmt.Sprintf(" %+v", *v.Entry)
			}
			s += "]"
		default:
			s += fmt.Sprintf("[%T]", x)
		}
	}
	return s
}
