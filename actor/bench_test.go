package actor_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

type counter struct{}

// Receive increments a counter key: one read and one write per turn.
func (counter) Receive(t *actor.Turn, _ proto.Message) (proto.Message, error) {
	v, _, err := t.Get("n")
	if err != nil {
		return nil, err
	}
	n := byte(0)
	if len(v) == 1 {
		n = v[0] + 1
	}
	return nil, t.Put("n", []byte{n})
}

func benchRuntime(b *testing.B, d actor.Durability, store actor.Store, maxBatch int) *actor.Runtime {
	cfg := actor.DefaultConfig()
	cfg.Logger = quietLogger()
	cfg.Clock = clock.Real{}
	cfg.CommitMaxBatch = maxBatch
	rt, err := actor.New(cfg, store, []actor.NamespaceConfig{{Name: "c", Durability: d, New: func(actor.ID) actor.Handler { return counter{} }}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Shutdown(context.Background()) })
	return rt
}

// BenchmarkHotActorMemory: one actor, memory durability, in-process turns
// from parallel callers (goal: >= 1,000,000 turns/s).
func BenchmarkHotActorMemory(b *testing.B) {
	rt := benchRuntime(b, actor.Memory, nil, 4096)
	id := actor.ID{Namespace: "c", Key: "hot"}
	msg := &holdfastv1.KvGetRequest{}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := rt.Call(ctx, id, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "turns/s")
}

// benchLocal runs 256 concurrent callers over 4096 actors with local
// durability; maxBatch 1 is one commit (two fdatasyncs) per turn.
func benchLocal(b *testing.B, maxBatch int) {
	rt := benchRuntime(b, actor.Local, openBoltB(b), maxBatch)
	var next atomic.Int64
	msg := &holdfastv1.KvGetRequest{}
	b.SetParallelism(128) // x GOMAXPROCS (2 here) = 256 callers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			id := actor.ID{Namespace: "c", Key: fmt.Sprint(next.Add(1) % 4096)}
			if _, err := rt.Call(ctx, id, msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "turns/s")
	b.ReportMetric(float64(b.N)/float64(max(1, rt.Commits())), "turns/commit")
}

func BenchmarkLocalGroupCommit(b *testing.B)   { benchLocal(b, 4096) }
func BenchmarkLocalCommitPerTurn(b *testing.B) { benchLocal(b, 1) }

func openBoltB(b *testing.B) *actor.BoltStore {
	s, err := actor.OpenBoltStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	return s
}
