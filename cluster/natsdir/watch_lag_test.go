package natsdir

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cluster/ownership"
)

// TestWatchRestartsWhenItLagsAnAcknowledgedWrite stands for a watch whose
// consumer lived on a server that died: the consumer is deleted behind the
// client's back, so nothing reaches the watcher and nats.go does not
// notice for 10 s. A write acknowledged through Do that the watch does not
// deliver within WatchLag must restart the watcher, which then delivers it.
// The stream poll is turned off, so only the lag check can restart it.
func TestWatchRestartsWhenItLagsAnAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	s := startTestServer(t, singleConfig(t, t.TempDir()))
	js := jsFor(t, s, "lag")
	d := openTestDirectory(t, js, 1)
	ctx := ctxT(t, 30*time.Second)
	var mu sync.Mutex
	var reasons []string
	d.cfg.WatchLag = 200 * time.Millisecond
	d.cfg.OnWatchRestart = func(why string) {
		mu.Lock()
		reasons = append(reasons, why)
		mu.Unlock()
	}
	d.stallCheck = time.Hour

	la := mustStatus(t, d.Do(ctx, leaseOp(1, ownership.OpCreate, "a", 0, 1)), ownership.StatusOK)
	r, stop := startWatch(t, d)
	defer stop()
	waitFor(t, 10*time.Second, "initial sync", func() bool { return len(r.snapshot()) >= 2 })

	st, err := js.Stream(ctx, d.stream)
	if err != nil {
		t.Fatal(err)
	}
	names := st.ConsumerNames(ctx)
	var deleted int
	for name := range names.Name() {
		if err := st.DeleteConsumer(ctx, name); err != nil {
			t.Fatal(err)
		}
		deleted++
	}
	if names.Err() != nil || deleted != 1 {
		t.Fatalf("deleting the watch's consumer: %d deleted, err %v", deleted, names.Err())
	}

	la2 := mustStatus(t, d.Do(ctx, leaseOp(2, ownership.OpCompareAndSet, "a", la.Rev, 2)), ownership.StatusOK)
	waitFor(t, 20*time.Second, "the write delivered after a lag restart", func() bool {
		got := r.snapshot()
		ev, ok := got[len(got)-1].(ownership.WatchEvent)
		mu.Lock()
		lagged := slices.Contains(reasons, WatchLagged)
		mu.Unlock()
		return ok && ev.Rev == la2.Rev && lagged
	})
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(reasons, WatchStalled) {
		t.Fatalf("restarted by the stream poll (%v), which this test turns off", reasons)
	}
}
