package api

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/actor/ratelimit"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// BenchmarkTakeMany is the server's part of one RateLimitTakeMany batch of
// 8 takes as benchreport's figure 3 sends it, without gRPC: a take of 1
// from one bucket of a memory namespace, over 10,000 keys. Per op: one
// batch (8 checks).
func BenchmarkTakeMany(b *testing.B) {
	cfg := actor.DefaultConfig()
	cfg.Clock = clock.Real{}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	d := ratelimit.Defaults{Buckets: map[string]ratelimit.Limit{"requests": {Capacity: 1000 * ratelimit.Micro, Refill: 1000 * ratelimit.Micro}}}
	rt, err := actor.New(cfg, nil, []actor.NamespaceConfig{{Name: "ratelimit", Durability: actor.Memory, New: ratelimit.New(d)}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Shutdown(context.Background()) })
	s := &ActorServer{Caller: rt}
	const keys, batch = 10_000, 8
	names := make([]string, keys)
	for i := range names {
		names[i] = "k" + strconv.Itoa(i)
	}
	ones := []int64{1, 1, 1, 1, 1, 1, 1, 1}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		r := &holdfastv1.RateLimitTakeManyRequest{Namespace: "ratelimit", Buckets: []string{"requests"}, Keys: make([]string, batch), Amounts: ones}
		for j := range r.Keys {
			r.Keys[j] = names[(i*batch+j)*7919%keys]
		}
		resp, err := s.takeMany(ctx, r)
		if err != nil {
			b.Fatal(err)
		}
		if len(resp.GetErrors()) != 0 || !resp.GetAllowed()[0] {
			b.Fatalf("%v", resp)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "checks/s")
}
