package main

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// eventsNode is a fake admin service answering Events: user "single" gets a
// single node's FAILED_PRECONDITION, anyone else two canned events.
type eventsNode struct {
	holdfastv1.UnimplementedAdminServiceServer
	mu   sync.Mutex
	reqs []*holdfastv1.EventsRequest
}

func (f *eventsNode) Events(_ context.Context, r *holdfastv1.EventsRequest) (*holdfastv1.EventsResponse, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, proto.Clone(r).(*holdfastv1.EventsRequest))
	f.mu.Unlock()
	if r.GetUser() == "single" {
		return nil, status.Error(codes.FailedPrecondition, "usage events need a cluster: this is a single node, which publishes none (start it with --join or cluster.enabled)")
	}
	return &holdfastv1.EventsResponse{Truncated: r.GetLimit() == 2, Events: []*holdfastv1.UsageEvent{
		{Time: timestamppb.New(fixedNow.Add(-10 * time.Minute)), RequestId: "r1", User: r.GetUser(), KeyId: "0123456789abcdef",
			Route: "anthropic.messages", Provider: "anthropic", Model: "claude-sonnet-4-5", Status: 200, Streamed: true,
			InputTokens: 12, OutputTokens: 7, CacheCreationInputTokens: 150, CacheReadInputTokens: 300,
			CostNanos: 1_234_567, LatencyMs: 812.5, TtfbMs: 95.25, Attempts: 1, SampleRate: 0.5},
		{Time: timestamppb.New(fixedNow.Add(-time.Minute)), RequestId: "r2", User: r.GetUser(), Route: "openai.chat_completions",
			Provider: "openai", Model: "gpt-4o", Status: 529, ErrorType: "overload_529", ProviderErrorType: "overloaded_error",
			Attempts: 3, SampleRate: 1, Estimated: true},
	}}, nil
}

func (f *eventsNode) last() *holdfastv1.EventsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func startEventsNode(t *testing.T) (*eventsNode, string) {
	t.Helper()
	f := &eventsNode{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	holdfastv1.RegisterAdminServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

func TestEventsCommand(t *testing.T) {
	f, addr := startEventsNode(t)
	run := func(args ...string) result { return holdctl(t, nil, append([]string{"--addr", addr}, args...)...) }

	r := run("events", "alice", "-o", "json")
	wantCode(t, r, 0)
	wantJSON(t, r.stdout, `{"events":[
	 {"time":"2030-01-02T02:54:05Z","request_id":"r1","user":"alice","key_id":"0123456789abcdef","route":"anthropic.messages",
	  "provider":"anthropic","model":"claude-sonnet-4-5","requested_model":"","status":200,"error_type":"","provider_error_type":"",
	  "streamed":true,"input_tokens":12,"output_tokens":7,"cache_creation_input_tokens":150,"cache_read_input_tokens":300,
	  "estimated":false,"cost_nanos":1234567,"cost_usd":0.001234567,"latency_ms":812.5,"ttfb_ms":95.25,"attempts":1,"sample_rate":0.5},
	 {"time":"2030-01-02T03:03:05Z","request_id":"r2","user":"alice","key_id":"","route":"openai.chat_completions",
	  "provider":"openai","model":"gpt-4o","requested_model":"","status":529,"error_type":"overload_529","provider_error_type":"overloaded_error",
	  "streamed":false,"input_tokens":0,"output_tokens":0,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,
	  "estimated":true,"cost_nanos":0,"cost_usd":0,"latency_ms":0,"ttfb_ms":0,"attempts":3,"sample_rate":1}],
	 "truncated":false}`)
	// Default: the last hour, 1000 events.
	if q := f.last(); q.GetUser() != "alice" || !q.GetSince().AsTime().Equal(fixedNow.Add(-time.Hour)) || q.GetLimit() != 1000 {
		t.Fatalf("request %v", q)
	}

	r = run("events", "alice", "--since", "30m", "--limit", "2")
	wantCode(t, r, 0)
	if q := f.last(); !q.GetSince().AsTime().Equal(fixedNow.Add(-30*time.Minute)) || q.GetLimit() != 2 {
		t.Fatalf("request %v", q)
	}
	for _, s := range []string{"REQUEST ID", "r1", "claude-sonnet-4-5", "$0.001234567", "812.5ms", "overload_529/overloaded_error", "more events"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("text output lacks %q:\n%s", s, r.stdout)
		}
	}
	wantCode(t, run("events", "alice", "--since", "0"), 0)
	if q := f.last(); q.GetSince() != nil {
		t.Fatalf("--since 0 sent %v", q.GetSince())
	}
	wantCode(t, run("events", "alice", "--since", "2030-01-01T00:00:00Z"), 0)
	if q := f.last(); !q.GetSince().AsTime().Equal(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("request %v", q)
	}

	// A single node: exit 1 with the node's explanation.
	r = run("events", "single", "-o", "json")
	wantCode(t, r, exitFail)
	if r.stdout != "" || !strings.Contains(r.stderr, "usage events need a cluster") || !strings.Contains(r.stderr, "FailedPrecondition") {
		t.Fatalf("stdout %q stderr %q", r.stdout, r.stderr)
	}

	// Usage errors never reach the node.
	f.mu.Lock()
	n := len(f.reqs)
	f.mu.Unlock()
	for _, args := range [][]string{
		{"events"}, {"events", ""}, {"events", "a", "b"}, {"events", "alice", "--limit", "0"}, {"events", "alice", "--limit", "10001"},
		{"events", "alice", "--since", "yesterday"}, {"events", "alice", "--since", "-1h"},
	} {
		wantCode(t, run(args...), exitUsage)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) != n {
		t.Fatalf("usage errors sent %d requests", len(f.reqs)-n)
	}
}

func TestEventsHelp(t *testing.T) {
	r := holdctl(t, nil, "help", "events")
	wantCode(t, r, 0)
	for _, s := range []string{"Usage: holdctl events USER", "--since", "--limit", "FAILED_PRECONDITION", `"events"`} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("help lacks %q:\n%s", s, r.stdout)
		}
	}
}
