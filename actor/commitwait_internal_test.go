package actor

import (
	"context"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor/clock"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// A deferred write hurried while a later urgent write has already made the
// queue urgent is still counted, from its hurry: its reply waited on the
// commit as much as the urgent one's.
func TestCommitWaitCountsHurryBelowAnUrgentWrite(t *testing.T) {
	m := newMetrics(prometheus.NewRegistry())
	clk := clock.NewFake(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	c := newCommitter(NewMemStore(), 128, time.Hour, clk, m)
	deferred, _ := c.enqueue(&Write{Actor: []byte("a")}, true)
	clk.Advance(time.Millisecond)
	urgent, _ := c.enqueue(&Write{Actor: []byte("b")}, false)
	clk.Advance(time.Millisecond)
	c.demand(deferred) // below c.mu.urgent already
	clk.Advance(time.Millisecond)

	stop := make(chan struct{})
	go c.run(stop)
	if err := c.wait(context.Background(), urgent, time.Time{}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-c.done
	var h dto.Metric
	if err := m.commitWait.Write(&h); err != nil {
		t.Fatal(err)
	}
	// The urgent write waited 2 ms (queued at 1 ms, durable at 3 ms), the
	// deferred one 1 ms (hurried at 2 ms).
	if n, sum := h.GetHistogram().GetSampleCount(), h.GetHistogram().GetSampleSum(); n != 2 || sum < 0.0029 || sum > 0.0031 {
		t.Fatalf("%d samples summing to %v s, want 2 summing to 0.003", n, sum)
	}
}
