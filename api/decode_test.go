package api_test

import (
	"context"
	"testing"

	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// rawCodec sends []byte as they are: a client that writes malformed
// protobuf.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.([]byte); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("%s: %v, want INVALID_ARGUMENT", what, err)
	}
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetReason() == api.ReasonInvalidArgument {
			return
		}
	}
	t.Fatalf("%s: no ErrorInfo with reason %s in %v", what, api.ReasonInvalidArgument, st.Details())
}

// Malformed protobuf, unary or in a stream, is the client's error:
// INVALID_ARGUMENT with its reason, never grpc-go's INTERNAL, and nothing
// is stored; a well-formed message on the same server still works.
func TestMalformedProtobufIsInvalidArgument(t *testing.T) {
	rt := runtime(t)
	conn := serveActors(t, rt, api.NewDecoding().ServerOptions(), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	ctx := context.Background()
	// Field 1 (actor) as a length-delimited field whose length runs past
	// the end: not valid protobuf.
	garbage := []byte{0x0a, 0x7f, 0x01}
	var out holdfastv1.KvPutResponse
	err := conn.Invoke(ctx, "/holdfast.v1.ActorService/KvPut", garbage, &out)
	wantInvalid(t, "unary", err)

	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, "/holdfast.v1.ActorService/RateLimitTakeStream")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(garbage); err != nil {
		t.Fatal(err)
	}
	var resp holdfastv1.RateLimitTakeResponse
	wantInvalid(t, "stream", stream.RecvMsg(&resp))

	c := holdfastv1.NewActorServiceClient(conn)
	ref := &holdfastv1.ActorRef{Namespace: "kv", Key: "a"}
	got, err := c.KvList(ctx, &holdfastv1.KvListRequest{Actor: ref})
	if err != nil || len(got.GetEntries()) != 0 {
		t.Fatalf("after the malformed calls: %v, %v (want nothing stored)", got, err)
	}
	if _, err := c.KvPut(ctx, &holdfastv1.KvPutRequest{Actor: ref, Entries: []*holdfastv1.Entry{{Key: "k", Value: []byte("v")}}}); err != nil {
		t.Fatalf("a well-formed put: %v", err)
	}
}
