package holdfast

import (
	"context"
	"log/slog"
	"sort"
	"sync"

	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/api"
	"github.com/holdfast/holdfast/cluster/hotkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// hotKeys is a node's hot-key handling: the registry its ratelimit actors
// report to (holdctl hot), and the layer in front of its caller (nil when
// no namespace has hot-key handling: calls then go straight to the router
// or the runtime).
type hotKeys struct {
	registry *ratelimit.HotRegistry
	layer    *hotkey.Layer
}

func newHotKeys() *hotKeys { return &hotKeys{registry: ratelimit.NewHotRegistry()} }

// wrap puts the hot-key layer in front of next when a ratelimit namespace
// has static shards or a hot threshold.
func (h *hotKeys) wrap(cfg Config, next api.Caller, logger *slog.Logger, clk clock.Clock) (api.Caller, error) {
	ns := cfg.hotLayerNamespaces()
	if len(ns) == 0 {
		return next, nil
	}
	hc := hotkey.DefaultConfig()
	hc.NodeID, hc.Namespaces, hc.Clock, hc.Logger = cfg.NodeID, ns, clk, logger
	l, err := hotkey.New(hc, next)
	if err != nil {
		return nil, err
	}
	h.layer = l
	return l, nil
}

// close returns the allowances this node holds (bounded by ctx) and stops
// the layer's background work. Idempotent.
func (h *hotKeys) close(ctx context.Context) {
	if h != nil && h.layer != nil {
		h.layer.Close(ctx)
	}
}

// abort stops the layer without returning its allowances (a crash: their
// tokens are lost, never duplicated).
func (h *hotKeys) abort() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h.close(ctx)
}

// HotKeyStats returns the allowance counters of this node's hot-key layer
// (zero when no namespace has hot-key handling).
func (n *Node) HotKeyStats() hotkey.Stats {
	if n.hot == nil || n.hot.layer == nil {
		return hotkey.Stats{}
	}
	return n.hot.layer.Stats()
}

// hotLocal is this node's part of the Hot RPC.
func (n *Node) hotLocal() *holdfastv1.HotNode {
	out := &holdfastv1.HotNode{NodeId: n.cfg.NodeID}
	for _, e := range n.hot.registry.List(n.clock.Now()) {
		out.Keys = append(out.Keys, &holdfastv1.HotKey{
			Actor: &holdfastv1.ActorRef{Namespace: e.ID.Namespace, Key: e.ID.Key, Shard: e.ID.Shard},
			State: e.Mode, Shards: uint32(e.Shards), Generation: e.Generation,
			TurnsPerSecond: e.TurnsPerSecond, KeyTurnsPerSecond: e.KeyTurnsPerSecond, AllowancesGranted: int64(e.GrantsOutstanding),
		})
	}
	if n.hot.layer != nil {
		for _, h := range n.hot.layer.Held() {
			out.Held = append(out.Held, &holdfastv1.HeldAllowance{
				Actor:      &holdfastv1.ActorRef{Namespace: h.ID.Namespace, Key: h.ID.Key, Shard: h.ID.Shard},
				Allowances: int64(h.Grants), Tokens: h.Tokens, UsedTakes: h.UsedTakes,
			})
		}
	}
	return out
}

// Hot implements api.HotAdmin: this node's hot keys and held allowances,
// then (on a cluster member, unless local) every other member's, asked
// over the admin service; a member that cannot be asked is listed with
// its error.
func (n *Node) Hot(ctx context.Context, local bool) (*holdfastv1.HotResponse, error) {
	resp := &holdfastv1.HotResponse{Nodes: []*holdfastv1.HotNode{n.hotLocal()}}
	if local || n.cluster == nil || n.peers == nil {
		return resp, nil
	}
	members := n.cluster.Members()
	others := make([]*holdfastv1.HotNode, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		if m.NodeID == n.cfg.NodeID || m.GRPCAddr == "" || m.State == "gone" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			hn := &holdfastv1.HotNode{NodeId: m.NodeID}
			others[i] = hn
			conn, err := n.peers.Conn(m.GRPCAddr)
			if err != nil {
				hn.Error = err.Error()
				return
			}
			r, err := holdfastv1.NewAdminServiceClient(conn).Hot(ctx, &holdfastv1.HotRequest{Local: true})
			switch {
			case err != nil:
				hn.Error = remoteErr(err).Error()
			case len(r.GetNodes()) > 0:
				others[i] = r.GetNodes()[0]
			}
		}()
	}
	wg.Wait()
	for _, hn := range others {
		if hn != nil {
			resp.Nodes = append(resp.Nodes, hn)
		}
	}
	sort.Slice(resp.Nodes, func(i, j int) bool { return resp.Nodes[i].GetNodeId() < resp.Nodes[j].GetNodeId() })
	return resp, nil
}
