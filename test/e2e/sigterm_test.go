//go:build linux

package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// shutdownTimeout is the nodes' shutdown_timeout in these tests.
const shutdownTimeout = 10 * time.Second

// writeFunc performs unique write i. acked: a success reply came back.
// Otherwise class names the failure: a clean one ("connection refused",
// "503", "unavailable") or not (anything else; "HANG" for a timeout).
type writeFunc func(i int64) (acked bool, class string, err error)

func httpWrite(n *Node, h *history) writeFunc {
	return func(i int64) (bool, string, error) {
		status, err := putOne(n, h, "t", i)
		switch {
		case err == nil && status/100 == 2:
			return true, "", nil
		case err == nil && status == 503:
			return false, "503", nil
		case err == nil:
			return false, fmt.Sprintf("status %d", status), fmt.Errorf("status %d", status)
		case errors.Is(err, syscall.ECONNREFUSED):
			return false, "connection refused", err
		case isTimeout(err):
			return false, "HANG", err
		default:
			return false, "other error", err
		}
	}
}

func grpcWrite(c holdfastv1.ActorServiceClient, h *history) writeFunc {
	return func(i int64) (bool, string, error) {
		actor := loadActor(int(i))
		key := fmt.Sprintf("g-%06d", i)
		value := fmt.Sprintf("g-%d-%016x", i, rand.Uint64())
		h.attempt(actor, key, value)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := c.KvPut(ctx, &holdfastv1.KvPutRequest{
			Actor:     &holdfastv1.ActorRef{Namespace: "kv", Key: actor},
			RequestId: "e2e-" + key,
			Entries:   []*holdfastv1.Entry{{Key: key, Value: []byte(value)}},
		})
		if err == nil {
			h.ack(actor, key, value)
			return true, "", nil
		}
		return false, grpcClass(err), err
	}
}

func grpcClass(err error) string {
	switch status.Code(err) {
	case codes.Unavailable:
		return "unavailable"
	case codes.DeadlineExceeded:
		return "HANG"
	default:
		return "gRPC " + status.Code(err).String()
	}
}

var cleanClass = map[string]bool{"connection refused": true, "503": true, "unavailable": true}

// TestSIGTERMGraceful stops a node with SIGTERM under load: it exits 0
// within its shutdown timeout, requests during the stop fail cleanly
// (connection refused, 503 or gRPC UNAVAILABLE), none hangs, and every
// acknowledged write is there after a restart.
func TestSIGTERMGraceful(t *testing.T) {
	t.Parallel()
	cfg := fmt.Sprintf("shutdown_timeout: %s\n", shutdownTimeout)

	t.Run("http load", func(t *testing.T) {
		t.Parallel()
		n := StartNode(t, NodeOptions{Config: cfg})
		h := newHistory()
		sigtermUnderLoad(t, n, h, httpWrite(n, h), nil)
	})

	t.Run("grpc load and a take stream", func(t *testing.T) {
		t.Parallel()
		n := StartNode(t, NodeOptions{Config: cfg})
		h := newHistory()
		conn, err := grpc.NewClient(n.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c := holdfastv1.NewActorServiceClient(conn)
		ref := &holdfastv1.ActorRef{Namespace: "ratelimit", Key: "streamer"}
		if _, err := c.RateLimitSet(context.Background(), &holdfastv1.RateLimitSetRequest{
			Actor: ref, RequestId: "e2e-set-streamer",
			Buckets: map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 1e9, RefillPerSecond: 1e6}},
		}); err != nil {
			t.Fatalf("RateLimitSet: %v", err)
		}
		// A gateway holds a take stream open all the time: one here too,
		// taking every few milliseconds.
		stream := func(termSent *atomic.Bool, note func(class, detail string)) {
			st, err := c.RateLimitTakeStream(context.Background())
			if err != nil {
				note("stream failed before SIGTERM", fmt.Sprintf("opening the take stream: %v", err))
				return
			}
			for i := 0; ; i++ {
				if err = st.Send(&holdfastv1.RateLimitTakeRequest{
					Actor: ref, RequestId: fmt.Sprintf("e2e-take-%d", i), Amounts: map[string]int64{"requests": 1},
				}); err == nil {
					_, err = st.Recv()
				} else {
					_, err = st.Recv() // the stream's status
				}
				if err != nil {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if !termSent.Load() {
				note("stream failed before SIGTERM", fmt.Sprintf("take stream before SIGTERM: %v", err))
				return
			}
			class := "stream ended: " + grpcClass(err)
			if !cleanClass[grpcClass(err)] {
				note(class, fmt.Sprintf("take stream ended during shutdown with %v", err))
				return
			}
			note(class, "")
		}
		sigtermUnderLoad(t, n, h, grpcWrite(c, h), stream)
	})
}

// sigtermUnderLoad runs 32 writers (and side, if not nil), sends SIGTERM
// after a random number of acknowledged writes, and checks the exit, the
// failures during the stop and, after a restart, the acknowledged writes.
func sigtermUnderLoad(t *testing.T, n *Node, h *history, write writeFunc,
	side func(termSent *atomic.Bool, note func(class, detail string))) {
	_, rng := Seed(t)
	termAt := int64(300 + rng.IntN(1200))
	const maxWrites = 50000

	var next, acks atomic.Int64
	var termSent atomic.Bool
	threshold := make(chan struct{})
	var thresholdOnce sync.Once
	var mu sync.Mutex
	outcomes := map[string]int{}
	var unclean []string
	note := func(class, detail string) {
		mu.Lock()
		defer mu.Unlock()
		outcomes[class]++
		if detail != "" && len(unclean) < 20 {
			unclean = append(unclean, detail)
		}
	}
	var wg sync.WaitGroup
	if side != nil {
		wg.Add(1)
		go func() { defer wg.Done(); side(&termSent, note) }()
	}
	for w := 0; w < loadWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > maxWrites {
					return
				}
				exited := isClosed(n.Exited())
				start := time.Now()
				acked, class, err := write(i)
				took := time.Since(start)
				// Whether SIGTERM had been sent by the time the reply (or the
				// error) came: a request may straddle the signal.
				after := termSent.Load()
				switch {
				case acked:
					if after {
						note("acknowledged after SIGTERM", "")
					}
					if acks.Add(1) == termAt {
						thresholdOnce.Do(func() { close(threshold) })
					}
					continue
				case !after:
					note("failed before SIGTERM", fmt.Sprintf("write %d before SIGTERM: %s: %v", i, class, err))
				case cleanClass[class]:
					note(class, "")
				default:
					note(class, fmt.Sprintf("write %d during shutdown, after %v: %s: %v", i, took.Round(time.Millisecond), class, err))
				}
				if exited {
					return // one request after the exit, then stop
				}
				time.Sleep(20 * time.Millisecond) // no busy loop while the node stops
			}
		}()
	}
	loadDone := make(chan struct{})
	go func() { wg.Wait(); close(loadDone) }()
	select {
	case <-threshold:
	case <-loadDone:
		t.Fatalf("load ended before %d acknowledged writes: %v %v", termAt, outcomes, unclean)
	}
	termSent.Store(true)
	sent := time.Now()
	n.Term()
	code, ok := n.WaitExit(shutdownTimeout + 10*time.Second)
	if !ok {
		t.Fatalf("holdfast still running %v after SIGTERM (shutdown_timeout %v)", time.Since(sent).Round(time.Millisecond), shutdownTimeout)
	}
	took := time.Since(sent)
	t.Logf("SIGTERM after %d acknowledged writes; exited with status %d after %v", termAt, code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit status after SIGTERM: %d after %v, want 0; output:\n%s", code, took.Round(time.Millisecond), tail(n.Logs(), 3000))
	}
	select {
	case <-loadDone:
	case <-time.After(60 * time.Second):
		t.Fatalf("writers still blocked 60s after the node exited: requests hang")
	}
	mu.Lock()
	t.Logf("outcomes: %v", outcomes)
	for _, u := range unclean {
		t.Errorf("unclean: %s", u)
	}
	mu.Unlock()
	if r, err := n.Do("GET", "/readyz", ""); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("GET /readyz after exit: %v %v, want connection refused", r, err)
	}

	n.Restart()
	_, acked := h.counts()
	t.Logf("%d writes acknowledged in all", acked)
	verifyWrites(t, n, h)
}
