package cluster

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/cluster/ownership"
)

// MemberStatus is one member as this node sees it.
type MemberStatus struct {
	NodeID, Region, State, GRPCAddr, HTTPAddr string
	// LeaseAge is the time since the node's lease key was last written
	// (seen by this node's watch); negative when it holds none.
	LeaseAge        time.Duration
	LeaseRevoked    bool
	PartitionsOwned int
	Load            int64
	Reachable       bool
}

// PartitionStatus is one partition's directory entry and desired owner.
type PartitionStatus struct {
	Partition   int
	Owner       string
	Epoch       uint64
	Orphaned    bool
	HandoffID   string
	Desired     string
	OnOwnerLoss string
}

type leaseSeen struct {
	at      time.Time
	revoked bool
}

func (n *Node) noteWatch(in ownership.Input) {
	ev, ok := in.(ownership.WatchEvent)
	if !ok || ev.Key.Kind != ownership.LeaseKeyKind {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if ev.Lease == nil {
		delete(n.mu.leases, string(ev.Key.Node))
		return
	}
	n.mu.leases[string(ev.Key.Node)] = leaseSeen{at: n.clock.Now(), revoked: ev.Lease.Revoked}
}

// Members lists the gossip members and every lease holder, sorted by ID.
func (n *Node) Members() []MemberStatus {
	ring := n.Ring()
	owned := map[string]int{}
	for _, p := range ring {
		if p.Owner != "" {
			owned[p.Owner]++
		}
	}
	now := n.clock.Now()
	n.mu.Lock()
	byID := map[string]*MemberStatus{}
	for id, m := range n.mu.addrs {
		byID[id] = &MemberStatus{NodeID: id, Region: m.Region, State: string(m.State), GRPCAddr: m.GRPCAddr, HTTPAddr: m.HTTPAddr, Load: m.Load, LeaseAge: -1, Reachable: n.mu.reach[id]}
	}
	for id, l := range n.mu.leases {
		ms := byID[id]
		if ms == nil {
			ms = &MemberStatus{NodeID: id, State: "gone", Reachable: n.mu.reach[id]}
			byID[id] = ms
		}
		ms.LeaseAge, ms.LeaseRevoked = now.Sub(l.at), l.revoked
	}
	n.mu.Unlock()
	out := make([]MemberStatus, 0, len(byID))
	for id, ms := range byID {
		ms.PartitionsOwned = owned[id]
		if id == n.cfg.NodeID {
			ms.Reachable = true
		}
		out = append(out, *ms)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// Ring returns every partition's entry as this node's directory copy has
// it, with the desired owner.
func (n *Node) Ring() []PartitionStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]PartitionStatus, len(n.gate.parts))
	half := len(n.gate.parts) / 2
	for p := range out {
		ps := PartitionStatus{Partition: p, OnOwnerLoss: "wait"}
		if p >= half {
			ps.OnOwnerLoss = "reset"
		}
		if n.mu.node != nil {
			if e, _, ok := n.mu.node.Entry(ownership.Partition(p)); ok {
				ps.Owner, ps.Epoch, ps.Orphaned, ps.HandoffID = string(e.Owner), e.Epoch, e.Orphaned, e.HandoffID
			}
		}
		if n.mu.placement != nil {
			if d, ok := n.mu.placement.DesiredOwner(ownership.Partition(p), ""); ok {
				ps.Desired = string(d)
			}
		}
		out[p] = ps
	}
	return out
}

// Where returns the partition of id and its owner and epoch in this node's
// directory copy.
func (n *Node) Where(id actor.ID) (PartitionStatus, error) {
	p, err := n.rt.PartitionOf(id)
	if err != nil {
		return PartitionStatus{}, err
	}
	owner, epoch, orphaned, _ := n.route(p, "")
	return PartitionStatus{Partition: p, Owner: owner, Epoch: epoch, Orphaned: orphaned}, nil
}

// ErrNotReady is wrapped by Ready's answers.
var ErrNotReady = errors.New("cluster member not ready")

// Ready tells whether this node takes part in the cluster: a lease, a
// synced directory view, a directory stream with a current majority of
// its replicas, if this node holds one of them, its own replica current,
// and every partition placed on this node owned (by it, or by a node
// still handing it over).
//
// It deliberately does not ask for every replica: when one node dies the
// others' streams are a replica short until it returns, and a readiness
// probe failing on every survivor would take the whole Service out of
// rotation for the loss of one node. This node's own replica is what a
// rolling restart must wait for: the next node is stopped only once the
// one restarted before it has caught up, so the stream never drops below
// a majority. DirectoryReplicas reports the full picture.
func (n *Node) Ready() error {
	select {
	case <-n.started:
	default:
		return fmt.Errorf("%w: directory not open yet (JetStream forming)", ErrNotReady)
	}
	n.mu.Lock()
	inc, synced := n.mu.node.Incarnation(), n.mu.synced
	rep := n.mu.replicas
	n.mu.Unlock()
	switch {
	case inc == 0:
		return fmt.Errorf("%w: no lease yet", ErrNotReady)
	case !synced:
		return fmt.Errorf("%w: directory view not synced", ErrNotReady)
	case !rep.known:
		return fmt.Errorf("%w: directory replicas not known yet", ErrNotReady)
	case rep.have < rep.configured/2+1:
		return fmt.Errorf("%w: directory has %d of %d replicas current: no majority", ErrNotReady, rep.have, rep.configured)
	case rep.member && !rep.memberCurrent:
		return fmt.Errorf("%w: this node's directory replica is catching up", ErrNotReady)
	}
	if unowned := n.unownedDesired(); unowned > 0 {
		return fmt.Errorf("%w: claiming %d partitions placed on this node", ErrNotReady, unowned)
	}
	return nil
}

// unownedDesired counts the partitions placed on this node that nobody
// owns yet: a node is ready once it has claimed its share, so that a
// cluster whose nodes are all ready answers every call (a freshly formed
// one otherwise answers "unowned, retry" for a moment after /readyz).
func (n *Node) unownedDesired() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.node == nil || n.mu.placement == nil {
		return 0
	}
	self := ownership.NodeID(n.cfg.NodeID)
	unowned := 0
	for p := range n.gate.parts {
		if d, ok := n.mu.placement.DesiredOwner(ownership.Partition(p), ""); !ok || d != self {
			continue
		}
		if e, _, ok := n.mu.node.Entry(ownership.Partition(p)); !ok || e.Owner == "" {
			unowned++
		}
	}
	return unowned
}

// ReplicaCounts describe the directory stream's replicas as this node last
// saw them (refreshed every ping round): Configured replicas, Current ones
// (the leader and current followers), Want (min(3, members): the target
// the node raises Configured to), and whether this node holds a replica
// (Member) that is current (MemberCurrent).
type ReplicaCounts struct {
	Configured, Current, Want int
	Member, MemberCurrent     bool
}

// DirectoryReplicas returns the directory stream's replicas as last seen.
func (n *Node) DirectoryReplicas() ReplicaCounts {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.mu.replicas
	return ReplicaCounts{Configured: r.configured, Current: r.have, Want: r.want, Member: r.member, MemberCurrent: r.memberCurrent}
}

// ServedPartitions returns the partitions this node serves now, with
// their epochs.
func (n *Node) ServedPartitions() map[int]uint64 { return n.gate.served() }

// LeaseCredit is the claimant time this node has credited so far: time in
// which its own renewals succeeded. It revokes another node's lease after
// TTL + ε of it, so credit growing slower than the clock delays failover.
// 0 before the ownership Node runs.
func (n *Node) LeaseCredit() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.node == nil {
		return 0
	}
	return n.mu.node.Credit()
}
