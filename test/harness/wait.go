package harness

import (
	"fmt"
	"time"
)

// WaitFor polls cond until it holds or timeout passes (then the test
// fails with what). Polling with a bound is how a test waits on a
// condition of several processes; never a bare sleep.
func (c *Cluster) WaitFor(timeout time.Duration, what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("waiting %v for %s: %v", timeout, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stable reports nil when every running member is ready, sees the
// directory at full strength (every replica current, at its target), sees
// every other running member serving, and every partition is owned, not
// orphaned, by its desired owner, in every member's view.
func (c *Cluster) Stable() error {
	running := c.Running()
	for _, i := range running {
		n := c.Node(i)
		if n == nil {
			return fmt.Errorf("node-%d stopped", i+1)
		}
		cl := n.Cluster()
		if err := cl.Ready(); err != nil {
			return fmt.Errorf("node-%d: %w", i+1, err)
		}
		// Ready asks only for a majority; a test that goes on to crash a
		// node needs every replica current, or as many as there are
		// running nodes: replicas are never lowered when a node leaves
		// (a lost node must not shrink the quorum), and a stopped node's
		// replica stops being current once NATS notices it is gone (it
		// used to be required, and the check raced with that notice).
		if r := cl.DirectoryReplicas(); r.Configured < r.Want || r.Current < min(r.Configured, len(running)) {
			return fmt.Errorf("node-%d: directory replicas %d current of %d configured, target %d", i+1, r.Current, r.Configured, r.Want)
		}
		serving := 0
		for _, m := range cl.Members() {
			if m.State == "serving" && m.GRPCAddr != "" {
				serving++
			}
		}
		if serving != len(running) {
			return fmt.Errorf("node-%d sees %d serving members, want %d", i+1, serving, len(running))
		}
		for _, p := range cl.Ring() {
			switch {
			case p.Owner == "":
				return fmt.Errorf("node-%d: partition %d unowned", i+1, p.Partition)
			case p.Orphaned:
				return fmt.Errorf("node-%d: partition %d orphaned", i+1, p.Partition)
			case p.Owner != p.Desired:
				return fmt.Errorf("node-%d: partition %d owned by %s, desired %s", i+1, p.Partition, p.Owner, p.Desired)
			}
		}
	}
	return nil
}

// WaitStable waits until Stable holds.
func (c *Cluster) WaitStable(timeout time.Duration) {
	c.t.Helper()
	c.WaitFor(timeout, "a stable cluster", c.Stable)
}
