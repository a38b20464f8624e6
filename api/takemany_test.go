package api_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// setLimits gives key of the ratelimit namespace its own buckets
// (name -> capacity, refilling too slowly to matter in a test) and budget.
func setLimits(t *testing.T, c holdfastv1.ActorServiceClient, key string, caps map[string]float64, budget int64) {
	t.Helper()
	b := map[string]*holdfastv1.BucketLimit{}
	for name, capacity := range caps {
		b[name] = &holdfastv1.BucketLimit{Capacity: capacity, RefillPerSecond: 0.001}
	}
	if _, err := c.RateLimitSet(context.Background(), &holdfastv1.RateLimitSetRequest{Actor: rlRef(key), Buckets: b, DailyBudgetNanos: budget}); err != nil {
		t.Fatal(err)
	}
}

// manyRow is one take of a columnar batch.
type manyRow struct {
	key     string
	amounts []int64 // aligned with the batch's buckets
	spend   int64
	reqID   string
}

func manyRequest(buckets []string, rows ...manyRow) *holdfastv1.RateLimitTakeManyRequest {
	r := &holdfastv1.RateLimitTakeManyRequest{Namespace: "ratelimit", Buckets: buckets}
	for _, row := range rows {
		r.Keys = append(r.Keys, row.key)
		r.Amounts = append(r.Amounts, row.amounts...)
		r.SpendEstimateNanos = append(r.SpendEstimateNanos, row.spend)
		r.RequestIds = append(r.RequestIds, row.reqID)
	}
	return r
}

// A columnar batch answers, row by row, what RateLimitTake answers for the
// same take: the same keys' twins ("u-" + key, with the same limits) take
// the same rows one unary call at a time, and every column must match.
func TestRateLimitTakeManyMatchesRateLimitTake(t *testing.T) {
	c := clientFor(t, runtime(t))
	ctx := context.Background()
	buckets := []string{"r", "t"}
	for _, p := range []string{"", "u-"} {
		setLimits(t, c, p+"a", map[string]float64{"r": 2, "t": 5}, 0)
		setLimits(t, c, p+"b", map[string]float64{"r": 1, "t": 5}, 0)
		setLimits(t, c, p+"d", map[string]float64{"r": 10, "t": 10}, 1000)
		// p+"c" has no limits at all: UNKNOWN_BUCKET.
	}
	rows := []manyRow{
		{key: "a", amounts: []int64{1, 1}},                // 0 allowed: a.r 1, a.t 4
		{key: "b", amounts: []int64{1, 1}},                // 1 allowed: b.r 0, b.t 4
		{key: "", amounts: []int64{1, 1}},                 // 2 invalid: no key
		{key: "a", amounts: []int64{1, 3}},                // 3 allowed: a.r 0, a.t 1
		{key: "b", amounts: []int64{1, 1}},                // 4 refused by r; t untouched (all or nothing)
		{key: "a", amounts: []int64{0, 2}},                // 5 refused by t
		{key: "b", amounts: []int64{0, 100}},              // 6 above t's capacity: never (-1)
		{key: "c", amounts: []int64{1, 1}},                // 7 unknown bucket
		{key: "d", amounts: []int64{1, 1}, spend: 2000},   // 8 over the daily budget
		{key: "d", amounts: []int64{1, 1}, spend: 500},    // 9 allowed, within the budget
		{key: "a", amounts: []int64{0, 0}, reqID: "look"}, // 10 a look: allowed, takes nothing
	}
	got, err := c.RateLimitTakeMany(ctx, manyRequest(buckets, rows...))
	if err != nil {
		t.Fatal(err)
	}
	n, nb := len(rows), len(buckets)
	if len(got.GetAllowed()) != n || len(got.GetRemaining()) != n*nb || len(got.GetRetryAfterMs()) != n || len(got.GetRefusedBy()) != n || len(got.GetBudgetRemainingNanos()) != n {
		t.Fatalf("column lengths: %v", got)
	}
	wantAllowed := []bool{true, true, false, true, false, false, false, false, false, true, true}
	wantRefused := []int32{0, 0, 0, 0, 1, 2, 2, 0, -1, 0, 0}
	if !slices.Equal(got.GetAllowed(), wantAllowed) {
		t.Fatalf("allowed %v, want %v", got.GetAllowed(), wantAllowed)
	}
	if !slices.Equal(got.GetRefusedBy(), wantRefused) {
		t.Fatalf("refused_by %v, want %v", got.GetRefusedBy(), wantRefused)
	}
	if rem := got.GetRemaining(); math.Abs(rem[4*nb+1]-4) > 0.01 || math.Abs(rem[3*nb+1]-1) > 0.01 {
		t.Fatalf("remaining %v: b.t after its refused take, a.t after its third", rem)
	}
	if got.GetRetryAfterMs()[6] != -1 || got.GetRetryAfterMs()[5] <= 0 {
		t.Fatalf("retry_after_ms %v", got.GetRetryAfterMs())
	}
	var failed []uint32
	for _, e := range got.GetErrors() {
		failed = append(failed, e.GetTake())
	}
	if !slices.Equal(failed, []uint32{2, 7}) {
		t.Fatalf("failed takes %v, want [2 7]: %v", failed, got.GetErrors())
	}
	for i, want := range map[int]string{2: api.ReasonInvalidArgument, 7: "UNKNOWN_BUCKET"} {
		var e *holdfastv1.RateLimitTakeManyError
		for _, x := range got.GetErrors() {
			if x.GetTake() == uint32(i) {
				e = x
			}
		}
		st := status.FromProto(e.GetStatus())
		if reason, meta := errorReason(st); st.Code() != codes.InvalidArgument || reason != want || (i == 7 && meta["bucket"] != "r" && meta["bucket"] != "t") {
			t.Fatalf("take %d: %v %q %v, want INVALID_ARGUMENT %q", i, st.Code(), reason, meta, want)
		}
	}

	// The twins, one RateLimitTake each.
	for i, row := range rows {
		amounts := map[string]int64{}
		for j, b := range buckets {
			amounts[b] = row.amounts[j]
		}
		ref := &holdfastv1.ActorRef{Namespace: "ratelimit", Key: "u-" + row.key}
		if row.key == "" {
			ref.Key = ""
		}
		want, err := c.RateLimitTake(ctx, &holdfastv1.RateLimitTakeRequest{Actor: ref, Amounts: amounts, SpendEstimateNanos: row.spend})
		if err != nil {
			if !slices.Contains(failed, uint32(i)) {
				t.Fatalf("take %d: unary failed (%v), columnar did not", i, err)
			}
			continue
		}
		if got.GetAllowed()[i] != want.GetAllowed() || got.GetBudgetRemainingNanos()[i] != want.GetBudgetRemainingNanos() {
			t.Fatalf("take %d: allowed %v budget %d, unary %v", i, got.GetAllowed()[i], got.GetBudgetRemainingNanos()[i], want)
		}
		wantBy := int32(slices.Index(buckets, want.GetRefusedBy()) + 1)
		if want.GetRefusedBy() == "daily_budget" {
			wantBy = -1
		}
		if got.GetRefusedBy()[i] != wantBy {
			t.Fatalf("take %d: refused_by %d, unary %q", i, got.GetRefusedBy()[i], want.GetRefusedBy())
		}
		if d := got.GetRetryAfterMs()[i] - want.GetRetryAfterMs(); d < -1000 || d > 1000 {
			t.Fatalf("take %d: retry_after_ms %d, unary %d", i, got.GetRetryAfterMs()[i], want.GetRetryAfterMs())
		}
		for j, b := range buckets {
			if math.Abs(got.GetRemaining()[i*nb+j]-want.GetRemaining()[b]) > 0.01 {
				t.Fatalf("take %d: remaining %s %v, unary %v", i, b, got.GetRemaining()[i*nb+j], want.GetRemaining()[b])
			}
		}
	}

	// A request ID is recorded as RateLimitTake's: the same ID again is
	// answered from the record (allowed, a look) even though the take
	// itself would now be refused.
	again, err := c.RateLimitTakeMany(ctx, manyRequest(buckets, manyRow{key: "a", amounts: []int64{5, 5}, reqID: "look"}))
	if err != nil {
		t.Fatal(err)
	}
	if !again.GetAllowed()[0] || len(again.GetBudgetRemainingNanos()) != 0 {
		t.Fatalf("a repeated request ID: %v, want the recorded answer", again)
	}
}

// A batch over max_batch_takes is refused whole, naming the limit, and
// applies nothing; an empty batch answers empty columns.
func TestRateLimitTakeManyLimitAndEmpty(t *testing.T) {
	c := clientFor(t, runtime(t))
	ctx := context.Background()
	resp, err := c.RateLimitTakeMany(ctx, &holdfastv1.RateLimitTakeManyRequest{})
	if err != nil || len(resp.GetAllowed()) != 0 || len(resp.GetErrors()) != 0 {
		t.Fatalf("empty batch: %v %v", resp, err)
	}
	setLimits(t, c, "over", map[string]float64{"r": 2000}, 0)
	rows := make([]manyRow, api.MaxBatchTakes+1)
	for i := range rows {
		rows[i] = manyRow{key: "over", amounts: []int64{1}}
	}
	_, err = c.RateLimitTakeMany(ctx, manyRequest([]string{"r"}, rows...))
	st := status.Convert(err)
	reason, meta := errorReason(st)
	if st.Code() != codes.InvalidArgument || reason != api.ReasonLimitExceeded || meta["limit"] != "max_batch_takes" || meta["max"] != "1000" || meta["got"] != "1001" {
		t.Fatalf("oversized batch: %v %q %v", err, reason, meta)
	}
	full, err := c.RateLimitTakeMany(ctx, manyRequest([]string{"r"}, rows[:api.MaxBatchTakes]...))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing was taken by the refused batch: the last of the full batch's
	// takes leaves 2000 - 1000.
	if rem := full.GetRemaining()[api.MaxBatchTakes-1]; math.Abs(rem-1000) > 0.01 {
		t.Fatalf("remaining after the full batch: %v, want 1000", rem)
	}
}

// Malformed columns fail the whole call with INVALID_ARGUMENT and apply
// nothing.
func TestRateLimitTakeManyMalformed(t *testing.T) {
	c := clientFor(t, runtime(t))
	ctx := context.Background()
	setLimits(t, c, "m", map[string]float64{"r": 5, "t": 5}, 0)
	ok := func() *holdfastv1.RateLimitTakeManyRequest {
		return &holdfastv1.RateLimitTakeManyRequest{Namespace: "ratelimit", Buckets: []string{"r", "t"}, Keys: []string{"m", "m"}, Amounts: []int64{1, 1, 1, 1}}
	}
	for name, mutate := range map[string]func(r *holdfastv1.RateLimitTakeManyRequest){
		"no namespace":         func(r *holdfastv1.RateLimitTakeManyRequest) { r.Namespace = "" },
		"no buckets":           func(r *holdfastv1.RateLimitTakeManyRequest) { r.Buckets, r.Amounts = nil, nil },
		"a bucket twice":       func(r *holdfastv1.RateLimitTakeManyRequest) { r.Buckets = []string{"r", "r"} },
		"short amounts":        func(r *holdfastv1.RateLimitTakeManyRequest) { r.Amounts = r.Amounts[:3] },
		"long amounts":         func(r *holdfastv1.RateLimitTakeManyRequest) { r.Amounts = append(r.Amounts, 1) },
		"request_ids":          func(r *holdfastv1.RateLimitTakeManyRequest) { r.RequestIds = []string{"x"} },
		"spend_estimate_nanos": func(r *holdfastv1.RateLimitTakeManyRequest) { r.SpendEstimateNanos = []int64{1, 2, 3} },
		"shards":               func(r *holdfastv1.RateLimitTakeManyRequest) { r.Shards = []uint32{0} },
		"amounts without keys": func(r *holdfastv1.RateLimitTakeManyRequest) { r.Keys = nil },
		"request_ids, no keys": func(r *holdfastv1.RateLimitTakeManyRequest) {
			r.Keys, r.Amounts, r.RequestIds = nil, nil, []string{"x"}
		},
		"many buckets, one twice": func(r *holdfastv1.RateLimitTakeManyRequest) {
			r.Buckets = []string{"b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "b10", "b11", "b12", "b13", "b14", "b15", "b16", "b3"}
			r.Amounts = make([]int64, 2*len(r.Buckets))
		},
	} {
		r := ok()
		mutate(r)
		_, err := c.RateLimitTakeMany(ctx, r)
		st := status.Convert(err)
		if reason, _ := errorReason(st); st.Code() != codes.InvalidArgument || reason != api.ReasonInvalidArgument {
			t.Fatalf("%s: %v (reason %q), want INVALID_ARGUMENT", name, err, reason)
		}
	}
	resp, err := c.RateLimitTakeMany(ctx, ok())
	if err != nil {
		t.Fatal(err)
	}
	if rem := resp.GetRemaining(); math.Abs(rem[0]-4) > 0.01 || math.Abs(rem[2]-3) > 0.01 {
		t.Fatalf("remaining %v: a malformed batch took something", rem)
	}
}

// A stream of batches answers each batch in order, as RateLimitTakeMany; a
// malformed batch ends the stream with INVALID_ARGUMENT after the answers
// of the batches before it.
func TestRateLimitTakeManyStreamOrder(t *testing.T) {
	c := clientFor(t, runtime(t))
	ctx := context.Background()
	setLimits(t, c, "s", map[string]float64{"r": 3}, 0)
	setLimits(t, c, "z", map[string]float64{"r": 1}, 0)
	stream, err := c.RateLimitTakeManyStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batches := [][]string{{"s", "s"}, {"z", "s"}, {"s", "z"}}
	for _, keys := range batches {
		r := &holdfastv1.RateLimitTakeManyRequest{Namespace: "ratelimit", Buckets: []string{"r"}, Keys: keys, Amounts: []int64{1, 1}}
		if err := stream.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Send(&holdfastv1.RateLimitTakeManyRequest{Namespace: "ratelimit", Buckets: []string{"r"}, Keys: []string{"s"}}); err != nil {
		t.Fatal(err)
	}
	stream.CloseSend()
	want := [][]bool{{true, true}, {true, true}, {false, false}}
	for i := range want {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		if !slices.Equal(resp.GetAllowed(), want[i]) {
			t.Fatalf("batch %d: allowed %v, want %v", i, resp.GetAllowed(), want[i])
		}
	}
	_, err = stream.Recv()
	st := status.Convert(err)
	if reason, _ := errorReason(st); st.Code() != codes.InvalidArgument || reason != api.ReasonInvalidArgument {
		t.Fatalf("malformed batch: %v, want INVALID_ARGUMENT", err)
	}
}

// recordingCaller answers every take allowed and keeps a copy of each
// request, in call order.
type recordingCaller struct {
	inlineCaller
	mu   sync.Mutex
	reqs []*holdfastv1.RateLimitTakeRequest
}

func (c *recordingCaller) Call(ctx context.Context, id actor.ID, msg proto.Message) (proto.Message, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, proto.Clone(msg).(*holdfastv1.RateLimitTakeRequest))
	c.mu.Unlock()
	return c.inlineCaller.Call(ctx, id, msg)
}

// Each row becomes the RateLimitTakeRequest it describes; an Inliner's
// takes run one at a time in request order, in a batch and in a stream.
func TestRateLimitTakeManyRowsAndInlineOrder(t *testing.T) {
	ctx := context.Background()
	rc := &recordingCaller{}
	c := clientFor(t, rc)
	r := &holdfastv1.RateLimitTakeManyRequest{
		Namespace: "ns", Buckets: []string{"x", "y"}, Keys: []string{"a", "b", "a"},
		Amounts:    []int64{1, 2, 1, 2, 0, 7},
		RequestIds: []string{"i0", "", "i2"}, SpendEstimateNanos: []int64{0, 5, 0}, Shards: []uint32{0, 3, 1},
	}
	want := []*holdfastv1.RateLimitTakeRequest{
		{Actor: &holdfastv1.ActorRef{Namespace: "ns", Key: "a"}, RequestId: "i0", Amounts: map[string]int64{"x": 1, "y": 2}},
		{Actor: &holdfastv1.ActorRef{Namespace: "ns", Key: "b", Shard: 3}, Amounts: map[string]int64{"x": 1, "y": 2}, SpendEstimateNanos: 5},
		{Actor: &holdfastv1.ActorRef{Namespace: "ns", Key: "a", Shard: 1}, RequestId: "i2", Amounts: map[string]int64{"x": 0, "y": 7}},
	}
	resp, err := c.RateLimitTakeMany(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resp.GetAllowed(), []bool{true, true, true}) {
		t.Fatalf("allowed %v", resp.GetAllowed())
	}
	stream, err := c.RateLimitTakeManyStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := stream.Send(r); err != nil {
			t.Fatal(err)
		}
	}
	stream.CloseSend()
	for {
		if _, err := stream.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.reqs) != 3*len(want) {
		t.Fatalf("%d calls, want %d", len(rc.reqs), 3*len(want))
	}
	for i, got := range rc.reqs {
		if !proto.Equal(got, want[i%len(want)]) {
			t.Fatalf("call %d: %v, want %v", i, got, want[i%len(want)])
		}
	}
	rc.inlineCaller.mu.Lock()
	defer rc.inlineCaller.mu.Unlock()
	if rc.most != 1 {
		t.Fatalf("%d inline calls in flight at once, want 1", rc.most)
	}
}

// A Caller that is not an Inliner gets the takes of a columnar batch
// overlapped: the barrier opens only when all eight are in flight.
func TestRateLimitTakeManyOverlapsWhenNotInline(t *testing.T) {
	// The deadline only turns a regression (a hang) into a failure.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := clientFor(t, &barrierCaller{n: len(eightKeys), all: make(chan struct{})})
	resp, err := c.RateLimitTakeMany(ctx, &holdfastv1.RateLimitTakeManyRequest{Namespace: "ratelimit", Buckets: []string{"r"}, Keys: eightKeys, Amounts: make([]int64, len(eightKeys))})
	if err != nil {
		t.Fatal(err)
	}
	// barrierCaller answers refused_by = the key: not one of the batch's
	// buckets, so -1 in every row; all allowed.
	if len(resp.GetAllowed()) != len(eightKeys) || slices.Contains(resp.GetAllowed(), false) {
		t.Fatalf("allowed %v", resp.GetAllowed())
	}
}

// gateCaller blocks every call until open is closed, after telling
// entered.
type gateCaller struct {
	entered chan struct{}
	open    chan struct{}
}

func (c *gateCaller) Call(ctx context.Context, id actor.ID, _ proto.Message) (proto.Message, error) {
	c.entered <- struct{}{}
	select {
	case <-c.open:
		return &holdfastv1.RateLimitTakeResponse{Allowed: true}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// On Drain a stream answers the batch it is running and ends with
// UNAVAILABLE; a stream waiting for its next batch ends at once.
func TestRateLimitTakeManyStreamDrain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	gc := &gateCaller{entered: make(chan struct{}, 1), open: make(chan struct{})}
	drain := make(chan struct{})
	srv := grpc.NewServer()
	holdfastv1.RegisterActorServiceServer(srv, &api.ActorServer{Caller: gc, Drain: drain})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := holdfastv1.NewActorServiceClient(conn)

	batch := &holdfastv1.RateLimitTakeManyRequest{Namespace: "ratelimit", Buckets: []string{"r"}, Keys: []string{"k"}, Amounts: []int64{1}}
	busy, err := c.RateLimitTakeManyStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := busy.Send(batch); err != nil {
		t.Fatal(err)
	}
	<-gc.entered // the batch is running
	idle, err := c.RateLimitTakeManyStream(ctx)
	if err != nil {
		t.Fatal(err)
	}
	close(drain)
	// The idle stream ends without anything more from the client.
	if _, err := idle.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("idle stream after drain: %v, want UNAVAILABLE", err)
	}
	close(gc.open)
	resp, err := busy.Recv()
	if err != nil || !slices.Equal(resp.GetAllowed(), []bool{true}) {
		t.Fatalf("the running batch: %v %v, want its answer", resp, err)
	}
	if _, err := busy.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("busy stream after its batch: %v, want UNAVAILABLE", err)
	}
}

// Bytes that are not a RateLimitTakeManyRequest (a key that is not UTF-8,
// a packed column cut short) are INVALID_ARGUMENT, unary and streamed.
func TestRateLimitTakeManyMalformedProtobuf(t *testing.T) {
	conn := serveActors(t, runtime(t), api.NewDecoding().ServerOptions(), grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{})))
	ctx := context.Background()
	for name, garbage := range map[string][]byte{
		"key not UTF-8":     {0x1a, 0x02, 0xff, 0xfe},
		"amounts cut short": {0x22, 0x05, 0x01},
	} {
		var out holdfastv1.RateLimitTakeManyResponse
		wantInvalid(t, name+", unary", conn.Invoke(ctx, "/holdfast.v1.ActorService/RateLimitTakeMany", garbage, &out))
		stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, "/holdfast.v1.ActorService/RateLimitTakeManyStream")
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.SendMsg(garbage); err != nil {
			t.Fatal(err)
		}
		wantInvalid(t, name+", stream", stream.RecvMsg(&out))
	}
}
