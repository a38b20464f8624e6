package api

import (
	"context"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// Decoding is how the gRPC server tells a malformed request apart from a
// failure of its own. grpc-go answers INTERNAL for any codec error ("failed
// to unmarshal the received message"), which tells a client that the
// server is broken and that a retry might help; a message that is not
// valid protobuf is the client's error and is answered INVALID_ARGUMENT
// with reason INVALID_ARGUMENT, like malformed JSON over HTTP.
//
// The codec (ServerCodec) decodes as the standard proto codec; when a
// message does not decode it records the error against the message and
// reports success, and the interceptors (Unary, Stream), which run before
// any other and see every decoded message, answer INVALID_ARGUMENT for a
// recorded one before a handler sees it. Nothing is stored for such a
// call. Safe for concurrent use.
type Decoding struct {
	base encoding.CodecV2
	bad  sync.Map // message pointer -> decode error
}

// NewDecoding returns the codec and interceptors of one gRPC server.
func NewDecoding() *Decoding {
	return &Decoding{base: encoding.GetCodecV2(encproto.Name)}
}

// ServerOptions are the options that install d on a server: the codec and
// its interceptors, first in both chains.
func (d *Decoding) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodecV2(codec{d}),
		grpc.ChainUnaryInterceptor(d.Unary),
		grpc.ChainStreamInterceptor(d.Stream),
	}
}

// codec is Decoding as an encoding.CodecV2 named "proto".
type codec struct{ d *Decoding }

func (c codec) Name() string { return encproto.Name }

func (c codec) Marshal(v any) (mem.BufferSlice, error) { return c.d.base.Marshal(v) }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if err := c.d.base.Unmarshal(data, v); err != nil {
		c.d.bad.Store(v, err)
	}
	return nil
}

// check returns the INVALID_ARGUMENT error for m if it did not decode, and
// forgets it.
func (d *Decoding) check(m any) error {
	v, bad := d.bad.LoadAndDelete(m)
	if !bad {
		return nil
	}
	return GRPCError(invalid("request is not a valid %T protobuf message: %v", m, v))
}

// Unary answers a unary call whose request did not decode.
func (d *Decoding) Unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := d.check(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// Stream answers every message of a stream that did not decode.
func (d *Decoding) Stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, decodingStream{ServerStream: ss, d: d})
}

type decodingStream struct {
	grpc.ServerStream
	d *Decoding
}

func (s decodingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := s.d.check(m); err != nil {
		return err
	}
	return nil
}
