package membership

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/holdfast/holdfast/actor/clock"
)

// ErrInvalidConfig is wrapped by Config.Validate errors.
var ErrInvalidConfig = errors.New("membership: invalid config")

// Config configures one node's membership.
type Config struct {
	// NodeID is this node's stable name (the StatefulSet pod name), unique in
	// the pool: 1 to 64 characters from [A-Za-z0-9_-].
	NodeID string
	// BindAddr is "ip:port" for gossip, TCP and UDP on the same port. The IP
	// must be a literal (0.0.0.0 for all interfaces); port 0 picks a free
	// port (LocalAddr tells which).
	BindAddr string
	// AdvertiseAddr is "ip:port" given to peers; empty: derived from
	// BindAddr (a private IP of this host when bound to 0.0.0.0).
	AdvertiseAddr string
	// Join lists seeds as "host:port"; host may be a DNS name resolving to
	// several addresses (a Kubernetes headless Service). Empty: start a new
	// pool and wait for others to join.
	Join []string
	// SecretKey is the gossip encryption key (AES, 16, 24 or 32 bytes); nil
	// leaves gossip unencrypted. It is never logged.
	SecretKey []byte
	// Meta is this node's initial metadata. Meta.NodeID may be left empty
	// (NodeID is used); Meta.State empty means StateJoining.
	Meta Meta
	// DeadNodeReclaimTime is how long after a node is declared dead its name
	// may be taken by a node at another address (a pod back with a new IP).
	DeadNodeReclaimTime time.Duration
	// ProbeInterval, ProbeTimeout, GossipInterval, SuspicionMult and
	// PushPullInterval are memberlist's failure-detection and dissemination
	// knobs (LAN defaults; tests shorten them).
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	GossipInterval   time.Duration
	SuspicionMult    int
	PushPullInterval time.Duration
	// JoinRetry is the pause between attempts to join the seeds; attempts go
	// on in the background until another member is known (or Leave/Shutdown).
	JoinRetry time.Duration
	// BroadcastTimeout bounds how long Update waits for its change to be
	// sent to a peer, and Leave's wait when given no timeout.
	BroadcastTimeout time.Duration
	// ReconnectInterval is the pause between attempts to reach members that
	// failed (not left); ReconnectTimeout forgets them (Serf's defaults:
	// 30 s and 72 h; ours: 5 s and 72 h).
	ReconnectInterval time.Duration
	ReconnectTimeout  time.Duration
	// WrapTransport, when set, wraps memberlist's UDP/TCP transport (fault
	// injection in tests: cluster/faultnet). nil in production.
	WrapTransport func(memberlist.NodeAwareTransport) memberlist.NodeAwareTransport
	// Clock schedules join retries; clock.Real{} when nil.
	Clock clock.Clock
	// Logger receives membership and memberlist logs; slog.Default() when
	// nil.
	Logger *slog.Logger
}

// DefaultConfig returns memberlist's LAN settings, bound to 0.0.0.0:7946,
// with DeadNodeReclaimTime 30s, JoinRetry 1s and BroadcastTimeout 5s.
// NodeID must still be set.
func DefaultConfig() Config {
	lan := memberlist.DefaultLANConfig()
	return Config{
		BindAddr:            "0.0.0.0:7946",
		Meta:                Meta{State: StateJoining},
		DeadNodeReclaimTime: 30 * time.Second,
		ProbeInterval:       lan.ProbeInterval,
		ProbeTimeout:        lan.ProbeTimeout,
		GossipInterval:      lan.GossipInterval,
		SuspicionMult:       lan.SuspicionMult,
		PushPullInterval:    lan.PushPullInterval,
		JoinRetry:           time.Second,
		BroadcastTimeout:    5 * time.Second,
		ReconnectInterval:   5 * time.Second,
		ReconnectTimeout:    72 * time.Hour,
	}
}

// Validate reports whether c can be used. Errors wrap ErrInvalidConfig (or
// ErrInvalidMeta for the metadata) and never contain the secret key.
func (c Config) Validate() error {
	if !ValidNodeID(c.NodeID) {
		return fmt.Errorf("%w: NodeID %q must match %s", ErrInvalidConfig, c.NodeID, nodeIDPattern)
	}
	if _, _, err := splitIPPort(c.BindAddr, true); err != nil {
		return fmt.Errorf("%w: BindAddr: %v", ErrInvalidConfig, err)
	}
	if c.AdvertiseAddr != "" {
		if _, _, err := splitIPPort(c.AdvertiseAddr, false); err != nil {
			return fmt.Errorf("%w: AdvertiseAddr: %v", ErrInvalidConfig, err)
		}
	}
	for _, s := range c.Join {
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" {
			return fmt.Errorf("%w: Join seed %q must be host:port", ErrInvalidConfig, s)
		}
		if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
			return fmt.Errorf("%w: Join seed %q: bad port", ErrInvalidConfig, s)
		}
	}
	if c.SecretKey != nil {
		if err := memberlist.ValidateKey(c.SecretKey); err != nil {
			return fmt.Errorf("%w: SecretKey: must be 16, 24 or 32 bytes", ErrInvalidConfig)
		}
	}
	if c.Meta.NodeID != "" && c.Meta.NodeID != c.NodeID {
		return fmt.Errorf("%w: Meta.NodeID %q differs from NodeID %q", ErrInvalidConfig, c.Meta.NodeID, c.NodeID)
	}
	if err := c.initialMeta().Validate(); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DeadNodeReclaimTime", c.DeadNodeReclaimTime},
		{"ProbeInterval", c.ProbeInterval},
		{"ProbeTimeout", c.ProbeTimeout},
		{"GossipInterval", c.GossipInterval},
		{"PushPullInterval", c.PushPullInterval},
		{"JoinRetry", c.JoinRetry},
		{"BroadcastTimeout", c.BroadcastTimeout},
		{"ReconnectInterval", c.ReconnectInterval},
		{"ReconnectTimeout", c.ReconnectTimeout},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%w: %s must be positive, got %v", ErrInvalidConfig, d.name, d.v)
		}
	}
	if c.SuspicionMult < 1 {
		return fmt.Errorf("%w: SuspicionMult must be at least 1, got %d", ErrInvalidConfig, c.SuspicionMult)
	}
	return nil
}

// initialMeta is Meta with NodeID and State filled in.
func (c Config) initialMeta() Meta {
	m := c.Meta
	m.NodeID = c.NodeID
	if m.State == "" {
		m.State = StateJoining
	}
	return m
}

// splitIPPort splits "ip:port" with a literal IP.
func splitIPPort(s string, portZeroOK bool) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q must be ip:port", s)
	}
	if net.ParseIP(host) == nil {
		return "", 0, fmt.Errorf("%q: host must be an IP literal", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (p == 0 && !portZeroOK) {
		return "", 0, fmt.Errorf("%q: bad port", s)
	}
	return host, int(p), nil
}
