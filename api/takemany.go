package api

import (
	"context"
	"io"
	"slices"
	"sync"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// RateLimitTakeMany is RateLimitTakeBatch in columns: take i of the request
// becomes the RateLimitTakeRequest its row describes (see
// RateLimitTakeManyRequest), goes through the Caller as RateLimitTake's
// would, and its response, or the status it failed with, becomes row i of
// the answer. The takes run as runTakes runs them. A batch over
// MaxBatchTakes is refused whole with LIMIT_EXCEEDED, malformed columns
// with INVALID_ARGUMENT. Safe for concurrent use.
func (s *ActorServer) RateLimitTakeMany(ctx context.Context, r *holdfastv1.RateLimitTakeManyRequest) (*holdfastv1.RateLimitTakeManyResponse, error) {
	resp, err := s.takeMany(ctx, r)
	if err != nil {
		return nil, GRPCError(err)
	}
	return resp, nil
}

// RateLimitTakeManyStream answers a stream of batches in order, each as
// RateLimitTakeMany, one after the other: a batch starts once the one
// before it was answered, so the takes of one actor apply in stream order.
// A batch RateLimitTakeMany refuses ends the stream with that status. On
// Drain the stream answers the batch it is running, if any, and ends with
// UNAVAILABLE; batches it had not started were never applied.
func (s *ActorServer) RateLimitTakeManyStream(stream holdfastv1.ActorService_RateLimitTakeManyStreamServer) error {
	// The batches run on a goroutine of their own, so that a drain can end
	// a stream that waits for its next batch; the handler waits for that
	// goroutine whenever it may be sending (grpc forbids a Send after the
	// handler returned).
	var (
		mu       sync.Mutex
		busy     bool // a batch was received and is not answered yet
		draining bool
	)
	done := make(chan error, 1)
	go func() {
		done <- func() error {
			ctx := stream.Context()
			for {
				req, err := stream.Recv()
				if err == io.EOF {
					return nil
				}
				if err != nil {
					return err
				}
				mu.Lock()
				if draining {
					mu.Unlock()
					return GRPCError(actor.ErrShuttingDown)
				}
				busy = true
				mu.Unlock()
				resp, err := s.takeMany(ctx, req)
				if err == nil {
					err = stream.Send(resp)
				} else {
					err = GRPCError(err)
				}
				mu.Lock()
				busy = false
				d := draining
				mu.Unlock()
				if err != nil {
					return err
				}
				if d {
					return GRPCError(actor.ErrShuttingDown)
				}
			}
		}()
	}()
	select {
	case err := <-done:
		return err
	case <-s.Drain:
		mu.Lock()
		draining = true
		b := busy
		mu.Unlock()
		if !b {
			// Waiting in Recv: whatever it receives now it will not run.
			return GRPCError(actor.ErrShuttingDown)
		}
		return <-done
	}
}

// takeMany validates a columnar batch, runs its takes and answers its
// columns.
func (s *ActorServer) takeMany(ctx context.Context, r *holdfastv1.RateLimitTakeManyRequest) (*holdfastv1.RateLimitTakeManyResponse, error) {
	if err := checkMany(r); err != nil {
		return nil, err
	}
	keys, buckets, amounts := r.GetKeys(), r.GetBuckets(), r.GetAmounts()
	ids, spends, shards := r.GetRequestIds(), r.GetSpendEstimateNanos(), r.GetShards()
	n, nb := len(keys), len(buckets)
	// One allocation for every take of the batch: its request, actor
	// reference and outcome. Takes with the same amounts as the take before
	// share its map: nothing on a take's path writes to a request's amounts.
	takes := make([]manyTake, n)
	var amountMap map[string]int64
	for i := range takes {
		row := amounts[i*nb : (i+1)*nb]
		if i == 0 || !slices.Equal(row, amounts[(i-1)*nb:i*nb]) {
			amountMap = make(map[string]int64, nb)
			for j, b := range buckets {
				amountMap[b] = row[j]
			}
		}
		tk := &takes[i]
		tk.ref.Namespace, tk.ref.Key = r.GetNamespace(), keys[i]
		if shards != nil {
			tk.ref.Shard = shards[i]
		}
		tk.req.Actor, tk.req.Amounts = &tk.ref, amountMap
		if ids != nil {
			tk.req.RequestId = ids[i]
		}
		if spends != nil {
			tk.req.SpendEstimateNanos = spends[i]
		}
	}
	s.runTakes(n, func(i int) *holdfastv1.ActorRef { return &takes[i].ref }, func(i int) {
		tk := &takes[i]
		tk.resp, tk.err = call[*holdfastv1.RateLimitTakeResponse](ctx, s.Caller, &tk.req)
	})
	return manyColumns(buckets, takes), nil
}

// manyTake is one take of a columnar batch: the request its row describes
// and what it got.
type manyTake struct {
	req  holdfastv1.RateLimitTakeRequest
	ref  holdfastv1.ActorRef
	resp *holdfastv1.RateLimitTakeResponse
	err  error
}

// checkMany refuses a batch over MaxBatchTakes and malformed columns.
func checkMany(r *holdfastv1.RateLimitTakeManyRequest) error {
	n, nb := len(r.GetKeys()), len(r.GetBuckets())
	if n > MaxBatchTakes {
		return batchTooLarge(n)
	}
	if n == 0 {
		if len(r.GetAmounts()) != 0 || len(r.GetRequestIds()) != 0 || len(r.GetSpendEstimateNanos()) != 0 || len(r.GetShards()) != 0 {
			return invalid("a batch with no keys has no amounts, request_ids, spend_estimate_nanos or shards")
		}
		return nil
	}
	if r.GetNamespace() == "" {
		return invalid("namespace is required")
	}
	if nb == 0 {
		return invalid("buckets: a take names at least one bucket")
	}
	if b, ok := repeated(r.GetBuckets()); ok {
		return invalid("buckets: %q is named twice", b)
	}
	if got := len(r.GetAmounts()); got != n*nb {
		return invalid("amounts: %d values for %d keys and %d buckets, want %d (one per key and bucket, row-major)", got, n, nb, n*nb)
	}
	for _, c := range []struct {
		name string
		len  int
	}{{"request_ids", len(r.GetRequestIds())}, {"spend_estimate_nanos", len(r.GetSpendEstimateNanos())}, {"shards", len(r.GetShards())}} {
		if c.len != 0 && c.len != n {
			return invalid("%s: %d values for %d keys, want none or one per key", c.name, c.len, n)
		}
	}
	return nil
}

// repeated returns a name that appears twice in names, if any.
func repeated(names []string) (string, bool) {
	if len(names) <= 16 {
		for j, b := range names {
			if slices.Contains(names[:j], b) {
				return b, true
			}
		}
		return "", false
	}
	seen := make(map[string]bool, len(names))
	for _, b := range names {
		if seen[b] {
			return b, true
		}
		seen[b] = true
	}
	return "", false
}

// manyColumns lays out the takes' responses and errors as columns.
func manyColumns(buckets []string, takes []manyTake) *holdfastv1.RateLimitTakeManyResponse {
	n, nb := len(takes), len(buckets)
	out := &holdfastv1.RateLimitTakeManyResponse{
		Allowed:      make([]bool, n),
		Remaining:    make([]float64, n*nb),
		RetryAfterMs: make([]int64, n),
		RefusedBy:    make([]int32, n),
	}
	for i := range takes {
		resp, err := takes[i].resp, takes[i].err
		if err != nil {
			out.Errors = append(out.Errors, &holdfastv1.RateLimitTakeManyError{Take: uint32(i), Status: StatusFromError(err)})
			if out.BudgetRemainingNanos != nil {
				out.BudgetRemainingNanos[i] = -1
			}
			continue
		}
		out.Allowed[i] = resp.GetAllowed()
		out.RetryAfterMs[i] = resp.GetRetryAfterMs()
		out.RefusedBy[i] = refusedIndex(buckets, resp.GetRefusedBy())
		rem := resp.GetRemaining()
		for j, b := range buckets {
			out.Remaining[i*nb+j] = rem[b]
		}
		if b := resp.GetBudgetRemainingNanos(); b != -1 && out.BudgetRemainingNanos == nil {
			// The first take with a budget: the column is needed, with -1
			// (unlimited, or failed) for every take it does not set.
			out.BudgetRemainingNanos = make([]int64, n)
			for k := range out.BudgetRemainingNanos {
				out.BudgetRemainingNanos[k] = -1
			}
		}
		if out.BudgetRemainingNanos != nil {
			out.BudgetRemainingNanos[i] = resp.GetBudgetRemainingNanos()
		}
	}
	return out
}

// refusedIndex is the refused_by column's value for a take refused by
// name ("" when not refused): j+1 for buckets[j], -1 for the daily budget
// (the only other refusal a take has).
func refusedIndex(buckets []string, by string) int32 {
	if by == "" {
		return 0
	}
	if j := slices.Index(buckets, by); j >= 0 {
		return int32(j + 1)
	}
	return -1
}
