package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Caller delivers a message to an actor wherever it lives. Safe for
// concurrent use; blocks until the reply passed the owner's output gate.
type Caller interface {
	Call(ctx context.Context, id actor.ID, msg proto.Message) (proto.Message, error)
}

// Inliner is what a Caller may also be: Inline reports that a call to id
// never waits on I/O (actor.Runtime: a memory namespace on a node with no
// cluster). A stream or a batch runs such a call on the goroutine at hand;
// others it overlaps on goroutines of their own, so that calls waiting for
// a commit or a peer wait together.
type Inliner interface {
	Inline(id actor.ID) bool
}

// Admin is what the admin service needs from the node.
type Admin interface {
	Status(ctx context.Context) (*holdfastv1.StatusResponse, error)
	ListActors(ctx context.Context, namespace, prefix string, limit int) ([]actor.ActorInfo, bool, error)
	GetActor(ctx context.Context, id actor.ID, limit int) (actor.ActorDump, error)
	DeleteActor(ctx context.Context, id actor.ID) (int, error)
}

// NewRequestID returns a random request ID (32 hex characters).
func NewRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func actorID(r *holdfastv1.ActorRef) (actor.ID, error) {
	if r == nil || r.GetNamespace() == "" {
		return actor.ID{}, invalid("actor.namespace is required")
	}
	if r.GetKey() == "" {
		return actor.ID{}, invalid("actor.key is required")
	}
	return actor.ID{Namespace: r.GetNamespace(), Key: r.GetKey(), Shard: r.GetShard()}, nil
}

// ActorServer implements holdfastv1.ActorServiceServer over a Caller.
type ActorServer struct {
	holdfastv1.UnimplementedActorServiceServer
	Caller Caller
	// Drain, when closed, ends open streams: they answer what they already
	// received and close with UNAVAILABLE so clients reconnect elsewhere
	// (a graceful stop would otherwise wait for clients to hang up).
	Drain <-chan struct{}

	workers workers // the goroutines of streamed and batched takes
}

type actorRequest interface {
	proto.Message
	GetActor() *holdfastv1.ActorRef
}

// call is the one path of every unary RPC: validate, call, convert errors.
// A request without a request_id is not recorded for deduplication: a
// fresh ID no one will send again would cost a record and protect nothing.
// (The cluster router assigns one before it forwards, for its own retries.)
func call[Resp proto.Message](ctx context.Context, c Caller, req actorRequest) (Resp, error) {
	var zero Resp
	id, err := actorID(req.GetActor())
	if err != nil {
		return zero, GRPCError(err)
	}
	resp, err := c.Call(ctx, id, req)
	if err != nil {
		return zero, GRPCError(err)
	}
	r, ok := resp.(Resp)
	if !ok {
		return zero, GRPCError(errors.New("actor returned an unexpected reply type"))
	}
	return r, nil
}

func (s *ActorServer) KvGet(ctx context.Context, r *holdfastv1.KvGetRequest) (*holdfastv1.KvGetResponse, error) {
	return call[*holdfastv1.KvGetResponse](ctx, s.Caller, r)
}
func (s *ActorServer) KvPut(ctx context.Context, r *holdfastv1.KvPutRequest) (*holdfastv1.KvPutResponse, error) {
	return call[*holdfastv1.KvPutResponse](ctx, s.Caller, r)
}
func (s *ActorServer) KvDelete(ctx context.Context, r *holdfastv1.KvDeleteRequest) (*holdfastv1.KvDeleteResponse, error) {
	return call[*holdfastv1.KvDeleteResponse](ctx, s.Caller, r)
}
func (s *ActorServer) KvList(ctx context.Context, r *holdfastv1.KvListRequest) (*holdfastv1.KvListResponse, error) {
	return call[*holdfastv1.KvListResponse](ctx, s.Caller, r)
}
func (s *ActorServer) KvDeleteAll(ctx context.Context, r *holdfastv1.KvDeleteAllRequest) (*holdfastv1.KvDeleteAllResponse, error) {
	return call[*holdfastv1.KvDeleteAllResponse](ctx, s.Caller, r)
}
func (s *ActorServer) KvTransaction(ctx context.Context, r *holdfastv1.KvTransactionRequest) (*holdfastv1.KvTransactionResponse, error) {
	return call[*holdfastv1.KvTransactionResponse](ctx, s.Caller, r)
}
func (s *ActorServer) RateLimitTake(ctx context.Context, r *holdfastv1.RateLimitTakeRequest) (*holdfastv1.RateLimitTakeResponse, error) {
	return call[*holdfastv1.RateLimitTakeResponse](ctx, s.Caller, r)
}
func (s *ActorServer) RateLimitAdjust(ctx context.Context, r *holdfastv1.RateLimitAdjustRequest) (*holdfastv1.RateLimitState, error) {
	return call[*holdfastv1.RateLimitState](ctx, s.Caller, r)
}
func (s *ActorServer) RateLimitGet(ctx context.Context, r *holdfastv1.RateLimitGetRequest) (*holdfastv1.RateLimitState, error) {
	return call[*holdfastv1.RateLimitState](ctx, s.Caller, r)
}
func (s *ActorServer) RateLimitSet(ctx context.Context, r *holdfastv1.RateLimitSetRequest) (*holdfastv1.RateLimitState, error) {
	return call[*holdfastv1.RateLimitState](ctx, s.Caller, r)
}
func (s *ActorServer) AlarmGet(ctx context.Context, r *holdfastv1.AlarmGetRequest) (*holdfastv1.AlarmState, error) {
	return call[*holdfastv1.AlarmState](ctx, s.Caller, r)
}
func (s *ActorServer) AlarmSet(ctx context.Context, r *holdfastv1.AlarmSetRequest) (*holdfastv1.AlarmState, error) {
	return call[*holdfastv1.AlarmState](ctx, s.Caller, r)
}
func (s *ActorServer) AlarmDelete(ctx context.Context, r *holdfastv1.AlarmDeleteRequest) (*holdfastv1.AlarmState, error) {
	return call[*holdfastv1.AlarmState](ctx, s.Caller, r)
}

// streamWindow bounds the takes of one stream in flight at once: they run
// concurrently (different keys proceed in parallel, one key's takes queue
// in its mailbox; takes the Caller runs inline, see Inliner, run one at a
// time on the stream's receiving goroutine) and their replies go back in
// request order.
const streamWindow = 128

// RateLimitTakeStream answers a stream of takes in order. A failed take
// ends the stream with its status. On Drain the stream answers every take
// it already started and ends with UNAVAILABLE; takes it had not started
// were never applied.
func (s *ActorServer) RateLimitTakeStream(stream holdfastv1.ActorService_RateLimitTakeStreamServer) error {
	ctx := stream.Context()
	type pending struct {
		done chan struct{}
		resp *holdfastv1.RateLimitTakeResponse
		err  error
	}
	queue := make(chan *pending, streamWindow)
	recvErr := make(chan error, 1)
	draining := func() bool {
		select {
		case <-s.Drain:
			return true
		default:
			return false
		}
	}
	go func() {
		defer close(queue)
		for {
			req, err := stream.Recv()
			if err != nil {
				if err != io.EOF {
					recvErr <- err
				}
				return
			}
			if draining() {
				return
			}
			p := &pending{done: make(chan struct{})}
			select {
			case queue <- p:
			case <-ctx.Done():
				return
			}
			take := func() {
				defer close(p.done)
				p.resp, p.err = call[*holdfastv1.RateLimitTakeResponse](ctx, s.Caller, req)
			}
			if s.inline(req.GetActor()) {
				take()
			} else {
				s.workers.run(take)
			}
		}
	}()
	send := func(p *pending) error {
		<-p.done
		if p.err != nil {
			return p.err
		}
		return stream.Send(p.resp)
	}
	for {
		select {
		case p, ok := <-queue:
			if !ok {
				select {
				case err := <-recvErr:
					return err
				default:
					if draining() {
						return GRPCError(actor.ErrShuttingDown)
					}
					return nil
				}
			}
			if err := send(p); err != nil {
				return err
			}
		case <-s.Drain:
			for {
				select {
				case p, ok := <-queue:
					if !ok {
						return GRPCError(actor.ErrShuttingDown)
					}
					if err := send(p); err != nil {
						return err
					}
				default:
					return GRPCError(actor.ErrShuttingDown)
				}
			}
		}
	}
}

// inline reports whether a take on ref runs on the goroutine at hand (see
// Inliner); an invalid reference fails at once, so it does too.
func (s *ActorServer) inline(ref *holdfastv1.ActorRef) bool {
	in, ok := s.Caller.(Inliner)
	if !ok {
		return false
	}
	id, err := actorID(ref)
	return err != nil || in.Inline(id)
}

// AdminServer implements holdfastv1.AdminServiceServer.
type AdminServer struct {
	holdfastv1.UnimplementedAdminServiceServer
	Admin Admin
}

func (s *AdminServer) Status(ctx context.Context, _ *holdfastv1.StatusRequest) (*holdfastv1.StatusResponse, error) {
	st, err := s.Admin.Status(ctx)
	return st, GRPCError(err)
}

func summary(info actor.ActorInfo) *holdfastv1.ActorSummary {
	s := &holdfastv1.ActorSummary{
		Actor:     &holdfastv1.ActorRef{Namespace: info.ID.Namespace, Key: info.ID.Key, Shard: info.ID.Shard},
		Partition: int64(info.Partition), Keys: info.Keys, InMemory: info.InMemory,
	}
	if !info.Alarm.IsZero() {
		s.Alarm = timestamppb.New(info.Alarm)
	}
	return s
}

func (s *AdminServer) ListActors(ctx context.Context, r *holdfastv1.ListActorsRequest) (*holdfastv1.ListActorsResponse, error) {
	if r.GetNamespace() == "" {
		return nil, GRPCError(invalid("namespace is required"))
	}
	infos, truncated, err := s.Admin.ListActors(ctx, r.GetNamespace(), r.GetPrefix(), int(r.GetLimit()))
	if err != nil {
		return nil, GRPCError(err)
	}
	resp := &holdfastv1.ListActorsResponse{Truncated: truncated}
	for _, info := range infos {
		resp.Actors = append(resp.Actors, summary(info))
	}
	return resp, nil
}

func (s *AdminServer) GetActor(ctx context.Context, r *holdfastv1.GetActorRequest) (*holdfastv1.GetActorResponse, error) {
	id, err := actorID(r.GetActor())
	if err != nil {
		return nil, GRPCError(err)
	}
	if owner, err := s.ownerAdmin(ctx, id); err != nil {
		return nil, GRPCError(err)
	} else if owner != nil {
		return owner.GetActor(ctx, r)
	}
	d, err := s.Admin.GetActor(ctx, id, int(r.GetLimit()))
	if err != nil {
		return nil, GRPCError(err)
	}
	resp := &holdfastv1.GetActorResponse{Summary: summary(d.Info), Truncated: d.Truncated, Alarm: &holdfastv1.AlarmState{}}
	for _, e := range d.Entries {
		resp.Entries = append(resp.Entries, &holdfastv1.Entry{Key: e.Key, Value: e.Value})
	}
	if at := d.AlarmAt(); !at.IsZero() {
		resp.Alarm.Scheduled, resp.Alarm.At = true, timestamppb.New(at)
	}
	last, n := d.AlarmLastFired()
	resp.Alarm.FiredCount = n
	if !last.IsZero() {
		resp.Alarm.LastFired = timestamppb.New(last)
	}
	return resp, nil
}

func (s *AdminServer) DeleteActor(ctx context.Context, r *holdfastv1.DeleteActorRequest) (*holdfastv1.DeleteActorResponse, error) {
	id, err := actorID(r.GetActor())
	if err != nil {
		return nil, GRPCError(err)
	}
	if owner, err := s.ownerAdmin(ctx, id); err != nil {
		return nil, GRPCError(err)
	} else if owner != nil {
		return owner.DeleteActor(ctx, r)
	}
	n, err := s.Admin.DeleteActor(ctx, id)
	if err != nil {
		return nil, GRPCError(err)
	}
	return &holdfastv1.DeleteActorResponse{DeletedKeys: int64(n)}, nil
}
