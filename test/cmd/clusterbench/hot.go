package main

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/harness"
)

// ---- 5. one hot key: unsplit vs split ----

// The hot-key figure's namespaces: the same bucket as `ratelimit` (far
// above the load, `memory`, on_owner_loss reset), differing only in their
// hot-key options.
const (
	hotKey        = "hot"
	hotThreshold  = 200 // turns/s: far below the load, so the key splits at once
	hotShardCount = 4
)

type hotVariant struct {
	Name, NS, What string
	Split          bool // expected to split
}

var hotVariants = []hotVariant{
	{"unsplit", "rlflat", "no hot handling (`hot_threshold_tps` 0)", false},
	{"split + allowances", "rlsplit", fmt.Sprintf("`hot_threshold_tps` %d, `hot_shards` %d, allowances on (default lifetime 1 s, 64 takes)", hotThreshold, hotShardCount), true},
	{"split, no allowances", "rlsplitna", fmt.Sprintf("`hot_threshold_tps` %d, `hot_shards` %d, `allowances: false`", hotThreshold, hotShardCount), true},
}

// configureHot adds the hot-key figure's namespaces.
func configureHot(cfg *holdfast.Config) {
	off := false
	base := cfg.Namespaces["ratelimit"]
	flat := base
	flat.HotThresholdTPS = 0
	cfg.Namespaces["rlflat"] = flat
	split := base
	split.HotThresholdTPS, split.HotShards, split.HotMergeAfter = hotThreshold, hotShardCount, 10*time.Minute
	cfg.Namespaces["rlsplit"] = split
	na := split
	na.Allowances = &off
	cfg.Namespaces["rlsplitna"] = na
}

func rlTakeNS(ctx context.Context, c api.Caller, ns, key string) error {
	resp, err := c.Call(ctx, actor.ID{Namespace: ns, Key: key}, &holdfastv1.RateLimitTakeRequest{
		Actor:   &holdfastv1.ActorRef{Namespace: ns, Key: key},
		Amounts: map[string]int64{"rps": 1},
	})
	if err != nil {
		return err
	}
	r, ok := resp.(*holdfastv1.RateLimitTakeResponse)
	if !ok {
		return fmt.Errorf("ratelimit take: unexpected reply %T", resp)
	}
	if !r.GetAllowed() {
		return errRefused
	}
	return nil
}

// hotState is the key's state as `holdctl hot` lists it (asked of node-1,
// every member answering): the parent's state and the shards seen serving.
type hotState struct {
	Parent     string // unsplit, split, … ("—": not listed)
	Shards     int    // the parent's shard count
	Generation uint64
	ShardsSeen int // shard actors listed in state "shard"
}

func (s hotState) String() string {
	if s.Parent == "" {
		return "not listed (below the threshold or no hot handling)"
	}
	if s.Shards > 0 {
		return fmt.Sprintf("%s into %d shards (generation %d; %d shard actors serving)", s.Parent, s.Shards, s.Generation, s.ShardsSeen)
	}
	return s.Parent
}

func (s hotState) isSplit() bool { return s.Parent == "split" && s.ShardsSeen == hotShardCount }

func readHotState(c *harness.Cluster, ns string) (hotState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	listing, err := c.Node(0).Hot(ctx, false)
	if err != nil {
		return hotState{}, err
	}
	var s hotState
	for _, n := range listing.GetNodes() {
		if n.GetError() != "" {
			return s, fmt.Errorf("hot: %s: %s", n.GetNodeId(), n.GetError())
		}
		for _, k := range n.GetKeys() {
			a := k.GetActor()
			if a.GetNamespace() != ns || a.GetKey() != hotKey {
				continue
			}
			if a.GetShard() == 0 {
				s.Parent, s.Shards, s.Generation = k.GetState(), int(k.GetShards()), k.GetGeneration()
			} else if k.GetState() == "shard" {
				s.ShardsSeen++
			}
		}
	}
	return s, nil
}

type hotRun struct {
	loadResult
	State  hotState  // right after the run
	Served int64     // takes served from allowances during the measured window (every node)
	ByNode []float64 // successful calls/s in the window by the node they entered
}

type hotFigure struct {
	Callers  int
	Warmup   time.Duration
	SplitIn  map[string]time.Duration // variant → load start until the listing showed the split
	Runs     map[string][]hotRun      // variant → one per rep
	Variants []hotVariant
	Owners   map[string]string // variant → owner of the key (and of its shards)
}

// ratioMed: median over reps of f(variant)/f(unsplit), each rep's runs
// back to back.
func (f *hotFigure) ratioMed(v string, g func(loadResult) float64) float64 {
	var out []float64
	a, b := f.Runs[v], f.Runs["unsplit"]
	for i := range min(len(a), len(b)) {
		out = append(out, g(a[i].loadResult)/g(b[i].loadResult))
	}
	return median(out)
}

func (f *hotFigure) side(v string) []loadResult {
	var out []loadResult
	for _, r := range f.Runs[v] {
		out = append(out, r.loadResult)
	}
	return out
}

func servedAll(c *harness.Cluster) int64 {
	var s int64
	for _, i := range c.Running() {
		s += c.Node(i).HotKeyStats().Served
	}
	return s
}

// measureHot: o.callers callers, caller j through node j mod 3, all on
// one key. Before the reps, each split variant is driven until the Hot
// listing shows the key split into hot_shards shards (the split is then
// kept: hot_merge_after 10 min). Each rep runs the variants back to back,
// rotating which goes first.
func measureHot(c *harness.Cluster, o options) (*hotFigure, error) {
	var callers []api.Caller
	for _, i := range c.Running() {
		callers = append(callers, c.Node(i).Caller())
	}
	warm := max(o.warmup, time.Second)
	f := &hotFigure{Callers: o.callers, Warmup: warm, SplitIn: map[string]time.Duration{}, Runs: map[string][]hotRun{}, Variants: hotVariants}
	var byNode []atomic.Int64
	load := func(v hotVariant, warmup, window time.Duration) (loadResult, []float64) {
		byNode = make([]atomic.Int64, len(callers))
		from := time.Now().Add(warmup)
		to := from.Add(window)
		res := runLoad(o.callers, warmup, window, func(ctx context.Context, j, _ int) error {
			t0 := time.Now()
			err := rlTakeNS(ctx, callers[j%len(callers)], v.NS, hotKey)
			if err == nil && !t0.Before(from) && t0.Before(to) {
				byNode[j%len(callers)].Add(1)
			}
			return err
		})
		per := make([]float64, len(callers))
		for i := range per {
			per[i] = float64(byNode[i].Load()) / window.Seconds()
		}
		return res, per
	}
	for _, v := range hotVariants {
		if !v.Split {
			continue
		}
		t0 := time.Now()
		for {
			load(v, 0, 500*time.Millisecond)
			s, err := readHotState(c, v.NS)
			if err != nil {
				return nil, err
			}
			if s.isSplit() {
				f.SplitIn[v.Name] = time.Since(t0)
				logf("hot: %s: %s after %v of load", v.Name, s, f.SplitIn[v.Name].Round(time.Millisecond))
				break
			}
			if time.Since(t0) > 30*time.Second {
				return nil, fmt.Errorf("%s: the key did not split within 30 s of load (state: %s)", v.Name, s)
			}
		}
	}
	f.Owners = map[string]string{}
	for _, v := range hotVariants {
		var own []string
		for sh := uint32(0); sh <= hotShardCount; sh++ {
			if sh > 0 && !v.Split {
				break
			}
			w, err := c.Node(0).Cluster().Where(actor.ID{Namespace: v.NS, Key: hotKey, Shard: sh})
			if err != nil {
				return nil, err
			}
			if sh == 0 {
				own = append(own, "key: "+w.Owner)
			} else {
				own = append(own, fmt.Sprintf("shard %d: %s", sh, w.Owner))
			}
		}
		f.Owners[v.Name] = strings.Join(own, ", ")
		logf("hot: %s owners: %s", v.Name, f.Owners[v.Name])
	}
	for rep := range o.reps {
		for k := range hotVariants {
			v := hotVariants[(k+rep)%len(hotVariants)]
			var s0, s1 int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				time.Sleep(warm)
				s0 = servedAll(c)
				time.Sleep(o.window)
				s1 = servedAll(c)
			}()
			res, per := load(v, warm, o.window)
			<-done
			st, err := readHotState(c, v.NS)
			if err != nil {
				return nil, err
			}
			f.Runs[v.Name] = append(f.Runs[v.Name], hotRun{loadResult: res, State: st, Served: s1 - s0, ByNode: per})
			logf("hot rep %d: %s: %.0f calls/s, p50 %v, p99 %v, errors %d, served from allowances %d; by entry node %s; key %s", rep+1, v.Name, res.PerSec(), res.P50(), res.P99(), res.Errors, s1-s0, byNodeStr(per), st)
		}
	}
	return f, nil
}

func byNodeStr(per []float64) string {
	var out []string
	for _, v := range per {
		out = append(out, num(v))
	}
	return strings.Join(out, " / ")
}

// minNode is a run's slowest entry node: calls/s of the callers entering it.
func minNode(r hotRun) float64 {
	if len(r.ByNode) == 0 {
		return 0
	}
	m := r.ByNode[0]
	for _, v := range r.ByNode[1:] {
		m = min(m, v)
	}
	return m
}

// minNodeMed is the median over reps of the slowest entry node's calls/s,
// and the median of the per-rep ratios against the unsplit run.
func (f *hotFigure) minNodeMed(v string) (val, ratioToUnsplit float64) {
	var vals, rs []float64
	u := f.Runs["unsplit"]
	for i, r := range f.Runs[v] {
		vals = append(vals, minNode(r))
		if i < len(u) {
			rs = append(rs, minNode(r)/minNode(u[i]))
		}
	}
	return median(vals), median(rs)
}
