// Package peer is the node-to-node gRPC layer of a holdfast cluster: the
// internal PeerService (proto/holdfast/v1/peer.proto) on the server side,
// and a pooled, batching client on the other.
//
// Server side. Register puts a Handler (the cluster driver) behind a
// *grpc.Server: Call runs one forwarded call; CallBatch runs the calls of a
// batch concurrently, each under its own deadline (timeout_ms), and answers
// them in order; Transfer hands the raw stream to the handler (ReadTransfer
// decodes it: header first, records, done last), which acknowledges once its
// staging bucket is durable; HandoffDone, HandoffAborted, Ping and Drain are
// passed through. Handler errors are sent with
// api.GRPCError (their ErrorInfo reason and metadata survive). Use
// ServerOptions for the peer server's keepalive and message-size settings.
//
// Client side. A Pool keeps one grpc.ClientConn per peer address, created on
// first use, with keepalive, a bounded reconnect backoff, the TLS config and
// the bearer token of its PoolConfig. Pool.Call batches Nagle-style: a call
// to a peer with no batch in flight is sent at once, alone; calls that come
// while a batch is in flight accumulate and go together in one CallBatch
// RPC when the batch window ends, when MaxBatch (or MaxBatchBytes) is
// reached, or as soon as nothing is in flight any more. Each call keeps its
// own deadline (sent as timeout_ms) and its own result.
//
// Errors. Pool.Call returns an error only for the RPC (the call's own result,
// including the actor's error and NOT_OWNER, is in the ForwardResponse).
// NeverRan tells the errors that prove the request never left this node:
// only those may be retried automatically. The pool records, for every RPC
// made through its connections, whether the request headers were handed to
// the transport; an RPC that failed before that point never reached the
// peer's handler. Everything else (deadline exceeded, a stream broken after
// send, an error status from the peer) may have run.
//
// Thread-safety: Pool and every method of it are safe for concurrent use;
// Close is idempotent and waits for the pool's goroutines. Register is
// called once per server before it serves. NeverRan is a pure function.
//
// Secrets: the token is sent as per-RPC metadata `authorization: Bearer
// TOKEN` (what api.TokenAuth checks); it is never logged nor put in an error.
package peer
