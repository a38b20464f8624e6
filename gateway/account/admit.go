package account

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/gateway/vkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

// refusal accumulates the failed checks of one admit: the one with the
// longest wait wins, and "never" (-1) beats any wait.
type refusal struct {
	by   string
	wait int64 // ms; -1 never
}

func (r *refusal) add(by string, wait int64) {
	switch {
	case r.by == "":
	case r.wait == -1:
		return
	case wait != -1 && wait <= r.wait:
		return
	}
	r.by, r.wait = by, wait
}

// admit is the gateway's pre-flight turn; see the package documentation.
func (h *handler) admit(t *actor.Turn, m *holdfastv1.AccountAdmitRequest) (proto.Message, error) {
	for _, f := range []struct {
		name string
		v    int64
	}{{"input_tokens_estimate", m.GetInputTokensEstimate()}, {"output_tokens_estimate", m.GetOutputTokensEstimate()}, {"spend_estimate_nanos", m.GetSpendEstimateNanos()}} {
		if f.v < 0 {
			return nil, invalid(ErrInvalidUsage, fmt.Sprintf("%s = %d, must not be negative", f.name, f.v), "field", f.name)
		}
	}
	now := t.Now().UnixNano()
	resp := &holdfastv1.AccountAdmitResponse{BudgetRemainingNanos: -1}
	refuse := func(by string, wait int64) (proto.Message, error) {
		resp.RefusedBy, resp.RetryAfterMs = by, wait
		// Roll the turn back: a refusal changes nothing, and is not
		// recorded under the request ID.
		return nil, &actor.AbortError{Reply: resp}
	}

	var key *holdfastv1.AccountKey
	if id := m.GetKeyId(); id != "" {
		k, reason, err := checkKey(t, id, m.GetKeyHash())
		if err != nil {
			return nil, err
		}
		if reason != "" {
			return refuse(reason, -1)
		}
		if !allowed(k.GetAllowedProviders(), m.GetProvider()) {
			return refuse(RefusedProviderNotAllowed, -1)
		}
		if !allowed(k.GetAllowedModels(), m.GetModel()) {
			return refuse(RefusedModelNotAllowed, -1)
		}
		key = k
	}

	_, eff, err := h.limits(t)
	if err != nil {
		return nil, err
	}
	amounts := map[string]int64{
		RequestsPerMinute:     1,
		InputTokensPerMinute:  m.GetInputTokensEstimate(),
		OutputTokensPerMinute: m.GetOutputTokensEstimate(),
	}
	var ref refusal

	// The user's buckets, and the key's on top. A scope with no
	// per-minute limit has no bucket to read, take from or write.
	type scope struct {
		prefix string
		lim    *holdfastv1.AccountLimits
		set    ratelimit.Set
		res    ratelimit.Result
	}
	// On the stack, sets and their maps too (made outside the loop below,
	// and not through append, for that).
	var scopeBuf [2]scope
	n := 0
	if hasPerMinute(eff) {
		scopeBuf[n] = scope{prefix: keyBucketPrefix, lim: eff, set: ratelimit.Set{
			Limits: make(map[string]ratelimit.Limit, numPerMinute), Buckets: make(map[string]ratelimit.Bucket, numPerMinute)}}
		n++
	}
	if key != nil && key.GetLimits() != nil && hasPerMinute(key.GetLimits()) {
		scopeBuf[n] = scope{prefix: keyBucketPrefixOf(key.GetKeyId()), lim: key.GetLimits(), set: ratelimit.Set{
			Limits: make(map[string]ratelimit.Limit, numPerMinute), Buckets: make(map[string]ratelimit.Bucket, numPerMinute)}}
		n++
	}
	scopes := scopeBuf[:n]
	for i := range scopes {
		sc := &scopes[i]
		if err := fillSet(t, sc.prefix, sc.lim, &sc.set); err != nil {
			return nil, err
		}
		res, never, err := takeAll(&sc.set, now, amounts)
		if err != nil {
			return nil, err
		}
		sc.res = res
		switch {
		case never != "":
			ref.add(never, -1)
		case !res.Allowed:
			ref.add(res.RefusedBy, res.RetryAfter.Milliseconds())
		}
		// Report the tightest input bucket.
		if l, ok := sc.set.Limits[InputTokensPerMinute]; ok {
			rem := floorDiv(res.Remaining[InputTokensPerMinute], ratelimit.Micro)
			if resp.InputTokensLimit == 0 || rem < resp.InputTokensRemaining {
				resp.InputTokensRemaining, resp.InputTokensLimit = rem, l.Capacity/ratelimit.Micro
			}
		}
	}

	// The daily budgets: the user's and the key's. The spend counter's
	// key is built only for a budget that is set.
	type budget struct {
		nanos int64
		key   bool // the key's, not the user's
	}
	var budgetBuf [2]budget // on the stack
	budgets := append(budgetBuf[:0], budget{nanos: eff.GetDailyBudgetNanos()})
	if key != nil {
		budgets = append(budgets, budget{key.GetLimits().GetDailyBudgetNanos(), true})
	}
	est := m.GetSpendEstimateNanos()
	for _, b := range budgets {
		if b.nanos <= 0 {
			continue
		}
		day := ratelimit.DayKey(now)
		counter := keySpendPrefix + day
		if b.key {
			counter = keySpendKey(key.GetKeyId(), day)
		}
		spent, err := getCounter(t, counter)
		if err != nil {
			return nil, err
		}
		fits, rem, err := ratelimit.Ledger{day: spent}.Check(now, b.nanos, est)
		if err != nil {
			return nil, invalid(ErrInvalidUsage, err.Error())
		}
		if resp.BudgetRemainingNanos == -1 || rem < resp.BudgetRemainingNanos {
			resp.BudgetRemainingNanos = rem
		}
		if !fits {
			wait := untilMidnightMs(now)
			if est > b.nanos {
				wait = -1 // more than a whole day's budget
			}
			ref.add(RefusedDailyBudget, wait)
		}
	}

	if ref.by != "" {
		return refuse(ref.by, ref.wait)
	}
	for i := range scopes {
		if err := saveSet(t, scopes[i].prefix, &scopes[i].set); err != nil {
			return nil, err
		}
	}
	resp.Allowed = true
	return resp, nil
}

// takeAll takes want from every bucket of s, all or nothing. never names a
// bucket whose capacity is below the amount (no wait can help); res then
// holds the levels as they stand.
func takeAll(s *ratelimit.Set, now int64, want map[string]int64) (res ratelimit.Result, never string, err error) {
	amounts := make(map[string]int64, numPerMinute) // constant size: on the stack
	for name := range s.Limits {
		amounts[name] = want[name]
	}
	if len(amounts) == 0 {
		return ratelimit.Result{Allowed: true, Remaining: map[string]int64{}}, "", nil
	}
	res, err = s.Take(now, amounts)
	if err == nil {
		return res, "", nil
	}
	var ce *ratelimit.CapacityError // escapes: only on this path
	if errors.As(err, &ce) {
		for name := range amounts {
			amounts[name] = 0
		}
		look, lerr := s.Take(now, amounts)
		if lerr != nil {
			return res, "", invalid(ErrInvalidLimit, lerr.Error())
		}
		look.Allowed = false
		return look, ce.Name, nil
	}
	return res, "", invalid(ErrInvalidLimit, err.Error())
}

// checkKey returns the key record when id names a key whose stored hash is
// hash (compared in constant time) and which is not revoked; otherwise a
// refusal reason. A wrong hash reads as unknown, so the reply says nothing
// about which key IDs exist; revocation is told only to the key's holder.
func checkKey(t *actor.Turn, id string, hash []byte) (*holdfastv1.AccountKey, string, error) {
	if !vkey.ValidID(id) {
		return nil, RefusedKeyUnknown, nil
	}
	stored, ok, err := t.Get(keyHashPrefix + id)
	if err != nil {
		return nil, "", err
	}
	if !ok || len(stored) != 32 || subtle.ConstantTimeCompare(stored, hash) != 1 {
		return nil, RefusedKeyUnknown, nil
	}
	k := &holdfastv1.AccountKey{}
	found, err := getProtoOK(t, keyKeyPrefix+id, k)
	if err != nil {
		return nil, "", err
	}
	if !found {
		return nil, RefusedKeyUnknown, nil
	}
	if k.GetRevoked() {
		return nil, RefusedKeyRevoked, nil
	}
	return k, "", nil
}

// allowed reports whether v is in list: an empty list allows anything; an
// entry ending in '*' allows every value starting with what precedes it
// ("claude-*").
func allowed(list []string, v string) bool {
	if len(list) == 0 {
		return true
	}
	for _, e := range list {
		if e == v {
			return true
		}
		if p, ok := strings.CutSuffix(e, "*"); ok && strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}
