package gateway

import (
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/gateway/envelope"
)

// admission bounds the calls being served at once
// (gateway.max_concurrent_calls). Safe for concurrent use.
type admission struct {
	limit  int64 // <= 0: no bound
	active atomic.Int64
}

// concurrencyLimit resolves gateway.max_concurrent_calls: 0 derives it
// from the open-file limit nofile (0: unknown, then no bound), -1 is no
// bound.
func concurrencyLimit(configured int, nofile uint64) int64 {
	switch {
	case configured > 0:
		return int64(configured)
	case configured < 0 || nofile == 0:
		return 0
	}
	// Two sockets per stream, and room for the node's own files,
	// listeners, peers and the metrics scrapes.
	return max(64, (int64(min(nofile, 1<<30))-256)/2)
}

// enter takes a slot; false means the gateway is full and the call must
// be answered with overloaded() and not leave.
func (a *admission) enter() bool {
	n := a.active.Add(1)
	if a.limit > 0 && n > a.limit {
		a.active.Add(-1)
		return false
	}
	return true
}

func (a *admission) leave() { a.active.Add(-1) }

// overloaded is the answer to a call beyond max_concurrent_calls.
func overloaded() refusal {
	return refusal{kind: envelope.Unavailable, failure: "gateway_overloaded", retryAfter: time.Second,
		msg: "This gateway is serving as many calls as it may (gateway.max_concurrent_calls); retry shortly."}
}
