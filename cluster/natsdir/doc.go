// Package natsdir runs the embedded NATS server with JetStream and the
// JetStream parts of a holdfast cluster: the ownership directory (a KV
// bucket executing ownership.KVOp and feeding the ordered watch), the
// placement parameter record, the settings bucket and the usage events
// stream.
//
// # Contract
//
// StartServer starts an in-process NATS server: JetStream stores in
// DataDir/jetstream and syncs every write before acknowledging it
// (sync_interval: always, Options.SyncAlways; replicated streams rely on
// the Raft WAL, which is synced always too), clients and routes
// authenticate with the token (routes as user "holdfast"), the server's
// logs go to the slog logger with the token redacted, and no signal handler
// is installed. Shutdown is idempotent and waits.
//
// The directory bucket's stream has AllowDirect off, so every read,
// including OpReadFromLeader, is answered by the stream leader. Do maps each
// outcome to an ownership.Status: StatusOK only for a write the leader
// acknowledged (or a read that found the key); StatusMismatch only for
// JetStream's wrong-last-sequence (10071, or 10164 on replicated streams);
// StatusFailed only when the write provably reached no stream leader (no
// responders, refused by the client before sending); everything else on a
// write is StatusUnknown. Values are JSON; keys are ownership.Key.String()
// ("lease.<node>", "part.<p>"); "meta.*" keys (meta.placement) are not
// directory keys and are never delivered by Watch.
//
// Watch delivers revisions strictly increasing, WatchSynced once, and
// survives broken watchers by resuming after the last revision seen.
//
// Usage events are published without ever blocking the caller: queued,
// batched per node (BatchSize or FlushInterval), dropped and counted when
// the queue is full. Each user's events go to the subject
// "holdfast.usage.<hex of the user ID>" (see UsageSubject).
//
// Thread-safety: every exported method is safe for concurrent use unless
// its comment says otherwise; Watch's callback runs on Watch's goroutine.
package natsdir
