// Package holdfast holds a node's configuration (Config, read from YAML)
// and the wiring that assembles one node from the actor runtime, the
// built-in kinds, the gRPC and HTTP servers and the gateway. cmd/holdfast
// runs it; tests start nodes in-process with it.
package holdfast
