package harness_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/harness"
)

// hotLoad runs clients per node through every node against one key, each
// taking one token at a time, until the key's buckets hold less than one
// token at a moment when every client has stopped. It returns what was
// admitted and the tokens the nodes' allowances held at that moment.
func hotLoad(t *testing.T, c *harness.Cluster, id actor.ID, clients int) (admitted, outstanding int64) {
	t.Helper()
	var errs atomic.Int64
	var firstErr atomic.Value
	run := func(stop *atomic.Bool) *sync.WaitGroup {
		var wg sync.WaitGroup
		for _, i := range c.Running() {
			caller := c.Node(i).Caller()
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for !stop.Load() {
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						resp, err := caller.Call(ctx, id, &holdfastv1.RateLimitTakeRequest{Actor: &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key}, Amounts: map[string]int64{"r": 1}})
						cancel()
						switch {
						case err != nil:
							errs.Add(1)
							firstErr.CompareAndSwap(nil, err)
							time.Sleep(10 * time.Millisecond)
						case resp.(*holdfastv1.RateLimitTakeResponse).GetAllowed():
							atomic.AddInt64(&admitted, 1)
						default:
							time.Sleep(time.Millisecond)
						}
					}
				}()
			}
		}
		return &wg
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var stop atomic.Bool
		wg := run(&stop)
		for level(t, c, id) >= 1 {
			if time.Now().After(deadline) {
				stop.Store(true)
				wg.Wait()
				dump(t, c, id)
				t.Fatalf("the key still holds %v tokens after 30 s (admitted %d; %d takes failed, first: %v)", level(t, c, id), admitted, errs.Load(), firstErr.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
		stop.Store(true)
		wg.Wait()
		// Allowances first, then the buckets: a return landing in between
		// is counted twice and sends us round again, never missed.
		outstanding = 0
		for _, i := range c.Running() {
			outstanding += c.Node(i).HotKeyStats().Outstanding
		}
		if level(t, c, id) < 1 {
			break
		}
	}
	if n := errs.Load(); n > 0 {
		t.Fatalf("%d takes failed, first: %v", n, firstErr.Load())
	}
	return admitted, outstanding
}

func level(t *testing.T, c *harness.Cluster, id actor.ID) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Node(c.Running()[0]).Caller().Call(ctx, id, &holdfastv1.RateLimitGetRequest{Actor: &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key}})
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	for _, b := range resp.(*holdfastv1.RateLimitState).GetBuckets() {
		if b.GetName() == "r" {
			return b.GetLevel()
		}
	}
	t.Fatalf("get %s: no bucket r", id)
	return 0
}

// Many clients through every node of a 3-node cluster against one key
// with limit L (capacity L, refill ~0): a hot key (split over shards whose
// owners grant allowances) admits at most L and at least L minus the
// allowances outstanding at the end; a key below the hot threshold admits
// exactly L, with no allowance.
func TestHotKeyLimitAcrossNodes(t *testing.T) {
	const L = 3000
	c := harness.New(t, 3, harness.Options{Configure: func(i int, cfg *holdfast.Config) {
		bucket := map[string]holdfast.BucketConfig{"r": {Capacity: L, RefillPerSecond: 0.000001}}
		cfg.Namespaces["rlhot"] = holdfast.NamespaceConfig{Kind: "ratelimit", OnOwnerLoss: "reset", Buckets: bucket,
			HotThresholdTPS: 200, HotShards: 4, HotMergeAfter: time.Minute, AllowanceLifetime: 500 * time.Millisecond, AllowanceMaxTakes: 32}
		cfg.Namespaces["rlcold"] = holdfast.NamespaceConfig{Kind: "ratelimit", OnOwnerLoss: "reset", Buckets: bucket,
			HotThresholdTPS: 1e9}
	}})

	hot := actor.ID{Namespace: "rlhot", Key: "shared"}
	admitted, outstanding := hotLoad(t, c, hot, 8)
	var granted, served int64
	for _, i := range c.Running() {
		s := c.Node(i).HotKeyStats()
		granted, served = granted+s.Granted, served+s.Served
	}
	t.Logf("hot key: limit %d, admitted %d, allowances outstanding at the end %d (tokens granted %d, takes served from allowances %d)",
		L, admitted, outstanding, granted, served)
	if admitted > L {
		t.Fatalf("hot key: admitted %d > limit %d", admitted, L)
	}
	if admitted < L-outstanding {
		t.Fatalf("hot key: admitted %d < limit %d − outstanding %d", admitted, L, outstanding)
	}
	if granted == 0 || served == 0 {
		t.Fatalf("no allowance was used on the hot key (granted %d, served %d)", granted, served)
	}
	split := false
	for i := uint32(1); i <= 4; i++ {
		if w, err := c.Node(0).Cluster().Where(actor.ID{Namespace: "rlhot", Key: "shared", Shard: i}); err == nil && w.Owner != "" {
			split = true
		}
	}
	if !split {
		t.Fatal("shards have no owner")
	}
	// holdctl hot's RPC, asked of one node, lists the split key and its
	// shards from every member.
	listing, err := c.Node(1).Hot(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]int{}
	for _, n := range listing.GetNodes() {
		if n.GetError() != "" {
			t.Fatalf("hot: %s: %s", n.GetNodeId(), n.GetError())
		}
		for _, k := range n.GetKeys() {
			if k.GetActor().GetNamespace() == "rlhot" {
				states[k.GetState()]++
			}
		}
	}
	if len(listing.GetNodes()) != 3 || states["split"] != 1 || states["shard"] != 4 {
		t.Fatalf("hot lists %d nodes, states %v", len(listing.GetNodes()), states)
	}
	// Once every allowance is back, nothing was lost or made: admitted
	// plus what the key holds is L.
	c.WaitFor(10*time.Second, "allowances returned", func() error {
		for _, i := range c.Running() {
			if o := c.Node(i).HotKeyStats().Outstanding; o != 0 {
				return fmt.Errorf("node-%d holds %d tokens", i+1, o)
			}
		}
		return nil
	})
	if lv := level(t, c, hot); float64(admitted)+lv > L+0.01 || float64(admitted)+lv < L-0.01 {
		t.Fatalf("hot key: admitted %d + level %v != %d", admitted, lv, L)
	}

	cold := actor.ID{Namespace: "rlcold", Key: "shared"}
	before := int64(0)
	for _, i := range c.Running() {
		before += c.Node(i).HotKeyStats().Granted
	}
	admitted, outstanding = hotLoad(t, c, cold, 4)
	after := int64(0)
	for _, i := range c.Running() {
		after += c.Node(i).HotKeyStats().Granted
	}
	t.Logf("cold key: limit %d, admitted %d, outstanding %d, tokens granted %d", L, admitted, outstanding, after-before)
	if admitted != L || outstanding != 0 || after != before {
		t.Fatalf("cold key: admitted %d of %d, outstanding %d, granted %d", admitted, L, outstanding, after-before)
	}
}

func dump(t *testing.T, c *harness.Cluster, id actor.ID) {
	for i := uint32(0); i <= 4; i++ {
		sid := id
		sid.Shard = i
		resp, err := c.Node(0).Caller().Call(context.Background(), sid, &holdfastv1.HotCall{Actor: &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key, Shard: i}, Op: &holdfastv1.HotCall_Get{Get: &holdfastv1.RateLimitGetRequest{}}})
		t.Logf("shard %d: %v %v", i, resp, err)
	}
}
