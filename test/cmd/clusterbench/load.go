package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/internal/benchenv"
)

// ---- calls ----

const callTimeout = 10 * time.Second

func kvGet(ctx context.Context, c api.Caller, key string) error {
	resp, err := c.Call(ctx, actor.ID{Namespace: "kv", Key: key}, &holdfastv1.KvGetRequest{
		Actor: &holdfastv1.ActorRef{Namespace: "kv", Key: key},
		Keys:  []string{"f"},
	})
	if err != nil {
		return err
	}
	if _, ok := resp.(*holdfastv1.KvGetResponse); !ok {
		return fmt.Errorf("kv get: unexpected reply %T", resp)
	}
	return nil
}

func kvPut(ctx context.Context, c api.Caller, key string, value []byte) error {
	_, err := c.Call(ctx, actor.ID{Namespace: "kv", Key: key}, &holdfastv1.KvPutRequest{
		Actor:   &holdfastv1.ActorRef{Namespace: "kv", Key: key},
		Entries: []*holdfastv1.Entry{{Key: "f", Value: value}},
	})
	return err
}

// rlTake takes one token of the namespace-default bucket "rps" (capacity
// far above the load, so every take is allowed and does the same work).
func rlTake(ctx context.Context, c api.Caller, key string) error {
	return rlTakeNS(ctx, c, "ratelimit", key)
}

var errRefused = errors.New("take refused")

// configureNamespaces makes the ratelimit namespace `memory` with one
// namespace-default bucket "rps" so large that no take is refused: the
// figures then measure routing and the turn, not fsync nor refusals. kv
// keeps the default (`local`, on_owner_loss wait).
func configureNamespaces(cfg *holdfast.Config, rlDurability string) {
	ns := cfg.Namespaces["ratelimit"]
	ns.Durability = rlDurability
	ns.OnOwnerLoss = "reset"
	ns.Buckets = map[string]holdfast.BucketConfig{"rps": {Capacity: 1e9, RefillPerSecond: 1e6}}
	cfg.Namespaces["ratelimit"] = ns
}

// ---- closed-loop load ----

// loadResult is one closed-loop run: calls that started inside the
// measured window (after the warm-up) and their latencies.
type loadResult struct {
	Callers  int
	Calls    int
	Errors   int
	FirstErr string
	Window   time.Duration
	// CPUSec is this process's CPU time (every node and the callers)
	// during the measured window.
	CPUSec float64
	lat    []time.Duration // sorted
}

// CPUPerCall is the process CPU time per successful call.
func (r loadResult) CPUPerCall() time.Duration {
	if r.Calls == 0 {
		return 0
	}
	return time.Duration(r.CPUSec / float64(r.Calls) * 1e9)
}

func (r loadResult) PerSec() float64 { return float64(r.Calls) / r.Window.Seconds() }
func (r loadResult) P50() time.Duration {
	return pct(r.lat, 0.50)
}
func (r loadResult) P99() time.Duration { return pct(r.lat, 0.99) }

// runLoad runs `callers` goroutines calling fn back to back for warmup +
// window; only calls started inside the window are counted.
func runLoad(callers int, warmup, window time.Duration, fn func(ctx context.Context, caller, seq int) error) loadResult {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		res      = loadResult{Callers: callers, Window: window}
		start    = time.Now()
		from, to = start.Add(warmup), start.Add(warmup + window)
		cpuDone  = make(chan float64, 1)
	)
	go func() {
		time.Sleep(time.Until(from))
		c0 := selfCPU()
		time.Sleep(time.Until(to))
		cpuDone <- selfCPU() - c0
	}()
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			calls, errs := 0, 0
			var first error
			for seq := 0; ; seq++ {
				t0 := time.Now()
				if !t0.Before(to) {
					break
				}
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				err := fn(ctx, c, seq)
				cancel()
				if t0.Before(from) {
					continue
				}
				calls++
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			res.Calls += calls
			res.Errors += errs
			if first != nil && res.FirstErr == "" {
				res.FirstErr = first.Error()
			}
			res.lat = append(res.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.CPUSec = <-cpuDone
	res.Calls -= res.Errors // throughput counts successful calls
	slices.Sort(res.lat)
	return res
}

// pct is the q-quantile of sorted durations (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func sortedDur(v []time.Duration) []time.Duration {
	out := slices.Clone(v)
	slices.Sort(out)
	return out
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// selfCPU is this process's user+system CPU time in seconds.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// snapCPU counts this process as ours (every node runs in it).
func snapCPU() benchenv.CPUSnap { return benchenv.SnapCPU(selfCPU()) }

// ---- log capture ----

// logSink receives every node's log records (Debug included) and keeps
// what the report uses: when each node started serving each partition
// ("serving partition", a Debug record of the cluster driver) and a tally
// of warnings and errors by message.
type logSink struct {
	mu       sync.Mutex
	on       atomic.Bool
	serving  []servingEvent
	warnings map[string]int
}

type servingEvent struct {
	node      string
	partition int
	epoch     uint64
	at        time.Time
}

func newLogSink() *logSink {
	s := &logSink{warnings: map[string]int{}}
	s.on.Store(true)
	return s
}

func (s *logSink) logger() *slog.Logger { return slog.New(&captureHandler{sink: s}) }

// reset starts a new capture window.
func (s *logSink) reset() {
	s.mu.Lock()
	s.serving, s.warnings = nil, map[string]int{}
	s.mu.Unlock()
}

func (s *logSink) snapshot() ([]servingEvent, map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := map[string]int{}
	for k, v := range s.warnings {
		w[k] = v
	}
	return slices.Clone(s.serving), w
}

type captureHandler struct {
	sink  *logSink
	attrs []slog.Attr
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return h.sink.on.Load() }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	node := ""
	for _, a := range h.attrs {
		if a.Key == "node" {
			node = a.Value.String()
		}
	}
	switch {
	case r.Message == "serving partition":
		ev := servingEvent{node: node, at: r.Time}
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "partition":
				ev.partition = int(a.Value.Int64())
			case "epoch":
				ev.epoch = a.Value.Uint64()
			}
			return true
		})
		h.sink.mu.Lock()
		h.sink.serving = append(h.sink.serving, ev)
		h.sink.mu.Unlock()
	case r.Level >= slog.LevelWarn:
		h.sink.mu.Lock()
		h.sink.warnings[r.Level.String()+": "+r.Message]++
		h.sink.mu.Unlock()
	}
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{sink: h.sink, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *captureHandler) WithGroup(string) slog.Handler { return h }
