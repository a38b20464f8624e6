package ownership

import "time"

// Config is one node's fixed parameters.
type Config struct {
	// NodeID is this node's stable name.
	NodeID NodeID
	// Partitions is P, the fixed partition count.
	Partitions int
	// TTL is the lease time-to-live (default in DESIGN.md: 15 s, longer than
	// a JetStream leader election).
	TTL time.Duration
	// Epsilon is the clock-uncertainty margin: at least 2·ρ·TTL plus
	// scheduling slack. The owner's lease ends ε early, the claimant waits ε
	// longer, so drift between two clocks never lets their views overlap.
	Epsilon time.Duration
	// RenewInterval is the time between renewals that succeed.
	RenewInterval time.Duration
	// RetryInterval is the time before an operation that failed is re-issued.
	RetryInterval time.Duration
	// HandoffTimeout bounds a handoff before its move is issued (drain plus
	// transfer); past it the handoff is aborted and the partition served again.
	HandoffTimeout time.Duration
	// BootNonce is unique to this process (random, chosen by the driver); lease
	// nonces are derived from it so that a lease written by this process can
	// be recognised after a lost reply.
	BootNonce string
	// Placement is the initial desired map (SetPlacement replaces it).
	Placement Placement
	// Policy gives each partition's on_owner_loss; nil means Wait everywhere.
	Policy func(Partition) OnOwnerLoss
}

func (c *Config) validate() error {
	switch {
	case c.NodeID == "":
		return &ConfigError{"NodeID", "empty"}
	case c.Partitions <= 0:
		return &ConfigError{"Partitions", "must be positive"}
	case c.TTL <= 0:
		return &ConfigError{"TTL", "must be positive"}
	case c.Epsilon <= 0 || 2*c.Epsilon >= c.TTL:
		return &ConfigError{"Epsilon", "must be positive and below TTL/2"}
	case c.RenewInterval <= 0 || 2*c.RenewInterval > c.TTL-c.Epsilon:
		// Two renewal attempts must fit in a lease, or one slow reply
		// lapses it.
		return &ConfigError{"RenewInterval", "must be positive and at most (TTL-Epsilon)/2"}
	case c.RetryInterval <= 0:
		return &ConfigError{"RetryInterval", "must be positive"}
	case c.HandoffTimeout <= 0:
		return &ConfigError{"HandoffTimeout", "must be positive"}
	case c.BootNonce == "":
		return &ConfigError{"BootNonce", "empty"}
	case c.Placement == nil:
		return &ConfigError{"Placement", "nil"}
	}
	return nil
}

func (c *Config) policy(p Partition) OnOwnerLoss {
	if c.Policy == nil {
		return OwnerLossWait
	}
	return c.Policy(p)
}
