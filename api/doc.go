// Package api is the network front of a node's actors: the gRPC
// ActorService and AdminService (proto/holdfast/v1), the same actor
// operations over HTTP/JSON under /v1/actors/{namespace}/{key}/..., and the
// mapping of the runtime's typed errors to gRPC status codes with
// google.rpc.ErrorInfo details and to JSON error bodies.
//
// Calls reach actors through a Caller (today the local runtime; with a
// cluster, the router that forwards to the owner). A mutating request's
// request ID (request_id, or the Idempotency-Key HTTP header) makes it
// idempotent: its reply is recorded and a duplicate is answered from the
// record. Clients that may retry send one (holdctl always does); the node
// adds none of its own, since an ID nobody will send again protects nothing.
//
// Authentication: when a token is configured every API here needs it
// (`authorization: Bearer TOKEN` metadata or header); health endpoints never
// do. The node refuses to start beyond loopback without one.
package api
