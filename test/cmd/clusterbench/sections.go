package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	"github.com/holdfast/holdfast/cluster"
	"github.com/holdfast/holdfast/test/harness"
)

// newCluster starts n nodes with the run's options.
func newCluster(t *benchTB, n int, o options, sink *logSink, rlDurability string) *harness.Cluster {
	return harness.New(t, n, harness.Options{
		Partitions: o.partitions,
		LeaseTTL:   o.ttl, Epsilon: o.epsilon, RenewInterval: o.renew,
		Logger:    sink.logger(),
		Configure: func(_ int, c *holdfast.Config) { configureNamespaces(c, rlDurability) },
	})
}

// keysOwnedBy returns n keys of namespace ns (prefix + number, from start)
// whose partition member `owner` owns, in member 0's directory copy.
func keysOwnedBy(c *harness.Cluster, ns, prefix string, owner, n, start int) ([]string, error) {
	cl := c.Node(0).Cluster()
	var out []string
	for i := start; len(out) < n && i < start+200_000; i++ {
		key := fmt.Sprintf("%s%d", prefix, i)
		w, err := cl.Where(actor.ID{Namespace: ns, Key: key})
		if err != nil {
			return nil, err
		}
		if w.Owner == c.ID(owner) {
			out = append(out, key)
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("found only %d keys of %s owned by %s", len(out), ns, c.ID(owner))
	}
	return out, nil
}

// putAll writes a 100-byte value under field "f" of every key, 32 at a time.
func putAll(c api.Caller, keys []string) error {
	val := make([]byte, 100)
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		first atomic.Value
	)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(keys) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				err := kvPut(ctx, c, keys[i], val)
				cancel()
				if err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

// ---- 1. forwarded vs local ----

type fwdRow struct {
	Op      string
	Callers int
	Local   loadResult
	Fwd     loadResult
}

// measureForward: keys owned by member 0; "local" calls enter member 0's
// router (the owner: in-process), "forwarded" calls enter member 1's
// router (gRPC to member 0, batched by the peer pool). Caller j uses key j
// (no two callers share an actor). The two sides alternate at each level.
func measureForward(c *harness.Cluster, o options) ([]fwdRow, error) {
	kvKeys, err := keysOwnedBy(c, "kv", "fk", 0, 64, 0)
	if err != nil {
		return nil, err
	}
	rlKeys, err := keysOwnedBy(c, "ratelimit", "fr", 0, 64, 0)
	if err != nil {
		return nil, err
	}
	if err := putAll(c.Node(0).Caller(), kvKeys); err != nil {
		return nil, fmt.Errorf("writing the kv keys: %w", err)
	}
	ops := []struct {
		name string
		keys []string
		call func(context.Context, api.Caller, string) error
	}{
		{"kv get (`local` durability, read-only turn)", kvKeys, kvGet},
		{"ratelimit take (`memory` durability)", rlKeys, rlTake},
	}
	var rows []fwdRow
	for _, op := range ops {
		for li, callers := range []int{1, 16, 64} {
			run := func(via int) loadResult {
				caller := c.Node(via).Caller()
				return runLoad(callers, o.warmup, o.window, func(ctx context.Context, j, _ int) error {
					return op.call(ctx, caller, op.keys[j%len(op.keys)])
				})
			}
			row := fwdRow{Op: op.name, Callers: callers}
			if li%2 == 0 {
				row.Local, row.Fwd = run(0), run(1)
			} else {
				row.Fwd = run(1)
				row.Local = run(0)
			}
			logf("forward: %s, %d callers: local %.0f/s p50 %v, forwarded %.0f/s p50 %v",
				op.name, callers, row.Local.PerSec(), row.Local.P50(), row.Fwd.PerSec(), row.Fwd.P50())
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// ---- 4. ratelimit checks/s, cluster vs one node ----

// spreadLoad: callers calls through member (j % nodes), each take on a
// key drawn uniformly from nkeys ("u0".."u{n-1}").
func spreadLoad(callers []api.Caller, nCallers, nkeys int, o options) loadResult {
	rngs := make([]*rand.Rand, nCallers)
	for j := range rngs {
		rngs[j] = rand.New(rand.NewPCG(uint64(j), 42))
	}
	names := make([]string, nkeys)
	for i := range names {
		names[i] = fmt.Sprintf("u%d", i)
	}
	return runLoad(nCallers, o.warmup, o.window, func(ctx context.Context, j, _ int) error {
		return rlTake(ctx, callers[j%len(callers)], names[rngs[j].IntN(nkeys)])
	})
}

// touchAll activates every key once (so the measured window does not pay
// first activations on one side only).
func touchAll(callers []api.Caller, nkeys int) error {
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		first atomic.Value
	)
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= nkeys {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				err := rlTake(ctx, callers[w%len(callers)], fmt.Sprintf("u%d", i))
				cancel()
				if err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

func measureClusterThroughput(c *harness.Cluster, o options) (loadResult, error) {
	var callers []api.Caller
	for _, i := range c.Running() {
		callers = append(callers, c.Node(i).Caller())
	}
	if err := touchAll(callers, o.keys); err != nil {
		return loadResult{}, err
	}
	r := spreadLoad(callers, o.callers, o.keys, o)
	logf("throughput: %d-node cluster %.0f checks/s p50 %v p99 %v", len(callers), r.PerSec(), r.P50(), r.P99())
	return r, nil
}

// measureSingleThroughput runs the same load on one non-clustered node
// (its Caller is the runtime itself).
func measureSingleThroughput(t *benchTB, o options) (loadResult, error) {
	cfg := holdfast.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Runtime.Partitions = o.partitions
	configureNamespaces(&cfg, "memory")
	n, err := holdfast.NewNode(cfg, holdfast.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return loadResult{}, err
	}
	if err := n.Start(); err != nil {
		return loadResult{}, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	callers := []api.Caller{n.Caller()}
	if err := touchAll(callers, o.keys); err != nil {
		return loadResult{}, err
	}
	r := spreadLoad(callers, o.callers, o.keys, o)
	logf("throughput: single node %.0f checks/s p50 %v p99 %v", r.PerSec(), r.P50(), r.P99())
	return r, nil
}

// ---- 2. handoff under load ----

type callRec struct {
	start time.Time
	lat   time.Duration
	part  int
	err   bool
}

type handoffFigure struct {
	Partitions       int // ownership partitions (2P)
	Moved, Stayed    int
	MovedSampled     int // moved partitions that saw at least one call during the join
	StayedSampled    int
	MovedMax         []time.Duration // per moved partition: the longest call started during the join
	StayedMax        []time.Duration // the same for partitions that did not move (same window)
	PreP50, PreP99   time.Duration   // all calls before the join
	JoinP50, JoinP99 time.Duration   // all calls started during the join
	JoinMovedP50     time.Duration   // calls on moved partitions during the join
	JoinMovedP99     time.Duration
	PreCalls         int
	JoinCalls        int
	JoinErrors       int
	FirstErr         string
	AddTook          time.Duration // harness.Add: the new node's Start
	Rebalance        time.Duration // Add called -> every partition with its desired owner, every member's view
	ServedFirst      time.Duration // Add called -> the new node serving its first moved partition
	ServedLast       time.Duration // ... its last
	ServedN          int
	Warnings         map[string]int
	Callers          int
	KVKeys, RLKeys   int
}

// measureHandoff: load (half kv get/put on `local` kv keys with data, half
// ratelimit takes) through members 0..2; after a warm window a 4th member
// joins; the load runs until every member sees a stable ring.
func measureHandoff(c *harness.Cluster, o options, sink *logSink) (*handoffFigure, error) {
	const nkv, nrl = 2000, 2000
	cl := c.Node(0).Cluster()
	kvKeys := make([]string, nkv)
	rlKeys := make([]string, nrl)
	kvPart := make([]int, nkv)
	rlPart := make([]int, nrl)
	for i := range nkv {
		kvKeys[i] = fmt.Sprintf("h%d", i)
		w, err := cl.Where(actor.ID{Namespace: "kv", Key: kvKeys[i]})
		if err != nil {
			return nil, err
		}
		kvPart[i] = w.Partition
	}
	for i := range nrl {
		rlKeys[i] = fmt.Sprintf("h%d", i)
		w, err := cl.Where(actor.ID{Namespace: "ratelimit", Key: rlKeys[i]})
		if err != nil {
			return nil, err
		}
		rlPart[i] = w.Partition
	}
	if err := putAll(c.Node(0).Caller(), kvKeys); err != nil {
		return nil, fmt.Errorf("writing the kv keys: %w", err)
	}
	before := map[int]string{}
	for _, p := range cl.Ring() {
		before[p.Partition] = p.Owner
	}
	running := c.Running()
	callers := make([]api.Caller, len(running))
	for i, m := range running {
		callers[i] = c.Node(m).Caller()
	}

	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		recs    []callRec
		firstMu sync.Mutex
		first   error
	)
	val := make([]byte, 100)
	nCallers := o.handoffCallers
	for j := range nCallers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(j), 7))
			via := callers[j%len(callers)]
			local := make([]callRec, 0, 8192)
			for seq := 0; !stop.Load(); seq++ {
				var part int
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				var err error
				if j%2 == 0 {
					k := rng.IntN(nkv)
					part = kvPart[k]
					if seq%2 == 0 {
						err = kvGet(ctx, via, kvKeys[k])
					} else {
						err = kvPut(ctx, via, kvKeys[k], val)
					}
				} else {
					k := rng.IntN(nrl)
					part = rlPart[k]
					err = rlTake(ctx, via, rlKeys[k])
				}
				cancel()
				local = append(local, callRec{start: t0, lat: time.Since(t0), part: part, err: err != nil})
				if err != nil {
					firstMu.Lock()
					if first == nil {
						first = err
					}
					firstMu.Unlock()
				}
			}
			mu.Lock()
			recs = append(recs, local...)
			mu.Unlock()
		}()
	}
	halt := func() { stop.Store(true); wg.Wait() }

	time.Sleep(o.warmup) // the load warms up (not measured)
	preFrom := time.Now()
	time.Sleep(o.window) // the pre-join window (baseline)
	sink.reset()
	tAdd := time.Now()
	idx, err := c.Add()
	addTook := time.Since(tAdd)
	if err != nil {
		halt()
		return nil, fmt.Errorf("adding a node: %w", err)
	}
	// WaitStable calls Fatalf on timeout: stop the load first if it panics.
	func() {
		defer func() {
			if r := recover(); r != nil {
				halt()
				panic(r)
			}
		}()
		c.WaitStable(120 * time.Second)
	}()
	tStable := time.Now()
	time.Sleep(300 * time.Millisecond)
	halt()

	f := &handoffFigure{Partitions: len(before), AddTook: addTook, Rebalance: tStable.Sub(tAdd), Callers: nCallers, KVKeys: nkv, RLKeys: nrl}
	after := map[int]string{}
	for _, p := range c.Node(0).Cluster().Ring() {
		after[p.Partition] = p.Owner
	}
	moved := map[int]bool{}
	for p, o := range before {
		if after[p] != o {
			moved[p] = true
			f.Moved++
		} else {
			f.Stayed++
		}
	}
	newID := c.ID(idx)
	serving, warnings := sink.snapshot()
	f.Warnings = warnings
	for _, ev := range serving {
		if ev.node != newID || !moved[ev.partition] {
			continue
		}
		d := ev.at.Sub(tAdd)
		if f.ServedN == 0 || d < f.ServedFirst {
			f.ServedFirst = d
		}
		f.ServedLast = max(f.ServedLast, d)
		f.ServedN++
	}

	var pre, join, joinMoved []time.Duration
	maxOf := map[int]time.Duration{}
	for _, r := range recs {
		switch {
		case r.start.Before(preFrom):
		case r.start.Before(tAdd):
			f.PreCalls++
			if !r.err {
				pre = append(pre, r.lat)
			}
		case r.start.Before(tStable):
			f.JoinCalls++
			if r.err {
				f.JoinErrors++
				continue
			}
			join = append(join, r.lat)
			if moved[r.part] {
				joinMoved = append(joinMoved, r.lat)
			}
			maxOf[r.part] = max(maxOf[r.part], r.lat)
		}
	}
	if first != nil {
		f.FirstErr = first.Error()
	}
	for p, m := range maxOf {
		if moved[p] {
			f.MovedMax = append(f.MovedMax, m)
		} else {
			f.StayedMax = append(f.StayedMax, m)
		}
	}
	f.MovedSampled, f.StayedSampled = len(f.MovedMax), len(f.StayedMax)
	f.MovedMax, f.StayedMax = sortedDur(f.MovedMax), sortedDur(f.StayedMax)
	pre, join, joinMoved = sortedDur(pre), sortedDur(join), sortedDur(joinMoved)
	f.PreP50, f.PreP99 = pct(pre, 0.5), pct(pre, 0.99)
	f.JoinP50, f.JoinP99 = pct(join, 0.5), pct(join, 0.99)
	f.JoinMovedP50, f.JoinMovedP99 = pct(joinMoved, 0.5), pct(joinMoved, 0.99)
	logf("handoff: %d of %d partitions moved; rebalance %v; moved-partition pause p50 %v p99 %v; errors %d",
		f.Moved, f.Partitions, f.Rebalance, pct(f.MovedMax, 0.5), pct(f.MovedMax, 0.99), f.JoinErrors)
	return f, nil
}

// ---- 3. failover after a crash ----

type failoverRun struct {
	Key         string
	Failover    time.Duration // Crash called -> first successful take through a survivor
	ClaimSeen   time.Duration // Crash called -> the survivor's directory names a new owner
	CrashTook   time.Duration // the in-process Crash call itself
	Probes      int           // takes tried until one succeeded
	ProbeErrors map[string]int
	Recover     time.Duration // Restart called -> stable again (partitions back)
}

// measureFailover: each run crashes member `victim` (the owner of a fresh
// ratelimit key: on_owner_loss reset), probes takes on that key through a
// survivor until one succeeds, then restarts the victim and waits until
// the ring is stable again.
func measureFailover(c *harness.Cluster, o options) ([]failoverRun, error) {
	const victim = 2
	var runs []failoverRun
	for run := range o.failoverRuns {
		keys, err := keysOwnedBy(c, "ratelimit", fmt.Sprintf("fo%d-", run), victim, 1, 0)
		if err != nil {
			return runs, err
		}
		key := keys[0]
		via := run % 2 // survivors are members 0 and 1
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err = rlTake(ctx, c.Node(via).Caller(), key)
		cancel()
		if err != nil {
			return runs, fmt.Errorf("run %d: take before the crash: %w", run, err)
		}
		r := failoverRun{Key: key, ProbeErrors: map[string]int{}}
		survivor := c.Node(via)
		t0 := time.Now()
		c.Crash(victim)
		r.CrashTook = time.Since(t0)
		deadline := t0.Add(60 * time.Second)
		for {
			if r.ClaimSeen == 0 {
				if w, err := survivor.Cluster().Where(actor.ID{Namespace: "ratelimit", Key: key}); err == nil && w.Owner != "" && w.Owner != c.ID(victim) {
					r.ClaimSeen = time.Since(t0)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := rlTake(ctx, survivor.Caller(), key)
			cancel()
			r.Probes++
			if err == nil {
				r.Failover = time.Since(t0)
				break
			}
			r.ProbeErrors[errKind(err)]++
			if time.Now().After(deadline) {
				return runs, fmt.Errorf("run %d: no successful take within 60s: %v", run, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t1 := time.Now()
		if err := c.Restart(victim); err != nil {
			return runs, fmt.Errorf("run %d: restart: %w", run, err)
		}
		c.WaitStable(120 * time.Second)
		r.Recover = time.Since(t1)
		logf("failover run %d/%d: %v (claim seen %v, crash call %v, %d probes); back in %v",
			run+1, o.failoverRuns, r.Failover.Round(time.Millisecond), r.ClaimSeen.Round(time.Millisecond), r.CrashTook.Round(time.Millisecond), r.Probes, r.Recover.Round(time.Millisecond))
		runs = append(runs, r)
	}
	return runs, nil
}

func errKind(err error) string {
	var ue *cluster.UnavailableError
	var no *cluster.NotOwnerError
	switch {
	case errors.As(err, &ue):
		return "unavailable (" + ue.Why + ")"
	case errors.As(err, &no):
		return "not owner"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	case errors.Is(err, cluster.ErrUnavailable):
		return "unavailable"
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return s
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
