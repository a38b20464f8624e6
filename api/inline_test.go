package api_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

// barrierCaller answers a take only once n calls are in flight at once:
// a server that runs them one after the other never answers.
type barrierCaller struct {
	n       int
	mu      sync.Mutex
	arrived int
	all     chan struct{}
}

func (c *barrierCaller) Call(ctx context.Context, id actor.ID, _ proto.Message) (proto.Message, error) {
	c.mu.Lock()
	c.arrived++
	if c.arrived == c.n {
		close(c.all)
	}
	c.mu.Unlock()
	select {
	case <-c.all:
		return &holdfastv1.RateLimitTakeResponse{Allowed: true, RefusedBy: id.Key}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// inlineCaller is an Inliner: it records the keys in call order and the
// most calls it saw in flight at once.
type inlineCaller struct {
	mu       sync.Mutex
	inFlight int
	most     int
	keys     []string
}

func (c *inlineCaller) Inline(actor.ID) bool { return true }

func (c *inlineCaller) Call(_ context.Context, id actor.ID, _ proto.Message) (proto.Message, error) {
	c.mu.Lock()
	c.inFlight++
	c.most = max(c.most, c.inFlight)
	c.keys = append(c.keys, id.Key)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}()
	return &holdfastv1.RateLimitTakeResponse{Allowed: true, RefusedBy: id.Key}, nil
}

func takes(keys ...string) []*holdfastv1.RateLimitTakeRequest {
	var ts []*holdfastv1.RateLimitTakeRequest
	for _, k := range keys {
		ts = append(ts, &holdfastv1.RateLimitTakeRequest{Actor: rlRef(k), Amounts: map[string]int64{"r": 1}})
	}
	return ts
}

var eightKeys = []string{"a", "b", "c", "d", "e", "f", "g", "h"}

// A Caller that is not an Inliner (a cluster router, a durable namespace)
// gets the takes of a batch and of a stream overlapped: the barrier opens
// only when all eight are in flight.
func TestTakesOverlapWhenNotInline(t *testing.T) {
	// The deadline only turns a regression (a hang) into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := clientFor(t, &barrierCaller{n: len(eightKeys), all: make(chan struct{})})
	resp, err := c.RateLimitTakeBatch(ctx, &holdfastv1.RateLimitTakeBatchRequest{Takes: takes(eightKeys...)})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.GetResults() {
		if got := r.GetResponse().GetRefusedBy(); got != eightKeys[i] {
			t.Fatalf("batch result %d is for %q, want %q", i, got, eightKeys[i])
		}
	}

	c = clientFor(t, &barrierCaller{n: len(eightKeys), all: make(chan struct{})})
	stream, err := c.RateLimitTakeStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range takes(eightKeys...) {
		if err := stream.Send(tk); err != nil {
			t.Fatal(err)
		}
	}
	for i := range eightKeys {
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.GetRefusedBy() != eightKeys[i] {
			t.Fatalf("stream reply %d is for %q, want %q", i, r.GetRefusedBy(), eightKeys[i])
		}
	}
	stream.CloseSend()
}

// An Inliner's takes run one at a time, in request order, and answer in
// request order.
func TestInlineTakesRunInOrder(t *testing.T) {
	ctx := context.Background()
	ic := &inlineCaller{}
	c := clientFor(t, ic)
	keys := append(append([]string{}, eightKeys...), "a", "c", "a")
	resp, err := c.RateLimitTakeBatch(ctx, &holdfastv1.RateLimitTakeBatchRequest{Takes: takes(keys...)})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.GetResults() {
		if got := r.GetResponse().GetRefusedBy(); got != keys[i] {
			t.Fatalf("batch result %d is for %q, want %q", i, got, keys[i])
		}
	}
	stream, err := c.RateLimitTakeStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range takes(keys...) {
		if err := stream.Send(tk); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	for i := range keys {
		r, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if r.GetRefusedBy() != keys[i] {
			t.Fatalf("stream reply %d is for %q, want %q", i, r.GetRefusedBy(), keys[i])
		}
	}
	ic.mu.Lock()
	defer ic.mu.Unlock()
	if ic.most != 1 {
		t.Fatalf("%d inline calls in flight at once, want 1", ic.most)
	}
	want := append(append([]string{}, keys...), keys...)
	if len(ic.keys) != len(want) {
		t.Fatalf("calls %v, want %v", ic.keys, want)
	}
	for i := range want {
		if ic.keys[i] != want[i] {
			t.Fatalf("calls in order %v, want %v", ic.keys, want)
		}
	}
}
