package main

import (
	"bytes"
	"context"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// fixedNow is the clock of the fake node and of holdctl in tests.
var fixedNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

const maxFakeValue = 16

// fakeNode is an in-memory stand-in for a holdfast node: a kv map per
// actor, canned ratelimit answers, and a record of what arrived.
type fakeNode struct {
	holdfastv1.UnimplementedActorServiceServer
	holdfastv1.UnimplementedAdminServiceServer

	mu         sync.Mutex
	kv         map[string]map[string][]byte // "ns/key" -> key -> value
	auth       []string                     // authorization metadata of every call
	requestIDs []string                     // request_id of every mutating call
	lastSet    *holdfastv1.RateLimitSetRequest
	lastTake   *holdfastv1.RateLimitTakeRequest
	lastAlarm  *holdfastv1.AlarmSetRequest
	calls      int
}

func startFake(t *testing.T, opts ...grpc.ServerOption) (*fakeNode, string) {
	t.Helper()
	f := &fakeNode{kv: map[string]map[string][]byte{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(opts, grpc.UnaryInterceptor(f.intercept))...)
	holdfastv1.RegisterActorServiceServer(srv, f)
	holdfastv1.RegisterAdminServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

func (f *fakeNode) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	f.calls++
	f.auth = append(f.auth, strings.Join(md.Get("authorization"), ","))
	if r, ok := req.(interface{ GetRequestId() string }); ok {
		f.requestIDs = append(f.requestIDs, r.GetRequestId())
	}
	f.mu.Unlock()
	return h(ctx, req)
}

func (f *fakeNode) snapshot() (auth, ids []string, calls int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auth...), append([]string(nil), f.requestIDs...), f.calls
}

func actorID(r *holdfastv1.ActorRef) string { return r.GetNamespace() + "/" + r.GetKey() }

// ---- ActorService ----

func (f *fakeNode) KvPut(_ context.Context, r *holdfastv1.KvPutRequest) (*holdfastv1.KvPutResponse, error) {
	for _, e := range r.GetEntries() {
		if len(e.GetValue()) > maxFakeValue {
			st, _ := status.New(codes.InvalidArgument, "value of key \""+e.GetKey()+"\" is too large").
				WithDetails(&errdetails.ErrorInfo{
					Reason: "LIMIT_EXCEEDED", Domain: "holdfast.dev",
					Metadata: map[string]string{"limit": "max_value_bytes", "max": "16"},
				})
			return nil, st.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.kv[actorID(r.GetActor())]
	if m == nil {
		m = map[string][]byte{}
		f.kv[actorID(r.GetActor())] = m
	}
	for _, e := range r.GetEntries() {
		m[e.GetKey()] = append([]byte(nil), e.GetValue()...)
	}
	return &holdfastv1.KvPutResponse{}, nil
}

func (f *fakeNode) KvGet(ctx context.Context, r *holdfastv1.KvGetRequest) (*holdfastv1.KvGetResponse, error) {
	if r.GetActor().GetKey() == "echo-auth" {
		// A misbehaving node that echoes the credentials it was sent.
		md, _ := metadata.FromIncomingContext(ctx)
		return nil, status.Errorf(codes.PermissionDenied, "token rejected: %v", md.Get("authorization"))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &holdfastv1.KvGetResponse{}
	for _, k := range r.GetKeys() {
		if v, ok := f.kv[actorID(r.GetActor())][k]; ok {
			resp.Entries = append(resp.Entries, &holdfastv1.Entry{Key: k, Value: v})
		}
	}
	return resp, nil
}

func (f *fakeNode) KvDelete(_ context.Context, r *holdfastv1.KvDeleteRequest) (*holdfastv1.KvDeleteResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, k := range r.GetKeys() {
		if _, ok := f.kv[actorID(r.GetActor())][k]; ok {
			delete(f.kv[actorID(r.GetActor())], k)
			n++
		}
	}
	return &holdfastv1.KvDeleteResponse{Deleted: n}, nil
}

func (f *fakeNode) KvList(_ context.Context, r *holdfastv1.KvListRequest) (*holdfastv1.KvListResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	for k := range f.kv[actorID(r.GetActor())] {
		if strings.HasPrefix(k, r.GetPrefix()) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if r.GetReverse() {
		slices.Reverse(keys)
	}
	resp := &holdfastv1.KvListResponse{}
	for _, k := range keys {
		if r.GetLimit() > 0 && int64(len(resp.Entries)) == r.GetLimit() {
			resp.Truncated = true
			break
		}
		resp.Entries = append(resp.Entries, &holdfastv1.Entry{Key: k, Value: f.kv[actorID(r.GetActor())][k]})
	}
	return resp, nil
}

// RateLimitTake allows up to 5 "requests" per call, refuses more.
func (f *fakeNode) RateLimitTake(_ context.Context, r *holdfastv1.RateLimitTakeRequest) (*holdfastv1.RateLimitTakeResponse, error) {
	f.mu.Lock()
	f.lastTake = proto.Clone(r).(*holdfastv1.RateLimitTakeRequest)
	f.mu.Unlock()
	n := r.GetAmounts()["requests"]
	if n > 5 {
		return &holdfastv1.RateLimitTakeResponse{
			Allowed: false, Remaining: map[string]float64{"requests": 5},
			RetryAfterMs: 2500, RefusedBy: "requests", BudgetRemainingNanos: -1,
		}, nil
	}
	return &holdfastv1.RateLimitTakeResponse{
		Allowed: true, Remaining: map[string]float64{"requests": float64(5 - n)}, BudgetRemainingNanos: -1,
	}, nil
}

func (f *fakeNode) rateState() *holdfastv1.RateLimitState {
	return &holdfastv1.RateLimitState{
		Buckets: []*holdfastv1.BucketState{
			{Name: "requests", Capacity: 10, RefillPerSecond: 0.5, Level: 7.25, Source: "key"},
			{Name: "tokens", Capacity: 1000, RefillPerSecond: 50, Level: 1000, Source: "namespace"},
		},
		Day: "2030-01-02", SpendTodayNanos: 1_500_000_000, DailyBudgetNanos: 12_345_678_901,
	}
}

func (f *fakeNode) RateLimitSet(_ context.Context, r *holdfastv1.RateLimitSetRequest) (*holdfastv1.RateLimitState, error) {
	f.mu.Lock()
	f.lastSet = proto.Clone(r).(*holdfastv1.RateLimitSetRequest)
	f.mu.Unlock()
	return f.rateState(), nil
}

func (f *fakeNode) RateLimitGet(context.Context, *holdfastv1.RateLimitGetRequest) (*holdfastv1.RateLimitState, error) {
	return f.rateState(), nil
}

func (f *fakeNode) AlarmSet(_ context.Context, r *holdfastv1.AlarmSetRequest) (*holdfastv1.AlarmState, error) {
	f.mu.Lock()
	f.lastAlarm = proto.Clone(r).(*holdfastv1.AlarmSetRequest)
	f.mu.Unlock()
	at := r.GetAt()
	if at == nil {
		at = timestamppb.New(fixedNow.Add(time.Duration(r.GetInMs()) * time.Millisecond))
	}
	return &holdfastv1.AlarmState{Scheduled: true, At: at, FiredCount: 3, Retries: 1,
		LastFired: timestamppb.New(fixedNow.Add(-90 * time.Second))}, nil
}

func (f *fakeNode) AlarmGet(_ context.Context, r *holdfastv1.AlarmGetRequest) (*holdfastv1.AlarmState, error) {
	return &holdfastv1.AlarmState{}, nil
}

// ---- AdminService ----

func (f *fakeNode) Status(context.Context, *holdfastv1.StatusRequest) (*holdfastv1.StatusResponse, error) {
	return &holdfastv1.StatusResponse{
		NodeId: "node-1", Version: "v0.1.0", Started: timestamppb.New(fixedNow.Add(-time.Hour)),
		DataDir: "/var/lib/holdfast", HttpAddr: "127.0.0.1:8080", GrpcAddr: "127.0.0.1:7070",
		Partitions: 16, ActorsInMemory: 3, DurableSeq: 42, Commits: 7, AlarmsPending: 1, State: "serving",
		Namespaces: []*holdfastv1.NamespaceInfo{{Name: "kv", Kind: "kv", Durability: "sync", ActorsInMemory: 2}},
	}, nil
}

func (f *fakeNode) GetActor(_ context.Context, r *holdfastv1.GetActorRequest) (*holdfastv1.GetActorResponse, error) {
	if r.GetActor().GetKey() != "a1" {
		return nil, status.Error(codes.NotFound, "actor "+actorID(r.GetActor())+" not found")
	}
	return &holdfastv1.GetActorResponse{
		Summary: &holdfastv1.ActorSummary{Actor: r.GetActor(), Partition: 5, Keys: 2, InMemory: true},
		Entries: []*holdfastv1.Entry{
			{Key: "greeting", Value: []byte("hello world")},
			{Key: "blob", Value: []byte{0x00, 0xff, 0x10}},
		},
		Alarm: &holdfastv1.AlarmState{},
	}, nil
}

func (f *fakeNode) ListActors(_ context.Context, r *holdfastv1.ListActorsRequest) (*holdfastv1.ListActorsResponse, error) {
	return &holdfastv1.ListActorsResponse{
		Actors: []*holdfastv1.ActorSummary{{
			Actor: &holdfastv1.ActorRef{Namespace: r.GetNamespace(), Key: "a1"}, Partition: 5, Keys: 2,
			InMemory: true, Alarm: timestamppb.New(fixedNow.Add(4500 * time.Millisecond)),
		}},
		Truncated: r.GetLimit() == 1,
	}, nil
}

func (f *fakeNode) DeleteActor(context.Context, *holdfastv1.DeleteActorRequest) (*holdfastv1.DeleteActorResponse, error) {
	return &holdfastv1.DeleteActorResponse{DeletedKeys: 2}, nil
}

// ---- running holdctl ----

type result struct {
	stdout, stderr string
	code           int
}

// holdctl runs the CLI in-process against addr with env as its environment.
func holdctl(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb, func(k string) string { return env[k] })
	return result{out.String(), errb.String(), code}
}
