package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/kv"
	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

func runtime(t *testing.T) *actor.Runtime {
	t.Helper()
	cfg := actor.DefaultConfig()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.Limits.MaxValueBytes = 64
	rt, err := actor.New(cfg, actor.NewMemStore(), []actor.NamespaceConfig{
		{Name: "kv", Durability: actor.Local, New: kv.New()},
		{Name: "ratelimit", Durability: actor.Memory, New: ratelimit.New(ratelimit.Defaults{})},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Shutdown(context.Background()) })
	return rt
}

func do(t *testing.T, h http.Handler, method, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result(), rec.Body.String()
}

func TestHTTPStorageAndOps(t *testing.T) {
	h := &api.HTTPHandler{Caller: runtime(t)}
	if resp, _ := do(t, h, "PUT", "/v1/actors/kv/app/storage/color", "blue"); resp.StatusCode != 200 {
		t.Fatalf("put: %d", resp.StatusCode)
	}
	if resp, body := do(t, h, "GET", "/v1/actors/kv/app/storage/color", ""); resp.StatusCode != 200 || body != "blue" {
		t.Fatalf("get: %d %q", resp.StatusCode, body)
	}
	if _, body := do(t, h, "GET", "/v1/actors/kv/app/storage?prefix=co", ""); body != `{"entries":[{"key":"color","value":"blue"}],"truncated":false}`+"\n" {
		t.Fatalf("list: %s", body)
	}
	if resp, body := do(t, h, "GET", "/v1/actors/kv/app/storage/missing", ""); resp.StatusCode != 404 || !strings.Contains(body, `"NOT_FOUND"`) {
		t.Fatalf("missing: %d %s", resp.StatusCode, body)
	}
	// Keys with slashes and escapes stay one key.
	do(t, h, "PUT", "/v1/actors/kv/app/storage/a%2Fb", "x")
	if _, body := do(t, h, "GET", "/v1/actors/kv/app/storage/a%2Fb", ""); body != "x" {
		t.Fatalf("escaped key: %q", body)
	}

	do(t, h, "POST", "/v1/actors/ratelimit/bob/ratelimit.set", `{"buckets":{"requests":{"capacity":1,"refill_per_second":0.5}}}`)
	resp, body := do(t, h, "POST", "/v1/actors/ratelimit/bob/ratelimit.take", `{"amounts":{"requests":1}}`)
	var take struct {
		Allowed      bool               `json:"allowed"`
		Remaining    map[string]float64 `json:"remaining"`
		RetryAfterMs int64              `json:"retry_after_ms"`
	}
	if err := json.Unmarshal([]byte(body), &take); err != nil || resp.StatusCode != 200 || !take.Allowed {
		t.Fatalf("take: %d %s %v", resp.StatusCode, body, err)
	}
	resp, body = do(t, h, "POST", "/v1/actors/ratelimit/bob/ratelimit.take", `{"amounts":{"requests":1}}`)
	if err := json.Unmarshal([]byte(body), &take); err != nil || take.Allowed || take.RetryAfterMs <= 0 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("refused take: %s retry-after %q", body, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(body, `"retry_after_ms":`) || strings.Contains(body, `"retry_after_ms":"`) {
		t.Fatalf("int64 must be a JSON number: %s", body)
	}
}

func TestHTTPErrors(t *testing.T) {
	h := &api.HTTPHandler{Caller: runtime(t)}
	cases := []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"PUT", "/v1/actors/kv/app/storage/k", strings.Repeat("v", 65), 400, "LIMIT_EXCEEDED"},
		{"POST", "/v1/actors/kv/app/kv.put", `{"entries":[`, 400, "INVALID_ARGUMENT"},
		{"POST", "/v1/actors/nope/app/kv.get", `{}`, 404, "UNKNOWN_NAMESPACE"},
		{"POST", "/v1/actors/kv/app/kv.frobnicate", `{}`, 404, "UNKNOWN_OPERATION"},
		{"POST", "/v1/actors/kv/app/ratelimit.get", `{}`, 404, "UNKNOWN_OPERATION"},
		{"POST", "/v1/actors/ratelimit/a/ratelimit.take", `{"amounts":{"nolimit":1}}`, 400, "UNKNOWN_BUCKET"},
		{"GET", "/v1/actors/kv/app/kv.put", ``, 405, "INVALID_ARGUMENT"},
	}
	for _, c := range cases {
		resp, body := do(t, h, c.method, c.path, c.body)
		var e struct {
			Error struct {
				Code    string            `json:"code"`
				Message string            `json:"message"`
				Details map[string]string `json:"details"`
			} `json:"error"`
		}
		if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != c.status || e.Error.Code != c.code {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, resp.StatusCode, body, c.status, c.code)
		}
	}
	_, body := do(t, h, "PUT", "/v1/actors/kv/app/storage/k", strings.Repeat("v", 65))
	if !strings.Contains(body, `"limit":"max_value_bytes"`) {
		t.Errorf("limit not named: %s", body)
	}
	if _, body := do(t, h, "GET", "/v1/actors/kv/app/storage", ""); !strings.Contains(body, `"entries":[]`) {
		t.Errorf("refused write stored something: %s", body)
	}
}

func TestHTTPAuth(t *testing.T) {
	h := api.TokenAuth{Token: "s3cret-token"}.HTTP(&api.HTTPHandler{Caller: runtime(t)})
	if resp, body := do(t, h, "GET", "/v1/actors/kv/app/storage", ""); resp.StatusCode != 401 || strings.Contains(body, "s3cret") {
		t.Fatalf("no token: %d %s", resp.StatusCode, body)
	}
	if resp, _ := do(t, h, "GET", "/v1/actors/kv/app/storage", "", "Authorization", "Bearer wrong"); resp.StatusCode != 401 {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	if resp, _ := do(t, h, "GET", "/v1/actors/kv/app/storage", "", "Authorization", "Bearer s3cret-token"); resp.StatusCode != 200 {
		t.Fatalf("right token: %d", resp.StatusCode)
	}
}

func TestGRPCStatusDetailsAndAuth(t *testing.T) {
	rt := runtime(t)
	auth := api.TokenAuth{Token: "tok"}
	conn := serveActors(t, rt, []grpc.ServerOption{grpc.ChainUnaryInterceptor(auth.Unary), grpc.ChainStreamInterceptor(auth.Stream)})
	c := holdfastv1.NewActorServiceClient(conn)
	ref := &holdfastv1.ActorRef{Namespace: "kv", Key: "a"}
	_, err := c.KvGet(context.Background(), &holdfastv1.KvGetRequest{Actor: ref})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer tok")
	_, err = c.KvPut(ctx, &holdfastv1.KvPutRequest{Actor: ref, Entries: []*holdfastv1.Entry{{Key: "k", Value: make([]byte, 65)}}})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Fatalf("oversized: %v", err)
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			info = ei
		}
	}
	if info == nil || info.GetReason() != api.ReasonLimitExceeded || info.GetMetadata()["limit"] != "max_value_bytes" || info.GetDomain() != api.ErrorDomain {
		t.Fatalf("error info %v", info)
	}
	// A stream of takes answers in order.
	ctxRL := ctx
	if _, err := c.RateLimitSet(ctxRL, &holdfastv1.RateLimitSetRequest{Actor: &holdfastv1.ActorRef{Namespace: "ratelimit", Key: "s"}, Buckets: map[string]*holdfastv1.BucketLimit{"r": {Capacity: 3, RefillPerSecond: 0.001}}}); err != nil {
		t.Fatal(err)
	}
	stream, err := c.RateLimitTakeStream(ctxRL)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		stream.Send(&holdfastv1.RateLimitTakeRequest{Actor: &holdfastv1.ActorRef{Namespace: "ratelimit", Key: "s"}, Amounts: map[string]int64{"r": 1}})
	}
	stream.CloseSend()
	allowed := 0
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.GetAllowed() {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("stream admitted %d of 5 with capacity 3", allowed)
	}
}

func TestClassifyEveryRuntimeError(t *testing.T) {
	cases := []struct {
		err    error
		code   codes.Code
		reason string
	}{
		{actor.ErrOverloaded, codes.ResourceExhausted, api.ReasonOverloaded},
		{actor.ErrTurnDeadline, codes.DeadlineExceeded, api.ReasonTurnDeadline},
		{&actor.UnknownOutcomeError{RequestID: "r1", Err: context.DeadlineExceeded}, codes.Unknown, api.ReasonUnknownOutcome},
		{actor.ErrShuttingDown, codes.Unavailable, api.ReasonShuttingDown},
		{actor.ErrStorage, codes.Unavailable, api.ReasonStorage},
		{&actor.PanicError{}, codes.Internal, api.ReasonInternal},
		{context.Canceled, codes.Canceled, api.ReasonCanceled},
	}
	for _, c := range cases {
		got := api.Classify(c.err)
		if got.Code != c.code || got.Reason != c.reason {
			t.Errorf("%v: %v %s, want %v %s", c.err, got.Code, got.Reason, c.code, c.reason)
		}
	}
	if api.Classify(actor.ErrOverloaded).Metadata["retryable"] != "false" {
		t.Error("overloaded must say retryable=false")
	}
	if api.Classify(&actor.UnknownOutcomeError{RequestID: "r1"}).Metadata["request_id"] != "r1" {
		t.Error("unknown outcome must carry the request id")
	}
}
