// Command holdfast runs a holdfast node.
//
//	holdfast serve [--config FILE] [--data-dir DIR] [--http ADDR] [--grpc ADDR]
//	holdfast certs init DIR [--node NAME ...|--nodes A,B,C] [--host H ...] [--force]
//	holdfast version
//
// SIGTERM or SIGINT stops the node gracefully: it stops accepting, lets the
// turns in flight finish, flushes the group committer and exits 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/holdfast/holdfast"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `holdfast: a self-hosted Durable-Objects node and LLM gateway

Usage:
  holdfast serve [--config FILE] [--data-dir DIR] [--http ADDR] [--grpc ADDR]
  holdfast certs init DIR [--node NAME ...|--nodes A,B,C] [--host H ...] [--force]
  holdfast version

Defaults: --data-dir ./data, --http 127.0.0.1:8080, --grpc 127.0.0.1:7070.
The config file is YAML; flags override it. See README.md.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "certs":
		return certs(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintf(stdout, "holdfast %s\n", holdfast.Version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "holdfast: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML configuration file")
	dataDir := fs.String("data-dir", "", "data directory (default ./data)")
	httpAddr := fs.String("http", "", "HTTP address: gateway, actor API, health, metrics (default 127.0.0.1:8080)")
	grpcAddr := fs.String("grpc", "", "gRPC address: actor and admin services (default 127.0.0.1:7070)")
	nodeID := fs.String("node-id", "", "this node's stable ID (default node-1)")
	region := fs.String("region", "", "region carried in gossip metadata")
	gossip := fs.String("gossip", "", "gossip (memberlist) address, UDP and TCP (default 127.0.0.1:7946)")
	join := fs.String("join", "", "comma-separated gossip seeds host:port (DNS names allowed); makes this node a cluster member")
	natsAddr := fs.String("nats", "", "embedded NATS client address (default 127.0.0.1:4222)")
	natsCluster := fs.String("nats-cluster", "", "embedded NATS route address (default 127.0.0.1:6222)")
	clusterOn := fs.Bool("cluster", false, "run as a cluster member even without --join (the first node)")
	insecure := fs.Bool("insecure", false, "allow a cluster without mTLS, gossip key and NATS token")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "holdfast serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg := holdfast.DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = holdfast.LoadConfig(*configPath); err != nil {
			fmt.Fprintf(stderr, "holdfast: %v\n", err)
			return 1
		}
	}
	if *dataDir != "" {
		cfg.DataDir = *dataDir
	}
	if *httpAddr != "" {
		cfg.HTTPAddr = *httpAddr
	}
	if *grpcAddr != "" {
		cfg.GRPCAddr = *grpcAddr
	}
	if *nodeID != "" {
		cfg.NodeID = *nodeID
	}
	if *region != "" {
		cfg.Cluster.Region = *region
	}
	if *gossip != "" {
		cfg.Cluster.GossipAddr = *gossip
	}
	if *join != "" {
		cfg.Cluster.Join = nil
		for _, j := range strings.Split(*join, ",") {
			if j = strings.TrimSpace(j); j != "" {
				cfg.Cluster.Join = append(cfg.Cluster.Join, j)
			}
		}
	}
	if *natsAddr != "" {
		cfg.Cluster.NATSAddr = *natsAddr
	}
	if *natsCluster != "" {
		cfg.Cluster.NATSClusterAddr = *natsCluster
	}
	if *clusterOn {
		cfg.Cluster.Enabled = true
	}
	if *insecure {
		cfg.Cluster.Insecure = true
	}
	holdfast.ApplyProcessSettings(cfg) // negative values are NewNode's to refuse

	node, err := holdfast.NewNode(cfg, holdfast.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "holdfast: %v\n", err)
		return 1
	}
	if err := node.Start(); err != nil {
		fmt.Fprintf(stderr, "holdfast: %v\n", err)
		node.Shutdown(context.Background())
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	code := 0
	select {
	case <-sigs:
	case err := <-node.Errors():
		if err != nil {
			fmt.Fprintf(stderr, "holdfast: server failed: %v\n", err)
			code = 1
		}
	}
	signal.Stop(sigs)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := node.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "holdfast: shutdown: %v\n", err)
		code = 1
	}
	return code
}
