// Package account is the gateway's per-user state: the `account` actor
// kind (one actor per gateway user, actor key = user ID) and the operator
// service (holdfastv1.AccountService) that holdctl speaks to.
//
// A user's virtual-key hashes, limits, bucket levels, spend and exact usage
// totals live in that user's actor, never in a file or a node-local table:
// a new key works on every node at once, and a revoked key stops on every
// node at once, because every check is a turn of the one actor that owns
// the user.
//
// # Turns
//
//   - AccountAdmitRequest (the gateway's pre-flight): key check (key ID
//     known, stored hash equal to key_hash in constant time, not revoked,
//     provider and model allowed), then requests per minute, the
//     input-token estimate against input tokens per minute, the
//     output-token estimate against output tokens per minute, and the
//     spend estimate against what is left of the daily budget — the user's
//     limits and the key's own limits, all or nothing. A refusal names
//     refused_by and retry_after_ms (rounded up; -1: can never succeed;
//     the longest wait of every check that failed) and changes nothing:
//     the turn is rolled back (actor.AbortError), so not even an
//     idempotency record is kept and a retry with the same request ID is
//     evaluated afresh. An allowed admit is recorded under its request ID.
//   - AccountSettleRequest (after the call, idempotent by request_id):
//     the per-minute buckets are corrected by actual − estimate (input
//     actual = input + cache creation + cache read tokens), the cost is
//     added to the day's spend (ratelimit.Ledger semantics), and the exact
//     hour and day totals are updated. failed=true counts an error instead
//     of a request; with no usage reported it gives the estimates back.
//     A stream cut short is settled with what was reported.
//   - AccountSettleBatchRequest: several settles in one turn, applied in
//     order exactly as one by one; idempotent by the batch's request_id;
//     an invalid settle is reported by index and skipped. The gateway
//     batches the settles that wait for a user's actor while its previous
//     settle turn is in flight (at most 1000, max_settles_per_batch).
//   - AccountKeyPut/Revoke/List, AccountLimitsSet/Get, AccountUsage: the
//     operator side, reached through Service.
//
// Per-minute limits are token buckets of capacity N tokens refilled at N/60
// tokens per second (ratelimit arithmetic, in micro-tokens). A limit of 0
// means none. The user's own limits override the namespace Defaults field
// by field; a key's limits (AccountKey.limits) apply on top of the user's:
// both must pass. The daily budget is nano-dollars per UTC day, checked
// (not reserved) at admit and debited at settle; calls in flight together
// can therefore overshoot it by their combined cost, as with
// ratelimit.Ledger.
//
// # Storage keys of one account actor
//
//	limits                          AccountLimits (proto): the user's own
//	                                (single node; in a cluster they live in
//	                                the replicated settings bucket: Settings)
//	key/<key_id>                    AccountKey (proto); never the key itself
//	keyhash/<key_id>                32 bytes: vkey.Hash of the key
//	bucket/<limit>                  ratelimit.Bucket of the user's limit
//	keybucket/<key_id>/<limit>      ratelimit.Bucket of a key's limit
//	spend/<YYYY-MM-DD>              8 bytes big-endian nano-dollars
//	keyspend/<key_id>/<YYYY-MM-DD>  8 bytes big-endian nano-dollars
//	usage/d/<YYYY-MM-DD>            UsageTotals (proto) of a UTC day
//	usage/h/<YYYY-MM-DD>T<HH>       UsageTotals (proto) of a UTC hour
//
// where <limit> is requests_per_minute, input_tokens_per_minute or
// output_tokens_per_minute. The actor's alarm runs a minute after each UTC
// midnight while usage or spend is stored: it deletes hour totals that
// ended more than Defaults.HourRetention ago (so they live 48–72 h with the
// default), day totals older than Defaults.DayRetention, and spend
// counters older than yesterday. It works from the time it actually runs
// and never deletes anything of the current day, so a late alarm cannot
// wipe the new day.
//
// # Service
//
// Service implements holdfastv1.AccountServiceServer over an api.Caller.
// CreateKey writes an index entry key_id → user into the `kv` actor
// (IndexNamespace, actor key = key ID, storage key "user") first, then the
// key's hash into the user's actor, and returns the key once. Nothing in
// this package logs, stores or returns a key except CreateKeyResponse.key.
package account
