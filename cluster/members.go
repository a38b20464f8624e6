package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/holdfast/holdfast/cluster/membership"
	"github.com/holdfast/holdfast/cluster/natsdir"
	"github.com/holdfast/holdfast/cluster/ownership"
	"github.com/holdfast/holdfast/cluster/placement"
)

// watchMembers recomputes the desired placement on every gossip change and
// raises the directory's replica count as nodes join.
func (n *Node) watchMembers() {
	ch, unsubscribe := n.members.Subscribe()
	defer unsubscribe()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-ch:
			n.refreshMembers()
		}
	}
}

// refreshMembers rebuilds the address book and the placement from the
// gossip view. Draining nodes are left out of the placement, or the new
// owners would hand their partitions back.
func (n *Node) refreshMembers() {
	ms := n.members.Members()
	addrs := make(map[string]membership.Meta, len(ms))
	var eligible []ownership.NodeID
	for _, m := range ms {
		addrs[m.NodeID] = m
		if m.State == membership.StateDraining {
			continue
		}
		if m.NodeID == n.cfg.NodeID && n.isDraining() {
			continue
		}
		eligible = append(eligible, ownership.NodeID(m.NodeID))
	}
	pl, err := placement.New(n.placementParams(), eligible)
	if err != nil {
		n.log.Error("placement failed; keeping the previous one", "err", err, "members", len(eligible))
		return
	}
	n.mu.Lock()
	changed := !samePlacement(n.mu.placement, pl)
	n.mu.addrs = addrs
	n.mu.placement = pl
	started := n.mu.node != nil
	n.mu.Unlock()
	if changed && started {
		n.feed(ownership.SetPlacement{Placement: pl})
	}
	n.raiseReplicas(len(ms))
}

func samePlacement(a, b *placement.Placement) bool {
	if a == nil || b == nil {
		return a == b
	}
	am, bm := a.Members(), b.Members()
	if len(am) != len(bm) {
		return false
	}
	for i := range am {
		if am[i] != bm[i] {
			return false
		}
	}
	return true
}

func (n *Node) isDraining() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mu.draining
}

// replicaView is what this node last learnt of the directory stream's
// replicas (for Ready and DirectoryReplicas).
type replicaView struct {
	configured, have, want int
	member, memberCurrent  bool
	known                  bool
}

// raiseReplicas sets the directory bucket to min(MaxReplicas, members)
// replicas; it never lowers them (a lost node must not shrink the quorum).
func (n *Node) raiseReplicas(members int) {
	want := min(n.cfg.MaxReplicas, members)
	dir := n.directory()
	if dir == nil {
		return
	}
	n.goFunc(func() {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		defer cancel()
		rs, err := dir.ReplicaStatus(ctx, n.cfg.NodeID)
		if err != nil {
			return
		}
		configured := rs.Configured
		n.mu.Lock()
		n.mu.replicas = replicaView{
			configured: configured, have: min(configured, rs.Current), want: want,
			member: rs.Member, memberCurrent: rs.MemberCurrent, known: true,
		}
		n.mu.Unlock()
		if configured >= want {
			return
		}
		if err := dir.SetReplicas(ctx, want); err != nil {
			n.log.Warn("raising directory replicas", "want", want, "err", err)
			return
		}
		if _, err := natsdir.OpenSettings(ctx, n.js, want); err != nil {
			n.log.Warn("raising settings replicas", "want", want, "err", err)
		}
	})
}

func (n *Node) addrOf(node string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m, ok := n.mu.addrs[node]
	if !ok || m.GRPCAddr == "" {
		return "", false
	}
	return m.GRPCAddr, true
}

// Drain hands every partition of this node to the others and waits until it
// owns none (or ctx, or DrainTimeout, ends). SIGTERM and `holdctl drain`
// call it. The node keeps forwarding calls meanwhile.
func (n *Node) Drain(ctx context.Context) error {
	select {
	case <-n.started:
	default:
		return nil // never ran: owns nothing
	}
	n.mu.Lock()
	already := n.mu.draining
	n.mu.draining = true
	n.mu.Unlock()
	if !already {
		n.members.Update(func(m *membership.Meta) { m.State = membership.StateDraining })
		n.refreshMembers()
		n.feed(ownership.Drain{})
		n.log.Info("draining: handing off every partition")
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.DrainTimeout)
	defer cancel()
	for {
		select {
		case <-n.drained:
			n.log.Info("drained: this node owns no partition")
			return nil
		case <-ctx.Done():
			return fmt.Errorf("drain: %d partitions still owned: %w", len(n.gate.served()), ctx.Err())
		default:
		}
		if !n.hasDrainTarget() {
			// The whole cluster is stopping: nobody to hand off to. The
			// partitions stay with this node's disk and its lease; it
			// reclaims them in place when it restarts.
			n.log.Warn("drain: no serving member to hand off to; partitions stay on this node's disk", "partitions", len(n.gate.served()))
			return nil
		}
		n.sleep(ctx, 100*time.Millisecond)
	}
}

// hasDrainTarget tells whether some other member is eligible to take
// partitions (not draining).
func (n *Node) hasDrainTarget() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.placement == nil {
		return false
	}
	for _, m := range n.mu.placement.Members() {
		if string(m) != n.cfg.NodeID {
			return true
		}
	}
	return false
}

// raiseReplicasFromView re-checks the replica target periodically (the
// gossip view may not change after a replica raise failed).
func (n *Node) raiseReplicasFromView() {
	n.mu.Lock()
	members := len(n.mu.addrs)
	n.mu.Unlock()
	n.raiseReplicas(members)
}

// loadLoop publishes this node's load (actors in memory) in its gossip
// metadata when it changed by more than a tenth, at most every 5 s.
func (n *Node) loadLoop() {
	var last int64
	for n.sleep(n.ctx, 5*time.Second) {
		load := n.rt.ActorsInMemory()
		if d := load - last; d*10 <= last && -d*10 <= last && !(last == 0 && load > 0) {
			continue
		}
		last = load
		n.members.Update(func(m *membership.Meta) { m.Load = load })
	}
}
