package peer

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// MaxServerBatch bounds the calls of one CallBatch the server accepts
// (far above any sane MaxBatch; a larger batch is refused whole with
// INVALID_ARGUMENT, nothing run).
const MaxServerBatch = 4096

// DefaultMaxMessageBytes bounds one peer message, both ways: a batch of
// forwarded calls or replies, a transfer chunk. Values may be up to 256 MiB
// (limits.max_value_bytes), so the bound is generous.
const DefaultMaxMessageBytes = 512 << 20

// Handler is the cluster driver behind the PeerService. Every method may be
// called concurrently with every other.
type Handler interface {
	// Call runs one forwarded call and returns its result (never nil: a
	// reply, an error status, or NotOwner). ctx carries the call's own
	// deadline (timeout_ms, capped by the RPC's) and is canceled when the
	// caller gives up. Call may block while the call waits for its
	// partition (held during a handoff) or its turn, but must return soon
	// after ctx is done.
	Call(ctx context.Context, req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse

	// Transfer receives one partition transfer into a staging bucket, on
	// the raw stream (ReadTransfer decodes and checks it). It blocks for the
	// whole stream, writing each chunk before reading the next (the sender
	// stays flow-controlled), and sends the TransferAck (SendAndClose) only
	// once the staging bucket is durably complete, epoch marker last. A
	// returned error goes to the sender through api.GRPCError (no ack: the
	// handoff fails); stream.Context() ends when the sender goes away.
	Transfer(stream holdfastv1.PeerService_TransferServer) error

	// HandoffDone delivers the old owner's message to the ownership loop
	// and returns; it must not wait on any RPC to the sender (the sender
	// may be waiting for this answer).
	HandoffDone(ctx context.Context, req *holdfastv1.HandoffDoneRequest) error

	// HandoffAborted: as HandoffDone.
	HandoffAborted(ctx context.Context, req *holdfastv1.HandoffAbortedRequest) error

	// Ping answers from memory (node ID, lease incarnation) without
	// waiting on the ownership loop or I/O: a slow answer reads as
	// unreachable.
	Ping(ctx context.Context, req *holdfastv1.PingRequest) (*holdfastv1.PingResponse, error)

	// Drain starts draining this node and returns without waiting for the
	// drain to finish.
	Drain(ctx context.Context) error
}

// TransferReader gives the records of a Transfer stream chunk by chunk.
// Not safe for concurrent use.
type TransferReader interface {
	// Next returns the records of the next chunk (possibly none). It
	// returns io.EOF once the chunk marked done has been read (its records
	// were returned by the previous calls), and any other error when the
	// stream broke or broke the protocol (ended without done, a second
	// header: ErrProtocol): the transfer is then incomplete.
	Next() ([]*holdfastv1.PartitionRecord, error)
	// Records is the number of records returned so far.
	Records() uint64
}

// ErrProtocol marks a Transfer stream that broke the protocol (missing
// header, second header, end without done). It classifies as
// INVALID_ARGUMENT.
var ErrProtocol = fmt.Errorf("%w: peer: transfer protocol violation", actor.ErrInvalidArgument)

// ReadTransfer reads the first chunk of a Transfer stream and checks its
// header (present, handoff_id set). The reader then gives every record of
// the stream, those of the first chunk included.
func ReadTransfer(stream holdfastv1.PeerService_TransferServer) (*holdfastv1.TransferHeader, TransferReader, error) {
	first, err := stream.Recv()
	if err == io.EOF {
		return nil, nil, fmt.Errorf("%w: empty stream", ErrProtocol)
	}
	if err != nil {
		return nil, nil, err
	}
	hdr := first.GetHeader()
	if hdr == nil || hdr.GetHandoffId() == "" {
		return nil, nil, fmt.Errorf("%w: first chunk has no header", ErrProtocol)
	}
	return hdr, &reader{stream: stream, first: first}, nil
}

// Register registers the PeerService on s, served by h. Call it once,
// before s serves.
func Register(s *grpc.Server, h Handler) {
	holdfastv1.RegisterPeerServiceServer(s, &server{h: h})
}

// ServerOptions are the options a peer gRPC server should be created with:
// a keepalive enforcement policy that accepts the pool's pings (the gRPC
// default refuses pings more often than every 5 minutes and closes the
// connection), server keepalive, and message sizes matching the pool's.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.MaxRecvMsgSize(DefaultMaxMessageBytes),
		grpc.MaxSendMsgSize(DefaultMaxMessageBytes),
	}
}

type server struct {
	holdfastv1.UnimplementedPeerServiceServer
	h Handler
}

// callOne runs one call under its own deadline.
func (s *server) callOne(ctx context.Context, req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse {
	if ms := req.GetTimeoutMs(); ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	resp := s.h.Call(ctx, req)
	if resp == nil || resp.GetResult() == nil {
		return ErrorResponse(fmt.Errorf("%w: peer handler returned no result", actor.ErrInternal))
	}
	return resp
}

func (s *server) Call(ctx context.Context, req *holdfastv1.ForwardRequest) (*holdfastv1.ForwardResponse, error) {
	return s.callOne(ctx, req), nil
}

func (s *server) CallBatch(ctx context.Context, b *holdfastv1.ForwardBatch) (*holdfastv1.ForwardBatchResponse, error) {
	calls := b.GetCalls()
	if len(calls) > MaxServerBatch {
		return nil, status.Errorf(codes.InvalidArgument, "batch of %d calls, at most %d", len(calls), MaxServerBatch)
	}
	resp := &holdfastv1.ForwardBatchResponse{Responses: make([]*holdfastv1.ForwardResponse, len(calls))}
	var wg sync.WaitGroup
	for i, c := range calls {
		wg.Go(func() { resp.Responses[i] = s.callOne(ctx, c) })
	}
	wg.Wait()
	return resp, nil
}

func (s *server) Transfer(stream holdfastv1.PeerService_TransferServer) error {
	return api.GRPCError(s.h.Transfer(stream))
}

type reader struct {
	stream holdfastv1.PeerService_TransferServer
	first  *holdfastv1.TransferChunk // not yet returned
	done   bool
	err    error
	n      uint64
}

func (r *reader) Records() uint64 { return r.n }

func (r *reader) Next() ([]*holdfastv1.PartitionRecord, error) {
	if r.done {
		return nil, io.EOF
	}
	if r.err != nil {
		return nil, r.err
	}
	c := r.first
	r.first = nil
	if c == nil {
		var err error
		c, err = r.stream.Recv()
		switch {
		case err == io.EOF:
			r.err = fmt.Errorf("%w: stream ended without done", ErrProtocol)
			return nil, r.err
		case err != nil:
			r.err = err
			return nil, err
		case c.GetHeader() != nil:
			r.err = fmt.Errorf("%w: header after the first chunk", ErrProtocol)
			return nil, r.err
		}
	}
	if c.GetDone() {
		// The records of the done chunk are returned now, io.EOF next.
		r.done = true
		if len(c.GetRecords()) == 0 {
			return nil, io.EOF
		}
	}
	r.n += uint64(len(c.GetRecords()))
	return c.GetRecords(), nil
}

func (s *server) HandoffDone(ctx context.Context, req *holdfastv1.HandoffDoneRequest) (*holdfastv1.HandoffDoneResponse, error) {
	if err := s.h.HandoffDone(ctx, req); err != nil {
		return nil, api.GRPCError(err)
	}
	return &holdfastv1.HandoffDoneResponse{}, nil
}

func (s *server) HandoffAborted(ctx context.Context, req *holdfastv1.HandoffAbortedRequest) (*holdfastv1.HandoffAbortedResponse, error) {
	if err := s.h.HandoffAborted(ctx, req); err != nil {
		return nil, api.GRPCError(err)
	}
	return &holdfastv1.HandoffAbortedResponse{}, nil
}

func (s *server) Ping(ctx context.Context, req *holdfastv1.PingRequest) (*holdfastv1.PingResponse, error) {
	resp, err := s.h.Ping(ctx, req)
	if err != nil {
		return nil, api.GRPCError(err)
	}
	return resp, nil
}

func (s *server) Drain(ctx context.Context, _ *holdfastv1.DrainRequest) (*holdfastv1.DrainResponse, error) {
	if err := s.h.Drain(ctx); err != nil {
		return nil, api.GRPCError(err)
	}
	return &holdfastv1.DrainResponse{}, nil
}

// ErrorResponse is the ForwardResponse carrying err as the call's error
// (api.StatusFromError: the caller rebuilds it with api.ErrorFromStatus).
func ErrorResponse(err error) *holdfastv1.ForwardResponse {
	return &holdfastv1.ForwardResponse{Result: &holdfastv1.ForwardResponse_Error{Error: api.StatusFromError(err)}}
}
