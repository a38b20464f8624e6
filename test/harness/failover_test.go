package harness_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/cluster"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/harness"
)

// keyOwnedBy finds a kv key whose partition node `owner` owns.
func keyOwnedBy(t *testing.T, c *harness.Cluster, ns string, owner int) string {
	t.Helper()
	cl := c.Node(owner).Cluster()
	for i := range 10000 {
		key := fmt.Sprintf("k%d", i)
		w, err := cl.Where(actor.ID{Namespace: ns, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if w.Owner == c.ID(owner) {
			return key
		}
	}
	t.Fatalf("no key of %s owned by node-%d", ns, owner+1)
	return ""
}

// With on_owner_loss wait (kv), a crashed owner's partitions are orphaned:
// callers get "unavailable, retry", never a wrong or empty value, until the
// node returns with its disk and takes them back.
func TestCrashWaitOrphansUntilOwnerReturns(t *testing.T) {
	c := harness.New(t, 3, harness.Options{Logger: testLogger(t)})
	key := keyOwnedBy(t, c, "kv", 2)
	if err := put(t, c, 0, key, "f", "v1"); err != nil {
		t.Fatal(err)
	}
	c.Crash(2)
	c.WaitFor(30*time.Second, "the partition to be orphaned", func() error {
		w, _ := c.Node(0).Cluster().Where(actor.ID{Namespace: "kv", Key: key})
		if !w.Orphaned {
			return fmt.Errorf("entry %+v not orphaned", w)
		}
		return nil
	})
	for via := range 2 {
		if _, err := get(t, c, via, key, "f"); !errors.Is(err, cluster.ErrUnavailable) {
			t.Fatalf("get via node-%d while orphaned: %v, want unavailable", via+1, err)
		}
	}
	// The survivors stay ready with the directory a replica short: one
	// dead node must not take every node out of a load balancer.
	for i := range 2 {
		c.WaitFor(30*time.Second, fmt.Sprintf("node-%d ready with a replica down", i+1), func() error {
			r := c.Node(i).Cluster().DirectoryReplicas()
			if r.Current >= r.Configured {
				return fmt.Errorf("replicas %+v: the dead node's not seen offline yet", r)
			}
			return c.Node(i).Cluster().Ready()
		})
	}
	t.Logf("orphaned at %v", time.Since(t0))
	if err := c.Restart(2); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted at %v", time.Since(t0))
	c.WaitFor(60*time.Second, "the owner to take its partition back", func() error {
		v, err := get(t, c, 0, key, "f")
		if err != nil {
			return err
		}
		if v != "v1" {
			t.Fatalf("after the owner returned: %q, want v1", v)
		}
		return nil
	})
}

// With on_owner_loss reset (ratelimit), the desired owner takes a crashed
// owner's partitions after TTL + ε with fresh state.
func TestCrashResetTakesOverWithFreshState(t *testing.T) {
	c := harness.New(t, 3, harness.Options{})
	key := keyOwnedBy(t, c, "ratelimit", 2)
	take := func(via int) (*holdfastv1.RateLimitTakeResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := c.Node(via).Caller().Call(ctx, actor.ID{Namespace: "ratelimit", Key: key}, &holdfastv1.RateLimitTakeRequest{
			Actor:   &holdfastv1.ActorRef{Namespace: "ratelimit", Key: key},
			Amounts: map[string]int64{"b": 1},
		})
		if err != nil {
			return nil, err
		}
		return resp.(*holdfastv1.RateLimitTakeResponse), nil
	}
	ctx := context.Background()
	_, err := c.Node(0).Caller().Call(ctx, actor.ID{Namespace: "ratelimit", Key: key}, &holdfastv1.RateLimitSetRequest{
		Actor:   &holdfastv1.ActorRef{Namespace: "ratelimit", Key: key},
		Buckets: map[string]*holdfastv1.BucketLimit{"b": {Capacity: 3, RefillPerSecond: 0.0001}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		r, err := take(0)
		if err != nil {
			t.Fatal(err)
		}
		if r.GetAllowed() != (i < 3) {
			t.Fatalf("take %d allowed=%v", i, r.GetAllowed())
		}
	}
	start := time.Now()
	c.Crash(2)
	c.WaitFor(60*time.Second, "a new owner", func() error {
		_, err := take(1)
		return err
	})
	t.Logf("failover after %v", time.Since(start))
	// The per-key limit (a setting, replicated) survived; the bucket level
	// (state) did not: the new owner admits a fresh bucket of 3, of which
	// the probe above took one. That is the over-admission reset allows.
	allowed := 1
	for range 5 {
		r, err := take(1)
		if err != nil {
			t.Fatal(err)
		}
		if r.GetAllowed() {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("after the reset %d takes were allowed, want 3 (the per-key capacity)", allowed)
	}
	t.Logf("over-admitted after the crash: %d calls (capacity 3, all taken before)", allowed)
	w, err := c.Node(0).Cluster().Where(actor.ID{Namespace: "ratelimit", Key: key})
	if err != nil || w.Owner == c.ID(2) {
		t.Fatalf("where = %+v, %v", w, err)
	}
}
