// Package cluster runs one holdfast node as a member of a cluster: it drives
// the pure ownership state machine (cluster/ownership) with real parts —
// the directory in a JetStream KV bucket (cluster/natsdir, embedded NATS by
// default), membership by memberlist gossip (cluster/membership), desired
// placement by bounded-load consistent hashing (cluster/placement), and
// node-to-node gRPC (cluster/peer) for forwarded calls, handoff transfers
// and reachability pings — and routes every actor call to its owner.
//
// # Contract
//
//   - Node.Call (api.Caller) takes any call on any node: it runs in-process
//     when this node serves the actor's partition, else it is forwarded over
//     gRPC to the owner named in this node's copy of the directory (a
//     routing hint only). A NOT_OWNER answer, or an error proving the call
//     never reached the owner's handler, is retried at most
//     Config.ForwardRetries times; anything else is returned (an error that
//     may hide an applied write is an *actor.UnknownOutcomeError carrying
//     the request ID, so a client's retry with that ID is safe).
//   - The runtime asks Node.Gate (actor.Gate) before every turn and again
//     after its commit; the gate consults the ownership Node's CanServe, so
//     no turn runs, and no reply leaves, outside a valid lease at the
//     partition's current epoch.
//   - Shutdown drains: every partition is handed off before the process
//     exits (bounded by DrainTimeout).
//
// # Threads and locks
//
// One loop goroutine feeds inputs to the ownership Node and executes its
// outputs in order: disk outputs (Persist, Stamp, Wipe, staging) on the
// loop itself, network outputs (KV operations, transfers, messages) on
// goroutines whose results come back as inputs. Node.mu guards the
// ownership Node and is held only during Step and queries (never across
// I/O). Lock order: partGate.mu, then Node.mu is never taken while a
// partGate.mu is held; Node.mu is the innermost lock.
package cluster
