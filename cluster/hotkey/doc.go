// Package hotkey is the caller-side half of hot-key handling for the
// ratelimit kind (the owner-side half, and the token arithmetic, are in
// actor/ratelimit: hot.go, hotkind.go). A Layer is a Caller decorator that
// a node puts in front of its router (or, on a single node, its runtime):
// every call of the node's APIs goes through it. Calls of other namespaces,
// of ratelimit namespaces without hot-key handling, calls naming a shard
// (ActorRef.shard ≠ 0) and operations other than take/get/adjust/set pass
// through untouched.
//
// For a namespace with hot-key handling the layer speaks HotCall to the
// key's actors:
//
//   - take: answered from an allowance this node holds when one covers it
//     (no hop; never for a take with a spend estimate or a key with a daily
//     budget); else sent to the parent (shard 0), which may grant an
//     allowance with the reply when the key is above its hot threshold, or
//     answer SPLIT(S, generation). The layer caches (key → S, generation,
//     parcels) for the namespace's hot_cache_ttl and sends takes to the
//     shards directly. Shard choice: with a request ID, shard 1 + hash(ID)
//     mod S, then the next one (deterministic, so a client's retry meets
//     the same shards' idempotency records); without, round-robin, then the
//     shard with the most tokens last seen by this node. A take is refused
//     only after two shards refused it; tokens then left on the other S−2
//     shards are not used by that take (bounded: at most (S−2)/S of the
//     key's tokens, and in practice a few tokens per shard, since every
//     node spreads its takes evenly and retries the fullest shard). A shard
//     that answers NOT_READY gets its parcel (shard_init, from the cached
//     split) and the take again; RETIRED drops the cache and asks the
//     parent again. A key with a daily budget (or a take with a spend
//     estimate) is checked on the parent first: shards keep no spend.
//   - get: the parent's state plus every shard's (initialising shards not
//     ready), summed bucket by bucket; spend and budget are the parent's.
//   - adjust: spend goes to the parent; bucket deltas are split over the
//     shards with ratelimit.Share (exact, remainders rotated by the request
//     ID), each part one shard's adjust (a give-back is clamped at that
//     shard's share: tokens may be lost, never made); the reply is the
//     summed state.
//   - set: the parent first (it writes the key's settings), then every
//     shard; the reply is the summed state.
//
// Allowances are held for at most their lifetime (≤ 1 s) counted from
// before the call that got them was sent, and returned when they expire
// (best effort: a node that crashes loses them; a return is credited at
// most once). A grant is used only by the call that asked for it (its
// nonce): a reply replayed from an idempotency record never hands out a
// grant twice.
//
// Merging is driven by callers: a shard that finds the key's rate low
// says so in its replies (merge_suggested); a layer then retires every
// shard and delivers each parcel to the parent, in the background, one
// merge per key at a time. A parent found merging (a merge some caller
// left unfinished) is helped the same way.
//
// Thread-safety: every method of Layer is safe for concurrent use. Close
// is idempotent: it returns every allowance held (best effort, bounded by
// its context) and stops the background work.
package hotkey
