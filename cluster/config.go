package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is one node's cluster settings. DefaultConfig gives the values
// DESIGN.md names; Validate says what is wrong, naming the config key.
type Config struct {
	// NodeID is the node's stable name (the StatefulSet pod name):
	// [A-Za-z0-9_-]{1,64}.
	NodeID string
	// Region is carried in the gossip metadata (one region per cluster for
	// now).
	Region string
	// GossipAddr is memberlist's bind address (UDP and TCP).
	GossipAddr string
	// AdvertiseAddr is the gossip address peers use ("" = GossipAddr).
	AdvertiseAddr string
	// Join lists seeds (host:port; DNS names allowed) for gossip. The NATS
	// routes are derived from the same hosts with NATSClusterPort.
	Join []string
	// NATSAddr is the embedded NATS server's client address; NATSClusterAddr
	// its route address. NATSRoutes overrides the routes derived from Join.
	NATSAddr        string
	NATSClusterAddr string
	NATSRoutes      []string
	// NATSURL, when set, uses an existing NATS cluster instead of the
	// embedded server.
	NATSURL string

	// Lease and handoff timing (ownership.Config).
	LeaseTTL       time.Duration
	Epsilon        time.Duration
	RenewInterval  time.Duration
	RetryInterval  time.Duration
	HandoffTimeout time.Duration
	// DrainTimeout bounds the handoff of every partition at shutdown.
	DrainTimeout time.Duration
	// KVTimeout bounds one directory operation (past it: unknown outcome).
	KVTimeout time.Duration
	// LoadFactor is the bounded-load factor of the placement.
	LoadFactor float64
	// MaxReplicas is the directory bucket's replica ceiling (3).
	MaxReplicas int
	// TransferChunkBytes is the size of one handoff chunk.
	TransferChunkBytes int
	// ForwardRetries bounds the retries of a call on NOT_OWNER or a call that
	// provably never ran (backoff 5 ms doubling to 400 ms: 8 retries wait
	// about a second in all, longer than a handoff's pause).
	ForwardRetries int

	// Security. Insecure allows a multi-node cluster without TLS, gossip
	// key and NATS token.
	Insecure      bool
	TLSCA         string
	TLSCert       string
	TLSKey        string
	GossipKeyFile string
	NATSTokenFile string

	// Probe settings of memberlist (0: LAN defaults). Tests shorten them.
	GossipProbeInterval time.Duration

	Logger *slog.Logger
	// Registerer receives the lease and directory watch metrics; none when
	// nil.
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults of DESIGN.md: TTL 15 s (longer than a
// JetStream leader election), ε 1 s, renewal every 3 s.
func DefaultConfig() Config {
	return Config{
		NodeID:             "node-1",
		Region:             "default",
		GossipAddr:         "127.0.0.1:7946",
		NATSAddr:           "127.0.0.1:4222",
		NATSClusterAddr:    "127.0.0.1:6222",
		LeaseTTL:           15 * time.Second,
		Epsilon:            time.Second,
		RenewInterval:      3 * time.Second,
		RetryInterval:      500 * time.Millisecond,
		HandoffTimeout:     30 * time.Second,
		DrainTimeout:       60 * time.Second,
		KVTimeout:          2 * time.Second,
		LoadFactor:         1.25,
		MaxReplicas:        3,
		TransferChunkBytes: 256 << 10,
		ForwardRetries:     8,
	}
}

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks every field, naming the config key of each error.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("cluster.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if !nodeIDPattern.MatchString(c.NodeID) {
		bad("node_id", "%q must match [A-Za-z0-9_-]{1,64}", c.NodeID)
	}
	if c.GossipAddr == "" {
		bad("gossip_addr", "empty")
	}
	if c.NATSURL == "" && c.NATSAddr == "" {
		bad("nats_addr", "empty (and no nats_url)")
	}
	if c.LeaseTTL <= 0 {
		bad("lease_ttl", "must be positive")
	}
	if c.Epsilon <= 0 || 2*c.Epsilon >= c.LeaseTTL {
		bad("epsilon", "must be positive and below lease_ttl/2")
	}
	if c.RenewInterval <= 0 || 2*c.RenewInterval > c.LeaseTTL-c.Epsilon {
		bad("renew_interval", "must be positive and at most (lease_ttl-epsilon)/2")
	}
	if c.RetryInterval <= 0 {
		bad("retry_interval", "must be positive")
	}
	if c.HandoffTimeout <= 0 {
		bad("handoff_timeout", "must be positive")
	}
	if c.DrainTimeout <= 0 {
		bad("drain_timeout", "must be positive")
	}
	if c.KVTimeout <= 0 {
		bad("kv_timeout", "must be positive")
	}
	if c.LoadFactor < 1.05 {
		bad("load_factor", "%v must be at least 1.05", c.LoadFactor)
	}
	if c.MaxReplicas < 1 || c.MaxReplicas > 5 {
		bad("max_replicas", "%d must be in [1, 5]", c.MaxReplicas)
	}
	if c.TransferChunkBytes < 4<<10 {
		bad("transfer_chunk_bytes", "%d must be at least 4096", c.TransferChunkBytes)
	}
	if c.ForwardRetries < 0 || c.ForwardRetries > 10 {
		bad("forward_retries", "%d must be in [0, 10]", c.ForwardRetries)
	}
	tls := []string{c.TLSCA, c.TLSCert, c.TLSKey}
	n := 0
	for _, f := range tls {
		if f != "" {
			n++
		}
	}
	if n != 0 && n != 3 {
		bad("tls", "ca, cert and key must be given together")
	}
	if !c.Insecure && (n == 0 || c.GossipKeyFile == "" || (c.NATSURL == "" && c.NATSTokenFile == "")) {
		errs = append(errs, fmt.Errorf("%w: a cluster needs cluster.tls (ca, cert, key), cluster.gossip_key_file and cluster.nats_token_file (`holdfast certs init DIR` writes development ones), or --insecure", ErrInsecure))
	}
	return errors.Join(errs...)
}

// ErrInsecure is wrapped by the refusal to start a cluster without mTLS,
// gossip encryption and NATS authentication.
var ErrInsecure = errors.New("insecure cluster refused")

// Secure reports whether the node runs with TLS, gossip key and NATS token.
func (c Config) Secure() bool { return c.TLSCA != "" }
