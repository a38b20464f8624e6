package holdfast

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-sockaddr"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	"github.com/holdfast/holdfast/cluster"
	"github.com/holdfast/holdfast/cluster/membership"
	"github.com/holdfast/holdfast/cluster/natsdir"
	"github.com/holdfast/holdfast/cluster/peer"
	"github.com/holdfast/holdfast/cluster/tlsconf"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// clusterSecrets are the cluster's credentials, read once at startup.
type clusterSecrets struct {
	bundle    *tlsconf.Bundle // nil: insecure
	gossipKey []byte
	natsToken string
}

func (c Config) readClusterSecrets() (clusterSecrets, error) {
	var s clusterSecrets
	cc := c.Cluster
	if cc.TLS.CA != "" || cc.TLS.Cert != "" || cc.TLS.Key != "" {
		f := tlsconf.Files{CA: c.nodePath(cc.TLS.CA), Cert: c.nodePath(cc.TLS.Cert), Key: c.nodePath(cc.TLS.Key)}
		if err := f.Validate(); err != nil {
			return s, fmt.Errorf("cluster.tls: %w", err)
		}
		b, err := tlsconf.LoadNode(f)
		if err != nil {
			return s, fmt.Errorf("cluster.tls: %w", err)
		}
		if name := b.Identity().Name; name != c.NodeID {
			return s, fmt.Errorf("cluster.tls.cert %s is node %q's certificate, this node is %q", f.Cert, name, c.NodeID)
		}
		s.bundle = b
	}
	if cc.GossipKeyFile != "" {
		k, err := tlsconf.LoadGossipKey(cc.GossipKeyFile)
		if err != nil {
			return s, fmt.Errorf("cluster.gossip_key_file: %w", err)
		}
		s.gossipKey = k
	}
	if cc.NATSTokenFile != "" {
		t, err := tlsconf.LoadSecretFile(cc.NATSTokenFile)
		if err != nil {
			return s, fmt.Errorf("cluster.nats_token_file: %w", err)
		}
		s.natsToken = t
	}
	return s, nil
}

// NodeIDPlaceholder in a cluster.tls path stands for this node's ID, so that
// the nodes of a StatefulSet or a compose file share one config file
// (cert: /certs/{node_id}.pem) and take their node ID from --node-id.
const NodeIDPlaceholder = "{node_id}"

func (c Config) nodePath(p string) string { return strings.ReplaceAll(p, NodeIDPlaceholder, c.NodeID) }

// startCluster joins the cluster once the listeners are bound (their
// addresses are announced in gossip).
func (n *Node) startCluster() error {
	cc := n.cfg.Cluster
	var clientTLS *tls.Config
	if n.secrets.bundle != nil {
		clientTLS = n.secrets.bundle.ClientConfig("")
	}
	pc := peer.PoolConfig{TLS: clientTLS, Token: n.token, Logger: n.log}
	if n.faults != nil {
		pc.Dialer = n.faults.DialContext
	}
	pool, err := peer.NewPool(pc)
	if err != nil {
		return err
	}
	n.peers = pool
	nc := natsdir.DefaultServerConfig()
	nc.NodeID, nc.DataDir, nc.ClientAddr, nc.ClusterAddr = n.cfg.NodeID, n.cfg.DataDir, cc.NATSAddr, cc.NATSClusterAddr
	nc.Routes = n.cluster.Config().NATSRoutes
	if len(nc.Routes) == 0 {
		// A lone member: JetStream runs unclustered (it refuses a route
		// address with no routes).
		nc.ClusterAddr = ""
	}
	nc.Token, nc.Logger = n.secrets.natsToken, n.log
	nc.NoAdvertise = cc.NATSNoAdvertise
	if n.secrets.bundle != nil {
		nc.TLS = n.secrets.bundle.ServerConfig()
		nc.RouteTLS = n.secrets.bundle.PeerConfig()
	}
	mc := membership.DefaultConfig()
	mc.NodeID, mc.BindAddr, mc.AdvertiseAddr, mc.Join = n.cfg.NodeID, cc.GossipAddr, cc.AdvertiseAddr, cc.Join
	mc.SecretKey, mc.Logger = n.secrets.gossipKey, n.log
	if n.faults != nil {
		mc.WrapTransport = n.faults.Transport
	}
	if cc.GossipProbeInterval > 0 {
		mc.ProbeInterval = cc.GossipProbeInterval
		mc.GossipInterval = cc.GossipProbeInterval / 5
		mc.JoinRetry = cc.GossipProbeInterval
		mc.ReconnectInterval = 5 * cc.GossipProbeInterval
	}
	host, err := advertiseHost(cc)
	if err != nil {
		return err
	}
	return n.cluster.Start(cluster.Deps{
		Runtime: n.runtime, Store: n.store, GRPCAddr: advertised(n.GRPCAddr(), host), HTTPAddr: advertised(n.HTTPAddr(), host),
		Pool: pool, NATS: nc, Membership: mc,
	})
}

// advertised turns a wildcard bind address into one peers can dial: the
// port bound, on host (advertiseHost's answer).
func advertised(addr, host string) string {
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
		return net.JoinHostPort(host, port)
	}
	return addr
}

// advertiseHost is the host peers reach this node's gRPC and HTTP
// listeners at when those are bound to a wildcard address: the host of
// cluster.advertise_addr if set, else the gossip bind host if it is a
// specific address, else the private IP memberlist itself advertises for
// a wildcard gossip address (go-sockaddr's GetPrivateIP), so that the
// addresses in gossip all name the same interface. Loopback is the last
// resort (a single host).
func advertiseHost(cc ClusterConfig) (string, error) {
	if cc.AdvertiseAddr != "" {
		h, _, err := net.SplitHostPort(cc.AdvertiseAddr)
		if err != nil {
			h = cc.AdvertiseAddr // a bare host: memberlist takes the port from gossip_addr
		}
		return h, nil
	}
	if h, _, err := net.SplitHostPort(cc.GossipAddr); err == nil {
		if ip := net.ParseIP(h); h != "" && (ip == nil || !ip.IsUnspecified()) {
			return h, nil
		}
	}
	ip, err := sockaddr.GetPrivateIP()
	if err != nil {
		return "", fmt.Errorf("cluster: finding this node's address to advertise (set cluster.advertise_addr): %w", err)
	}
	if ip == "" {
		return "127.0.0.1", nil
	}
	return ip, nil
}

// Cluster returns the node's cluster membership (nil on a single node).
func (n *Node) Cluster() *cluster.Node { return n.cluster }

// Ring implements api.ClusterAdmin.
func (a clusterAdmin) Ring(ctx context.Context) (*holdfastv1.RingResponse, error) {
	n := a.Node
	resp := &holdfastv1.RingResponse{}
	for _, p := range n.cluster.Ring() {
		resp.Partitions = append(resp.Partitions, &holdfastv1.PartitionInfo{
			Partition: uint32(p.Partition), Owner: p.Owner, Epoch: p.Epoch, Orphaned: p.Orphaned,
			HandoffId: p.HandoffID, Desired: p.Desired, OnOwnerLoss: p.OnOwnerLoss,
		})
		if p.Owner != p.Desired {
			resp.MovesPending++
		}
	}
	return resp, nil
}

// Where implements api.ClusterAdmin.
func (a clusterAdmin) Where(ctx context.Context, id actor.ID) (*holdfastv1.WhereResponse, error) {
	n := a.Node
	w, err := n.cluster.Where(id)
	if err != nil {
		return nil, err
	}
	return &holdfastv1.WhereResponse{Partition: uint32(w.Partition), Owner: w.Owner, Epoch: w.Epoch}, nil
}

// Drain implements api.ClusterAdmin: this node, or another one reached over
// the peer service. It returns once the drain has begun.
func (a clusterAdmin) Drain(ctx context.Context, nodeID string) (*holdfastv1.DrainNodeResponse, error) {
	n := a.Node
	if nodeID == "" || nodeID == n.cfg.NodeID {
		go n.cluster.Drain(context.Background())
		return &holdfastv1.DrainNodeResponse{NodeId: n.cfg.NodeID}, nil
	}
	var addr string
	for _, m := range n.cluster.Members() {
		if m.NodeID == nodeID {
			addr = m.GRPCAddr
		}
	}
	if addr == "" {
		return nil, fmt.Errorf("%w: no member %q", actor.ErrNotFound, nodeID)
	}
	client, err := n.peers.Client(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := client.Drain(ctx, &holdfastv1.DrainRequest{}); err != nil {
		return nil, fmt.Errorf("asking %s to drain: %w", nodeID, err)
	}
	return &holdfastv1.DrainNodeResponse{NodeId: nodeID}, nil
}

func (n *Node) clusterMembers() []*holdfastv1.MemberInfo {
	var out []*holdfastv1.MemberInfo
	for _, m := range n.cluster.Members() {
		age := -1.0
		if m.LeaseAge >= 0 {
			age = m.LeaseAge.Seconds()
		}
		out = append(out, &holdfastv1.MemberInfo{
			NodeId: m.NodeID, Region: m.Region, State: m.State, GrpcAddr: m.GRPCAddr, HttpAddr: m.HTTPAddr,
			LeaseAgeSeconds: age, LeaseRevoked: m.LeaseRevoked, PartitionsOwned: int64(m.PartitionsOwned), Load: m.Load, Reachable: m.Reachable,
		})
	}
	return out
}

// OwnerAdmin implements api.ClusterAdmin: an admin client of the node
// owning id's partition, or nil when it is this node.
func (a clusterAdmin) OwnerAdmin(ctx context.Context, id actor.ID) (holdfastv1.AdminServiceClient, error) {
	n := a.Node
	w, err := n.cluster.Where(id)
	if err != nil {
		return nil, err
	}
	if w.Orphaned {
		return nil, &cluster.UnavailableError{Partition: w.Partition, Why: "orphaned"}
	}
	if w.Owner == "" || w.Owner == n.cfg.NodeID {
		return nil, nil
	}
	var addr string
	for _, m := range n.cluster.Members() {
		if m.NodeID == w.Owner {
			addr = m.GRPCAddr
		}
	}
	if addr == "" {
		return nil, &cluster.UnavailableError{Partition: w.Partition, Why: "no route to " + w.Owner}
	}
	conn, err := n.peers.Conn(addr)
	if err != nil {
		return nil, err
	}
	return holdfastv1.NewAdminServiceClient(conn), nil
}

// listLocalKey marks an admin ListActors call one member makes to another:
// answer with your own actors, do not fan out again.
const listLocalKey = "x-holdfast-list-local"

func (n *Node) listClusterActors(ctx context.Context, namespace, prefix string, limit int) ([]actor.ActorInfo, bool, error) {
	if limit <= 0 {
		limit = 1000
	}
	local := func() ([]actor.ActorInfo, bool, error) {
		served := n.cluster.ServedPartitions()
		// Ask for more than limit: entries of stale local buckets are
		// dropped below.
		infos, truncated, err := n.runtime.ListActors(ctx, namespace, prefix, limit+len(served))
		if err != nil {
			return nil, false, err
		}
		out := infos[:0]
		for _, in := range infos {
			if _, ok := served[in.Partition]; ok {
				out = append(out, in)
			}
		}
		return out, truncated, nil
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get(listLocalKey)) > 0 {
		return local()
	}
	all, truncated, err := local()
	if err != nil {
		return nil, false, err
	}
	for _, m := range n.cluster.Members() {
		if m.NodeID == n.cfg.NodeID || m.GRPCAddr == "" || m.State == "gone" {
			continue
		}
		conn, err := n.peers.Conn(m.GRPCAddr)
		if err != nil {
			return nil, false, err
		}
		octx := metadata.AppendToOutgoingContext(ctx, listLocalKey, "1")
		resp, err := holdfastv1.NewAdminServiceClient(conn).ListActors(octx, &holdfastv1.ListActorsRequest{Namespace: namespace, Prefix: prefix, Limit: int64(limit)})
		if err != nil {
			return nil, false, fmt.Errorf("listing the actors of %s: %w", m.NodeID, remoteErr(err))
		}
		truncated = truncated || resp.GetTruncated()
		for _, a := range resp.GetActors() {
			info := actor.ActorInfo{ID: actor.ID{Namespace: a.GetActor().GetNamespace(), Key: a.GetActor().GetKey(), Shard: a.GetActor().GetShard()},
				Partition: int(a.GetPartition()), Keys: a.GetKeys(), InMemory: a.GetInMemory()}
			if a.GetAlarm() != nil {
				info.Alarm = a.GetAlarm().AsTime()
			}
			all = append(all, info)
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].ID.Key != all[j].ID.Key {
			return all[i].ID.Key < all[j].ID.Key
		}
		return all[i].ID.Shard < all[j].ID.Shard
	})
	if len(all) > limit {
		all, truncated = all[:limit], true
	}
	return all, truncated, nil
}

// remoteErr turns a forwarded admin call's gRPC error back into the error
// the other node returned.
func remoteErr(err error) error {
	if st, ok := status.FromError(err); ok {
		return api.ErrorFromStatus(st.Proto())
	}
	return err
}
