package harness_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/cluster/natsdir"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/harness"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// gatewayCall sends one request to a node's gateway (the built-in mock
// provider, auth none: user "local") and returns the status and the
// gateway's request ID.
func gatewayCall(t *testing.T, httpAddr, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+httpAddr+"/v1/messages", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("X-Holdfast-Request-Id")
}

func adminClient(t *testing.T, grpcAddr string) holdfastv1.AdminServiceClient {
	t.Helper()
	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return holdfastv1.NewAdminServiceClient(cc)
}

const mockStream = `{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"PROMPT-TEXT-not-in-events"}]}`

// Gateway calls through two nodes publish usage events to the cluster's
// stream; a third node reads them all back through the admin Events RPC.
func TestUsageEventsThroughTheCluster(t *testing.T) {
	c := harness.New(t, 3, harness.Options{Configure: func(i int, cfg *holdfast.Config) {
		cfg.Cluster.UsageRetention = time.Hour
	}})
	c.WaitFor(30*time.Second, "every node's usage stream open", func() error {
		for _, i := range c.Running() {
			if !c.Node(i).Cluster().Usage().Ready() {
				return fmt.Errorf("node-%d: not open", i+1)
			}
		}
		return nil
	})
	start := time.Now()
	var okIDs []string
	for i := range 4 {
		code, id := gatewayCall(t, c.Node(i%2).HTTPAddr(), mockStream)
		if code != 200 || id == "" {
			t.Fatalf("call %d: status %d, request id %q", i, code, id)
		}
		okIDs = append(okIDs, id)
	}
	// A bad request (no model): a failure, published too.
	code, badID := gatewayCall(t, c.Node(1).HTTPAddr(), `{"messages":[]}`)
	if code != 400 {
		t.Fatalf("bad request: status %d", code)
	}

	admin := adminClient(t, c.Node(2).GRPCAddr())
	var evs []*holdfastv1.UsageEvent
	c.WaitFor(30*time.Second, "5 usage events readable through node-3", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := admin.Events(ctx, &holdfastv1.EventsRequest{User: "local", Since: timestamppb.New(start.Add(-time.Minute))})
		if err != nil {
			return err
		}
		if evs = resp.GetEvents(); len(evs) != 5 || resp.GetTruncated() {
			return fmt.Errorf("%d events (truncated %v)", len(evs), resp.GetTruncated())
		}
		return nil
	})
	byID := map[string]*holdfastv1.UsageEvent{}
	for _, e := range evs {
		byID[e.GetRequestId()] = e
		if strings.Contains(e.String(), "PROMPT-TEXT") {
			t.Errorf("prompt text in an event: %v", e)
		}
	}
	for _, id := range okIDs {
		e := byID[id]
		if e == nil {
			t.Fatalf("no event for request %s; got %v", id, evs)
		}
		if e.GetUser() != "local" || e.GetProvider() != "mock" || e.GetModel() != "claude-sonnet-4-5" || e.GetStatus() != 200 ||
			!e.GetStreamed() || e.GetRoute() != "anthropic.messages" || e.GetErrorType() != "" || e.GetSampleRate() != 1 ||
			e.GetInputTokens() <= 0 || e.GetOutputTokens() <= 0 || e.GetCostNanos() <= 0 || e.GetAttempts() != 1 {
			t.Errorf("event %v", e)
		}
		if at := e.GetTime().AsTime(); at.Before(start.Add(-time.Second)) || at.After(time.Now()) {
			t.Errorf("event time %v, calls began at %v", at, start)
		}
	}
	if e := byID[badID]; e == nil || e.GetStatus() != 400 || e.GetErrorType() != "bad_request" || e.GetSampleRate() != 1 {
		t.Errorf("bad request event %v", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A limit truncates; a later since and another user find nothing.
	resp, err := admin.Events(ctx, &holdfastv1.EventsRequest{User: "local", Limit: 2})
	if err != nil || len(resp.GetEvents()) != 2 || !resp.GetTruncated() {
		t.Fatalf("limit 2: %v, %v", resp, err)
	}
	resp, err = admin.Events(ctx, &holdfastv1.EventsRequest{User: "local", Since: timestamppb.New(time.Now().Add(time.Hour))})
	if err != nil || len(resp.GetEvents()) != 0 {
		t.Fatalf("since later: %v, %v", resp, err)
	}
	resp, err = admin.Events(ctx, &holdfastv1.EventsRequest{User: "nobody"})
	if err != nil || len(resp.GetEvents()) != 0 {
		t.Fatalf("other user: %v, %v", resp, err)
	}
	if _, err := admin.Events(ctx, &holdfastv1.EventsRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("no user: %v", err)
	}
	// The publishers' counters: every event acknowledged, none dropped
	// once the streams were open.
	var published uint64
	for _, i := range []int{0, 1} {
		st := c.Node(i).Cluster().Usage().Stats()
		published += st.Published
		if st.Dropped != 0 || st.Failed != 0 {
			t.Errorf("node-%d usage stats %+v", i+1, st)
		}
	}
	if published != 5 {
		t.Errorf("%d events acknowledged, want 5", published)
	}
	// The stream keeps cluster.usage_retention and gains replicas as the
	// members joined, like the directory.
	nc, err := nats.Connect(c.Node(0).Cluster().NATSClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c.WaitFor(40*time.Second, "usage stream at 3 replicas", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, natsdir.UsageStream)
		if err != nil {
			return err
		}
		if sc := st.CachedInfo().Config; sc.Replicas != 3 || sc.MaxAge != time.Hour {
			return fmt.Errorf("replicas %d, max age %v", sc.Replicas, sc.MaxAge)
		}
		return nil
	})
	mresp, err := http.Get("http://" + c.Node(0).HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, m := range []string{"holdfast_usage_events_dropped_total 0", "holdfast_usage_events_published_total", `holdfast_gateway_usage_events_total{result="sent"}`} {
		if !bytes.Contains(metrics, []byte(m)) {
			t.Errorf("/metrics lacks %q", m)
		}
	}
}

// A single node has no NATS: no usage events, and Events is refused with
// FAILED_PRECONDITION naming the reason (holdctl exits 1 on it).
func TestUsageEventsNeedACluster(t *testing.T) {
	cfg := holdfast.DefaultConfig()
	cfg.DataDir = filepath.Join(t.TempDir(), "single")
	cfg.HTTPAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	n, err := holdfast.NewNode(cfg, holdfast.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n.Shutdown(ctx)
	})
	if code, _ := gatewayCall(t, n.HTTPAddr(), mockStream); code != 200 {
		t.Fatalf("gateway call: status %d", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = adminClient(t, n.GRPCAddr()).Events(ctx, &holdfastv1.EventsRequest{User: "local"})
	if st, _ := status.FromError(err); st.Code() != codes.FailedPrecondition || !strings.Contains(st.Message(), "usage events need a cluster") {
		t.Fatalf("Events on a single node: %v", err)
	}
}
