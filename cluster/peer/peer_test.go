package peer

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeHandler echoes: the reply to a call is its message. Hooks override.
type fakeHandler struct {
	call     func(ctx context.Context, req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse
	transfer func(stream holdfastv1.PeerService_TransferServer) error
	ping     func(ctx context.Context, req *holdfastv1.PingRequest) (*holdfastv1.PingResponse, error)
	calls    atomic.Int64 // Call invocations (each call of a batch counts)
	drains   atomic.Int64
}

func (h *fakeHandler) Call(ctx context.Context, req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse {
	h.calls.Add(1)
	if h.call != nil {
		return h.call(ctx, req)
	}
	return echo(req)
}

func echo(req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse {
	m, err := req.GetMessage().UnmarshalNew()
	if err != nil {
		return ErrorResponse(err)
	}
	resp, err := ReplyResponse(m)
	if err != nil {
		return ErrorResponse(err)
	}
	return resp
}

func (h *fakeHandler) Transfer(stream holdfastv1.PeerService_TransferServer) error {
	if h.transfer != nil {
		return h.transfer(stream)
	}
	return errors.New("no transfer")
}
func (h *fakeHandler) HandoffDone(context.Context, *holdfastv1.HandoffDoneRequest) error { return nil }
func (h *fakeHandler) HandoffAborted(context.Context, *holdfastv1.HandoffAbortedRequest) error {
	return nil
}
func (h *fakeHandler) Ping(ctx context.Context, req *holdfastv1.PingRequest) (*holdfastv1.PingResponse, error) {
	if h.ping != nil {
		return h.ping(ctx, req)
	}
	return &holdfastv1.PingResponse{NodeId: "server", Incarnation: 7}, nil
}
func (h *fakeHandler) Drain(context.Context) error { h.drains.Add(1); return nil }

// rpcCounter counts the unary RPCs the server received, by method.
type rpcCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *rpcCounter) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	c.mu.Lock()
	c.n[info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]]++
	c.mu.Unlock()
	return h(ctx, req)
}

func (c *rpcCounter) get(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[method]
}

// serve starts a real gRPC server on loopback with h; it stops at cleanup.
func serve(t *testing.T, h Handler, opts ...grpc.ServerOption) (string, *rpcCounter) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rc := &rpcCounter{n: map[string]int{}}
	opts = append(append(ServerOptions(), grpc.ChainUnaryInterceptor(rc.unary)), opts...)
	s := grpc.NewServer(opts...)
	Register(s, h)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(lis) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return lis.Addr().String(), rc
}

func newPool(t *testing.T, cfg PoolConfig) *Pool {
	t.Helper()
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return p
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// request builds a forwarded kv get of key.
func request(t testing.TB, key string) *holdfastv1.ForwardRequest {
	a, err := anypb.New(&holdfastv1.KvGetRequest{Keys: []string{key}})
	if err != nil {
		t.Fatal(err)
	}
	return &holdfastv1.ForwardRequest{Actor: &holdfastv1.ActorRef{Namespace: "kv", Key: key}, Partition: 3, Epoch: 9, Message: a, OriginNode: "client"}
}

// keyOf is the key a request (or an echoed reply) names.
func keyOf(t testing.TB, resp *holdfastv1.ForwardResponse) string {
	m, _, err := Decode(resp)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m.(*holdfastv1.KvGetRequest).GetKeys()[0]
}

func reqKey(req *holdfastv1.ForwardRequest) string { return req.GetActor().GetKey() }

func TestCallResults(t *testing.T) {
	h := &fakeHandler{}
	h.call = func(ctx context.Context, req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse {
		switch reqKey(req) {
		case "missing":
			return ErrorResponse(fmt.Errorf("kv: %w: key", actor.ErrNotFound))
		case "moved":
			return NotOwnerResponse(&holdfastv1.NotOwner{OwnerHint: "n2", Epoch: 4})
		case "nil":
			return nil
		}
		if req.GetPartition() != 3 || req.GetEpoch() != 9 || req.GetOriginNode() != "client" {
			return ErrorResponse(errors.New("fields lost"))
		}
		return echo(req)
	}
	addr, rc := serve(t, h)
	p := newPool(t, PoolConfig{})
	ctx := context.Background()

	resp, err := p.Call(ctx, addr, request(t, "a"))
	if err != nil || keyOf(t, resp) != "a" {
		t.Fatalf("call: %v %v", resp, err)
	}
	resp, err = p.Call(ctx, addr, request(t, "missing"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, cerr := Decode(resp); !errors.Is(cerr, actor.ErrNotFound) || cerr.Error() != "kv: not found: key" {
		t.Fatalf("error result: %v", cerr)
	}
	resp, _ = p.Call(ctx, addr, request(t, "moved"))
	if _, no, _ := Decode(resp); no.GetOwnerHint() != "n2" || no.GetEpoch() != 4 {
		t.Fatalf("not owner: %v", resp)
	}
	resp, _ = p.Call(ctx, addr, request(t, "nil"))
	if _, _, cerr := Decode(resp); !errors.Is(cerr, actor.ErrInternal) {
		t.Fatalf("nil result: %v", cerr)
	}
	if rc.get("Call") != 4 || rc.get("CallBatch") != 0 {
		t.Fatalf("sequential calls to an idle peer must go alone at once: %v", rc.n)
	}

	c, err := p.Client(addr)
	if err != nil {
		t.Fatal(err)
	}
	if pr, err := c.Ping(ctx, &holdfastv1.PingRequest{NodeId: "client"}); err != nil || pr.GetIncarnation() != 7 {
		t.Fatalf("ping: %v %v", pr, err)
	}
	if _, err := c.Drain(ctx, &holdfastv1.DrainRequest{}); err != nil || h.drains.Load() != 1 {
		t.Fatalf("drain: %v", err)
	}
	if c2, _ := p.Client(addr); c2 != c {
		t.Fatal("one client per address")
	}
}

// TestCallsBatched: while a call is in flight, further calls accumulate.
// The window is long, so batches leave only when full (MaxBatch) or when
// nothing is in flight: 1 alone, 3 full batches of 64, then the last 7.
func TestCallsBatched(t *testing.T) {
	release := make(chan struct{})
	h := &fakeHandler{}
	h.call = func(ctx context.Context, req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse {
		<-release
		return echo(req)
	}
	addr, rc := serve(t, h)
	p := newPool(t, PoolConfig{BatchWindow: time.Minute, MaxBatch: 64})

	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprint("k", i)
			resp, err := p.Call(context.Background(), addr, request(t, key))
			if err == nil && keyOf(t, resp) != key {
				err = fmt.Errorf("call %s answered for %s", key, keyOf(t, resp))
			}
			if err != nil {
				errs <- err
			}
		})
	}
	waitFor(t, 10*time.Second, "193 calls at the handler", func() bool { return h.calls.Load() == 1+3*64 })
	pr, _ := p.peer(addr)
	pr.mu.Lock()
	pending, inflight := len(pr.pending), pr.inflight
	pr.mu.Unlock()
	if pending != n-193 || inflight != 4 {
		t.Fatalf("pending %d, inflight %d", pending, inflight)
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	calls, batches := rc.get("Call"), rc.get("CallBatch")
	if calls+batches >= n || calls != 1 || batches != 4 {
		t.Fatalf("%d calls went in %d Call and %d CallBatch RPCs, want 1 and 4", n, calls, batches)
	}
}

// TestCallsBatchedDefaults: many concurrent calls with the default window
// all get their own answer.
func TestCallsBatchedDefaults(t *testing.T) {
	addr, rc := serve(t, &fakeHandler{})
	p := newPool(t, PoolConfig{})
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Go(func() {
			key := fmt.Sprint("k", i)
			resp, err := p.Call(context.Background(), addr, request(t, key))
			if err != nil {
				t.Error(err)
			} else if got := keyOf(t, resp); got != key {
				t.Errorf("%s answered as %s", key, got)
			}
		})
	}
	wg.Wait()
	if rc.get("Call")+rc.get("CallBatch") > 500 {
		t.Fatal("more RPCs than calls")
	}
}

// TestBatchPerCallDeadline: each call of a batch runs under its own
// timeout_ms; the answers come in order.
func TestBatchPerCallDeadline(t *testing.T) {
	type seen struct {
		deadline bool
		left     time.Duration
	}
	var mu sync.Mutex
	deadlines := map[string]seen{}
	h := &fakeHandler{}
	h.call = func(ctx context.Context, req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse {
		d, ok := ctx.Deadline()
		mu.Lock()
		deadlines[reqKey(req)] = seen{ok, time.Until(d)}
		mu.Unlock()
		if reqKey(req) == "slow" {
			<-ctx.Done()
			return ErrorResponse(actor.ErrTurnDeadline)
		}
		return echo(req)
	}
	addr, _ := serve(t, h)
	p := newPool(t, PoolConfig{})
	c, _ := p.Client(addr)

	slow, fast := request(t, "slow"), request(t, "fast")
	slow.TimeoutMs = 50
	br, err := c.CallBatch(context.Background(), &holdfastv1.ForwardBatch{Calls: []*holdfastv1.ForwardRequest{slow, fast, request(t, "third")}})
	if err != nil {
		t.Fatal(err)
	}
	rs := br.GetResponses()
	if len(rs) != 3 {
		t.Fatalf("%d responses", len(rs))
	}
	if _, _, err := Decode(rs[0]); !errors.Is(err, actor.ErrTurnDeadline) {
		t.Fatalf("slow: %v", err)
	}
	if keyOf(t, rs[1]) != "fast" || keyOf(t, rs[2]) != "third" {
		t.Fatal("answers out of order")
	}
	if s := deadlines["slow"]; !s.deadline || s.left > 50*time.Millisecond {
		t.Fatalf("slow call's deadline: %+v", s)
	}
	if deadlines["fast"].deadline {
		t.Fatal("a call without timeout_ms got a deadline")
	}

	// Through the pool: a call's deadline travels as timeout_ms.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got int64
	h.call = func(ctx context.Context, req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse {
		atomic.StoreInt64(&got, req.GetTimeoutMs())
		return echo(req)
	}
	req := request(t, "x")
	if _, err := p.Call(ctx, addr, req); err != nil {
		t.Fatal(err)
	}
	if ms := atomic.LoadInt64(&got); ms <= 0 || ms > 30000 {
		t.Fatalf("timeout_ms %d", ms)
	}
	if req.GetTimeoutMs() != 0 {
		t.Fatal("the caller's request was modified")
	}
}

// TestCallerCancel: a caller that gives up gets its context's error at
// once; a sent call's RPC is canceled (the handler sees it); a queued call
// leaves its batch and is never sent.
func TestCallerCancel(t *testing.T) {
	started := make(chan string, 10)
	canceled := make(chan string, 10)
	release := make(chan struct{})
	h := &fakeHandler{}
	h.call = func(ctx context.Context, req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse {
		started <- reqKey(req)
		select {
		case <-ctx.Done():
			canceled <- reqKey(req)
			return ErrorResponse(ctx.Err())
		case <-release:
			return echo(req)
		}
	}
	addr, _ := serve(t, h)
	p := newPool(t, PoolConfig{BatchWindow: time.Minute})

	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { _, err := p.Call(ctx, addr, request(t, "sent")); res <- err }()
	if k := <-started; k != "sent" {
		t.Fatal(k)
	}
	// A second call queues behind the first (in flight) and leaves.
	ctx2, cancel2 := context.WithCancel(context.Background())
	res2 := make(chan error, 1)
	go func() { _, err := p.Call(ctx2, addr, request(t, "queued")); res2 <- err }()
	pr, _ := p.peer(addr)
	waitFor(t, 10*time.Second, "queued call", func() bool {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		return len(pr.pending) == 1
	})
	cancel2()
	if err := <-res2; !errors.Is(err, context.Canceled) || !NeverRan(err) {
		t.Fatalf("queued call: %v (never ran %v)", err, NeverRan(err))
	}
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) || NeverRan(err) {
		t.Fatalf("sent call: %v (never ran %v)", err, NeverRan(err))
	}
	if k := <-canceled; k != "sent" {
		t.Fatal(k)
	}
	close(release)
	if resp, err := p.Call(context.Background(), addr, request(t, "after")); err != nil || keyOf(t, resp) != "after" {
		t.Fatalf("after: %v", err)
	}
	if h.calls.Load() != 2 {
		t.Fatalf("the handler saw %d calls; the queued one must never reach it", h.calls.Load())
	}
	if _, err := p.Call(ctx, addr, request(t, "late")); !NeverRan(err) {
		t.Fatalf("a call with a done context: %v", err)
	}
}

func TestNeverRan(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close()

	hang := make(chan struct{})
	defer close(hang)
	h := &fakeHandler{}
	h.call = func(ctx context.Context, req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse {
		<-ctx.Done() // hangs past the deadline: no answer can beat it
		<-hang
		return ErrorResponse(ctx.Err())
	}
	h.ping = func(context.Context, *holdfastv1.PingRequest) (*holdfastv1.PingResponse, error) {
		return nil, status.Error(codes.Unavailable, "connection refused") // a status from the handler
	}
	addr, _ := serve(t, h)
	p := newPool(t, PoolConfig{DialTimeout: time.Second})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = p.Call(ctx, closed, request(t, "a"))
	if err == nil || !NeverRan(err) || status.Code(err) != codes.Unavailable {
		t.Fatalf("closed port: %v (never ran %v)", err, NeverRan(err))
	}
	c, _ := p.Client(closed)
	if _, err := c.Ping(ctx, &holdfastv1.PingRequest{}); !NeverRan(err) {
		t.Fatalf("closed port, ping: %v", err)
	}

	hctx, hcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer hcancel()
	_, err = p.Call(hctx, addr, request(t, "a"))
	if err == nil || NeverRan(err) {
		t.Fatalf("hanging handler: %v (never ran %v)", err, NeverRan(err))
	}
	// The RPC's own error (not the caller's context) after send.
	c, _ = p.Client(addr)
	hctx2, hcancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer hcancel2()
	_, err = c.Call(hctx2, request(t, "b"))
	if status.Code(err) != codes.DeadlineExceeded || NeverRan(err) {
		t.Fatalf("deadline exceeded: %v (never ran %v)", err, NeverRan(err))
	}
	_, err = c.Ping(ctx, &holdfastv1.PingRequest{})
	if status.Code(err) != codes.Unavailable || NeverRan(err) {
		t.Fatalf("an UNAVAILABLE from the handler ran: %v (never ran %v)", err, NeverRan(err))
	}
	if NeverRan(nil) || NeverRan(status.Error(codes.Unavailable, "x")) || NeverRan(context.DeadlineExceeded) {
		t.Fatal("NeverRan must be false unless proven")
	}
}

func TestTransfer(t *testing.T) {
	type got struct {
		hdr  *holdfastv1.TransferHeader
		recs []*holdfastv1.PartitionRecord
		err  error
	}
	results := make(chan got, 4)
	h := &fakeHandler{}
	h.transfer = func(stream holdfastv1.PeerService_TransferServer) error {
		hdr, r, err := ReadTransfer(stream)
		if err != nil {
			results <- got{err: err}
			return err
		}
		var all []*holdfastv1.PartitionRecord
		for {
			recs, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				results <- got{hdr: hdr, err: err}
				return err
			}
			all = append(all, recs...)
		}
		results <- got{hdr: hdr, recs: all}
		return stream.SendAndClose(&holdfastv1.TransferAck{HandoffId: hdr.GetHandoffId(), Records: r.Records()})
	}
	addr, _ := serve(t, h)
	p := newPool(t, PoolConfig{})
	ctx := context.Background()
	hdr := &holdfastv1.TransferHeader{HandoffId: "h1", Partition: 5, FromEpoch: 3, FromNode: "n1", Epoch: 4}

	const chunks, per = 100, 50
	i := 0
	ack, err := p.Transfer(ctx, addr, hdr, func() ([]*holdfastv1.PartitionRecord, error) {
		if i == chunks {
			return nil, io.EOF
		}
		recs := make([]*holdfastv1.PartitionRecord, per)
		for j := range recs {
			recs[j] = &holdfastv1.PartitionRecord{Kind: 1, Actor: []byte("a"), Key: fmt.Appendf(nil, "%05d", i*per+j), Value: bytes.Repeat([]byte{'v'}, 100)}
		}
		i++
		return recs, nil
	})
	if err != nil || ack.GetHandoffId() != "h1" || ack.GetRecords() != chunks*per {
		t.Fatalf("transfer: %v %v", ack, err)
	}
	g := <-results
	if !proto.Equal(g.hdr, hdr) || len(g.recs) != chunks*per {
		t.Fatalf("received %v, %d records", g.hdr, len(g.recs))
	}
	for k, r := range g.recs {
		if string(r.GetKey()) != fmt.Sprintf("%05d", k) {
			t.Fatalf("record %d is %q", k, r.GetKey())
		}
	}

	// The sender fails midway: the receiver sees a broken stream, no ack.
	n := 0
	boom := errors.New("export failed")
	_, err = p.Transfer(ctx, addr, &holdfastv1.TransferHeader{HandoffId: "h2"}, func() ([]*holdfastv1.PartitionRecord, error) {
		if n++; n > 3 {
			return nil, boom
		}
		return []*holdfastv1.PartitionRecord{{Key: []byte("k")}}, nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failed sender: %v", err)
	}
	// (The cancel may overtake the header: the receiver then fails reading it.)
	if g := <-results; g.err == nil || (g.hdr != nil && g.hdr.GetHandoffId() != "h2") {
		t.Fatalf("receiver of a broken stream: %+v", g)
	}

	// Protocol: no header; a stream ending without done.
	c, _ := p.Client(addr)
	s, err := c.Transfer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Send(&holdfastv1.TransferChunk{Records: []*holdfastv1.PartitionRecord{{}}})
	if _, err := s.CloseAndRecv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("no header: %v", err)
	}
	<-results
	s, _ = c.Transfer(ctx)
	s.Send(&holdfastv1.TransferChunk{Header: &holdfastv1.TransferHeader{HandoffId: "h3"}})
	if _, err := s.CloseAndRecv(); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("no done: %v", err)
	}
	if g := <-results; !errors.Is(g.err, ErrProtocol) {
		t.Fatalf("no done: %v", g.err)
	}
}

// tokenServer serves h behind api.TokenAuth.
func tokenServer(t *testing.T, token string, extra ...grpc.ServerOption) string {
	auth := api.TokenAuth{Token: token}
	addr, _ := serve(t, &fakeHandler{transfer: func(stream holdfastv1.PeerService_TransferServer) error {
		hdr, r, err := ReadTransfer(stream)
		if err != nil {
			return err
		}
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
		}
		return stream.SendAndClose(&holdfastv1.TransferAck{HandoffId: hdr.GetHandoffId()})
	}}, append([]grpc.ServerOption{grpc.ChainUnaryInterceptor(auth.Unary), grpc.ChainStreamInterceptor(auth.Stream)}, extra...)...)
	return addr
}

func TestToken(t *testing.T) {
	const token = "t0ps3cret-peer-token"
	addr := tokenServer(t, token)
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx := context.Background()

	good := newPool(t, PoolConfig{Token: token, Logger: logger})
	if resp, err := good.Call(ctx, addr, request(t, "a")); err != nil || keyOf(t, resp) != "a" {
		t.Fatalf("with token: %v", err)
	}
	if _, err := good.Transfer(ctx, addr, &holdfastv1.TransferHeader{HandoffId: "h"}, func() ([]*holdfastv1.PartitionRecord, error) { return nil, io.EOF }); err != nil {
		t.Fatalf("stream with token: %v", err)
	}

	for _, bad := range []string{"", "wrong"} {
		p := newPool(t, PoolConfig{Token: bad, Logger: logger})
		_, err := p.Call(ctx, addr, request(t, "a"))
		if status.Code(err) != codes.Unauthenticated || NeverRan(err) {
			t.Fatalf("token %q: %v", bad, err)
		}
		if strings.Contains(err.Error(), token) {
			t.Fatal("token in an error")
		}
	}
	logMu.Lock()
	defer logMu.Unlock()
	if !strings.Contains(logs.String(), "peer rpc failed") {
		t.Fatalf("expected debug lines, got %q", logs.String())
	}
	if strings.Contains(logs.String(), token) {
		t.Fatal("token in the log")
	}
	if s := fmt.Sprintf("%v %+v", bearer{token: token}, PoolConfig{Token: token}.withDefaults()); strings.Contains(s, "Bearer "+token) {
		t.Fatal("bearer credentials print the header")
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// selfSigned is a CA-less certificate for 127.0.0.1, both server and client.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "holdfast-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

func TestTLS(t *testing.T) {
	cert, roots := selfSigned(t)
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: roots, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
	const token = "tls-and-token"
	addr := tokenServer(t, token, grpc.Creds(credentials.NewTLS(serverTLS)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	p := newPool(t, PoolConfig{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, MinVersion: tls.VersionTLS13}, Token: token})
	if resp, err := p.Call(ctx, addr, request(t, "a")); err != nil || keyOf(t, resp) != "a" {
		t.Fatalf("mTLS: %v", err)
	}
	// Plaintext, or TLS without a client certificate: no connection, so
	// the call provably never ran.
	for name, cfg := range map[string]PoolConfig{
		"plaintext":      {Token: token, DialTimeout: time.Second},
		"no client cert": {TLS: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS13}, Token: token, DialTimeout: time.Second},
	} {
		p := newPool(t, cfg)
		_, err := p.Call(ctx, addr, request(t, "a"))
		if err == nil {
			t.Fatalf("%s: call succeeded", name)
		}
		if name == "plaintext" && !NeverRan(err) {
			t.Fatalf("%s: %v must be never-ran", name, err)
		}
	}
}

func TestClose(t *testing.T) {
	release := make(chan struct{})
	h := &fakeHandler{}
	h.call = func(ctx context.Context, req *holdfastv1.ForwardRequest) *holdfastv1.ForwardResponse {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return echo(req)
	}
	defer close(release)
	addr, _ := serve(t, h)
	p, err := NewPool(PoolConfig{BatchWindow: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 2)
	go func() { _, err := p.Call(context.Background(), addr, request(t, "inflight")); res <- err }()
	waitFor(t, 10*time.Second, "the first call at the handler", func() bool { return h.calls.Load() == 1 })
	go func() { _, err := p.Call(context.Background(), addr, request(t, "queued")); res <- err }()
	pr, _ := p.peer(addr)
	waitFor(t, 10*time.Second, "queued call", func() bool {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		return len(pr.pending) == 1
	})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	var sawNeverRan, sawRan bool
	for range 2 {
		err := <-res
		switch {
		case errors.Is(err, ErrClosed) && NeverRan(err):
			sawNeverRan = true
		case err != nil && !NeverRan(err):
			sawRan = true
		default:
			t.Fatalf("after close: %v", err)
		}
	}
	if !sawNeverRan || !sawRan {
		t.Fatal("want the queued call never-ran and the sent one canceled")
	}
	if err := p.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if _, err := p.Call(context.Background(), addr, request(t, "x")); !errors.Is(err, ErrClosed) || !NeverRan(err) {
		t.Fatalf("call after close: %v", err)
	}
	if _, err := p.Client(addr); !errors.Is(err, ErrClosed) {
		t.Fatalf("client after close: %v", err)
	}
}

func TestWithTimeoutCopiesEveryField(t *testing.T) {
	r := request(t, "k")
	r.TimeoutMs = 5
	fields := r.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		if !r.ProtoReflect().Has(fields.Get(i)) {
			t.Fatalf("set field %s in this test", fields.Get(i).Name())
		}
	}
	if c := withTimeout(r, 5); !proto.Equal(c, r) {
		t.Fatalf("withTimeout drops a field: %v vs %v", c, r)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultPoolConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (PoolConfig{}).Validate(); err != nil {
		t.Fatal("zero config takes defaults:", err)
	}
	for _, c := range []PoolConfig{{MaxBatch: -1}, {MaxBatch: MaxServerBatch + 1}, {KeepaliveTime: time.Second}, {BatchWindow: -1}, {MaxMessageBytes: 10}} {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
		if _, err := NewPool(c); err == nil {
			t.Errorf("NewPool(%+v) accepted", c)
		}
	}
}
