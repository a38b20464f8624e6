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

// Under churn (a join, then a drain) many clients calling through every
// node against one key with limit L are admitted exactly L: handoffs move
// the bucket with its level, never a fresh one. Each take carries a
// request ID, and a failed take is retried with the same ID until it is
// answered, so a take whose reply was lost is counted once.
func TestExactlyLUnderChurn(t *testing.T) {
	const limit = 300
	c := harness.New(t, 3, harness.Options{Configure: func(i int, cfg *holdfast.Config) {
		ns := cfg.Namespaces["ratelimit"]
		ns.Buckets = map[string]holdfast.BucketConfig{"req": {Capacity: limit, RefillPerSecond: 0.000001}}
		cfg.Namespaces["ratelimit"] = ns
	}})
	id := actor.ID{Namespace: "ratelimit", Key: "tenant-hot"}
	var admitted, refused, retried atomic.Int64
	var seq atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				reqID := fmt.Sprintf("w%d-%d", w, seq.Add(1))
				for ctx.Err() == nil {
					running := c.Running()
					node := c.Node(running[int(seq.Load())%len(running)])
					if node == nil {
						continue
					}
					cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
					resp, err := node.Caller().Call(cctx, id, &holdfastv1.RateLimitTakeRequest{
						Actor: &holdfastv1.ActorRef{Namespace: id.Namespace, Key: id.Key}, RequestId: reqID,
						Amounts: map[string]int64{"req": 1},
					})
					ccancel()
					if err != nil {
						if retried.Add(1) <= 5 {
							t.Logf("retrying after: %v", err)
						}
						continue
					}
					if resp.(*holdfastv1.RateLimitTakeResponse).GetAllowed() {
						admitted.Add(1)
					} else {
						refused.Add(1)
					}
					break
				}
			}
		}()
	}
	waitCalls := func(n int64) {
		c.WaitFor(60*time.Second, "calls", func() error {
			if got := admitted.Load() + refused.Load(); got < n {
				return fmt.Errorf("%d calls answered", got)
			}
			return nil
		})
	}
	waitCalls(100)
	if _, err := c.Add(); err != nil {
		t.Fatal(err)
	}
	c.WaitStable(60 * time.Second)
	waitCalls(250)
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	c.WaitStable(60 * time.Second)
	waitCalls(limit + 200)
	cancel()
	wg.Wait()
	t.Logf("admitted %d, refused %d, retried after an error %d", admitted.Load(), refused.Load(), retried.Load())
	if admitted.Load() != limit {
		t.Fatalf("admitted %d, want exactly %d", admitted.Load(), limit)
	}
}

// An alarm moves with its partition and fires on the new owner.
func TestAlarmFiresOnNewOwnerAfterDrain(t *testing.T) {
	c := harness.New(t, 3, harness.Options{})
	key := keyOwnedBy(t, c, "kv", 0)
	id := actor.ID{Namespace: "kv", Key: key}
	ref := &holdfastv1.ActorRef{Namespace: "kv", Key: key}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Node(1).Caller().Call(ctx, id, &holdfastv1.AlarmSetRequest{Actor: ref, RequestId: "alarm-1", InMs: 3000}); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	c.WaitStable(60 * time.Second)
	c.WaitFor(30*time.Second, "the alarm to fire on the new owner", func() error {
		resp, err := c.Node(1).Caller().Call(ctx, id, &holdfastv1.AlarmGetRequest{Actor: ref})
		if err != nil {
			return err
		}
		st := resp.(*holdfastv1.AlarmState)
		if st.GetFiredCount() < 1 {
			return fmt.Errorf("alarm state %v", st)
		}
		return nil
	})
}
