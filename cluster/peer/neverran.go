package peer

import (
	"context"
	"errors"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// NeverRan reports whether err proves that the call never reached the
// peer's handler, so that the driver may retry it (elsewhere) on its own.
// It is conservative: false unless proven.
//
// True for:
//   - a call the pool never sent: its context ended while it waited for its
//     batch, the pool was closed, or the peer's address was unusable;
//   - an RPC made through the pool's connections (Pool.Call, Pool.Transfer
//     before its stream opened, any method of Pool.Client) that failed
//     before its request headers were handed to the transport: no
//     connection could be made (connection refused, dial timeout, TLS
//     failure: codes.Unavailable while the channel is in transient
//     failure), the per-RPC credentials failed, or the transport refused
//     the new stream (gRPC's transparent retry covers those already).
//
// False for everything else, notably codes.DeadlineExceeded, codes.Canceled
// after the call was sent, codes.Unavailable from a transport that broke
// after the headers went out (the peer may have run the call), any status
// the peer's handler returned, and errors of other origins (a gRPC status
// error not made through a Pool is never proof).
func NeverRan(err error) bool {
	if err == nil {
		return false
	}
	var re *rpcError
	if errors.As(err, &re) {
		return re.neverRan
	}
	var ns *notSentError
	return errors.As(err, &ns)
}

// notSentError is a call the pool refused or dropped before sending it.
type notSentError struct{ err error }

func (e *notSentError) Error() string { return "peer: call not sent: " + e.err.Error() }
func (e *notSentError) Unwrap() error { return e.err }

// rpcError is a failed RPC made through a pooled connection, with whether
// its request headers ever reached the transport. It reads as the gRPC
// status it wraps (same message, status.FromError/Code work).
type rpcError struct {
	err      error
	neverRan bool
}

func (e *rpcError) Error() string { return e.err.Error() }
func (e *rpcError) Unwrap() error { return e.err }

// GRPCStatus keeps status.FromError from rewriting the message.
func (e *rpcError) GRPCStatus() *status.Status { return status.Convert(e.err) }

// trace records whether an RPC's headers were handed to a transport.
type trace struct{ sent atomic.Bool }

type traceKey struct{}

func traceUnary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	t := &trace{}
	err := invoker(context.WithValue(ctx, traceKey{}, t), method, req, reply, cc, opts...)
	if err != nil {
		return &rpcError{err: err, neverRan: !t.sent.Load()}
	}
	return nil
}

func traceStream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	t := &trace{}
	s, err := streamer(context.WithValue(ctx, traceKey{}, t), desc, cc, method, opts...)
	if err != nil {
		return nil, &rpcError{err: err, neverRan: !t.sent.Load()}
	}
	return s, nil
}

// sentTracker is the connections' stats handler: it marks the RPC's trace
// when gRPC reports its headers queued for the wire (stats.OutHeader,
// emitted by the transport once the stream is created and before any byte
// of it can be written).
type sentTracker struct{}

func (sentTracker) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (sentTracker) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.OutHeader); ok {
		if t, _ := ctx.Value(traceKey{}).(*trace); t != nil {
			t.sent.Store(true)
		}
	}
}
func (sentTracker) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (sentTracker) HandleConn(context.Context, stats.ConnStats)                       {}
