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
	return h.applySettle(t, m)
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

// applySettle debits a validated settle and returns the day's totals.
func (h *handler) applySettle(t *actor.Turn, m *holdfastv1.AccountSettleRequest) (*holdfastv1.UsageTotals, error) {
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

	own, _, err := h.ownLimits(t)
	if err != nil {
		return nil, err
	}
	if err := adjust(t, keyBucketPrefix, h.effective(own), now, deltas); err != nil {
		return nil, err
	}
	if err := addSpend(t, keySpendPrefix+day, day, m.GetCostNanos()); err != nil {
		return nil, err
	}
	if keyID != "" {
		// The key's own buckets and spend, if the key still exists (a
		// revoked key's call in flight is still charged).
		key := &holdfastv1.AccountKey{}
		found, err := getProtoOK(t, keyKeyPrefix+keyID, key)
		if err != nil {
			return nil, err
		}
		if found {
			if err := adjust(t, keyBucketPrefixOf(keyID), key.GetLimits(), now, deltas); err != nil {
				return nil, err
			}
			if err := addSpend(t, keySpendKey(keyID, day), day, m.GetCostNanos()); err != nil {
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
	if _, err := addTotals(t, keyUsageHourPrefix+hour, hour, d); err != nil {
		return nil, err
	}
	total, err := addTotals(t, keyUsageDayPrefix+day, day, d)
	if err != nil {
		return nil, err
	}
	if err := armTidy(t, now); err != nil {
		return nil, err
	}
	return total, nil
}

// adjust corrects the buckets under prefix that l limits by deltas
// (positive: consume more; negative: give back).
func adjust(t *actor.Turn, prefix string, l *holdfastv1.AccountLimits, now int64, deltas map[string]int64) error {
	s, err := loadSet(t, prefix, l)
	if err != nil {
		return err
	}
	changed := false
	for _, name := range perMinuteNames {
		d, ok := deltas[name]
		if _, limited := s.Limits[name]; !ok || !limited || d == 0 {
			continue
		}
		if _, err := s.Adjust(now, name, d); err != nil {
			return invalid(ErrInvalidLimit, err.Error(), "field", name)
		}
		changed = true
	}
	if !changed {
		return nil
	}
	return saveSet(t, prefix, s)
}

// addSpend adds cost to the spend counter key of day (ratelimit.Ledger:
// saturating, never below zero).
func addSpend(t *actor.Turn, key, day string, cost int64) error {
	if cost == 0 {
		return nil
	}
	spent, err := getCounter(t, key)
	if err != nil {
		return err
	}
	total, err := ratelimit.Ledger{day: spent}.Add(day, cost)
	if err != nil {
		return fmt.Errorf("%w: account: %v", actor.ErrInternal, err)
	}
	return putCounter(t, key, total)
}

// addTotals adds d to the totals stored at key (period names them) and
// returns the new totals. Sums saturate at math.MaxInt64.
func addTotals(t *actor.Turn, key, period string, d *holdfastv1.UsageTotals) (*holdfastv1.UsageTotals, error) {
	cur := &holdfastv1.UsageTotals{}
	if err := getProto(t, key, cur); err != nil {
		return nil, err
	}
	cur.Period = period
	cur.Requests = satAdd(cur.Requests, d.Requests)
	cur.InputTokens = satAdd(cur.InputTokens, d.InputTokens)
	cur.OutputTokens = satAdd(cur.OutputTokens, d.OutputTokens)
	cur.CacheCreationInputTokens = satAdd(cur.CacheCreationInputTokens, d.CacheCreationInputTokens)
	cur.CacheReadInputTokens = satAdd(cur.CacheReadInputTokens, d.CacheReadInputTokens)
	cur.CostNanos = satAdd(cur.CostNanos, d.CostNanos)
	cur.Errors = satAdd(cur.Errors, d.Errors)
	if err := putProto(t, key, cur); err != nil {
		return nil, err
	}
	return cur, nil
}
