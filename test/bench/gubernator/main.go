// Command gubbench starts gubernator v2 as a library, with its own
// defaults, and drives it with the same closed-loop load engine that
// holdfast's benchreport uses (loadgen.go, a copy of
// test/cmd/benchreport/loadgen.go). It is its own module so holdfast's
// go.mod never depends on gubernator.
//
//	gubbench -role server                 # prints "ADDR host:port", serves until stdin closes
//	gubbench -role load -addr A -server-pid P -api unary|batch ...  # prints "RESULT {json}"
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	guber "github.com/gubernator-io/gubernator/v2"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The limit both systems enforce per key (see benchreport): 1000 per
// second with a burst of 1000, LEAKY_BUCKET (gubernator's continuous token
// bucket).
const limitPerSecond = 1000

func main() {
	role := flag.String("role", "", "server or load")
	addr := flag.String("addr", "", "server gRPC address (load)")
	api := flag.String("api", "unary", "unary (1 check per GetRateLimits) or batch (-batch checks per call)")
	var spec LoadSpec
	flag.IntVar(&spec.Clients, "clients", 64, "concurrent clients, one connection each")
	flag.IntVar(&spec.Keys, "keys", 10000, "distinct keys")
	flag.IntVar(&spec.Batch, "batch", 8, "checks per call with -api batch")
	flag.DurationVar(&spec.Warmup, "warmup", time.Second, "warm-up after every key was touched")
	flag.DurationVar(&spec.Duration, "duration", 5*time.Second, "measured window")
	flag.Int64Var(&spec.MaxChecks, "max-checks", 100_000_000, "bound on checks")
	flag.IntVar(&spec.ServerPID, "server-pid", 0, "server process, for its CPU time")
	flag.Parse()
	var err error
	switch *role {
	case "server":
		err = serve()
	case "load":
		err = load(spec, *addr, *api)
	default:
		err = fmt.Errorf("-role must be server or load")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gubbench:", err)
		os.Exit(1)
	}
}

// serve starts one gubernator daemon on loopback with its defaults (only
// the listen addresses and the peer list are set: it is its own only
// peer, as in gubernator's own cluster test harness, with discovery
// "none").
func serve() error {
	logger := logrus.New()
	logger.SetOutput(io.Discard)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := guber.SpawnDaemon(ctx, guber.DaemonConfig{
		GRPCListenAddress: "127.0.0.1:0",
		HTTPListenAddress: "127.0.0.1:0",
		PeerDiscoveryType: "none",
		Logger:            logrus.NewEntry(logger),
	})
	if err != nil {
		return err
	}
	defer d.Close()
	// IsOwner: this daemon is the peer (Daemon.SetPeers sets it only when
	// the address equals AdvertiseAddress, which a :0 port cannot be).
	self := guber.PeerInfo{GRPCAddress: d.GRPCListeners[0].Addr().String(), HTTPAddress: d.HTTPListener.Addr().String(), IsOwner: true}
	d.SetPeers([]guber.PeerInfo{self})
	fmt.Printf("ADDR %s\n", self.GRPCAddress)
	io.Copy(io.Discard, os.Stdin) // until the parent closes it
	fmt.Printf("STATS {}\n")
	return nil
}

func load(spec LoadSpec, addr, api string) error {
	spec.System = "gubernator"
	conns := make([]*grpc.ClientConn, spec.Clients)
	for i := range conns {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer c.Close()
		conns[i] = c
	}
	switch api {
	case "unary":
		spec.Batch = 1
		spec.API = "GetRateLimits (unary, 1 check per call)"
	case "batch":
		spec.API = fmt.Sprintf("GetRateLimits (%d checks per call)", spec.Batch)
	default:
		return fmt.Errorf("unknown api %q", api)
	}
	client := func(ctx context.Context, c *ClientState) error {
		cl := guber.NewV1Client(conns[c.ID])
		for ctx.Err() == nil {
			req := &guber.GetRateLimitsReq{Requests: make([]*guber.RateLimitReq, c.Batch)}
			for i := range req.Requests {
				req.Requests[i] = &guber.RateLimitReq{
					Name:      "bench",
					UniqueKey: c.Key(),
					Hits:      1,
					Limit:     limitPerSecond,
					Duration:  guber.Second,
					Algorithm: guber.Algorithm_LEAKY_BUCKET,
					Burst:     limitPerSecond,
				}
			}
			sent := time.Now()
			resp, err := cl.GetRateLimits(ctx, req)
			if err != nil {
				if ctx.Err() == nil {
					c.Fail(err)
				}
				continue
			}
			for _, r := range resp.GetResponses() {
				if r.GetError() != "" {
					c.Fail(fmt.Errorf("%s", r.GetError()))
					continue
				}
				c.Done(sent, r.GetStatus() == guber.Status_UNDER_LIMIT)
			}
		}
		return nil
	}
	r, err := RunLoad(spec, client)
	if err != nil {
		return err
	}
	return EmitResult(r)
}
