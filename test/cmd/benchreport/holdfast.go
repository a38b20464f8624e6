package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/actor"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The rate limit both systems enforce per key: 1000 per second with a
// burst of 1000 (holdfast: a bucket of capacity 1000 refilled at 1000/s;
// gubernator: LEAKY_BUCKET, limit 1000, duration 1 s, burst 1000). Each key
// sees a few checks per second, so every check is allowed: the run
// measures the cost of a check, not of a refusal.
const (
	limitPerSecond = 1000
	bucketName     = "requests"
)

// ServerStats is what a holdfast server child prints when it stops.
type ServerStats struct {
	Commits    int64  `json:"commits"`
	DurableSeq uint64 `json:"durable_seq"`
	Actors     int64  `json:"actors_in_memory"`
	FileBytes  int64  `json:"file_bytes"`
}

// serveHoldfast is the -role=holdfast-server child: one node in-process
// on loopback with a temporary data dir; it prints "ADDR host:port", runs
// until its stdin closes, then prints "STATS {json}".
func serveHoldfast(durability, cpuprofile string, gcPercent int) error {
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	dir, err := os.MkdirTemp("", "holdfast-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := holdfast.DefaultConfig()
	cfg.DataDir = dir
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Log.Level = "error"
	ns := cfg.Namespaces["ratelimit"]
	ns.Durability = durability
	ns.Buckets = map[string]holdfast.BucketConfig{bucketName: {Capacity: limitPerSecond, RefillPerSecond: limitPerSecond}}
	cfg.Namespaces["ratelimit"] = ns
	cfg.Runtime.GCPercent = gcPercent
	holdfast.ApplyProcessSettings(cfg)
	node, err := holdfast.NewNode(cfg, holdfast.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		return err
	}
	if err := node.Start(); err != nil {
		return err
	}
	fmt.Printf("ADDR %s\n", node.GRPCAddr())
	io.Copy(io.Discard, os.Stdin) // until the parent closes it
	rt := node.Runtime()
	st := ServerStats{Commits: rt.Commits(), DurableSeq: rt.DurableSeq(), Actors: rt.ActorsInMemory()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := node.Shutdown(ctx); err != nil {
		return err
	}
	if fi, err := os.Stat(filepath.Join(dir, actor.DataFileName)); err == nil {
		st.FileBytes = fi.Size()
	}
	b, _ := json.Marshal(st)
	fmt.Printf("STATS %s\n", b)
	return nil
}

// loadHoldfast is the -role=holdfast-load child.
func loadHoldfast(spec LoadSpec, addr, api string) error {
	conns := make([]*grpc.ClientConn, spec.Clients)
	for i := range conns {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer c.Close()
		conns[i] = c
	}
	var client Client
	switch api {
	case "unary":
		spec.API = "RateLimitTake (unary, 1 check per call)"
		spec.Batch = 1
		client = func(ctx context.Context, c *ClientState) error {
			cl := holdfastv1.NewActorServiceClient(conns[c.ID])
			for ctx.Err() == nil {
				req := &holdfastv1.RateLimitTakeRequest{
					Actor:   &holdfastv1.ActorRef{Namespace: "ratelimit", Key: c.Key()},
					Amounts: map[string]int64{bucketName: 1},
				}
				sent := time.Now()
				resp, err := cl.RateLimitTake(ctx, req)
				if err != nil {
					if ctx.Err() == nil {
						c.Fail(err)
					}
					continue
				}
				c.Done(sent, resp.GetAllowed())
			}
			return nil
		}
	case "stream":
		spec.API = fmt.Sprintf("RateLimitTakeStream (one stream per client, %d takes in flight)", spec.Batch)
		client = func(ctx context.Context, c *ClientState) error {
			cl := holdfastv1.NewActorServiceClient(conns[c.ID])
			stream, err := cl.RateLimitTakeStream(ctx)
			if err != nil {
				return err
			}
			slots := make(chan struct{}, c.Batch)
			sentAt := make(chan time.Time, c.Batch) // FIFO: replies come in request order
			recvDone := make(chan struct{})
			go func() {
				defer close(recvDone)
				for {
					resp, err := stream.Recv()
					if err != nil {
						if ctx.Err() == nil && err != io.EOF {
							c.Fail(err)
						}
						return
					}
					c.Done(<-sentAt, resp.GetAllowed())
					<-slots
				}
			}()
		send:
			for ctx.Err() == nil {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
					break send
				case <-recvDone:
					break send
				}
				req := &holdfastv1.RateLimitTakeRequest{
					Actor:   &holdfastv1.ActorRef{Namespace: "ratelimit", Key: c.Key()},
					Amounts: map[string]int64{bucketName: 1},
				}
				sentAt <- time.Now()
				if err := stream.Send(req); err != nil {
					break
				}
			}
			stream.CloseSend()
			<-recvDone
			return nil
		}
	case "batch":
		spec.API = fmt.Sprintf("RateLimitTakeBatch (%d takes per call)", spec.Batch)
		client = func(ctx context.Context, c *ClientState) error {
			cl := holdfastv1.NewActorServiceClient(conns[c.ID])
			for ctx.Err() == nil {
				req := &holdfastv1.RateLimitTakeBatchRequest{Takes: make([]*holdfastv1.RateLimitTakeRequest, c.Batch)}
				for i := range req.Takes {
					req.Takes[i] = &holdfastv1.RateLimitTakeRequest{
						Actor:   &holdfastv1.ActorRef{Namespace: "ratelimit", Key: c.Key()},
						Amounts: map[string]int64{bucketName: 1},
					}
				}
				sent := time.Now()
				resp, err := cl.RateLimitTakeBatch(ctx, req)
				if err != nil {
					if ctx.Err() == nil {
						c.Fail(err)
					}
					continue
				}
				for _, r := range resp.GetResults() {
					if e := r.GetError(); e != nil {
						c.Fail(fmt.Errorf("%s", e.GetMessage()))
						continue
					}
					c.Done(sent, r.GetResponse().GetAllowed())
				}
			}
			return nil
		}
	case "many":
		spec.API = fmt.Sprintf("RateLimitTakeMany (columns, %d takes per call)", spec.Batch)
		ones := manyOnes(spec.Batch)
		client = func(ctx context.Context, c *ClientState) error {
			cl := holdfastv1.NewActorServiceClient(conns[c.ID])
			for ctx.Err() == nil {
				req := manyRequest(c, ones)
				sent := time.Now()
				resp, err := cl.RateLimitTakeMany(ctx, req)
				if err != nil {
					if ctx.Err() == nil {
						c.Fail(err)
					}
					continue
				}
				manyDone(c, sent, resp)
			}
			return nil
		}
	case "manystream":
		spec.API = fmt.Sprintf("RateLimitTakeManyStream (columns, one stream per client, %d takes per message, one message in flight)", spec.Batch)
		ones := manyOnes(spec.Batch)
		client = func(ctx context.Context, c *ClientState) error {
			cl := holdfastv1.NewActorServiceClient(conns[c.ID])
			stream, err := cl.RateLimitTakeManyStream(ctx)
			if err != nil {
				return err
			}
			for ctx.Err() == nil {
				req := manyRequest(c, ones)
				sent := time.Now()
				if err := stream.Send(req); err != nil {
					break
				}
				resp, err := stream.Recv()
				if err != nil {
					if ctx.Err() == nil && err != io.EOF {
						c.Fail(err)
					}
					break
				}
				manyDone(c, sent, resp)
			}
			stream.CloseSend()
			return nil
		}
	default:
		return fmt.Errorf("unknown api %q", api)
	}
	r, err := RunLoad(spec, client)
	if err != nil {
		return err
	}
	return EmitResult(r)
}

// childrenCPU is the user+system CPU seconds of this process's waited-for
// children (getrusage RUSAGE_CHILDREN).
func childrenCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// manyOnes is the amounts column of a batch of n takes of 1 token each
// from the one bucket (read-only: every request of a client shares it).
func manyOnes(n int) []int64 {
	ones := make([]int64, n)
	for i := range ones {
		ones[i] = 1
	}
	return ones
}

// manyRequest is one columnar batch of c.Batch takes of 1 token, a fresh
// message per call as every other client here builds.
func manyRequest(c *ClientState, ones []int64) *holdfastv1.RateLimitTakeManyRequest {
	req := &holdfastv1.RateLimitTakeManyRequest{Namespace: "ratelimit", Buckets: []string{bucketName}, Keys: make([]string, c.Batch), Amounts: ones}
	for i := range req.Keys {
		req.Keys[i] = c.Key()
	}
	return req
}

// manyDone records the answer of a columnar batch sent at sent.
// (Errors lists the failed takes in request order.)
func manyDone(c *ClientState, sent time.Time, resp *holdfastv1.RateLimitTakeManyResponse) {
	errs := resp.GetErrors()
	for i, ok := range resp.GetAllowed() {
		if len(errs) > 0 && errs[0].GetTake() == uint32(i) {
			c.Fail(fmt.Errorf("%s", errs[0].GetStatus().GetMessage()))
			errs = errs[1:]
			continue
		}
		c.Done(sent, ok)
	}
}
