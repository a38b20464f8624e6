package api_test

import (
	"context"
	"testing"

	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func rlRef(key string) *holdfastv1.ActorRef {
	return &holdfastv1.ActorRef{Namespace: "ratelimit", Key: key}
}

func errorReason(st *status.Status) (string, map[string]string) {
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			return ei.GetReason(), ei.GetMetadata()
		}
	}
	return "", nil
}

func TestRateLimitTakeBatchOrderAndPerItemErrors(t *testing.T) {
	c := clientFor(t, runtime(t))
	ctx := context.Background()
	// Key "a" admits 2 takes, key "b" 1: the order of the results shows in
	// which takes were admitted.
	for key, capacity := range map[string]float64{"a": 2, "b": 1} {
		if _, err := c.RateLimitSet(ctx, &holdfastv1.RateLimitSetRequest{Actor: rlRef(key), Buckets: map[string]*holdfastv1.BucketLimit{"r": {Capacity: capacity, RefillPerSecond: 0.001}}}); err != nil {
			t.Fatal(err)
		}
	}
	take := func(ref *holdfastv1.ActorRef) *holdfastv1.RateLimitTakeRequest {
		return &holdfastv1.RateLimitTakeRequest{Actor: ref, Amounts: map[string]int64{"r": 1}}
	}
	resp, err := c.RateLimitTakeBatch(ctx, &holdfastv1.RateLimitTakeBatchRequest{Takes: []*holdfastv1.RateLimitTakeRequest{
		take(rlRef("a")), // 0 allowed
		take(rlRef("b")), // 1 allowed
		take(&holdfastv1.ActorRef{Namespace: "ratelimit"}), // 2 invalid: no key
		take(rlRef("a")), // 3 allowed
		take(&holdfastv1.ActorRef{Namespace: "nope", Key: "x"}), // 4 unknown namespace
		take(rlRef("b")), // 5 refused
		take(rlRef("a")), // 6 refused
	}})
	if err != nil {
		t.Fatal(err)
	}
	res := resp.GetResults()
	if len(res) != 7 {
		t.Fatalf("got %d results, want 7", len(res))
	}
	wantAllowed := map[int]bool{0: true, 1: true, 3: true, 5: false, 6: false}
	for i, want := range wantAllowed {
		r := res[i].GetResponse()
		if r == nil {
			t.Fatalf("result %d: no response (error %v)", i, res[i].GetError())
		}
		if r.GetAllowed() != want {
			t.Fatalf("result %d: allowed %v, want %v", i, r.GetAllowed(), want)
		}
	}
	if got := res[6].GetResponse().GetRefusedBy(); got != "r" {
		t.Fatalf("result 6 refused by %q", got)
	}
	for i, want := range map[int]struct {
		code   codes.Code
		reason string
	}{2: {codes.InvalidArgument, api.ReasonInvalidArgument}, 4: {codes.NotFound, api.ReasonUnknownNamespace}} {
		if res[i].GetResponse() != nil || res[i].GetError() == nil {
			t.Fatalf("result %d: want an error, got %v", i, res[i])
		}
		st := status.FromProto(res[i].GetError())
		if reason, _ := errorReason(st); st.Code() != want.code || reason != want.reason {
			t.Fatalf("result %d: %v %q, want %v %q", i, st.Code(), reason, want.code, want.reason)
		}
	}
}

func TestRateLimitTakeBatchLimitAndEmpty(t *testing.T) {
	c := clientFor(t, runtime(t))
	ctx := context.Background()
	resp, err := c.RateLimitTakeBatch(ctx, &holdfastv1.RateLimitTakeBatchRequest{})
	if err != nil || len(resp.GetResults()) != 0 {
		t.Fatalf("empty batch: %v %v", resp, err)
	}

	over := make([]*holdfastv1.RateLimitTakeRequest, api.MaxBatchTakes+1)
	for i := range over {
		over[i] = &holdfastv1.RateLimitTakeRequest{Actor: rlRef("over"), Amounts: map[string]int64{"r": 1}}
	}
	_, err = c.RateLimitTakeBatch(ctx, &holdfastv1.RateLimitTakeBatchRequest{Takes: over})
	st := status.Convert(err)
	reason, meta := errorReason(st)
	if st.Code() != codes.InvalidArgument || reason != api.ReasonLimitExceeded || meta["limit"] != "max_batch_takes" || meta["max"] != "1000" || meta["got"] != "1001" {
		t.Fatalf("oversized batch: %v %q %v", err, reason, meta)
	}
	// The refused batch applied nothing; a full batch (parallel chunks) of
	// the same key admits exactly its capacity, each result in place.
	if _, err := c.RateLimitSet(ctx, &holdfastv1.RateLimitSetRequest{Actor: rlRef("over"), Buckets: map[string]*holdfastv1.BucketLimit{"r": {Capacity: 10, RefillPerSecond: 0.001}}}); err != nil {
		t.Fatal(err)
	}
	full := over[:api.MaxBatchTakes]
	full[500] = &holdfastv1.RateLimitTakeRequest{Actor: &holdfastv1.ActorRef{Namespace: "ratelimit"}}
	resp, err = c.RateLimitTakeBatch(ctx, &holdfastv1.RateLimitTakeBatchRequest{Takes: full})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetResults()) != api.MaxBatchTakes {
		t.Fatalf("got %d results", len(resp.GetResults()))
	}
	allowed := 0
	for i, r := range resp.GetResults() {
		if i == 500 {
			if r.GetError() == nil {
				t.Fatalf("result 500: want an error, got %v", r)
			}
			continue
		}
		if r.GetResponse() == nil {
			t.Fatalf("result %d: %v", i, r.GetError())
		}
		if r.GetResponse().GetAllowed() {
			allowed++
		}
	}
	if allowed != 10 {
		t.Fatalf("admitted %d of 999 with capacity 10", allowed)
	}
}
