package actor_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	bolt "go.etcd.io/bbolt"
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

// BenchmarkHotActorMemoryRequestIDs is BenchmarkHotActorMemory with a
// fresh request ID on every call, so each turn also records its reply for
// idempotency (two more keys, and a scan for expired records) as every
// mutating call over the API does. Its cost per turn must not grow with
// the records an actor holds (b.N of them here).
func BenchmarkHotActorMemoryRequestIDs(b *testing.B) {
	rt := benchRuntime(b, actor.Memory, nil, 4096)
	id := actor.ID{Namespace: "c", Key: "hot"}
	var caller atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		prefix := "req-" + strconv.FormatInt(caller.Add(1), 10) + "-"
		for i := 0; pb.Next(); i++ {
			msg := &holdfastv1.KvPutRequest{RequestId: prefix + strconv.Itoa(i)}
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

// BenchmarkHotMutexMapBaseline is the floor any actor runtime pays for
// BenchmarkHotActorMemory: the same parallel callers incrementing one
// counter in a map behind a sync.Mutex. benchreport reports the hot actor's
// turns/s as a ratio of this.
func BenchmarkHotMutexMapBaseline(b *testing.B) {
	var mu sync.Mutex
	m := map[string]int{}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			m["hot"]++
			mu.Unlock()
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "turns/s")
}

// footprintState is the small state each actor of BenchmarkActorFootprint
// keeps: one key with a 16-byte value.
type footprintState struct{}

func (footprintState) Receive(t *actor.Turn, _ proto.Message) (proto.Message, error) {
	return nil, t.Put("state", []byte("0123456789abcdef"))
}

// BenchmarkActorFootprint activates b.N actors (run it with
// -benchtime=100000x) that each write one small key, then reports the live
// heap per activated actor (runtime.MemStats.HeapAlloc after GC, delta from
// the empty runtime) and, for local durability, the bbolt file per actor
// (file size and the bytes bbolt uses of it).
func BenchmarkActorFootprint(b *testing.B) {
	for _, d := range []actor.Durability{actor.Memory, actor.Local} {
		b.Run(string(d), func(b *testing.B) {
			dir := b.TempDir()
			var store actor.Store
			if d == actor.Local {
				s, err := actor.OpenBoltStore(dir)
				if err != nil {
					b.Fatal(err)
				}
				store = s
			}
			cfg := actor.DefaultConfig()
			cfg.Logger = quietLogger()
			cfg.IdleTimeout = time.Hour // nothing is evicted while measuring
			rt, err := actor.New(cfg, store, []actor.NamespaceConfig{{Name: "f", Durability: d, New: func(actor.ID) actor.Handler { return footprintState{} }}})
			if err != nil {
				b.Fatal(err)
			}
			defer rt.Shutdown(context.Background())
			keys := make([]string, b.N) // made before the baseline: not counted
			for i := range keys {
				keys[i] = fmt.Sprintf("user-%08d", i)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			// 256 callers, so local durability commits in groups.
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, 256)
			for range 256 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					msg := &holdfastv1.KvGetRequest{}
					for {
						i := next.Add(1) - 1
						if i >= int64(len(keys)) {
							return
						}
						if _, err := rt.Call(context.Background(), actor.ID{Namespace: "f", Key: keys[i]}, msg); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			if got := rt.ActorsInMemory(); got != int64(b.N) {
				b.Fatalf("%d actors in memory, want %d", got, b.N)
			}
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "heapB/actor")
			runtime.KeepAlive(keys)
			if d != actor.Local {
				return
			}
			if err := rt.Shutdown(context.Background()); err != nil {
				b.Fatal(err)
			}
			file, used := boltSize(b, filepath.Join(dir, actor.DataFileName))
			b.ReportMetric(float64(file)/float64(b.N), "fileB/actor")
			b.ReportMetric(float64(used)/float64(b.N), "usedB/actor")
		})
	}
}

// boltSize returns a bbolt file's size and the bytes of it in use.
func boltSize(b *testing.B, path string) (file, used int64) {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		st := db.Stats()
		used = tx.Size() - int64(st.FreePageN+st.PendingPageN)*int64(db.Info().PageSize)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size(), used
}
