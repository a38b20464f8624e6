package actor

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/holdfast/holdfast/actor/clock"
	"github.com/prometheus/client_golang/prometheus"
)

// Durability says how durable a namespace's writes are before a reply leaves
// a turn.
type Durability string

const (
	// Memory keeps state in RAM only: replies are not delayed, a restart
	// loses the state.
	Memory Durability = "memory"
	// Local commits to bbolt and fsyncs before any reply leaves the turn
	// (the default, as Durable Objects persist every put).
	Local Durability = "local"
)

// Limits bound what one call may ask for. Each is refused with a
// *LimitError naming the config key.
type Limits struct {
	// MaxKeyBytes bounds a storage key (config: max_key_bytes).
	MaxKeyBytes int `yaml:"max_key_bytes"`
	// MaxValueBytes bounds a stored value (config: max_value_bytes).
	MaxValueBytes int `yaml:"max_value_bytes"`
	// MaxKeysPerCall bounds the keys of one get/put/delete (config:
	// max_keys_per_call), as DO's 128.
	MaxKeysPerCall int `yaml:"max_keys_per_call"`
	// MaxListLimit bounds the entries one list returns (config:
	// max_list_limit).
	MaxListLimit int `yaml:"max_list_limit"`
	// MaxOpsPerTransaction bounds the operations of one transaction
	// (config: max_ops_per_transaction).
	MaxOpsPerTransaction int `yaml:"max_ops_per_transaction"`
	// TurnDeadline bounds a turn, from the call to its reply, waiting in the
	// mailbox included (config: turn_deadline).
	TurnDeadline time.Duration `yaml:"turn_deadline"`
	// MailboxDepth bounds the calls waiting for one actor; beyond it calls
	// get ErrOverloaded (config: mailbox_depth).
	MailboxDepth int `yaml:"mailbox_depth"`
}

// DefaultLimits are the limits of a node started with no configuration.
func DefaultLimits() Limits {
	return Limits{
		MaxKeyBytes:          2048,
		MaxValueBytes:        128 << 10,
		MaxKeysPerCall:       128,
		MaxListLimit:         1000,
		MaxOpsPerTransaction: 128,
		TurnDeadline:         30 * time.Second,
		MailboxDepth:         1024,
	}
}

// Validate reports a limit that is out of range.
func (l Limits) Validate() error {
	var errs []error
	check := func(name string, v, lo, hi int) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("limits.%s = %d, must be in [%d, %d]", name, v, lo, hi))
		}
	}
	check("max_key_bytes", l.MaxKeyBytes, 1, 32<<10)
	check("max_value_bytes", l.MaxValueBytes, 1, 256<<20)
	check("max_keys_per_call", l.MaxKeysPerCall, 1, 1<<16)
	check("max_list_limit", l.MaxListLimit, 1, 1<<20)
	check("max_ops_per_transaction", l.MaxOpsPerTransaction, 1, 1<<16)
	check("mailbox_depth", l.MailboxDepth, 1, 1<<24)
	if l.TurnDeadline <= 0 {
		errs = append(errs, fmt.Errorf("limits.turn_deadline = %v, must be positive", l.TurnDeadline))
	}
	return errors.Join(errs...)
}

// NamespaceConfig declares one namespace.
type NamespaceConfig struct {
	// Name of the namespace ("ratelimit", "kv", "account", ...).
	Name string
	// Durability of its writes.
	Durability Durability
	// IdleTimeout after which an actor with no turns leaves memory; 0 uses
	// Config.IdleTimeout.
	IdleTimeout time.Duration
	// New makes the handler of one activated actor. It is called with no
	// lock held, at most once per activation; the handler is discarded when
	// the actor is evicted or reset.
	New func(id ID) Handler
	// OnOwnerLoss is what a cluster does with the namespace's actors when
	// their owner node is lost (config: on_owner_loss; empty means wait).
	// It picks the namespace's placement group: the actors of a reset
	// namespace live in partitions [P, 2P), the others in [0, P) (see
	// Runtime.PartitionOf).
	OnOwnerLoss OwnerLoss
}

// OwnerLoss is a namespace's on_owner_loss policy.
type OwnerLoss string

const (
	// OwnerLossWait: nobody serves the actors until their owner comes back
	// with its disk (no acknowledged write is ever lost). The default.
	OwnerLossWait OwnerLoss = "wait"
	// OwnerLossReset: another node takes the actors over with empty state
	// (rate limiters: losing a window's counts is acceptable, waiting is
	// not).
	OwnerLossReset OwnerLoss = "reset"
)

// group returns the placement group of the policy: 1 for reset, else 0.
func (o OwnerLoss) group() int {
	if o == OwnerLossReset {
		return 1
	}
	return 0
}

// Config configures a Runtime. Use DefaultConfig and change what you need.
type Config struct {
	// NodeID names this node in logs and status.
	NodeID string
	// Partitions is P, the number of partitions of one placement group
	// (fixed for a cluster's life); there are 2P ownership partitions, see
	// NamespaceConfig.OnOwnerLoss. At most MaxPartitions.
	Partitions int
	// Limits of each call.
	Limits Limits
	// IdleTimeout after which an idle actor is evicted from memory.
	IdleTimeout time.Duration
	// IdempotencyWindow is how long a request ID's result is kept.
	IdempotencyWindow time.Duration
	// CommitMaxBatch bounds the turn writes coalesced into one commit; 1
	// means one commit (and fsync) per turn, the baseline of the benchmark.
	CommitMaxBatch int
	// CommitDefer is how long the writes of a turn that called
	// Turn.DeferCommit may wait for a commit another turn needs before
	// they get one of their own (config: runtime.commit_defer); 0 commits
	// them at once like any other.
	CommitDefer time.Duration
	// AlarmRetryBase is the first retry delay of a failing alarm; each retry
	// doubles it. AlarmMaxRetries bounds the retries (DO: 2 s, 6 tries).
	AlarmRetryBase  time.Duration
	AlarmMaxRetries int
	// Clock is the source of time; clock.Real{} when nil.
	Clock clock.Clock
	// Logger receives the runtime's logs; slog.Default() when nil.
	Logger *slog.Logger
	// Registerer receives the runtime's metrics; none when nil.
	Registerer prometheus.Registerer
	// Gate is the cluster's say on which partitions this node serves; nil
	// (a single node) serves every partition at no cost. See Gate.
	Gate Gate
}

// MaxCommitDefer bounds Config.CommitDefer: a deferred write is one a
// crash can lose (its reply has not left), and longer would widen that.
const MaxCommitDefer = time.Second

// MaxPartitions bounds Config.Partitions: the 2P ownership partitions are
// numbered by a 16-bit key.
const MaxPartitions = 1 << 15

// DefaultConfig returns the configuration of a node started with no file.
func DefaultConfig() Config {
	return Config{
		NodeID:            "node-1",
		Partitions:        1024,
		Limits:            DefaultLimits(),
		IdleTimeout:       70 * time.Second,
		IdempotencyWindow: 10 * time.Minute,
		CommitMaxBatch:    4096,
		CommitDefer:       10 * time.Millisecond,
		AlarmRetryBase:    2 * time.Second,
		AlarmMaxRetries:   6,
	}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		errs = append(errs, fmt.Errorf("partitions = %d, must be in [1, %d] (the 2×partitions ownership partitions must fit a 16-bit partition key)", c.Partitions, MaxPartitions))
	}
	if err := c.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("idle_timeout = %v, must be positive", c.IdleTimeout))
	}
	if c.IdempotencyWindow <= 0 {
		errs = append(errs, fmt.Errorf("idempotency_window = %v, must be positive", c.IdempotencyWindow))
	}
	if c.CommitMaxBatch < 1 {
		errs = append(errs, fmt.Errorf("commit_max_batch = %d, must be at least 1", c.CommitMaxBatch))
	}
	if c.CommitDefer < 0 || c.CommitDefer > MaxCommitDefer {
		errs = append(errs, fmt.Errorf("commit_defer = %v, must be in [0, %v]", c.CommitDefer, MaxCommitDefer))
	} else if c.CommitDefer >= c.Limits.TurnDeadline && c.Limits.TurnDeadline > 0 {
		errs = append(errs, fmt.Errorf("commit_defer = %v, must be below limits.turn_deadline (%v): a deferred turn waits for its commit within its deadline", c.CommitDefer, c.Limits.TurnDeadline))
	}
	if c.AlarmRetryBase <= 0 || c.AlarmMaxRetries < 0 {
		errs = append(errs, fmt.Errorf("alarm retry base %v / max retries %d invalid", c.AlarmRetryBase, c.AlarmMaxRetries))
	}
	return errors.Join(errs...)
}

func (c NamespaceConfig) validate() error {
	if c.Name == "" {
		return errors.New("namespace with an empty name")
	}
	switch c.Durability {
	case Memory, Local:
	default:
		return fmt.Errorf("namespace %q: durability %q, want memory or local", c.Name, c.Durability)
	}
	if c.New == nil {
		return fmt.Errorf("namespace %q: no handler constructor", c.Name)
	}
	switch c.OnOwnerLoss {
	case "", OwnerLossWait, OwnerLossReset:
	default:
		return fmt.Errorf("namespace %q: on_owner_loss %q, want wait or reset", c.Name, c.OnOwnerLoss)
	}
	return nil
}
