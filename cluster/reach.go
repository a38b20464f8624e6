package cluster

import (
	"context"
	"sync"

	"github.com/holdfast/holdfast/cluster/ownership"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// pingLoop pings every gossip member over gRPC (the path calls take) and
// feeds the ownership Node its reachability: a node that cannot reach a
// strict majority of the lease holders stops renewing.
func (n *Node) pingLoop() {
	interval := n.cfg.RenewInterval / 2
	for n.sleep(n.ctx, interval) {
		n.mu.Lock()
		peers := make(map[string]string, len(n.mu.addrs))
		for id, m := range n.mu.addrs {
			if id != n.cfg.NodeID && m.GRPCAddr != "" {
				peers[id] = m.GRPCAddr
			}
		}
		n.mu.Unlock()
		reach := map[ownership.NodeID]bool{ownership.NodeID(n.cfg.NodeID): true}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for id, addr := range peers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(n.ctx, interval)
				defer cancel()
				client, err := n.pool.Client(addr)
				if err != nil {
					return
				}
				resp, err := client.Ping(ctx, &holdfastv1.PingRequest{NodeId: n.cfg.NodeID})
				if err == nil && resp.GetNodeId() == id {
					mu.Lock()
					reach[ownership.NodeID(id)] = true
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		n.mu.Lock()
		n.mu.reach = map[string]bool{}
		for id := range reach {
			n.mu.reach[string(id)] = true
		}
		n.mu.Unlock()
		n.raiseReplicasFromView()
		n.feed(ownership.Reachability{Reachable: reach})
	}
}
