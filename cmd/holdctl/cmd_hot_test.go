package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// hotNode is a fake admin service answering Hot with two nodes, one of
// which could not be asked.
type hotNode struct {
	holdfastv1.UnimplementedAdminServiceServer
	mu    sync.Mutex
	local []bool
}

func (f *hotNode) Hot(_ context.Context, r *holdfastv1.HotRequest) (*holdfastv1.HotResponse, error) {
	f.mu.Lock()
	f.local = append(f.local, r.GetLocal())
	f.mu.Unlock()
	return &holdfastv1.HotResponse{Nodes: []*holdfastv1.HotNode{
		{NodeId: "node-1", Keys: []*holdfastv1.HotKey{
			{Actor: &holdfastv1.ActorRef{Namespace: "ratelimit", Key: "alice"}, State: "split", Shards: 4, Generation: 2, TurnsPerSecond: 3, KeyTurnsPerSecond: 3},
			{Actor: &holdfastv1.ActorRef{Namespace: "ratelimit", Key: "alice", Shard: 2}, State: "shard", Shards: 4, Generation: 2, TurnsPerSecond: 250.5, KeyTurnsPerSecond: 1002, AllowancesGranted: 3},
		}, Held: []*holdfastv1.HeldAllowance{
			{Actor: &holdfastv1.ActorRef{Namespace: "ratelimit", Key: "alice", Shard: 3}, Allowances: 1, Tokens: map[string]int64{"requests": 12}, UsedTakes: 4},
		}},
		{NodeId: "node-2", Error: "unreachable"},
	}}, nil
}

func TestHotCommand(t *testing.T) {
	f := &hotNode{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	holdfastv1.RegisterAdminServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	addr := lis.Addr().String()

	r := holdctl(t, nil, "--addr", addr, "-o", "json", "hot")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"nodes":[
		{"node_id":"node-1","keys":[
			{"namespace":"ratelimit","key":"alice","shard":0,"state":"split","shards":4,"generation":2,"turns_per_second":3,"key_turns_per_second":3,"allowances_granted":0},
			{"namespace":"ratelimit","key":"alice","shard":2,"state":"shard","shards":4,"generation":2,"turns_per_second":250.5,"key_turns_per_second":1002,"allowances_granted":3}],
		 "held":[{"namespace":"ratelimit","key":"alice","shard":3,"allowances":1,"tokens":{"requests":12},"used_takes":4}]},
		{"node_id":"node-2","keys":[],"held":[],"error":"unreachable"}]}`)

	r = holdctl(t, nil, "--addr", addr, "hot", "--local")
	wantCode(t, r, 0)
	for _, s := range []string{"KEY TURNS/S", "split", "1002.0", "requests=12", "node-2", "unreachable"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("hot text lacks %q:\n%s", s, r.stdout)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.local) != 2 || f.local[0] || !f.local[1] {
		t.Fatalf("local flags sent: %v", f.local)
	}
}
