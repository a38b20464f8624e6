package account

import (
	"fmt"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/gateway/vkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// settle debits a finished call (see the package documentation) and
// returns the day's totals after it. The runtime records the reply under
// the request ID, so a retried settle is answered from the record and
// counts once.
func (h *handler) settle(t *actor.Turn, m *holdfastv1.AccountSettleRequest) (*holdfastv1.UsageTotals, error) {
	if err := validateSettle(m); err != nil {
		return nil, err
	}
	c := newSettleCache(h, t)
	day, err := h.applySettle(c, m)
	if err != nil {
		return nil, err
	}
	return day, c.flush()
}

// validateSettle refuses a settle with a negative figure or a malformed
// key ID, before anything of it is applied.
func validateSettle(m *holdfastv1.AccountSettleRequest) error {
	u := m.GetUsage()
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"usage.input_tokens", u.GetInputTokens()},
		{"usage.output_tokens", u.GetOutputTokens()},
		{"usage.cache_creation_input_tokens", u.GetCacheCreationInputTokens()},
		{"usage.cache_creation_5m_input_tokens", u.GetCacheCreation_5MInputTokens()},
		{"usage.cache_creation_1h_input_tokens", u.GetCacheCreation_1HInputTokens()},
		{"usage.cache_read_input_tokens", u.GetCacheReadInputTokens()},
		{"cost_nanos", m.GetCostNanos()},
		{"input_tokens_estimate", m.GetInputTokensEstimate()},
		{"output_tokens_estimate", m.GetOutputTokensEstimate()},
	} {
		if f.v < 0 {
			return invalid(ErrInvalidUsage, fmt.Sprintf("%s = %d, must not be negative", f.name, f.v), "field", f.name)
		}
	}
	if keyID := m.GetKeyId(); keyID != "" && !vkey.ValidID(keyID) {
		return invalid(ErrInvalidKeyID, "key_id must be 16 lowercase hex digits", "field", "key_id")
	}
	return nil
}

// applySettle debits a validated settle, through c, and returns the
// day's totals (c's copy: the caller must not modify it).
func (h *handler) applySettle(c *settleCache, m *holdfastv1.AccountSettleRequest) (*holdfastv1.UsageTotals, error) {
	t := c.t
	u := m.GetUsage()
	keyID := m.GetKeyId()
	now := t.Now().UnixNano()
	day := ratelimit.DayKey(now)

	// Some providers report only the 5m/1h split of cache writes.
	cacheCreation := max(u.GetCacheCreationInputTokens(), satAdd(u.GetCacheCreation_5MInputTokens(), u.GetCacheCreation_1HInputTokens()))
	actualIn := satAdd(satAdd(u.GetInputTokens(), cacheCreation), u.GetCacheReadInputTokens())
	// Both operands are non-negative: the differences cannot overflow.
	deltas := map[string]int64{
		InputTokensPerMinute:  actualIn - m.GetInputTokensEstimate(),
		OutputTokensPerMinute: u.GetOutputTokens() - m.GetOutputTokensEstimate(),
	}

	eff, err := c.effective()
	if err != nil {
		return nil, err
	}
	if err := c.adjust(keyBucketPrefix, eff, now, deltas); err != nil {
		return nil, err
	}
	if err := c.addSpend(keySpendPrefix+day, day, m.GetCostNanos()); err != nil {
		return nil, err
	}
	if keyID != "" {
		// The key's own buckets and spend, if the key still exists (a
		// revoked key's call in flight is still charged).
		key, err := c.key(keyID)
		if err != nil {
			return nil, err
		}
		if key != nil {
			if err := c.adjust(keyBucketPrefixOf(keyID), key.GetLimits(), now, deltas); err != nil {
				return nil, err
			}
			if err := c.addSpend(keySpendKey(keyID, day), day, m.GetCostNanos()); err != nil {
				return nil, err
			}
		}
	}

	d := &holdfastv1.UsageTotals{
		InputTokens:              u.GetInputTokens(),
		OutputTokens:             u.GetOutputTokens(),
		CacheCreationInputTokens: cacheCreation,
		CacheReadInputTokens:     u.GetCacheReadInputTokens(),
		CostNanos:                m.GetCostNanos(),
	}
	if m.GetFailed() {
		d.Errors = 1
	} else {
		d.Requests = 1
	}
	hour := time.Unix(0, now).UTC().Format(hourLayout)
	if _, err := c.addTotals(keyUsageHourPrefix+hour, hour, d); err != nil {
		return nil, err
	}
	total, err := c.addTotals(keyUsageDayPrefix+day, day, d)
	if err != nil {
		return nil, err
	}
	if err := armTidy(t, now); err != nil {
		return nil, err
	}
	return total, nil
}
