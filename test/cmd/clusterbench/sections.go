package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	"github.com/holdfast/holdfast/cluster"
	"github.com/holdfast/holdfast/cluster/natsdir"
	"github.com/holdfast/holdfast/test/harness"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// newCluster starts n nodes with the run's options. harness.New picks
// free ports, closes them and binds them again; on a busy machine another
// process can take one in between ("address already in use"), so a failed
// start is retried (up to 3 attempts), each on a child TB whose cleanups
// run at once on failure and with the parent's on success.
func newCluster(t *benchTB, n int, o options, sink *logSink, rlDurability string, extra ...func(*holdfast.Config)) *harness.Cluster {
	var last error
	for attempt := 1; attempt <= 3; attempt++ {
		child := newTB(fmt.Sprintf("%s-try%d", t.name, attempt), t.root)
		var c *harness.Cluster
		err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("%v", r)
				}
			}()
			c = harness.New(child, n, harness.Options{
				Partitions: o.partitions,
				LeaseTTL:   o.ttl, Epsilon: o.epsilon, RenewInterval: o.renew,
				Logger: sink.logger(),
				Configure: func(_ int, c *holdfast.Config) {
					configureNamespaces(c, rlDurability)
					for _, f := range extra {
						f(c)
					}
				},
			})
			return nil
		}()
		if err == nil {
			t.Cleanup(child.finish)
			return c
		}
		child.finish()
		last = err
		logf("starting a %d-node cluster (attempt %d): %v", n, attempt, err)
	}
	t.Fatalf("starting a %d-node cluster: %v", n, last)
	return nil
}

// retry runs f up to 5 times, 300 ms apart, while it fails with "address
// already in use" (a member's fixed gossip or route port taken meanwhile
// by another process on a busy machine).
func retry(what string, f func() error) error {
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		if err = f(); err == nil || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
		logf("%s (attempt %d): %v", what, attempt, err)
		time.Sleep(300 * time.Millisecond)
	}
	return err
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
	Local   []loadResult // one per rep
	Fwd     []loadResult
}

// med is the median over reps of f on one side.
func med(side []loadResult, f func(loadResult) float64) float64 {
	var v []float64
	for _, r := range side {
		v = append(v, f(r))
	}
	return median(v)
}

// ratioMed is the median over reps of f(forwarded)/f(local), each rep's
// two sides measured back to back.
func (r fwdRow) ratioMed(f func(loadResult) float64) float64 {
	var v []float64
	for i := range min(len(r.Local), len(r.Fwd)) {
		v = append(v, f(r.Fwd[i])/f(r.Local[i]))
	}
	return median(v)
}

func perSec(r loadResult) float64  { return r.PerSec() }
func p50(r loadResult) float64     { return float64(r.P50()) }
func p99(r loadResult) float64     { return float64(r.P99()) }
func cpuCall(r loadResult) float64 { return float64(r.CPUPerCall()) }
func errs(r loadResult) float64    { return float64(r.Errors) }

// measureForward: keys owned by member 0; "local" calls enter member 0's
// router (the owner: in-process), "forwarded" calls enter member 1's
// router (gRPC to member 0, batched by the peer pool). Caller j uses key j
// (no two callers share an actor). Within a rep the two sides run back to
// back at each level, alternating which goes first; reps repeat the whole
// sweep, so a noisy neighbour hits both sides alike.
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
		{"kv get", kvKeys, kvGet},
		{"ratelimit take", rlKeys, rlTake},
	}
	levels := []int{1, 16, 64}
	rows := make([]fwdRow, 0, len(ops)*len(levels))
	for _, op := range ops {
		for _, callers := range levels {
			rows = append(rows, fwdRow{Op: op.name, Callers: callers})
		}
	}
	k := 0
	for rep := range o.reps {
		for oi, op := range ops {
			for li, callers := range levels {
				run := func(via int) loadResult {
					caller := c.Node(via).Caller()
					return runLoad(callers, o.warmup, o.window, func(ctx context.Context, j, _ int) error {
						return op.call(ctx, caller, op.keys[j%len(op.keys)])
					})
				}
				row := &rows[oi*len(levels)+li]
				var l, f loadResult
				if k%2 == 0 {
					l = run(0)
					f = run(1)
				} else {
					f = run(1)
					l = run(0)
				}
				k++
				row.Local, row.Fwd = append(row.Local, l), append(row.Fwd, f)
				logf("forward rep %d: %s, %d callers: local %.0f/s p50 %v, forwarded %.0f/s p50 %v",
					rep+1, op.name, callers, l.PerSec(), l.P50(), f.PerSec(), f.P50())
			}
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

// tputFigure is the checks/s figure: reps alternating one node and the
// cluster, both alive in the process the whole time (the idle one costs
// its background work only).
type tputFigure struct {
	Single, Cluster []loadResult
}

func (f *tputFigure) ratioMed() float64 {
	var v []float64
	for i := range min(len(f.Single), len(f.Cluster)) {
		v = append(v, f.Cluster[i].PerSec()/f.Single[i].PerSec())
	}
	return median(v)
}

func measureThroughput(t *benchTB, c *harness.Cluster, o options) (*tputFigure, error) {
	var clusterCallers []api.Caller
	for _, i := range c.Running() {
		clusterCallers = append(clusterCallers, c.Node(i).Caller())
	}
	single, err := startSingle(t, o)
	if err != nil {
		return nil, err
	}
	singleCallers := []api.Caller{single.Caller()}
	if err := touchAll(clusterCallers, o.keys); err != nil {
		return nil, err
	}
	if err := touchAll(singleCallers, o.keys); err != nil {
		return nil, err
	}
	f := &tputFigure{}
	for rep := range o.reps {
		s := spreadLoad(singleCallers, o.callers, o.keys, o)
		cl := spreadLoad(clusterCallers, o.callers, o.keys, o)
		f.Single, f.Cluster = append(f.Single, s), append(f.Cluster, cl)
		logf("throughput rep %d: one node %.0f checks/s (p99 %v), 3-node cluster %.0f checks/s (p99 %v)", rep+1, s.PerSec(), s.P99(), cl.PerSec(), cl.P99())
	}
	return f, nil
}

// startSingle starts one non-clustered node (its Caller is the runtime
// itself) with the same namespaces.
func startSingle(t *benchTB, o options) (*holdfast.Node, error) {
	cfg := holdfast.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Runtime.Partitions = o.partitions
	configureNamespaces(&cfg, "memory")
	n, err := holdfast.NewNode(cfg, holdfast.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	if err := n.Start(); err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	return n, nil
}

// ---- 2. handoff under load ----

type callRec struct {
	start time.Time
	lat   time.Duration
	part  int
	err   string // errKind, "" on success
	msg   string // the error's text
	via   int
}

// pauseSet is the per-partition longest call during the join, for moved
// and for unmoved partitions, sorted.
type pauseSet struct{ Moved, Stayed []time.Duration }

type handoffFigure struct {
	From             int    // members before the join
	NewID            string // the member that joined
	Partitions       int    // ownership partitions (2P)
	Moved, Stayed    int
	MovedToNew       int // of Moved: to the new node (the rest moved between old members: bounded load)
	ErrorKinds       map[string]int
	MovedSampled     int // moved partitions that saw at least one call during the join
	StayedSampled    int
	MovedMax         []time.Duration // per moved partition: the longest call started during the join
	StayedMax        []time.Duration // the same for partitions that did not move (same window)
	KV, RL           pauseSet        // the same, kv partitions only and ratelimit partitions only
	PreP50, PreP99   time.Duration   // all calls before the join
	JoinP50, JoinP99 time.Duration   // all calls started during the join
	JoinMovedP50     time.Duration   // calls on moved partitions during the join
	JoinMovedP99     time.Duration
	PreCalls         int
	PreErrors        int
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
func measureHandoff(c *harness.Cluster, o options, sink *logSink) ([]*handoffFigure, error) {
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
		stop atomic.Bool
		wg   sync.WaitGroup
		mu   sync.Mutex
		recs []callRec
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
				rec := callRec{start: t0, lat: time.Since(t0), part: part, via: j % len(callers)}
				if err != nil {
					rec.err, rec.msg = errKind(err), err.Error()
				}
				local = append(local, rec)
			}
			mu.Lock()
			recs = append(recs, local...)
			mu.Unlock()
		}()
	}
	halt := func() { stop.Store(true); wg.Wait() }

	// One join after another under the same load: each has its own
	// pre-join window (its baseline), Add, and wait for a stable ring.
	type joinWindow struct {
		preFrom, tAdd, tStable time.Time
		addTook                time.Duration
		before, after          map[int]string
		newID                  string
		serving                []servingEvent
		warnings               map[string]int
	}
	ring := func() map[int]string {
		m := map[int]string{}
		for _, p := range c.Node(0).Cluster().Ring() {
			m[p.Partition] = p.Owner
		}
		return m
	}
	var joins []joinWindow
	time.Sleep(o.warmup) // the load warms up (not measured)
	for range o.joins {
		w := joinWindow{before: ring(), preFrom: time.Now()}
		time.Sleep(o.window) // the pre-join window (baseline)
		sink.reset()
		w.tAdd = time.Now()
		idx, err := c.Add()
		w.addTook = time.Since(w.tAdd)
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
		w.tStable = time.Now()
		w.after, w.newID = ring(), c.ID(idx)
		w.serving, w.warnings = sink.snapshot()
		joins = append(joins, w)
		logf("handoff: %s joined, stable after %v", w.newID, w.tStable.Sub(w.tAdd).Round(time.Millisecond))
	}
	time.Sleep(300 * time.Millisecond)
	halt()

	var figs []*handoffFigure
	for ji, w := range joins {
		f := &handoffFigure{From: len(running) + ji, Partitions: len(w.before), AddTook: w.addTook, Rebalance: w.tStable.Sub(w.tAdd), Callers: nCallers, KVKeys: nkv, RLKeys: nrl,
			ErrorKinds: map[string]int{}, Warnings: w.warnings, NewID: w.newID}
		moved := map[int]bool{}
		for p, o := range w.before {
			if w.after[p] != o {
				moved[p] = true
				f.Moved++
				if w.after[p] == w.newID {
					f.MovedToNew++
				}
			} else {
				f.Stayed++
			}
		}
		for _, ev := range w.serving {
			if ev.node != w.newID || !moved[ev.partition] {
				continue
			}
			d := ev.at.Sub(w.tAdd)
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
			case r.start.Before(w.preFrom):
			case r.start.Before(w.tAdd):
				f.PreCalls++
				if r.err == "" {
					pre = append(pre, r.lat)
				} else {
					f.PreErrors++
				}
			case r.start.Before(w.tStable):
				f.JoinCalls++
				if r.err != "" {
					f.JoinErrors++
					where := "a partition that stayed"
					if moved[r.part] {
						where = "a moved partition"
					}
					f.ErrorKinds[fmt.Sprintf("%s, via node-%d, on %s", r.err, r.via+1, where)]++
					if f.FirstErr == "" {
						f.FirstErr = r.msg
					}
					maxOf[r.part] = max(maxOf[r.part], r.lat) // the caller waited that long too
					continue
				}
				join = append(join, r.lat)
				if moved[r.part] {
					joinMoved = append(joinMoved, r.lat)
				}
				maxOf[r.part] = max(maxOf[r.part], r.lat)
			}
		}
		half := f.Partitions / 2 // [0, P): kv (group wait); [P, 2P): ratelimit (group reset)
		for p, m := range maxOf {
			g := &f.RL
			if p < half {
				g = &f.KV
			}
			if moved[p] {
				f.MovedMax = append(f.MovedMax, m)
				g.Moved = append(g.Moved, m)
			} else {
				f.StayedMax = append(f.StayedMax, m)
				g.Stayed = append(g.Stayed, m)
			}
		}
		f.MovedSampled, f.StayedSampled = len(f.MovedMax), len(f.StayedMax)
		f.MovedMax, f.StayedMax = sortedDur(f.MovedMax), sortedDur(f.StayedMax)
		for _, g := range []*pauseSet{&f.KV, &f.RL} {
			g.Moved, g.Stayed = sortedDur(g.Moved), sortedDur(g.Stayed)
		}
		pre, join, joinMoved = sortedDur(pre), sortedDur(join), sortedDur(joinMoved)
		f.PreP50, f.PreP99 = pct(pre, 0.5), pct(pre, 0.99)
		f.JoinP50, f.JoinP99 = pct(join, 0.5), pct(join, 0.99)
		f.JoinMovedP50, f.JoinMovedP99 = pct(joinMoved, 0.5), pct(joinMoved, 0.99)
		logf("handoff %d→%d: %d of %d partitions moved; rebalance %v; moved-partition pause p50 %v p99 %v; errors %d",
			f.From, f.From+1, f.Moved, f.Partitions, f.Rebalance, pct(f.MovedMax, 0.5), pct(f.MovedMax, 0.99), f.JoinErrors)
		figs = append(figs, f)
	}
	return figs, nil
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
	Leader      bool          // the victim led the directory's JetStream stream
	Victim, Via string        // the crashed member, the survivor probed through
	GossipGone  time.Duration // Crash called -> the survivor's member list no longer shows the victim serving (0: not seen before the take succeeded)
	MaxLeaseAge time.Duration // the survivor's own lease age (time since its lease key was last written, per its watch), largest seen until the take succeeded
	Uncredited  time.Duration // Crash called -> take succeeded, less the lease credit a survivor gained meanwhile (largest over the survivors)
}

// measureFailover: each run crashes one member, the owner of a fresh
// ratelimit key (on_owner_loss reset): on even runs a member that does not
// lead the directory's JetStream stream, on odd runs the one that does (a
// leader crash adds a stream leader election to the lease arithmetic). It
// probes takes on that key through a survivor until one succeeds, then
// restarts the victim and waits until the ring is stable again. A
// goroutine polls the survivor's directory copy every 2 ms for the claim.
func measureFailover(c *harness.Cluster, o options) ([]failoverRun, error) {
	// leader reads the directory stream's leader through a member's
	// embedded NATS (a fresh connection: a restarted member's port changes).
	leader := func(via int) (string, error) {
		nc, err := nats.Connect(c.Node(via).Cluster().NATSClientURL(), nats.Name("clusterbench"))
		if err != nil {
			return "", err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return "", err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, "KV_"+natsdir.DefaultDirectoryBucket)
		if err != nil {
			return "", err
		}
		info, err := st.Info(ctx)
		if err != nil {
			return "", err
		}
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return "", fmt.Errorf("the directory stream has no leader")
		}
		return info.Cluster.Leader, nil
	}
	var runs []failoverRun
	for run := range o.failoverRuns {
		lead, err := leader(0)
		if err != nil {
			return runs, fmt.Errorf("run %d: reading the directory stream leader: %w", run, err)
		}
		li := c.Index(lead)
		if li < 0 {
			return runs, fmt.Errorf("run %d: directory stream leader %q is not a member", run, lead)
		}
		victim := li
		if run%2 == 0 {
			victim = (li + 1) % c.N()
		}
		via := (victim + 1 + run/2%2) % c.N() // a survivor, varying
		if via == victim {
			via = (via + 1) % c.N()
		}
		keys, err := keysOwnedBy(c, "ratelimit", fmt.Sprintf("fo%d-", run), victim, 1, 0)
		if err != nil {
			return runs, err
		}
		key := keys[0]
		id := actor.ID{Namespace: "ratelimit", Key: key}
		survivor := c.Node(via)
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		err = rlTake(ctx, survivor.Caller(), key)
		cancel()
		if err != nil {
			return runs, fmt.Errorf("run %d: take before the crash: %w", run, err)
		}
		r := failoverRun{Key: key, ProbeErrors: map[string]int{}, Leader: victim == li, Victim: c.ID(victim), Via: c.ID(via)}

		var claimAt, goneAt atomic.Int64 // ns after t0
		var maxLeaseAge atomic.Int64     // the survivor's own lease age, largest seen
		survivorID := c.ID(via)
		stopPoll := make(chan struct{})
		pollDone := make(chan struct{})
		victimID := c.ID(victim)
		t0 := time.Now()
		go func() {
			defer close(pollDone)
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stopPoll:
					return
				case <-tick.C:
				}
				if claimAt.Load() == 0 {
					if w, err := survivor.Cluster().Where(id); err == nil && w.Owner != "" && w.Owner != victimID {
						claimAt.Store(int64(time.Since(t0)))
					}
				}
				serving := false
				for _, m := range survivor.Cluster().Members() {
					if m.NodeID == victimID && m.State == "serving" {
						serving = true
					}
					if m.NodeID == survivorID && int64(m.LeaseAge) > maxLeaseAge.Load() {
						maxLeaseAge.Store(int64(m.LeaseAge))
					}
				}
				if !serving && goneAt.Load() == 0 {
					goneAt.Store(int64(time.Since(t0)))
				}
			}
		}()
		credit0 := map[int]time.Duration{}
		for i := range c.N() {
			if i != victim {
				credit0[i] = c.Node(i).Cluster().LeaseCredit()
			}
		}
		c.Crash(victim)
		r.CrashTook = time.Since(t0)
		deadline := t0.Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := rlTake(ctx, survivor.Caller(), key)
			cancel()
			r.Probes++
			if err == nil {
				r.Failover = time.Since(t0)
				for i, c0 := range credit0 {
					r.Uncredited = max(r.Uncredited, r.Failover-(c.Node(i).Cluster().LeaseCredit()-c0))
				}
				break
			}
			r.ProbeErrors[errKind(err)]++
			if time.Now().After(deadline) {
				close(stopPoll)
				<-pollDone
				return runs, fmt.Errorf("run %d: no successful take within 60s: %v", run, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		close(stopPoll)
		<-pollDone
		r.ClaimSeen = time.Duration(claimAt.Load())
		r.GossipGone = time.Duration(goneAt.Load())
		r.MaxLeaseAge = time.Duration(maxLeaseAge.Load())
		t1 := time.Now()
		if err := retry("restart", func() error { return c.Restart(victim) }); err != nil {
			return runs, fmt.Errorf("run %d: restart: %w", run, err)
		}
		c.WaitStable(120 * time.Second)
		r.Recover = time.Since(t1)
		logf("failover run %d/%d: crash %s (directory leader %v): %v (claim seen %v, gossip gone %v, survivor's lease age up to %v, uncredited %v, crash call %v, %d probes); back in %v",
			run+1, o.failoverRuns, r.Victim, r.Leader, r.Failover.Round(time.Millisecond), r.ClaimSeen.Round(time.Millisecond), r.GossipGone.Round(time.Millisecond), r.MaxLeaseAge.Round(time.Millisecond), r.Uncredited.Round(time.Millisecond), r.CrashTook.Round(time.Millisecond), r.Probes, r.Recover.Round(time.Millisecond))
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
