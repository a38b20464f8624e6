// Package actor is holdfast's single-node actor runtime: turns, storage,
// the output gate, group commit, idempotency, alarms and eviction.
//
// # Contract
//
// An actor is named by an ID (namespace, key, shard). Calls to one actor run
// as turns, one at a time. Inside a turn the handler reads and writes the
// actor's storage through its Turn; the writes are one transaction,
// committed when the handler returns nil and rolled back when it returns an
// error or panics. A reply of any kind leaves the runtime only after
// everything the turn could have observed is durable to the namespace's
// durability (the output gate): for `local`, the node's durable write
// sequence has reached the actor's last write (for a turn that wrote
// nothing and called Turn.GateOnReads: the newest pending write it read).
// Writes of many turns and actors are coalesced into one bbolt commit by
// the committer goroutine. A mutating call's request ID is recorded with
// its reply in the same transaction; a duplicate within the idempotency
// window gets the recorded reply and is not applied again.
//
// # Thread model
//
//   - A call runs on the caller's goroutine: it takes the actor's turn lock
//     (cell.lock, a turnLock: spin, then park; waiting honours the
//     deadline), runs the handler, enqueues the writes, releases the turn
//     lock, and only then waits for durability. The next turn of the same
//     actor may run while an earlier one's writes are being committed: it
//     reads them from the actor's overlay, and its own reply waits for them
//     too. The turn lock is not first come, first served: a caller may take
//     it ahead of parked ones unless one of them waited over a millisecond
//     (see turnLock).
//   - One committer goroutine owns Store.Commit. Writes of a turn that
//     called Turn.DeferCommit wait for a commit something else needs, at
//     most Config.CommitDefer (a timer on the Clock wakes the committer). Readers call Store.Get and
//     Store.Scan concurrently (bbolt read transactions).
//   - The alarm scheduler fires due alarms on goroutines started with
//     Runtime.goFunc; a fire is an ordinary turn.
//   - The janitor (a clock timer) evicts idle actors.
//   - With a Gate, a turn may wait in Gate.Enter (bounded by its context;
//     an alarm fire's by Shutdown) before it takes any runtime lock.
//   - Every goroutine is started by Runtime.goFunc and waited for by
//     Shutdown, which is idempotent.
//
// # Lock order
//
// turn lock (cell.lock) → registry shard mutex → alarm scheduler mutex →
// committer mutex → the Clock's own lock (the committer reads Now under
// its mutex to decide whether deferred writes are due; it arms its defer
// timer, Clock.AfterFunc, without it). The stores' own locks (MemStore's, then one of its
// actors'; bbolt's) are innermost: taken inside a store method, held only
// during it. No lock is held across Store I/O except the turn lock (a
// turn's reads); the committer holds no lock while it commits. Waiting for
// durability happens after the turn lock is released. Runtime.calls (calls
// in flight) and cell.refs are atomic counters, not locks.
//
// # Storage layout
//
// See Store and, for the bbolt file (rows of a partition bucket, stamps,
// highest epochs, staging buckets), bolt_partition.go. An actor's keys
// carry a prefix: user keys 'd'; idempotency records 'r' and 't'; the
// alarm 's'.
//
// # Cluster hooks
//
// Partitions: an actor's partition is PartitionOf(encoded ID, P) plus P
// when its namespace's on_owner_loss is reset (placement groups), so there
// are 2P partitions (Runtime.PartitionOf, OwnershipPartitions,
// PartitionPolicy); storage and ownership use the same number.
//
// Config.Gate (nil on a single node, where the hot path pays one nil
// check) decides which partitions this node serves: every turn, alarm
// fires included, passes Gate.Enter before the turn lock and Gate.Valid
// after the output gate, and calls the done func Enter returned exactly
// once. A reply computed while ownership was lost becomes
// ErrOwnershipLost (inside an UnknownOutcomeError if the turn wrote). An
// alarm whose turn the gate refuses leaves this node's schedule.
//
// The driver moves partitions with DropPartition (forget p's memory:
// actors, alarms, memory-durability data), ServePartition (load p's
// alarms), WaitPartitionDurable, and the PartitionStore methods of the
// store (stamps, highest epochs, wipes, export, staging, promotion).
//
// # Failure
//
// A failed commit is sticky (see committer): the node refuses turns on
// local namespaces until restarted, so nothing is ever acknowledged that
// is not durable.
package actor
