// Package ratelimit is the pure arithmetic core of the ratelimit actor
// kind: named token buckets per key, taken from atomically, and a daily
// spend budget kept as day-keyed counters.
//
// Nothing here reads the clock, starts a goroutine or does I/O. Every
// operation is a function of (state, now, request); the actor glue loads
// the state, calls in, and stores what changed. That keeps the behaviour
// deterministic, replayable, and testable without sleeping.
//
// Contract:
//   - Time is an int64 of Unix nanoseconds (time.Time.UnixNano), passed in
//     by the caller. A clock that goes backwards is treated as no elapsed
//     time: the later timestamp already stored is kept, so a clock jumping
//     back and forth can never mint tokens.
//   - Amounts taken or adjusted are whole tokens (int64). Everything stored
//     or reported — capacity, refill rate, level, remaining — is in
//     micro-tokens (Micro = 1e6 per token) so a fractional refill such as
//     0.25 tokens/s (250_000 micro-tokens/s) is exact. The sub-micro-token
//     remainder of each refill is carried in Bucket.Carry, so a million
//     small refills add up to exactly one large one: no drift.
//   - Representable range: capacity and refill rate are each in
//     [1, MaxMicros] (MaxMicros = 1e18 micro-tokens = 1e12 tokens, and
//     1e12 tokens/s for the rate); a Limit outside it is refused with a
//     *LimitError. A level lies in [-MaxMicros, capacity]: an Adjust that
//     would go further into debt saturates there. All intermediate
//     arithmetic is 128-bit (math/bits) or saturating, so any int64 time,
//     amount or delta is handled without wrapping or panicking.
//   - A bucket with no stored state is full: its first use sees capacity.
//   - Take is all or nothing across the buckets it names. A refused take
//     changes nothing and reports RetryAfter: the smallest wait after which
//     the same take succeeds (absent other traffic), rounded up to the
//     millisecond so a client is never told to come back too early
//     (saturating at MaxRetryAfter, ≈292 years, for hopeless debts). An
//     amount above a bucket's capacity can never succeed and is a
//     *CapacityError instead of a refusal.
//   - Budgets are int64 nano-dollars per UTC calendar day. A budget of 0
//     means unlimited.
//
// Settings: a key's own limits and budget (what `set` writes) live in the
// actor's state on a single node, and in Defaults.Settings when it is set
// (a cluster's replicated settings bucket, see cluster/settings), so that
// a fresh actor state after an owner loss keeps them. With Settings, a
// `set` writes them by compare-and-set on the revision it read, before
// touching the state; a failed write (ErrSettingsConflict, or any other)
// fails the turn with an error wrapping actor.ErrStorage. Settings are per
// (namespace, key), shared by the key's shards. KeySettings encode as a
// version byte and minimal varints (KeySettings.MarshalBinary).
//
// Hot keys (hot.go: the pure part, with the split and merge steps and why
// they never create tokens; hotkind.go: the actor glue): a namespace may
// spread keys over static shards, split a key above a turns/s threshold
// into shards and merge it back, and grant calling nodes allowances of a
// hot key. The caller-side half is cluster/hotkey. With none of it
// configured (HotConfig's zero value) the kind behaves, and stores, exactly
// as without it.
package ratelimit
