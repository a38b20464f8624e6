package holdfast

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/kv"
	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/cluster/hotkey"
	"github.com/holdfast/holdfast/gateway/account"
)

// buildNamespaces turns the configured namespaces into runtime namespaces
// with their kinds' handlers.
//
// stores, when its fields are non-nil, are where ratelimit namespaces keep
// per-key limits and account namespaces users' limits (a cluster's
// replicated settings bucket); nil keeps them in the actor's state (a
// single node). hot, when non-nil, receives the node's hot ratelimit
// actors (holdctl hot).
func buildNamespaces(cfg Config, stores settingsStores, hot *ratelimit.HotRegistry) ([]actor.NamespaceConfig, error) {
	names := make([]string, 0, len(cfg.Namespaces))
	for name := range cfg.Namespaces {
		names = append(names, name)
	}
	sort.Strings(names)
	var out []actor.NamespaceConfig
	for _, name := range names {
		ns := cfg.Namespaces[name]
		d := actor.Local
		if ns.Durability == "memory" {
			d = actor.Memory
		}
		nc := actor.NamespaceConfig{Name: name, Durability: d, IdleTimeout: ns.IdleTimeout, OnOwnerLoss: actor.OwnerLossWait}
		if ns.OnOwnerLoss == "reset" {
			nc.OnOwnerLoss = actor.OwnerLossReset
		}
		switch ns.Kind {
		case "kv":
			nc.New = kv.New()
		case "account":
			d, err := cfg.accountDefaults()
			if err != nil {
				return nil, err
			}
			d.Settings = stores.account
			nc.New = account.New(d)
		case "ratelimit":
			f, err := ratelimitKind(name, ns, stores.ratelimit, hot)
			if err != nil {
				return nil, err
			}
			nc.New = f
		default:
			return nil, fmt.Errorf("namespaces.%s.kind %q: unknown kind", name, ns.Kind)
		}
		out = append(out, nc)
	}
	return out, nil
}

// ratelimitKind builds a ratelimit namespace's handler from its defaults.
func ratelimitKind(name string, ns NamespaceConfig, limits ratelimit.Settings, hot *ratelimit.HotRegistry) (func(actor.ID) actor.Handler, error) {
	d := ratelimit.Defaults{Buckets: map[string]ratelimit.Limit{}, SpendRetentionDays: ns.SpendRetentionDays, Settings: limits, Hot: ns.hotConfig()}
	d.Hot.Registry = hot
	for bname, b := range ns.Buckets {
		l, err := ratelimit.LimitFromFloat(b.Capacity, b.RefillPerSecond)
		if err != nil {
			return nil, fmt.Errorf("namespaces.%s.buckets.%s: %w", name, bname, err)
		}
		d.Buckets[bname] = l
	}
	if ns.DailyBudgetUSD != "" {
		n, err := ParseUSD(ns.DailyBudgetUSD)
		if err != nil {
			return nil, fmt.Errorf("namespaces.%s.daily_budget_usd: %w", name, err)
		}
		d.DailyBudgetNanos = n
	}
	return ratelimit.New(d), nil
}

// hotConfig is the ratelimit kind's hot-key configuration of ns (without
// defaults, which the kind applies): allowances, when on (the default with
// a threshold), last allowance_lifetime or 1s.
func (ns NamespaceConfig) hotConfig() ratelimit.HotConfig {
	h := ratelimit.HotConfig{Shards: ns.Shards, ThresholdTPS: ns.HotThresholdTPS, HotShards: ns.HotShards,
		MergeAfter: ns.HotMergeAfter, AllowanceMaxTakes: ns.AllowanceMaxTakes}
	if ns.HotThresholdTPS > 0 && (ns.Allowances == nil || *ns.Allowances) {
		h.AllowanceLifetime = ns.AllowanceLifetime
		if h.AllowanceLifetime == 0 {
			h.AllowanceLifetime = ratelimit.MaxAllowanceLifetime
		}
	}
	return h
}

// hotLayerNamespaces are the ratelimit namespaces with hot-key handling, as
// the node's hot-key layer sees them.
func (c Config) hotLayerNamespaces() map[string]hotkey.Namespace {
	out := map[string]hotkey.Namespace{}
	for name, ns := range c.Namespaces {
		if ns.Kind != "ratelimit" {
			continue
		}
		h := ns.hotConfig()
		if !h.Enabled() {
			continue
		}
		out[name] = hotkey.Namespace{CacheTTL: ns.HotCacheTTL, Allowances: h.AllowanceLifetime > 0}
	}
	return out
}

// ParseUSD parses a decimal dollar amount ("12.5", "0.000000001") into
// nano-dollars exactly, refusing more than nine decimals.
func ParseUSD(s string) (int64, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "$")
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" {
		return 0, fmt.Errorf("%q is not a dollar amount", s)
	}
	if len(frac) > 9 {
		return 0, fmt.Errorf("%q has more than nine decimals (one nano-dollar)", s)
	}
	for _, part := range []string{whole, frac} {
		for _, c := range part {
			if c < '0' || c > '9' {
				return 0, fmt.Errorf("%q is not a non-negative decimal dollar amount", s)
			}
		}
	}
	if whole == "" {
		whole = "0"
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > (1<<63-1)/1_000_000_000 {
		return 0, fmt.Errorf("%q is too large", s)
	}
	frac += strings.Repeat("0", 9-len(frac))
	f, _ := strconv.ParseInt(frac, 10, 64)
	return w*1e9 + f, nil
}

// settingsStores are the replicated settings a clustered node's kinds
// read their per-key limits from; the zero value: none (a single node).
type settingsStores struct {
	ratelimit ratelimit.Settings
	account   account.Settings
}

// accountDefaults converts limits.default into the account kind's defaults.
func (c Config) accountDefaults() (account.Defaults, error) {
	d := account.Defaults{
		RequestsPerMinute:     c.Limits.Default.RequestsPerMinute,
		InputTokensPerMinute:  c.Limits.Default.InputTokensPerMinute,
		OutputTokensPerMinute: c.Limits.Default.OutputTokensPerMinute,
	}
	if s := c.Limits.Default.DailyBudgetUSD; s != "" {
		n, err := ParseUSD(s)
		if err != nil {
			return d, fmt.Errorf("limits.default.daily_budget_usd: %w", err)
		}
		d.DailyBudgetNanos = n
	}
	return d, d.Validate()
}
