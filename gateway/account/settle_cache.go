package account

import (
	"fmt"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/ratelimit"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// settleCache holds what the settles of one turn read and write, decoded:
// each settle applies its arithmetic, in order, to the values the one
// before it left, exactly as if it had read them from the turn, and each
// key is read, decoded, encoded and written once per turn instead of once
// per settle (a batch of 256 settles is one turn that admits wait
// behind). flush writes what changed.
type settleCache struct {
	h *handler
	t *actor.Turn

	eff      *holdfastv1.AccountLimits          // the user's effective limits, once read
	sets     map[string]*cached[*ratelimit.Set] // bucket sets by prefix
	counters map[string]*cached[int64]          // spend counters by key
	keys     map[string]*holdfastv1.AccountKey
	totals   map[string]*cached[*holdfastv1.UsageTotals]
}

// cached is a value as read, and whether a settle changed it.
type cached[T any] struct {
	v     T
	dirty bool
}

func newSettleCache(h *handler, t *actor.Turn) *settleCache {
	return &settleCache{h: h, t: t, sets: map[string]*cached[*ratelimit.Set]{}, counters: map[string]*cached[int64]{},
		keys: map[string]*holdfastv1.AccountKey{}, totals: map[string]*cached[*holdfastv1.UsageTotals]{}}
}

// effective returns the user's effective limits (the caller must not
// modify them).
func (c *settleCache) effective() (*holdfastv1.AccountLimits, error) {
	if c.eff == nil {
		_, eff, err := c.h.limits(c.t)
		if err != nil {
			return nil, err
		}
		c.eff = eff
	}
	return c.eff, nil
}

// key returns the key record of keyID, or nil when there is none.
func (c *settleCache) key(keyID string) (*holdfastv1.AccountKey, error) {
	if k, ok := c.keys[keyID]; ok {
		return k, nil
	}
	k := &holdfastv1.AccountKey{}
	found, err := getProtoOK(c.t, keyKeyPrefix+keyID, k)
	if err != nil {
		return nil, err
	}
	if !found {
		k = nil
	}
	c.keys[keyID] = k
	return k, nil
}

// adjust corrects the buckets under prefix that l limits by deltas
// (positive: consume more; negative: give back).
func (c *settleCache) adjust(prefix string, l *holdfastv1.AccountLimits, now int64, deltas map[string]int64) error {
	cs, ok := c.sets[prefix]
	if !ok {
		s, err := loadSet(c.t, prefix, l)
		if err != nil {
			return err
		}
		cs = &cached[*ratelimit.Set]{v: s}
		c.sets[prefix] = cs
	}
	for _, name := range perMinuteNames {
		d, ok := deltas[name]
		if _, limited := cs.v.Limits[name]; !ok || !limited || d == 0 {
			continue
		}
		if _, err := cs.v.Adjust(now, name, d); err != nil {
			return invalid(ErrInvalidLimit, err.Error(), "field", name)
		}
		cs.dirty = true
	}
	return nil
}

// addSpend adds cost to the spend counter key of day (ratelimit.Ledger:
// saturating, never below zero).
func (c *settleCache) addSpend(key, day string, cost int64) error {
	if cost == 0 {
		return nil
	}
	cc, ok := c.counters[key]
	if !ok {
		n, err := getCounter(c.t, key)
		if err != nil {
			return err
		}
		cc = &cached[int64]{v: n}
		c.counters[key] = cc
	}
	total, err := ratelimit.Ledger{day: cc.v}.Add(day, cost)
	if err != nil {
		return fmt.Errorf("%w: account: %v", actor.ErrInternal, err)
	}
	cc.v, cc.dirty = total, true
	return nil
}

// addTotals adds d to the totals stored at key (period names them) and
// returns them: the cache's own copy, which later settles of the turn
// change. Sums saturate at math.MaxInt64.
func (c *settleCache) addTotals(key, period string, d *holdfastv1.UsageTotals) (*holdfastv1.UsageTotals, error) {
	ct, ok := c.totals[key]
	if !ok {
		cur := &holdfastv1.UsageTotals{}
		if err := getProto(c.t, key, cur); err != nil {
			return nil, err
		}
		ct = &cached[*holdfastv1.UsageTotals]{v: cur}
		c.totals[key] = ct
	}
	cur := ct.v
	cur.Period = period
	cur.Requests = satAdd(cur.Requests, d.Requests)
	cur.InputTokens = satAdd(cur.InputTokens, d.InputTokens)
	cur.OutputTokens = satAdd(cur.OutputTokens, d.OutputTokens)
	cur.CacheCreationInputTokens = satAdd(cur.CacheCreationInputTokens, d.CacheCreationInputTokens)
	cur.CacheReadInputTokens = satAdd(cur.CacheReadInputTokens, d.CacheReadInputTokens)
	cur.CostNanos = satAdd(cur.CostNanos, d.CostNanos)
	cur.Errors = satAdd(cur.Errors, d.Errors)
	ct.dirty = true
	return cur, nil
}

// flush writes every value the settles changed into the turn.
func (c *settleCache) flush() error {
	for prefix, cs := range c.sets {
		if cs.dirty {
			if err := saveSet(c.t, prefix, cs.v); err != nil {
				return err
			}
		}
	}
	for key, cc := range c.counters {
		if cc.dirty {
			if err := putCounter(c.t, key, cc.v); err != nil {
				return err
			}
		}
	}
	for key, ct := range c.totals {
		if ct.dirty {
			if err := putProto(c.t, key, ct.v); err != nil {
				return err
			}
		}
	}
	return nil
}
