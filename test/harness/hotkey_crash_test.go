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

// A hot key's parent owner crashes the moment its split begins (the
// parent has divided its tokens into parcels; the shards are being
// initialised), under on_owner_loss wait: its partitions are orphaned
// until it returns with its disk, and the sequence then finishes. Every
// step of a split is one atomic turn, so a crash can lose tokens (an
// allowance held by a dead node, a parcel's rounding) but never mint
// them: admitted stays ≤ L.
func TestHotKeySplitSurvivesParentCrash(t *testing.T) {
	const L = 20000
	c := harness.New(t, 3, harness.Options{Configure: func(i int, cfg *holdfast.Config) {
		bucket := map[string]holdfast.BucketConfig{"r": {Capacity: L, RefillPerSecond: 0.000001}}
		cfg.Namespaces["rlwait"] = holdfast.NamespaceConfig{Kind: "ratelimit", OnOwnerLoss: "wait", Buckets: bucket,
			HotThresholdTPS: 200, HotShards: 4, HotMergeAfter: time.Minute, AllowanceLifetime: 500 * time.Millisecond, AllowanceMaxTakes: 16}
	}})
	const victim = 2
	key := keyOwnedBy(t, c, "rlwait", victim)
	id := actor.ID{Namespace: "rlwait", Key: key}
	ref := &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key}

	var admitted, failed atomic.Int64
	var seq atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, i := range []int{0, 1} {
		caller := c.Node(i).Caller()
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					reqID := fmt.Sprintf("n%d-w%d-%d", i, w, seq.Add(1))
					for !stop.Load() { // the same request ID until answered: it counts once
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						resp, err := caller.Call(ctx, id, &holdfastv1.RateLimitTakeRequest{Actor: ref, RequestId: reqID, Amounts: map[string]int64{"r": 1}})
						cancel()
						if err != nil {
							failed.Add(1)
							time.Sleep(5 * time.Millisecond)
							continue
						}
						if resp.(*holdfastv1.RateLimitTakeResponse).GetAllowed() {
							admitted.Add(1)
						}
						time.Sleep(time.Millisecond)
						break
					}
				}
			}()
		}
	}
	defer func() { stop.Store(true); wg.Wait() }()

	c.WaitFor(30*time.Second, "the parent to begin its split", func() error {
		hot, err := c.Node(victim).Hot(context.Background(), true)
		if err != nil {
			return err
		}
		for _, k := range hot.GetNodes()[0].GetKeys() {
			if k.GetActor().GetKey() == key && k.GetActor().GetShard() == 0 && k.GetState() == "split" {
				return nil
			}
		}
		return fmt.Errorf("not split yet (admitted %d)", admitted.Load())
	})
	atCrash := admitted.Load()
	c.Crash(victim)
	t.Logf("parent owner crashed at the split, %d admitted", atCrash)
	if err := c.Restart(victim); err != nil {
		t.Fatal(err)
	}
	c.WaitFor(90*time.Second, "the key to run dry", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := c.Node(0).Caller().Call(ctx, id, &holdfastv1.RateLimitGetRequest{Actor: ref})
		if err != nil {
			return err
		}
		for _, b := range resp.(*holdfastv1.RateLimitState).GetBuckets() {
			if b.GetName() == "r" && b.GetLevel() >= 1 {
				return fmt.Errorf("level %v, admitted %d", b.GetLevel(), admitted.Load())
			}
		}
		return nil
	})
	stop.Store(true)
	wg.Wait()
	a := admitted.Load()
	t.Logf("limit %d: admitted %d (%d at the crash), failed calls retried %d, lost %d", L, a, atCrash, failed.Load(), L-a)
	if atCrash >= L {
		t.Fatal("the key ran dry before the crash: the test proves nothing")
	}
	if a > L {
		t.Fatalf("admitted %d > L = %d: a crash mid-split minted tokens", a, L)
	}
	if a == 0 {
		t.Fatal("nothing admitted")
	}
}
