package natsdir

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/holdfast/holdfast/cluster/ownership"
)

// casChecker keeps compare-and-setting the lease key "x" with a new
// incarnation each time and checks every outcome against what the stream
// leader later reads: a Failed write is never in the bucket; the bucket
// holds the last OK write or one of the Unknown writes sent after it (an
// Unknown write may be applied long after its timeout, e.g. a proposal
// committed once quorum is back, so a read does not settle it).
type casChecker struct {
	t       *testing.T
	d       *Directory
	cur     uint64   // revision the next CAS expects
	inc     uint64   // incarnation of the last write sent
	lastOK  uint64   // incarnation of the last OK write (or seen by a read)
	unknown []uint64 // Unknown writes since the last OK one
	failed  []uint64 // never in the bucket
	stale   bool     // the last write was not OK: read before the next
	counts  map[ownership.Status]int
}

// step performs one read (if needed) and one CAS; it returns the CAS
// status, or the read's if the read failed.
func (c *casChecker) step(ctx context.Context) ownership.Status {
	c.t.Helper()
	if c.stale {
		r := c.d.Do(ctx, leaseOp(0, ownership.OpReadFromLeader, "x", 0, 0))
		if r.Status != ownership.StatusOK {
			return r.Status
		}
		got := r.Lease.Incarnation
		if slices.Contains(c.failed, got) {
			c.t.Fatalf("write %d reported Failed but was applied", got)
		}
		if got != c.lastOK && !slices.Contains(c.unknown, got) {
			c.t.Fatalf("bucket holds incarnation %d; last OK %d, unknown since %v", got, c.lastOK, c.unknown)
		}
		c.lastOK, c.cur, c.stale = got, r.Rev, false
	}
	c.inc++
	res := c.d.Do(ctx, leaseOp(ownership.OpID(c.inc), ownership.OpCompareAndSet, "x", c.cur, c.inc))
	c.counts[res.Status]++
	switch res.Status {
	case ownership.StatusOK:
		if res.Rev <= c.cur {
			c.t.Fatalf("OK write at rev %d not above %d", res.Rev, c.cur)
		}
		c.cur, c.lastOK, c.unknown = res.Rev, c.inc, nil
		return res.Status
	case ownership.StatusUnknown:
		c.unknown = append(c.unknown, c.inc)
	case ownership.StatusFailed:
		c.failed = append(c.failed, c.inc)
	case ownership.StatusMismatch:
		// Nobody else writes "x": an earlier Unknown write was applied,
		// or is pending at the leader; the next read checks it.
	}
	c.stale = true
	return res.Status
}

// untilOK steps until n CAS succeed after done is closed.
func (c *casChecker) untilOK(ctx context.Context, done <-chan struct{}, n int, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for ok := 0; ok < n; {
		if time.Now().After(deadline) {
			c.t.Fatalf("writes did not succeed again within %s: %v", d, c.counts)
		}
		st := c.step(ctx)
		select {
		case <-done:
			if st == ownership.StatusOK {
				ok++
			}
		default:
		}
		if st != ownership.StatusOK {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestCluster: three embedded servers form a cluster; the directory goes
// from 1 to 3 replicas; the stream leader is shut down, then a second
// server (no quorum left), then the first comes back on its data dir: no
// outcome contradicts the bucket, writes succeed again, the watch goes on.
func TestCluster(t *testing.T) {
	t.Parallel()
	start := time.Now()
	servers, cfgs := startCluster(t, 3)
	t.Logf("cluster up after %s", time.Since(start).Round(time.Millisecond))
	ctx := ctxT(t, 55*time.Second)
	stream := "KV_" + DefaultDirectoryBucket

	d0 := openTestDirectory(t, jsFor(t, servers[0], "c0"), 1)
	la := mustStatus(t, d0.Do(ctx, leaseOp(1, ownership.OpCreate, "x", 0, 0)), ownership.StatusOK)
	if err := d0.SetReplicas(ctx, 3); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "3 current replicas", func() bool {
		c, cur, err := d0.Replicas(ctx)
		return err == nil && c == 3 && cur == 3
	})
	for i, s := range servers {
		if !s.NATS().JetStreamIsStreamAssigned("$G", stream) {
			t.Fatalf("server %d hosts no replica", i)
		}
	}
	// Another node binds to the replicated bucket (Replicas 3: no change).
	d1 := openTestDirectory(t, jsFor(t, servers[1], "c1"), 3)
	rd := mustStatus(t, d1.Do(ctx, leaseOp(2, ownership.OpReadFromLeader, "x", 0, 0)), ownership.StatusOK)
	if rd.Rev != la.Rev {
		t.Fatalf("read on node 1: rev %d, want %d", rd.Rev, la.Rev)
	}
	// Mismatches on a replicated stream (error 10164 or 10071).
	mustStatus(t, d1.Do(ctx, leaseOp(3, ownership.OpCreate, "x", 0, 0)), ownership.StatusMismatch)
	mustStatus(t, d1.Do(ctx, leaseOp(4, ownership.OpCompareAndSet, "x", la.Rev+100, 0)), ownership.StatusMismatch)

	leader := -1
	waitFor(t, 10*time.Second, "a stream leader", func() bool {
		for i, s := range servers {
			if s.NATS().JetStreamIsStreamLeader("$G", stream) {
				leader = i
				return true
			}
		}
		return false
	})
	client, third := (leader+1)%3, (leader+2)%3
	dc := openTestDirectory(t, jsFor(t, servers[client], "client"), 3)
	dc.cfg.OpTimeout = time.Second
	dw := openTestDirectory(t, jsFor(t, servers[client], "watcher"), 3)
	var wlogs syncBuffer
	dw.log = testLogger(t, &wlogs)
	defer func() { t.Logf("watcher logs:\n%s", wlogs.String()) }()
	rec, stopWatch := startWatch(t, dw)
	defer stopWatch()
	waitFor(t, 10*time.Second, "watch synced", func() bool { return len(rec.snapshot()) >= 2 })
	t.Logf("replicated directory ready at %s", time.Since(start).Round(time.Millisecond))

	c := &casChecker{t: t, d: dc, cur: la.Rev, counts: map[ownership.Status]int{}}
	// 1. The stream leader shuts down while writes go on.
	down := make(chan struct{})
	go func() {
		defer close(down)
		servers[leader].Shutdown()
	}()
	c.untilOK(ctx, down, 3, 30*time.Second)
	t.Logf("statuses across the leader's shutdown: %v (at %s)", c.counts, time.Since(start).Round(time.Millisecond))

	// 2. A second server goes: no quorum, no write may be reported OK.
	servers[third].Shutdown()
	c.counts = map[ownership.Status]int{}
	for range 3 {
		if st := c.step(ctx); st == ownership.StatusOK {
			t.Fatalf("write OK without a quorum")
		}
	}
	t.Logf("statuses without quorum: %v (at %s)", c.counts, time.Since(start).Round(time.Millisecond))

	// 3. The old leader comes back on its data dir: quorum again.
	back := make(chan struct{})
	go func() {
		defer close(back)
		startTestServer(t, cfgs[leader])
	}()
	c.untilOK(ctx, back, 3, 30*time.Second)
	t.Logf("statuses until recovery: %v (at %s)", c.counts, time.Since(start).Round(time.Millisecond))

	waitFor(t, 20*time.Second, "2 of 3 replicas current", func() bool {
		conf, n, err := dc.Replicas(ctx)
		return err == nil && conf == 3 && n == 2
	})
	t.Logf("replicas checked at %s", time.Since(start).Round(time.Millisecond))
	// The watch reaches the last write, revisions strictly increasing.
	waitFor(t, 20*time.Second, "watch catches up", func() bool {
		in := rec.snapshot()
		ev, ok := in[len(in)-1].(ownership.WatchEvent)
		return ok && ev.Rev == c.cur
	})
	t.Logf("replicas and watch checked at %s", time.Since(start).Round(time.Millisecond))
	in := rec.snapshot()
	if fmt.Sprintf("%T", in[1]) != "ownership.WatchSynced" {
		t.Fatalf("inputs start %s", fmtInputs(in[:2]))
	}
}
