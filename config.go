package holdfast

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/pricing"
	"gopkg.in/yaml.v3"
)

// Config is the whole configuration of a node. Every field has a default
// (DefaultConfig); a YAML file overrides what it names; flags override the
// file. Unknown keys in the file are an error, so a typo never silently
// leaves a default in force.
type Config struct {
	NodeID   string `yaml:"node_id"`
	DataDir  string `yaml:"data_dir"`
	HTTPAddr string `yaml:"http_addr"`
	GRPCAddr string `yaml:"grpc_addr"`

	Auth AuthConfig `yaml:"auth"`
	Log  LogConfig  `yaml:"log"`

	Runtime RuntimeConfig `yaml:"runtime"`
	Limits  LimitsConfig  `yaml:"limits"`

	// Namespaces by name. The built-in ones (kv, ratelimit) are always
	// present; the file may change their options or add namespaces of the
	// built-in kinds.
	Namespaces map[string]NamespaceConfig `yaml:"namespaces"`

	// Gateway is the LLM gateway's section; Providers replaces the built-in
	// provider map (only `mock`) when present; Pricing merges over the
	// built-in price table; Models lists retired models over the built-in
	// ones.
	Gateway   gateway.Config                    `yaml:"gateway"`
	Providers map[string]gateway.ProviderConfig `yaml:"providers"`
	Pricing   map[string]pricing.ModelPrice     `yaml:"pricing"`
	Models    []pricing.Retirement              `yaml:"models"`

	// Cluster is the `cluster:` section (see ClusterConfig).
	Cluster ClusterConfig `yaml:"cluster"`

	// ShutdownTimeout bounds the graceful stop on SIGTERM (in a cluster:
	// the drain of every partition first).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// ReadHeaderTimeout bounds how long a client may take to send request
	// headers (slow-loris protection).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
}

// AuthConfig says how clients of the actor and admin APIs authenticate.
type AuthConfig struct {
	// Token required as `authorization: Bearer TOKEN`. Required when the
	// node binds beyond loopback.
	Token string `yaml:"token"`
	// TokenFile holds the token (a Kubernetes Secret mount); wins over
	// Token.
	TokenFile string `yaml:"token_file"`
}

// LogConfig configures the node's slog logger.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json, text
}

// RuntimeConfig tunes the actor runtime.
type RuntimeConfig struct {
	Partitions        int           `yaml:"partitions"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	IdempotencyWindow time.Duration `yaml:"idempotency_window"`
	CommitMaxBatch    int           `yaml:"commit_max_batch"`
	// CommitDefer is how long deferred writes (the gateway's settles, and
	// the admits of slow providers: gateway.defer_admit_commits) may wait
	// to ride along in another turn's commit before they get one of their
	// own; 0 commits them at once.
	CommitDefer     time.Duration `yaml:"commit_defer"`
	AlarmRetryBase  time.Duration `yaml:"alarm_retry_base"`
	AlarmMaxRetries int           `yaml:"alarm_max_retries"`
	// GCPercent is the Go garbage collector's target (GOGC) for the
	// holdfast process: 0 leaves the runtime's (the GOGC environment
	// variable, else 100). Higher trades memory (the heap grows to
	// 1+GCPercent/100 times the live heap) for fewer collections, which
	// are the main source of tail latency of rate-limit checks.
	GCPercent int `yaml:"gc_percent"`
	// MemoryLimitBytes is the Go runtime's soft memory limit for the
	// process (GOMEMLIMIT): 0 leaves the runtime's. With a high
	// gc_percent, set it below the container's memory limit.
	MemoryLimitBytes int64 `yaml:"memory_limit_bytes"`
}

// LimitsConfig holds the runtime's per-call limits (max_key_bytes, ...) and,
// under `default`, the gateway's default per-user limits.
type LimitsConfig struct {
	actor.Limits `yaml:",inline"`
	// Default are the limits of a gateway user with none of its own.
	Default UserLimits `yaml:"default"`
}

// UserLimits are a gateway user's limits; 0 or empty means none.
type UserLimits struct {
	RequestsPerMinute     int64  `yaml:"requests_per_minute"`
	InputTokensPerMinute  int64  `yaml:"input_tokens_per_minute"`
	OutputTokensPerMinute int64  `yaml:"output_tokens_per_minute"`
	DailyBudgetUSD        string `yaml:"daily_budget_usd"`
}

// NamespaceConfig declares a namespace: its kind and options.
type NamespaceConfig struct {
	// Kind: kv, ratelimit or account.
	Kind string `yaml:"kind"`
	// Durability: memory or local (default).
	Durability string `yaml:"durability"`
	// IdleTimeout before an idle actor leaves memory (default:
	// runtime.idle_timeout).
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Buckets are the namespace-default token buckets (ratelimit).
	Buckets map[string]BucketConfig `yaml:"buckets"`
	// DailyBudgetUSD is the namespace-default daily spend budget in
	// dollars, as decimal text ("12.50"); empty or "0": none (ratelimit).
	DailyBudgetUSD string `yaml:"daily_budget_usd"`
	// SpendRetentionDays is how many days of spend counters a ratelimit
	// actor keeps (its alarm tidies older ones).
	SpendRetentionDays int `yaml:"spend_retention_days"`
	// OnOwnerLoss says what a cluster does with the namespace's actors when
	// their owner dies: `wait` (the default; kv and account) keeps callers
	// waiting until the node returns with its disk; `reset` (the default of
	// ratelimit) starts fresh state on a new owner (rate limits fail open).
	OnOwnerLoss string `yaml:"on_owner_loss"`

	// Hot keys (kind ratelimit; actor/ratelimit hot.go, cluster/hotkey).
	// Shards > 1 spreads every key over that many static shard actors,
	// each holding 1/Shards of every limit (at most 1024).
	Shards int `yaml:"shards"`
	// HotThresholdTPS is the turns/s above which a key is hot: it splits
	// automatically (unless shards is set) and its owner grants calling
	// nodes allowances. 0 (the default): off.
	HotThresholdTPS float64 `yaml:"hot_threshold_tps"`
	// HotShards is how many shards an automatic split makes (default 4, at
	// most 64); 1: no automatic split (allowances only).
	HotShards int `yaml:"hot_shards"`
	// HotMergeAfter: a split key merges once its rate stayed below half
	// the threshold this long (default 10s); also the least time between a
	// merge and the next split.
	HotMergeAfter time.Duration `yaml:"hot_merge_after"`
	// HotCacheTTL is how long a node uses a key's split without asking
	// the key's parent again (default 5s).
	HotCacheTTL time.Duration `yaml:"hot_cache_ttl"`
	// Allowances: owners of hot keys grant calling nodes allowances
	// (default true when hot_threshold_tps is set).
	Allowances *bool `yaml:"allowances"`
	// AllowanceLifetime is how long a node may hold an allowance, at most
	// 1s (the default).
	AllowanceLifetime time.Duration `yaml:"allowance_lifetime"`
	// AllowanceMaxTakes bounds one allowance, in takes of the same amounts
	// (default 64).
	AllowanceMaxTakes int `yaml:"allowance_max_takes"`
}

// BucketConfig is one token bucket's limit.
type BucketConfig struct {
	Capacity        float64 `yaml:"capacity"`
	RefillPerSecond float64 `yaml:"refill_per_second"`
}

// DefaultConfig is the configuration of `holdfast serve` with no file.
func DefaultConfig() Config {
	rc := actor.DefaultConfig()
	return Config{
		NodeID:   "node-1",
		DataDir:  "./data",
		HTTPAddr: "127.0.0.1:8080",
		GRPCAddr: "127.0.0.1:7070",
		Log:      LogConfig{Level: "info", Format: "json"},
		Runtime: RuntimeConfig{
			Partitions:        rc.Partitions,
			IdleTimeout:       rc.IdleTimeout,
			IdempotencyWindow: rc.IdempotencyWindow,
			CommitMaxBatch:    rc.CommitMaxBatch,
			CommitDefer:       rc.CommitDefer,
			AlarmRetryBase:    rc.AlarmRetryBase,
			AlarmMaxRetries:   rc.AlarmMaxRetries,
		},
		Limits: LimitsConfig{Limits: actor.DefaultLimits()},
		Namespaces: map[string]NamespaceConfig{
			"kv":        {Kind: "kv", Durability: "local", OnOwnerLoss: "wait"},
			"ratelimit": {Kind: "ratelimit", Durability: "local", SpendRetentionDays: 7, OnOwnerLoss: "reset"},
			// The gateway's users (keys, limits, spend, usage) and the
			// key-ID index: never memory, a user's money is never reset.
			"account":       {Kind: "account", Durability: "local", OnOwnerLoss: "wait"},
			"account_index": {Kind: "kv", Durability: "local", OnOwnerLoss: "wait"},
		},
		Cluster:           defaultClusterConfig(),
		Gateway:           gateway.DefaultConfig(),
		ShutdownTimeout:   30 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
	}
}

// LoadConfig reads a YAML file over DefaultConfig.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if err := cfg.UnmarshalYAMLBytes(b); err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// UnmarshalYAMLBytes decodes YAML over the current values, refusing
// unknown keys. Namespaces named in the file merge over the defaults.
func (c *Config) UnmarshalYAMLBytes(b []byte) error {
	defaults := c.Namespaces
	c.Namespaces = nil
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		c.Namespaces = defaults
		return err
	}
	merged := make(map[string]NamespaceConfig, len(defaults)+len(c.Namespaces))
	for k, v := range defaults {
		merged[k] = v
	}
	for k, v := range c.Namespaces {
		if d, ok := defaults[k]; ok {
			if v.Kind == "" {
				v.Kind = d.Kind
			}
			if v.Durability == "" {
				v.Durability = d.Durability
			}
			if v.SpendRetentionDays == 0 {
				v.SpendRetentionDays = d.SpendRetentionDays
			}
			if v.OnOwnerLoss == "" {
				v.OnOwnerLoss = d.OnOwnerLoss
			}
		}
		merged[k] = v
	}
	c.Namespaces = merged
	return nil
}

// Validate reports every invalid setting, each naming its config key.
func (c Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("node_id must not be empty"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir must not be empty"))
	}
	for name, addr := range map[string]string{"http_addr": c.HTTPAddr, "grpc_addr": c.GRPCAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %v", name, addr, err))
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("log.format %q: want json or text", c.Log.Format))
	}
	if err := c.actorConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Runtime.GCPercent < 0 {
		errs = append(errs, fmt.Errorf("runtime.gc_percent %d: want 0 (the Go runtime's) or a positive percentage", c.Runtime.GCPercent))
	}
	if c.Runtime.MemoryLimitBytes < 0 {
		errs = append(errs, fmt.Errorf("runtime.memory_limit_bytes %d: want 0 (the Go runtime's) or a positive number of bytes", c.Runtime.MemoryLimitBytes))
	}
	if _, err := c.accountDefaults(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Gateway.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Providers != nil {
		if err := gateway.ValidateProviders(c.Providers, c.Gateway.Auth != gateway.AuthBYOK); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := pricing.NewTable(c.Pricing); err != nil {
		errs = append(errs, err)
	}
	if _, err := pricing.NewRetirements(c.Models); err != nil {
		errs = append(errs, err)
	}
	for name, ns := range c.Namespaces {
		if err := ns.validate(name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.validateCluster(); err != nil {
		errs = append(errs, err)
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout %v must be positive", c.ShutdownTimeout))
	}
	if c.ReadHeaderTimeout <= 0 {
		errs = append(errs, fmt.Errorf("read_header_timeout %v must be positive", c.ReadHeaderTimeout))
	}
	if tok, err := c.token(); err != nil {
		errs = append(errs, err)
	} else if tok == "" && (!isLoopback(c.HTTPAddr) || !isLoopback(c.GRPCAddr)) {
		errs = append(errs, fmt.Errorf("auth.token or auth.token_file is required when binding beyond loopback (http_addr %s, grpc_addr %s)", c.HTTPAddr, c.GRPCAddr))
	}
	return errors.Join(errs...)
}

func (ns NamespaceConfig) validate(name string) error {
	switch ns.Kind {
	case "kv", "ratelimit", "account":
	default:
		return fmt.Errorf("namespaces.%s.kind %q: want kv, ratelimit or account", name, ns.Kind)
	}
	if ns.Kind == "account" && ns.Durability == "memory" {
		return fmt.Errorf("namespaces.%s.durability memory: an account namespace holds money and keys and must be local", name)
	}
	switch ns.Durability {
	case "", "local", "memory":
	default:
		return fmt.Errorf("namespaces.%s.durability %q: want memory or local", name, ns.Durability)
	}
	if ns.Kind != "ratelimit" && (len(ns.Buckets) > 0 || ns.DailyBudgetUSD != "") {
		return fmt.Errorf("namespaces.%s: buckets and daily_budget_usd apply to kind ratelimit only", name)
	}
	if ns.IdleTimeout < 0 {
		return fmt.Errorf("namespaces.%s.idle_timeout %v must not be negative", name, ns.IdleTimeout)
	}
	switch ns.OnOwnerLoss {
	case "", "wait":
	case "reset":
		if ns.Kind == "account" {
			return fmt.Errorf("namespaces.%s.on_owner_loss reset: an account namespace holds money and keys and must wait for its owner", name)
		}
	default:
		return fmt.Errorf("namespaces.%s.on_owner_loss %q: want wait or reset", name, ns.OnOwnerLoss)
	}
	return ns.validateHot(name)
}

// validateHot checks the hot-key options, each error naming its key.
func (ns NamespaceConfig) validateHot(name string) error {
	set := map[string]bool{
		"shards": ns.Shards != 0, "hot_threshold_tps": ns.HotThresholdTPS != 0, "hot_shards": ns.HotShards != 0,
		"hot_merge_after": ns.HotMergeAfter != 0, "hot_cache_ttl": ns.HotCacheTTL != 0, "allowances": ns.Allowances != nil,
		"allowance_lifetime": ns.AllowanceLifetime != 0, "allowance_max_takes": ns.AllowanceMaxTakes != 0,
	}
	if ns.Kind != "ratelimit" {
		for _, k := range []string{"shards", "hot_threshold_tps", "hot_shards", "hot_merge_after", "hot_cache_ttl", "allowances", "allowance_lifetime", "allowance_max_takes"} {
			if set[k] {
				return fmt.Errorf("namespaces.%s.%s applies to kind ratelimit only", name, k)
			}
		}
		return nil
	}
	if ns.Shards > 1 && ns.HotShards > 1 {
		return fmt.Errorf("namespaces.%s: shards (%d static shards) and hot_shards (%d, an automatic split) are exclusive: set one", name, ns.Shards, ns.HotShards)
	}
	if ns.HotCacheTTL < 0 {
		return fmt.Errorf("namespaces.%s.hot_cache_ttl %v must not be negative", name, ns.HotCacheTTL)
	}
	if err := ns.hotConfig().Validate(); err != nil {
		return fmt.Errorf("namespaces.%s: %w", name, err)
	}
	if ns.AllowanceLifetime < 0 || ns.AllowanceLifetime > time.Second {
		return fmt.Errorf("namespaces.%s.allowance_lifetime %v: want at most 1s", name, ns.AllowanceLifetime)
	}
	return nil
}

// token returns the configured API token (the file wins), trimmed. A token
// file that cannot be read, or is empty, is an error: silently running
// without the token its operator configured would disable auth.
func (c Config) token() (string, error) {
	if c.Auth.TokenFile != "" {
		b, err := os.ReadFile(c.Auth.TokenFile)
		if err != nil {
			return "", fmt.Errorf("auth.token_file: %w", err)
		}
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("auth.token_file %s is empty", c.Auth.TokenFile)
		}
		return tok, nil
	}
	return c.Auth.Token, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c Config) actorConfig() actor.Config {
	rc := actor.DefaultConfig()
	rc.NodeID = c.NodeID
	rc.Partitions = c.Runtime.Partitions
	rc.IdleTimeout = c.Runtime.IdleTimeout
	rc.IdempotencyWindow = c.Runtime.IdempotencyWindow
	rc.CommitMaxBatch = c.Runtime.CommitMaxBatch
	rc.CommitDefer = c.Runtime.CommitDefer
	rc.AlarmRetryBase = c.Runtime.AlarmRetryBase
	rc.AlarmMaxRetries = c.Runtime.AlarmMaxRetries
	rc.Limits = c.Limits.Limits
	return rc
}
