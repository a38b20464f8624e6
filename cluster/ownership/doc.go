// Package ownership decides, for one node, which partitions it may serve and
// at which epoch: leases, fencing, claims, epochs, handoff and drain, as a
// pure deterministic state machine in the style of etcd's raft.RawNode.
//
// # Contract
//
// A Node does no I/O, starts no goroutine, sets no timer and never reads a
// clock. The driver (a separate package that talks to NATS and gRPC) calls
//
//	outs, err := node.Step(now, input)
//
// with now read from an injected clock that runs while the machine is
// suspended (CLOCK_BOOTTIME) and never goes backwards, and executes outs in
// order, each done before the next (a Persist is durable before the Serve
// after it). Inputs are a Tick (at least every RetryInterval), KV results,
// watch events, peer reachability, placement changes, runtime notifications
// (DrainedAndDurable), handoff messages and Drain. Outputs are KV operations
// (create, compare-and-set on a revision, read from the stream leader),
// Persist, Serve, Stop, StopAll, Wipe, Stamp, staging operations, Hold, Resume,
// ReleaseHeld, transfers, messages to peers, Drained and Alert. The driver
// must:
//
//   - serialize Step and the queries, and apply a Step's outputs before a
//     turn may observe the state that Step left;
//   - answer every KVOp with exactly one KVResult (StatusUnknown when its
//     timeout passes), and never feed a Node the result of another Node's op;
//   - feed one ordered watch over the whole directory bucket (WatchEvent in
//     revision order, WatchSynced once the initial values are in);
//   - check CanServe(partition, epoch, now) when a turn starts and again after
//     its commit, before its reply leaves (else: "unknown outcome").
//
// The same inputs give the same outputs: the simulation in testing.go relies
// on it to replay any failing seed.
//
// # Rules, and the failure each prevents
//
// Leases. A node's lease key holds (node, incarnation, nonce). Renewal is a
// compare-and-set on the key's last revision, sent at most every
// RenewInterval; the send time is taken before sending and, on success, the
// lease is valid until send time + TTL - ε: a reply that arrives late never
// stretches validity past what a claimant assumes, since a claimant sees the
// new revision only after it was sent. An unknown outcome extends nothing
// (the write may never have been applied) and is followed by a read of the
// key, so that a renewal applied without reply is not later mistaken for a
// revocation. A mismatch means the lease was revoked: the node stops serving
// every partition at once (StopAll) and registers a new incarnation, so a
// node whose partitions were claimed cannot go on serving them.
//
// Claims. A claimant that saw another node's lease at revision r counts
// TTL + ε of its own credited time, then revokes the lease by compare-and-set
// expecting r, and only then moves that node's partitions. The owner's
// validity ended before the claimant even saw r, and the compare-and-set on r
// fails if the owner renewed meanwhile, so owner and claimant never serve
// together. Credited time runs only while the claimant's own renewals
// succeed, so a KV leader election longer than a TTL expires no lease (no
// mass failover when the KV comes back). Only the desired owner computed
// without the lost node claims, and only entries its ordered watch has shown,
// so its view of the lost node's lease is at least as new as the entry. With
// on_owner_loss=reset the claimant takes the partition at epoch+1 with a
// fresh bucket; with wait it marks the entry Orphaned at the same epoch, and
// only the old owner, back with its disk, takes it (at epoch+1): money and
// keys are never silently reset.
//
// Quorum. A node that cannot reach, counting itself, a strict majority of the
// nodes holding an unrevoked lease stops renewing and acting, so it cannot
// hold partitions that the callers on the majority side cannot reach.
//
// Epochs. Each node persists the highest epoch it has seen per partition and
// never serves below it, so a directory that lost writes cannot bring back an
// old owner. A node keeps its local bucket at epoch E only if it received it
// by the handoff whose ID the entry for E names, or moved the entry from
// (itself, E-1) to (itself, E) with its bucket at E-1; otherwise it wipes it
// first, so a node coming back never resurrects an old epoch's state. A
// restarting node reclaims its partitions in place, (itself, E) to
// (itself, E+1) by compare-and-set, which decides any race with a claimant.
// A node serves without a compare-and-set only on evidence written during
// its current incarnation (an entry whose revision is above the one that
// registered its lease, or HandoffDone for staging received under this
// lease): anything older may be a stale view from before a revocation.
//
// Handoff. The old owner holds new turns, waits until the running ones have
// finished and the last write is durable, then streams the bucket into a
// fresh staging bucket on the new owner (one per attempt, named by the
// attempt's handoff ID), so no write is left behind. After the new owner's
// acknowledgement it moves the entry to (new owner, epoch+1, handoff ID) by
// compare-and-set. Once that is issued it stays on hold until the outcome is
// known, re-issuing against the same revision, and on a mismatch reads the
// entry from the stream leader: its own handoff ID means the move happened,
// an orphan mark means keep the data, anything else means its lease was
// revoked. It then tells the new owner (HandoffDone), drops its copy, and
// answers every held call NOT_OWNER with the new owner: never forwarded, as
// the caller may have retried elsewhere already. The new owner serves on
// HandoffDone or, if that message is lost, when its watch shows the entry
// naming it with a handoff ID whose staging it completed. Staging of an
// aborted attempt is never served, and is dropped when a newer attempt or the
// directory supersedes it. Drain hands every partition off in parallel, to
// its desired owner computed without the draining node.
package ownership
