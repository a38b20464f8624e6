package ratelimit_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/actor/ratelimit"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// BenchmarkRuntimeTake is one check as benchreport's figure 3 sends it,
// without the network: a take of 1 from one bucket of a memory namespace,
// over 10,000 keys, from parallel callers.
func BenchmarkRuntimeTake(b *testing.B) {
	cfg := actor.DefaultConfig()
	cfg.Clock = clock.Real{}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	d := ratelimit.Defaults{Buckets: map[string]ratelimit.Limit{"requests": {Capacity: 1000 * ratelimit.Micro, Refill: 1000 * ratelimit.Micro}}}
	rt, err := actor.New(cfg, nil, []actor.NamespaceConfig{{Name: "ratelimit", Durability: actor.Memory, New: ratelimit.New(d)}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Shutdown(context.Background()) })
	const keys = 10_000
	ids := make([]actor.ID, keys)
	for i := range ids {
		ids[i] = actor.ID{Namespace: "ratelimit", Key: "k" + strconv.Itoa(i)}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			id := ids[next.Add(7919)%keys]
			req := &holdfastv1.RateLimitTakeRequest{Actor: &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key}, Amounts: map[string]int64{"requests": 1}}
			resp, err := rt.Call(ctx, id, req)
			if err != nil {
				b.Fatal(err)
			}
			if !resp.(*holdfastv1.RateLimitTakeResponse).GetAllowed() {
				b.Fatal("refused")
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}
