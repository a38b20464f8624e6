// Package settings keeps a cluster's per-key settings in the replicated
// JetStream KV settings bucket (natsdir.SettingsBucket) and caches them on
// every node. Settings are not state: a fresh actor state on a new owner
// (on_owner_loss reset) loses bucket levels and spend only, never limits.
// Two kinds live there (Kind):
//
//   - RateLimit: the limits and daily budget `ratelimit set` writes;
//     Cache[ratelimit.KeySettings] implements ratelimit.Settings
//     (ratelimit.Defaults.Settings).
//   - Account: a gateway user's own limits (`holdctl limits set`);
//     Cache[*holdfastv1.AccountLimits] implements account.Settings
//     (account.Defaults.Settings).
//
// # Contract
//
// KV keys are <prefix><ns>.<key>: "rl.<ns>.<key>" (Key) for RateLimit,
// "acct.<ns>.<user>" for Account, where each part is base64url without
// padding (RFC 4648 §5: A-Z a-z 0-9 - _), and "=" stands for an empty
// part. Both parts may hold any bytes; the encoding is injective and every
// result is a valid KV key ([-/_=.A-Za-z0-9]+). RateLimit values are
// ratelimit.KeySettings.MarshalBinary (a version byte, then minimal
// varints); Account values the AccountLimits protobuf. A cache ignores the
// keys outside its kind's prefix.
//
// New starts one goroutine watching "<prefix>>" (latest value per key, then
// every change) and returns once the watch has delivered the bucket's
// contents as of its start; a broken watch is restarted (with backoff up
// to 2 s) and the cache keeps serving what it has meanwhile. The cache
// never regresses: an entry is replaced only by a higher revision, whether
// it comes from the watch, a Put on this node or a refresh after a
// conflict. Deletions are kept as tombstones with their revision.
//
// Put is a real compare-and-set on the KV (Create for revision 0, Update
// otherwise): the write reaches the stream leader and is stored only if the
// key's last revision is still the one given. On success the cache holds
// the new value at once (read-your-writes on this node); on a mismatch
// Put re-reads the key (best effort: a direct get may be served by a
// lagging replica) so that the caller's retry sees the newer revision,
// and returns an error wrapping ErrConflict (which is
// ratelimit.ErrSettingsConflict). Any other error leaves the outcome
// unknown; the watch brings the value if it was written.
//
// A stored value that does not decode is logged; the entry keeps its last
// good settings but takes the new revision, so that a `set` overwrites it.
//
// Thread-safety: Get, Put and Close are safe for concurrent use. Get never
// blocks on the network (a read lock and a map lookup). Close is
// idempotent; Get and Put keep working after it, without updates from
// other nodes.
package settings
