package harness_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/cluster"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/harness"
)

// kvInput is one operation on one register (actor "lin-<key>", field v).
type kvInput struct {
	key   int
	put   bool
	value string
}

type kvOutput struct {
	value   string
	unknown bool // a put whose outcome is unknown (it may have applied)
}

// registerModel: one register per key; a get returns the last value put.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[int][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).key
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, input, output any) (bool, any) {
		in, out := input.(kvInput), output.(kvOutput)
		if in.put {
			return true, in.value
		}
		return out.value == state.(string), state
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		if in.put {
			if out.unknown {
				return fmt.Sprintf("put(%d, %q) -> ?", in.key, in.value)
			}
			return fmt.Sprintf("put(%d, %q)", in.key, in.value)
		}
		return fmt.Sprintf("get(%d) -> %q", in.key, out.value)
	},
}

// recorder runs clients against the cluster and records their history.
type recorder struct {
	c     *harness.Cluster
	start time.Time
	mu    sync.Mutex
	ops   []porcupine.Operation
	seq   atomic.Int64
	fails atomic.Int64
}

func (r *recorder) now() int64 { return time.Since(r.start).Nanoseconds() }

func (r *recorder) client(ctx context.Context, id, keys int) {
	rng := rand.New(rand.NewPCG(uint64(id), 7))
	for ctx.Err() == nil {
		running := r.c.Running()
		if len(running) == 0 {
			continue
		}
		node := r.c.Node(running[rng.IntN(len(running))])
		if node == nil {
			continue
		}
		k := rng.IntN(keys)
		aid := actor.ID{Namespace: "kv", Key: fmt.Sprintf("lin-%d", k)}
		ref := &holdfastv1.ActorRef{Namespace: "kv", Key: aid.Key}
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		call := r.now()
		if rng.IntN(2) == 0 {
			v := fmt.Sprintf("c%d-%d", id, r.seq.Add(1))
			_, err := node.Caller().Call(cctx, aid, &holdfastv1.KvPutRequest{Actor: ref, RequestId: v, Entries: []*holdfastv1.Entry{{Key: "v", Value: []byte(v)}}})
			ret := r.now()
			out := kvOutput{}
			if err != nil {
				r.fails.Add(1)
				if notApplied(err) {
					cancel()
					continue
				}
				// Possibly applied, at any time from now on.
				ret, out.unknown = math.MaxInt64, true
			}
			r.add(porcupine.Operation{ClientId: id, Input: kvInput{key: k, put: true, value: v}, Call: call, Output: out, Return: ret})
		} else {
			resp, err := node.Caller().Call(cctx, aid, &holdfastv1.KvGetRequest{Actor: ref, Keys: []string{"v"}})
			ret := r.now()
			if err != nil {
				r.fails.Add(1) // a failed read has no effect
			} else {
				v := ""
				for _, e := range resp.(*holdfastv1.KvGetResponse).GetEntries() {
					v = string(e.GetValue())
				}
				r.add(porcupine.Operation{ClientId: id, Input: kvInput{key: k}, Call: call, Output: kvOutput{value: v}, Return: ret})
			}
		}
		cancel()
	}
}

// notApplied tells the errors that prove a call never ran: the partition
// was unavailable (orphaned, moving, unreachable owner) or the node was
// not its owner.
func notApplied(err error) bool {
	var no *cluster.NotOwnerError
	return errors.Is(err, cluster.ErrUnavailable) || errors.As(err, &no) || errors.Is(err, actor.ErrShuttingDown)
}

func (r *recorder) add(op porcupine.Operation) {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
}

func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	ops := append([]porcupine.Operation(nil), r.ops...)
	r.mu.Unlock()
	unknown := 0
	for _, op := range ops {
		if op.Output.(kvOutput).unknown {
			unknown++
		}
	}
	t.Logf("history: %d operations (%d puts of unknown outcome), %d failed calls", len(ops), unknown, r.fails.Load())
	if len(ops) < 100 {
		t.Fatalf("only %d operations recorded", len(ops))
	}
	res, info := porcupine.CheckOperationsVerbose(registerModel, ops, 60*time.Second)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		path := filepath.Join(os.TempDir(), fmt.Sprintf("holdfast-%s.html", t.Name()))
		if err := porcupine.VisualizePath(registerModel, info, path); err != nil {
			t.Logf("writing the visualization: %v", err)
		}
		t.Fatalf("history is not linearizable; visualization: %s", path)
	default:
		t.Logf("linearizability check timed out (inconclusive)")
	}
}

func runClients(r *recorder, clients, keys int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.client(ctx, id, keys)
		}()
	}
	return func() { cancel(); wg.Wait() }
}

// Under churn (a join, a drain) every kv operation through any node is
// linearizable.
func TestLinearizableUnderChurn(t *testing.T) {
	c := harness.New(t, 3, harness.Options{})
	r := &recorder{c: c, start: time.Now()}
	stop := runClients(r, 8, 6)
	defer stop()
	waitOps := func(n int) {
		c.WaitFor(30*time.Second, "operations", func() error {
			r.mu.Lock()
			defer r.mu.Unlock()
			if len(r.ops) < n {
				return fmt.Errorf("%d operations", len(r.ops))
			}
			return nil
		})
	}
	waitOps(200)
	if _, err := c.Add(); err != nil {
		t.Fatal(err)
	}
	c.WaitStable(60 * time.Second)
	waitOps(600)
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	c.WaitStable(60 * time.Second)
	waitOps(1000)
	stop()
	r.check(t)
}

// SIGKILL-like crashes of owners under on_owner_loss wait: operations may
// fail, but never return a wrong value.
func TestLinearizableUnderCrashes(t *testing.T) {
	c := harness.New(t, 3, harness.Options{})
	r := &recorder{c: c, start: time.Now()}
	stop := runClients(r, 8, 6)
	defer stop()
	for round := range 2 {
		victim := round + 1
		c.Crash(victim)
		c.WaitFor(30*time.Second, "orphaned partitions", func() error {
			for _, p := range c.Node(0).Cluster().Ring() {
				if p.Orphaned {
					return nil
				}
			}
			return fmt.Errorf("none orphaned yet")
		})
		if err := c.Restart(victim); err != nil {
			t.Fatal(err)
		}
		c.WaitStable(60 * time.Second)
	}
	stop()
	r.check(t)
}
