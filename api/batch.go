package api

import (
	"context"
	"sync"

	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// MaxBatchTakes bounds the takes of one RateLimitTakeBatch or
// RateLimitTakeMany call; a larger batch is refused whole with a
// *actor.LimitError naming max_batch_takes.
const MaxBatchTakes = 1000

// batchParallel bounds the actors of one batch served at once. The takes
// of different actors run concurrently, so that takes of a durable
// namespace share one group commit instead of waiting for one commit each
// in turn; the takes of one actor run one after the other in request
// order, on one goroutine.
const batchParallel = 128

// batchTooLarge is the error of a batch of n takes over MaxBatchTakes.
func batchTooLarge(n int) error {
	return &actor.LimitError{Limit: "max_batch_takes", Max: MaxBatchTakes, Got: int64(n), What: "the takes of one batch"}
}

// RateLimitTakeBatch runs independent takes, each its own turn on its own
// actor, and answers one result per take in request order: the take's
// response, or the google.rpc.Status it failed with. Only the batch itself
// (over MaxBatchTakes) fails the call. An empty batch answers no results.
// The takes run as runTakes runs them. Safe for concurrent use.
func (s *ActorServer) RateLimitTakeBatch(ctx context.Context, r *holdfastv1.RateLimitTakeBatchRequest) (*holdfastv1.RateLimitTakeBatchResponse, error) {
	takes := r.GetTakes()
	if n := len(takes); n > MaxBatchTakes {
		return nil, GRPCError(batchTooLarge(n))
	}
	results := make([]*holdfastv1.RateLimitTakeResult, len(takes))
	s.runTakes(len(takes), func(i int) *holdfastv1.ActorRef { return takes[i].GetActor() }, func(i int) {
		results[i] = s.batchTake(ctx, takes[i])
	})
	return &holdfastv1.RateLimitTakeBatchResponse{Results: results}, nil
}

// runTakes runs take(i) for each of n takes, take i on the actor ref(i)
// names, and returns when all have run. The takes of one actor (same
// namespace, key and shard) run in request order; takes of different
// actors run concurrently (batchParallel at most), except those the Caller
// runs inline (Inliner), which run one after the other on the goroutine at
// hand. take must be safe to run concurrently for different i.
func (s *ActorServer) runTakes(n int, ref func(i int) *holdfastv1.ActorRef, take func(i int)) {
	if s.allInline(n, ref) {
		// Nothing to overlap: request order keeps each actor's order.
		for i := range n {
			take(i)
		}
		return
	}
	// Group the takes by actor, in request order within each group.
	type key struct {
		ns, key string
		shard   uint32
	}
	var groups [][]int
	index := make(map[key]int, n)
	for i := range n {
		a := ref(i)
		k := key{a.GetNamespace(), a.GetKey(), a.GetShard()}
		g, ok := index[k]
		if !ok {
			g = len(groups)
			index[k] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	run := func(g []int) {
		for _, i := range g {
			take(i)
		}
	}
	// Groups of inline actors (Inliner) and the last group run on the
	// handler goroutine (a batch of one actor starts no goroutine), after
	// the others were handed to workers of their own.
	here := func(i int, g []int) bool { return i == len(groups)-1 || s.inline(ref(g[0])) }
	sem := make(chan struct{}, batchParallel)
	var wg sync.WaitGroup
	for i, g := range groups {
		if here(i, g) {
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		s.workers.run(func() {
			defer func() { <-sem; wg.Done() }()
			run(g)
		})
	}
	for i, g := range groups {
		if here(i, g) {
			run(g)
		}
	}
	wg.Wait()
}

// allInline reports whether every take runs on the goroutine at hand.
func (s *ActorServer) allInline(n int, ref func(i int) *holdfastv1.ActorRef) bool {
	for i := range n {
		if !s.inline(ref(i)) {
			return false
		}
	}
	return true
}

func (s *ActorServer) batchTake(ctx context.Context, req *holdfastv1.RateLimitTakeRequest) *holdfastv1.RateLimitTakeResult {
	resp, err := call[*holdfastv1.RateLimitTakeResponse](ctx, s.Caller, req)
	if err != nil {
		return &holdfastv1.RateLimitTakeResult{Result: &holdfastv1.RateLimitTakeResult_Error{Error: StatusFromError(err)}}
	}
	return &holdfastv1.RateLimitTakeResult{Result: &holdfastv1.RateLimitTakeResult_Response{Response: resp}}
}
