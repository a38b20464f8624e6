//go:build chaos

package chaos

import (
	"fmt"
	"testing"
	"time"
)

// watchReads reads ns/key through node via until stop, failing the test
// on any successful read of a value other than want (a retryable 503 or
// a transport error is fine: the node is allowed to refuse, never to
// answer wrongly), and returns how many reads succeeded.
func (c *cluster) readsNeverWrong(via int, ns, key, want string, d time.Duration) (ok int) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		r := c.get(via, ns, key)
		if r.err == nil && r.status == 200 {
			if r.body != want {
				c.t.Fatalf("read %s/%s through %s: %q, want %q (a stale owner answered)", ns, key, c.ids[via], r.body, want)
			}
			ok++
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ok
}

// tryPut writes value, and says why unless it is acknowledged.
func (c *cluster) tryPut(via int, ns, key, value string) error {
	if r := c.put(via, ns, key, value); r.err != nil || r.status/100 != 2 {
		return fmt.Errorf("put %s/%s=%s through %s: %v", ns, key, value, c.ids[via], r)
	}
	return nil
}

// mustPut writes value, failing the test unless it is acknowledged.
func (c *cluster) mustPut(via int, ns, key, value string) {
	c.t.Helper()
	if err := c.tryPut(via, ns, key, value); err != nil {
		c.t.Fatal(err)
	}
}

// movedOn is nil once node via's view shows ns/key owned by another node
// than from, at an epoch above before: the key's partition was taken over.
func (c *cluster) movedOn(via int, ns, key string, from int, before uint64) error {
	w, err := c.where(via, ns, key)
	if err != nil {
		return err
	}
	if w.Owner == c.ids[from] || w.Epoch <= before {
		return fmt.Errorf("where %+v", w)
	}
	return nil
}

// waitValue waits until a read through via returns want, failing on any
// other successful value.
func (c *cluster) waitValue(d time.Duration, via int, ns, key, want string) {
	c.t.Helper()
	c.waitFor(d, fmt.Sprintf("%s/%s = %q through %s", ns, key, want, c.ids[via]), func() error {
		r := c.get(via, ns, key)
		if r.err == nil && r.status == 200 {
			if r.body != want {
				c.t.Fatalf("read %s/%s through %s: %q, want %q", ns, key, c.ids[via], r.body, want)
			}
			return nil
		}
		return fmt.Errorf("%v", r)
	})
}

func TestChaos(t *testing.T) {
	c := startCluster(t)
	steps := []struct {
		name string
		fn   func(t *testing.T, c *cluster)
	}{
		{"partitioned owner", partitionedOwner},
		{"paused owner", pausedOwner},
		{"killed owner", killedOwner},
	}
	for _, s := range steps {
		if !t.Run(s.name, func(t *testing.T) { c.t = t; s.fn(t, c); c.waitStable() }) {
			return // the cluster is in an unknown state
		}
	}
}

// A network partition cuts node-3 off. Its reset partitions move to the
// majority at epoch+1 with a fresh state; its wait partitions are
// orphaned (unavailable, retry). Healed, node-3 never answers with the
// state of an epoch it was not handed, and takes its orphaned partitions
// back with their data.
func partitionedOwner(t *testing.T, c *cluster) {
	const cut = 2
	kr, wr := c.keyOwnedBy("kvreset", "part-r", cut)
	kw, _ := c.keyOwnedBy("kv", "part-w", cut)
	c.mustPut(0, "kvreset", kr, "before")
	c.mustPut(0, "kv", kw, "kept")

	start := time.Now()
	docker(t, "network", "disconnect", c.net, c.container(c.ids[cut]))
	c.waitFor(60*time.Second, "the majority to take over the reset partition", func() error {
		return c.movedOn(0, "kvreset", kr, cut, wr.Epoch)
	})
	t.Logf("reset partition taken over %v after the cut", time.Since(start).Round(time.Millisecond))
	c.waitFor(30*time.Second, "a write on the new owner", func() error { return c.tryPut(0, "kvreset", kr, "after") })
	c.waitValue(10*time.Second, 1, "kvreset", kr, "after")
	c.waitFor(30*time.Second, "the wait partition to answer unavailable, retry", func() error {
		r := c.get(0, "kv", kw)
		if r.err == nil && r.status == 200 && r.body != "kept" {
			t.Fatalf("orphaned key read %q, want kept or unavailable", r.body)
		}
		if !retryable(r) {
			return fmt.Errorf("%v", r)
		}
		return nil
	})

	docker(t, "network", "connect", "--ip", c.ips[cut], c.net, c.container(c.ids[cut]))
	healed := time.Now()
	// Straight after the heal, then until it serves again: node-3 itself
	// must never answer with its old epoch's "before".
	n := c.readsNeverWrong(cut, "kvreset", kr, "after", 5*time.Second)
	c.waitValue(60*time.Second, cut, "kvreset", kr, "after")
	c.waitValue(60*time.Second, 0, "kv", kw, "kept")
	t.Logf("healed: node-3 answered %d reads in its first 5 s, all current; its orphaned data back %v after the heal",
		n, time.Since(healed).Round(time.Millisecond))
	if w, err := c.where(cut, "kvreset", kr); err != nil || w.Epoch <= wr.Epoch {
		t.Fatalf("where through node-3 after the heal: %+v, %v (epoch must have moved on from %d)", w, err, wr.Epoch)
	}
}

// docker pause freezes node-2 longer than its lease; its clocks keep
// running. The majority takes over; woken, node-2 never answers with the
// state of its old epoch.
func pausedOwner(t *testing.T, c *cluster) {
	const frozen = 1
	kp, wp := c.keyOwnedBy("kvreset", "pause", frozen)
	c.mustPut(0, "kvreset", kp, "before")
	docker(t, "pause", c.container(c.ids[frozen]))
	start := time.Now()
	paused := true
	defer func() {
		if paused {
			dockerErr("unpause", c.container(c.ids[frozen]))
		}
	}()
	c.waitFor(60*time.Second, "the majority to take over from the paused owner", func() error {
		return c.movedOn(0, "kvreset", kp, frozen, wp.Epoch)
	})
	t.Logf("taken over %v after the pause", time.Since(start).Round(time.Millisecond))
	c.waitFor(30*time.Second, "a write on the new owner", func() error { return c.tryPut(0, "kvreset", kp, "after") })
	// Frozen for a while longer than the lease, as a long GC or VM steal.
	time.Sleep(2 * time.Second)
	docker(t, "unpause", c.container(c.ids[frozen]))
	paused = false
	n := c.readsNeverWrong(frozen, "kvreset", kp, "after", 5*time.Second)
	c.waitValue(60*time.Second, frozen, "kvreset", kp, "after")
	t.Logf("woken: node-2 answered %d reads in its first 5 s, all current", n)
	c.waitReady(frozen, 60*time.Second)
}

// SIGKILL of node-1 (no drain, no lease release). Its wait partitions
// answer "unavailable, retry" through the others until it is started
// again on its disk; then its last acknowledged write is there.
func killedOwner(t *testing.T, c *cluster) {
	const victim = 0
	kk, _ := c.keyOwnedBy("kv", "kill", victim)
	kr, wr := c.keyOwnedBy("kvreset", "kill-r", victim)
	for i := range 5 {
		c.mustPut(1, "kv", kk, fmt.Sprintf("v%d", i))
	}
	docker(t, "kill", "--signal", "KILL", c.container(c.ids[victim]))
	killed := time.Now()
	c.waitFor(60*time.Second, "the survivors to take over the reset partition", func() error {
		return c.movedOn(1, "kvreset", kr, victim, wr.Epoch)
	})
	t.Logf("reset partition taken over %v after SIGKILL", time.Since(killed).Round(time.Millisecond))
	c.waitFor(60*time.Second, "the killed owner's partition to answer unavailable, retry", func() error {
		r := c.get(1, "kv", kk)
		if r.err == nil && r.status == 200 && r.body != "v4" {
			t.Fatalf("read %q while the owner is dead, want v4 or unavailable", r.body)
		}
		if !retryable(r) {
			return fmt.Errorf("%v", r)
		}
		return nil
	})
	docker(t, "start", c.container(c.ids[victim]))
	c.waitReady(victim, 90*time.Second)
	c.waitValue(60*time.Second, 2, "kv", kk, "v4")
}
