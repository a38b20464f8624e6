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

// A hot key (split, allowances) under churn: a node joins and another
// drains while clients on the two members that stay take from it. Each
// take carries a request ID and is retried with it until answered, so it
// counts once. Admitted stays ≤ L and ≥ L minus the allowances outstanding
// when the key runs dry.
func TestHotKeyLimitUnderChurn(t *testing.T) {
	const L = 60000
	c := harness.New(t, 3, harness.Options{Configure: func(i int, cfg *holdfast.Config) {
		bucket := map[string]holdfast.BucketConfig{"r": {Capacity: L, RefillPerSecond: 0.000001}}
		cfg.Namespaces["rlhot"] = holdfast.NamespaceConfig{Kind: "ratelimit", OnOwnerLoss: "reset", Buckets: bucket,
			HotThresholdTPS: 200, HotShards: 4, HotMergeAfter: time.Minute, AllowanceLifetime: 500 * time.Millisecond, AllowanceMaxTakes: 32}
	}})
	id := actor.ID{Namespace: "rlhot", Key: "churn"}
	var admitted, retried atomic.Int64
	var seq atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, i := range []int{1, 2} {
		caller := c.Node(i).Caller()
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					reqID := fmt.Sprintf("n%d-w%d-%d", i, w, seq.Add(1))
					for !stop.Load() {
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						resp, err := caller.Call(ctx, id, &holdfastv1.RateLimitTakeRequest{Actor: &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key}, RequestId: reqID, Amounts: map[string]int64{"r": 1}})
						cancel()
						if err != nil {
							if retried.Add(1) <= 3 {
								t.Logf("retrying %s after: %v", reqID, err)
							}
							time.Sleep(5 * time.Millisecond)
							continue
						}
						if resp.(*holdfastv1.RateLimitTakeResponse).GetAllowed() {
							admitted.Add(1)
						}
						// Paced, so the key lasts through the churn.
						time.Sleep(time.Millisecond)
						break
					}
				}
			}()
		}
	}
	c.WaitFor(30*time.Second, "the key to split and take load", func() error {
		if a := admitted.Load(); a < L/20 {
			return fmt.Errorf("admitted %d", a)
		}
		return nil
	})
	if _, err := c.Add(); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	midChurn := admitted.Load()
	if midChurn >= L {
		t.Fatalf("the key ran dry (%d admitted) before the churn ended: the test proves nothing", midChurn)
	}
	c.WaitFor(60*time.Second, "the key to run dry", func() error {
		if lv := level(t, c, id); lv >= 1 {
			return fmt.Errorf("level %v, admitted %d", lv, admitted.Load())
		}
		return nil
	})
	stop.Store(true)
	wg.Wait()
	var outstanding int64
	for _, i := range c.Running() {
		outstanding += c.Node(i).HotKeyStats().Outstanding
	}
	t.Logf("limit %d: admitted %d (%d before the churn ended), allowances outstanding %d, retried calls %d", L, admitted.Load(), midChurn, outstanding, retried.Load())
	if a := admitted.Load(); a > L || a < L-outstanding {
		t.Fatalf("admitted %d, want ≤ %d and ≥ %d", a, L, L-outstanding)
	}
}
