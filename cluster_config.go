package holdfast

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/cluster"
	"github.com/holdfast/holdfast/cluster/natsdir"
)

// ClusterConfig is the `cluster:` section. A node runs as a cluster member
// when Enabled is true or Join names seeds (`--join`); otherwise it is a
// single node and none of this binds anything.
type ClusterConfig struct {
	Enabled bool   `yaml:"enabled"`
	Region  string `yaml:"region"`
	// GossipAddr is memberlist's bind address (UDP and TCP): --gossip.
	GossipAddr    string `yaml:"gossip_addr"`
	AdvertiseAddr string `yaml:"advertise_addr"`
	// Join lists gossip seeds host:port (DNS names allowed, e.g. a
	// Kubernetes headless Service): --join.
	Join []string `yaml:"join"`
	// NATSAddr is the embedded NATS client address (--nats);
	// NATSClusterAddr its route address (--nats-cluster). NATSRoutes lists
	// the other nodes' route addresses; empty: the hosts of Join with the
	// port of NATSClusterAddr. NATSURL uses an existing NATS cluster
	// instead of the embedded server.
	NATSAddr        string   `yaml:"nats_addr"`
	NATSClusterAddr string   `yaml:"nats_cluster_addr"`
	NATSRoutes      []string `yaml:"nats_routes"`
	NATSURL         string   `yaml:"nats_url"`
	// NATSNoAdvertise keeps the embedded server from advertising its route
	// address: only NATSRoutes are dialed (NAT, proxies).
	NATSNoAdvertise bool `yaml:"nats_no_advertise"`

	LeaseTTL       time.Duration `yaml:"lease_ttl"`
	Epsilon        time.Duration `yaml:"epsilon"`
	RenewInterval  time.Duration `yaml:"renew_interval"`
	RetryInterval  time.Duration `yaml:"retry_interval"`
	HandoffTimeout time.Duration `yaml:"handoff_timeout"`
	DrainTimeout   time.Duration `yaml:"drain_timeout"`
	KVTimeout      time.Duration `yaml:"kv_timeout"`
	LoadFactor     float64       `yaml:"load_factor"`
	ForwardRetries int           `yaml:"forward_retries"`

	// Insecure allows a cluster without mTLS, gossip key and NATS token
	// (--insecure).
	Insecure      bool           `yaml:"insecure"`
	TLS           ClusterTLSFile `yaml:"tls"`
	GossipKeyFile string         `yaml:"gossip_key_file"`
	NATSTokenFile string         `yaml:"nats_token_file"`

	// GossipProbeInterval shortens memberlist's failure detection (tests).
	GossipProbeInterval time.Duration `yaml:"gossip_probe_interval"`

	// UsageRetention is how long the gateway's usage events stay in the
	// JetStream usage stream (its max age; default and 0: 168h). Sampling is
	// gateway.usage_events.success_sample_rate; a single node publishes
	// no usage events.
	UsageRetention time.Duration `yaml:"usage_retention"`
}

// ClusterTLSFile names the PEM files of the node's certificate. In each
// path, {node_id} stands for the node's ID (NodeIDPlaceholder).
type ClusterTLSFile struct {
	CA   string `yaml:"ca"`
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

func defaultClusterConfig() ClusterConfig {
	d := cluster.DefaultConfig()
	return ClusterConfig{
		Region: d.Region, GossipAddr: d.GossipAddr, NATSAddr: d.NATSAddr, NATSClusterAddr: d.NATSClusterAddr,
		LeaseTTL: d.LeaseTTL, Epsilon: d.Epsilon, RenewInterval: d.RenewInterval, RetryInterval: d.RetryInterval,
		HandoffTimeout: d.HandoffTimeout, DrainTimeout: d.DrainTimeout, KVTimeout: d.KVTimeout,
		LoadFactor: d.LoadFactor, ForwardRetries: d.ForwardRetries,
		UsageRetention: natsdir.DefaultUsageRetention,
	}
}

// Clustered reports whether the node runs as a cluster member.
func (c Config) Clustered() bool { return c.Cluster.Enabled || len(c.Cluster.Join) > 0 }

func (c Config) clusterConfig() cluster.Config {
	cc := c.Cluster
	d := cluster.DefaultConfig()
	d.NodeID, d.Region = c.NodeID, cc.Region
	d.GossipAddr, d.AdvertiseAddr, d.Join = cc.GossipAddr, cc.AdvertiseAddr, cc.Join
	d.NATSAddr, d.NATSClusterAddr, d.NATSURL = cc.NATSAddr, cc.NATSClusterAddr, cc.NATSURL
	d.NATSRoutes = cc.NATSRoutes
	if len(d.NATSRoutes) == 0 {
		d.NATSRoutes = natsRoutesFromJoin(cc.Join, cc.NATSClusterAddr)
	}
	d.LeaseTTL, d.Epsilon, d.RenewInterval, d.RetryInterval = cc.LeaseTTL, cc.Epsilon, cc.RenewInterval, cc.RetryInterval
	d.HandoffTimeout, d.DrainTimeout, d.KVTimeout = cc.HandoffTimeout, cc.DrainTimeout, cc.KVTimeout
	d.LoadFactor, d.ForwardRetries = cc.LoadFactor, cc.ForwardRetries
	d.Insecure = cc.Insecure
	d.TLSCA, d.TLSCert, d.TLSKey = cc.TLS.CA, cc.TLS.Cert, cc.TLS.Key
	d.GossipKeyFile, d.NATSTokenFile = cc.GossipKeyFile, cc.NATSTokenFile
	d.GossipProbeInterval = cc.GossipProbeInterval
	return d
}

// natsRoutesFromJoin derives the NATS route addresses from the gossip
// seeds: same hosts, the route port of this node (uniform ports, as in a
// StatefulSet).
func natsRoutesFromJoin(join []string, clusterAddr string) []string {
	_, port, err := net.SplitHostPort(clusterAddr)
	if err != nil {
		return nil
	}
	var out []string
	for _, j := range join {
		host, _, err := net.SplitHostPort(j)
		if err != nil {
			host = j
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out
}

func (c Config) validateCluster() error {
	if !c.Clustered() {
		return nil
	}
	if err := c.clusterConfig().Validate(); err != nil {
		return err
	}
	if c.Cluster.UsageRetention < 0 {
		return fmt.Errorf("cluster.usage_retention %v: must not be negative", c.Cluster.UsageRetention)
	}
	for _, a := range []struct{ key, addr string }{{"cluster.gossip_addr", c.Cluster.GossipAddr}, {"cluster.nats_addr", c.Cluster.NATSAddr}, {"cluster.nats_cluster_addr", c.Cluster.NATSClusterAddr}} {
		if a.addr == "" && a.key != "cluster.gossip_addr" {
			continue
		}
		if _, p, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("%s %q: %v", a.key, a.addr, err)
		} else if _, err := strconv.Atoi(p); err != nil {
			return fmt.Errorf("%s %q: port %q is not a number", a.key, a.addr, p)
		}
	}
	return nil
}
