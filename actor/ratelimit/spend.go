package ratelimit

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"
)

// Unlimited is the remaining budget reported when there is no budget
// (budget 0). It is math.MaxInt64 rather than a negative marker so that
// "estimate <= remaining" stays correct arithmetic for every caller.
const Unlimited int64 = math.MaxInt64

// nanosPerDay is the length of a UTC calendar day; UTC has no DST, and
// Unix time has no leap seconds, so every day is exactly this long.
const nanosPerDay = 24 * int64(time.Hour)

// Sentinels for spend errors.
var (
	ErrNegativeSpend = errors.New("negative spend estimate")
	ErrInvalidBudget = errors.New("negative budget")
	ErrInvalidDay    = errors.New("invalid day key")
)

// Ledger is one key's spend, in integer nano-dollars (1e-9 USD), per UTC
// calendar day, keyed by DayKey ("2026-11-27"). Keeping a counter per day
// rather than one counter reset at midnight means no reset has to run on
// time: a new day simply starts with no entry, and old entries are
// removed whenever Tidy gets to them.
//
// A budget is nano-dollars per day; 0 means unlimited (no budget set) and
// a negative budget is ErrInvalidBudget. Counters never go below 0 or
// above math.MaxInt64.
type Ledger map[string]int64

// DayKey returns the ledger key of the UTC calendar day containing now
// (Unix nanoseconds), e.g. "2026-11-27". The key of the last day asked
// for is kept (formatting one cost more than the rest of a gateway
// admit's budget check): a now of that day is answered from it, any
// other day (the next, after midnight; an earlier one, from a clock set
// back) is formatted and kept instead. The key is a function of the day
// alone, so the cache changes no answer.
func DayKey(now int64) string {
	d := floorDiv(now, nanosPerDay)
	if e := lastDay.Load(); e != nil && e.day == d {
		return e.key
	}
	e := &dayEntry{day: d, key: time.Unix(0, now).UTC().Format(time.DateOnly)}
	lastDay.Store(e)
	return e.key
}

// dayEntry is a day (days since 1970-01-01 UTC) and its DayKey.
type dayEntry struct {
	day int64
	key string
}

// lastDay is the day DayKey formatted last: one per process, read and
// replaced atomically (an entry is never modified), so concurrent callers
// on different days at midnight only format again.
var lastDay atomic.Pointer[dayEntry]

// Remaining returns what is left of budget for the day containing now:
// Unlimited when budget is 0, and 0, not a negative number, when actual
// costs overshot the budget.
func (l Ledger) Remaining(now, budget int64) (int64, error) {
	if budget < 0 {
		return 0, fmt.Errorf("ratelimit: budget %d nano-dollars: %w", budget, ErrInvalidBudget)
	}
	if budget == 0 {
		return Unlimited, nil
	}
	return max(budget-l[DayKey(now)], 0), nil // spent ≥ 0: no overflow
}

// Check reports whether a call estimated to cost estimate nano-dollars
// fits the budget for the day containing now, and the remaining budget.
// It debits nothing: the actual cost is added with Add once known.
//
// Once the day's budget is used up Check refuses every call, even one
// estimated at zero, because the real cost of a call is only known after
// it has run; before that, an estimate fits if it is at most Remaining.
// A negative estimate is ErrNegativeSpend.
func (l Ledger) Check(now, budget, estimate int64) (bool, int64, error) {
	if estimate < 0 {
		return false, 0, fmt.Errorf("ratelimit: spend estimate %d nano-dollars: %w", estimate, ErrNegativeSpend)
	}
	rem, err := l.Remaining(now, budget)
	if err != nil {
		return false, 0, err
	}
	return rem > 0 && estimate <= rem, rem, nil
}

// Add adds delta nano-dollars to the counter for day (a DayKey) and
// returns the new total. A negative delta corrects an earlier figure
// (estimate replaced by actual). Taking the day explicitly, rather than
// now, lets a correction that arrives after midnight land on the day the
// spend was recorded instead of crediting the new day. The total
// saturates at math.MaxInt64 and never goes below 0: an over-correction
// must not turn into budget for other calls. A day that is not a
// canonical DayKey is ErrInvalidDay. Add stores into l, so l must be
// non-nil.
func (l Ledger) Add(day string, delta int64) (int64, error) {
	if _, err := parseDay(day); err != nil {
		return 0, err
	}
	spent := l[day]
	switch {
	case delta > 0 && spent > math.MaxInt64-delta:
		spent = math.MaxInt64
	default:
		spent = max(spent+delta, 0) // spent ≥ 0, so spent+delta ≥ MinInt64
	}
	l[day] = spent
	return spent, nil
}

// Tidy returns, sorted, the keys of l for days strictly before the
// retention window: the day containing now and the keepDays−1 days before
// it (keepDays below 1 counts as 1). The day containing now is therefore
// never returned, so a tidy that runs late, just after midnight, cannot
// wipe the new day's spend; keys for future days (another node's clock
// ahead of ours) are kept too. Keys that are not canonical DayKeys are not
// ours to judge and are never returned. Tidy does not modify l.
func (l Ledger) Tidy(now int64, keepDays int) []string {
	keepDays = max(keepDays, 1)
	today := floorDiv(now, nanosPerDay)
	// today ≥ -106752 for any int64 now, so this cannot wrap for any
	// keepDays that could matter; clamp the rest.
	first := today - int64(min(keepDays, 1<<30)-1)
	var old []string
	for key := range l {
		if d, err := parseDay(key); err == nil && d < first {
			old = append(old, key)
		}
	}
	slices.Sort(old)
	return old
}

// parseDay returns the day number (days since 1970-01-01) of a canonical
// DayKey. Re-formatting rejects keys time.Parse accepts loosely, so each
// day has exactly one key.
func parseDay(key string) (int64, error) {
	if e := lastDay.Load(); e != nil && e.key == key {
		return e.day, nil // canonical: DayKey formatted it
	}
	t, err := time.Parse(time.DateOnly, key)
	if err != nil || t.Format(time.DateOnly) != key {
		return 0, fmt.Errorf("ratelimit: day %q: %w: want YYYY-MM-DD", key, ErrInvalidDay)
	}
	return floorDiv(t.Unix(), 24*60*60), nil
}

// floorDiv is a / b rounded toward negative infinity, for b > 0, so that
// instants before 1970 still fall in the right day.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}
