// Package harness starts a holdfast cluster of N nodes on loopback ports,
// in one process, for tests (holdfast's own and its users'): like
// hashicorp/raft's testing.go, it is package code, not test code.
//
// Each node is a real holdfast.Node: real embedded NATS with JetStream on
// its own data directory, real memberlist gossip over loopback UDP and
// TCP, real gRPC between nodes, real bbolt files. Stop drains a node as
// SIGTERM does; Crash stops it without a drain or a lease release (the
// in-process analogue of SIGKILL: the test/e2e suite kills real processes);
// Restart brings a node back on its data directory.
package harness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/cluster/faultnet"
	"github.com/holdfast/holdfast/cluster/tlsconf"
)

// Options shape a cluster. Zero values take the defaults of DefaultOptions.
type Options struct {
	// Partitions is P per placement group (the cluster has 2P).
	Partitions int
	// LeaseTTL, Epsilon, RenewInterval: short leases make failover tests
	// quick.
	LeaseTTL, Epsilon, RenewInterval time.Duration
	// Configure edits each node's config before it starts.
	Configure func(i int, c *holdfast.Config)
	// Logger receives every node's logs (default: discarded).
	Logger *slog.Logger
	// Secure runs the cluster with mTLS between nodes, an encrypted gossip
	// pool and NATS authentication (development certificates written by
	// tlsconf.GenerateDev); otherwise it runs --insecure.
	Secure bool
	// MaxNodes bounds Add in a secure cluster (certificates are made up
	// front); default N+2.
	MaxNodes int
}

// DefaultOptions: 16 partitions per group, a 3 s lease.
func DefaultOptions() Options {
	return Options{Partitions: 16, LeaseTTL: 3 * time.Second, Epsilon: 300 * time.Millisecond, RenewInterval: 500 * time.Millisecond}
}

// Cluster is N nodes. Methods are safe for concurrent use.
type Cluster struct {
	t    testing.TB
	opts Options
	dir  string
	// certs is the directory of the development CA and certificates
	// (Secure only).
	certs string

	mu    sync.Mutex
	nodes []*member
	// routes[i][j] carries member i's NATS route to member j.
	routes map[[2]int]*proxy
}

type member struct {
	id          string
	dataDir     string
	natsCluster string // bound route address of the running server ("" before)
	gossip      string // gossip address, kept across restarts when free
	faults      *faultnet.Switch
	node        *holdfast.Node
}

// New starts n nodes and waits until every one is ready (a lease, a synced
// directory, the directory at its replica target) and every partition has
// an owner. Every node is stopped at the end of the test.
func New(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	d := DefaultOptions()
	if opts.Partitions == 0 {
		opts.Partitions = d.Partitions
	}
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL, opts.Epsilon, opts.RenewInterval = d.LeaseTTL, d.Epsilon, d.RenewInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Cluster{t: t, opts: opts, dir: t.TempDir()}
	if opts.Secure {
		max := opts.MaxNodes
		if max < n {
			max = n + 2
		}
		var names []string
		for i := range max {
			names = append(names, fmt.Sprintf("node-%d", i+1))
		}
		c.certs = filepath.Join(c.dir, "certs")
		if _, err := tlsconf.GenerateDev(c.certs, tlsconf.DevOptions{Nodes: names}); err != nil {
			t.Fatalf("generating certificates: %v", err)
		}
	}
	for i := range n {
		c.nodes = append(c.nodes, &member{
			id:      fmt.Sprintf("node-%d", i+1),
			dataDir: filepath.Join(c.dir, fmt.Sprintf("node-%d", i+1)),
			gossip:  FreeLoopbackAddr(t),
			faults:  faultnet.New(),
		})
	}
	c.routes = map[[2]int]*proxy{}
	for i := range n {
		for j := range n {
			if i != j {
				c.addRoute(i, j)
			}
		}
	}
	t.Cleanup(c.Close)
	// One after the other, so each finds the running ones as gossip seeds
	// (a node's Start returns before JetStream has formed).
	for i := range n {
		if err := c.start(i); err != nil {
			t.Fatalf("starting node-%d: %v", i+1, err)
		}
	}
	c.WaitStable(60 * time.Second)
	return c
}

// FreeLoopbackAddr picks a loopback address whose port is free for TCP
// and UDP, below the kernel's ephemeral range: a gossip or NATS route
// address that must be known before a node starts (the others list it);
// a port of the ephemeral range released before its node binds it is soon
// taken by an outgoing connection ("address already in use").
func FreeLoopbackAddr(t testing.TB) string {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 12000 {
				lo = v
			}
		}
	}
	for range 500 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(10000+rand.IntN(lo-10000)))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr
	}
	t.Fatalf("no free loopback port below %d", lo)
	return ""
}

// config is node i's configuration: loopback ports, routes to every other
// member, gossip seeds of every running member.
func (c *Cluster) config(i int) holdfast.Config {
	m := c.nodes[i]
	cfg := holdfast.DefaultConfig()
	cfg.NodeID, cfg.DataDir = m.id, m.dataDir
	cfg.HTTPAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Runtime.Partitions = c.opts.Partitions
	cc := &cfg.Cluster
	cc.Enabled, cc.Insecure = true, true
	// The route port is the kernel's pick (port 0): the others reach it
	// through their proxies, retargeted once the server is up; picking it
	// in advance raced with other processes for the port.
	cc.GossipAddr, cc.NATSAddr, cc.NATSClusterAddr = m.gossip, "127.0.0.1:0", "127.0.0.1:0"
	// Routes through per-pair proxies (Isolate cuts them); no route
	// address advertised, so no route bypasses them.
	cc.NATSRoutes, cc.NATSNoAdvertise = nil, true
	c.mu.Lock()
	for j := range c.nodes {
		if r := c.routes[[2]int{i, j}]; r != nil {
			cc.NATSRoutes = append(cc.NATSRoutes, r.addr())
		}
	}
	c.mu.Unlock()
	cc.Join = c.seeds(i)
	if c.certs != "" {
		cc.Insecure = false
		cert, key := tlsconf.DevNodeFiles(m.id)
		cc.TLS = holdfast.ClusterTLSFile{CA: filepath.Join(c.certs, tlsconf.DevCAFile), Cert: filepath.Join(c.certs, cert), Key: filepath.Join(c.certs, key)}
		cc.GossipKeyFile = filepath.Join(c.certs, tlsconf.DevGossipKeyFile)
		cc.NATSTokenFile = filepath.Join(c.certs, tlsconf.DevNATSTokenFile)
	}
	cc.LeaseTTL, cc.Epsilon, cc.RenewInterval = c.opts.LeaseTTL, c.opts.Epsilon, c.opts.RenewInterval
	cc.RetryInterval = 100 * time.Millisecond
	cc.HandoffTimeout = 10 * time.Second
	cc.DrainTimeout = 30 * time.Second
	cc.KVTimeout = time.Second
	cc.GossipProbeInterval = 200 * time.Millisecond
	cfg.ShutdownTimeout = 40 * time.Second
	if c.opts.Configure != nil {
		c.opts.Configure(i, &cfg)
	}
	return cfg
}

// seeds returns the gossip addresses of the running members other than i.
func (c *Cluster) seeds(i int) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for j, o := range c.nodes {
		if j != i && o.node != nil {
			out = append(out, o.node.Cluster().GossipAddr())
		}
	}
	return out
}

func (c *Cluster) start(i int) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if err = c.startOnce(i); err == nil || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
		// The gossip port, free when picked, was taken since by another
		// process: pick again.
		c.mu.Lock()
		c.nodes[i].gossip = FreeLoopbackAddr(c.t)
		c.mu.Unlock()
	}
	return err
}

func (c *Cluster) startOnce(i int) error {
	cfg := c.config(i)
	n, err := holdfast.NewNode(cfg, holdfast.Options{Logger: c.opts.Logger.With("node", cfg.NodeID), Faults: c.nodes[i].faults})
	if err != nil {
		return err
	}
	if err := n.Start(); err != nil {
		n.Shutdown(context.Background())
		return err
	}
	route := n.Cluster().NATSClusterAddr()
	c.mu.Lock()
	c.nodes[i].node = n
	c.nodes[i].natsCluster = route
	for k, p := range c.routes {
		if k[1] == i {
			p.retarget(route)
		}
	}
	c.mu.Unlock()
	return nil
}

// N is the number of members (running or not).
func (c *Cluster) N() int { return len(c.nodes) }

// Node returns member i's node (nil while stopped).
func (c *Cluster) Node(i int) *holdfast.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].node
}

// ID returns member i's node ID.
func (c *Cluster) ID(i int) string { return c.nodes[i].id }

// Index returns the member index of a node ID, -1 when unknown.
func (c *Cluster) Index(id string) int {
	for i, m := range c.nodes {
		if m.id == id {
			return i
		}
	}
	return -1
}

// Running lists the indexes of running members.
func (c *Cluster) Running() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, m := range c.nodes {
		if m.node != nil {
			out = append(out, i)
		}
	}
	return out
}

// Stop shuts member i down gracefully: it drains (hands off every
// partition), then exits.
func (c *Cluster) Stop(i int) error {
	c.mu.Lock()
	n := c.nodes[i].node
	c.nodes[i].node = nil
	c.mu.Unlock()
	if n == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return n.Shutdown(ctx)
}

// Crash stops member i without a drain: its partitions stay in the
// directory under its lease until the others revoke it.
func (c *Cluster) Crash(i int) {
	c.mu.Lock()
	n := c.nodes[i].node
	c.nodes[i].node = nil
	c.mu.Unlock()
	if n != nil {
		n.Crash()
	}
}

// Restart starts a stopped member again on its data directory.
func (c *Cluster) Restart(i int) error {
	if c.Node(i) != nil {
		return fmt.Errorf("node-%d is running", i+1)
	}
	return c.start(i)
}

// Add starts a new member and returns its index.
func (c *Cluster) Add() (int, error) {
	c.mu.Lock()
	i := len(c.nodes)
	c.nodes = append(c.nodes, &member{
		id:      fmt.Sprintf("node-%d", i+1),
		dataDir: filepath.Join(c.dir, fmt.Sprintf("node-%d", i+1)),
		gossip:  FreeLoopbackAddr(c.t),
		faults:  faultnet.New(),
	})
	for j := range i {
		c.addRoute(i, j)
		c.addRoute(j, i)
	}
	c.mu.Unlock()
	return i, c.start(i)
}

// addRoute makes the proxy of member i's route to member j. Called with
// c.mu held or before the cluster is shared.
func (c *Cluster) addRoute(i, j int) {
	p, err := newProxy(c.nodes[j].natsCluster) // "" until j's server is up
	if err != nil {
		c.t.Fatalf("route proxy: %v", err)
	}
	c.routes[[2]int{i, j}] = p
}

// Isolate cuts member i off the others, both ways: gRPC, gossip and its
// NATS routes. The member keeps running (call it directly to see what it
// serves).
func (c *Cluster) Isolate(i int) { c.setIsolated(i, true) }

// Heal ends an Isolate.
func (c *Cluster) Heal(i int) { c.setIsolated(i, false) }

func (c *Cluster) setIsolated(i int, cut bool) {
	c.mu.Lock()
	sw := c.nodes[i].faults
	var ps []*proxy
	for k, p := range c.routes {
		if k[0] == i || k[1] == i {
			ps = append(ps, p)
		}
	}
	c.mu.Unlock()
	if cut {
		sw.Cut()
	} else {
		sw.Heal()
	}
	for _, p := range ps {
		p.setCut(cut)
	}
}

// Close crashes every running member and closes the route proxies.
// Idempotent.
func (c *Cluster) Close() {
	var wg sync.WaitGroup
	for _, i := range c.Running() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Crash(i)
		}()
	}
	wg.Wait()
	c.mu.Lock()
	routes := c.routes
	c.routes = nil
	c.mu.Unlock()
	for _, p := range routes {
		p.close()
	}
}

// CertsDir is the directory of the development CA and certificates of a
// Secure cluster ("" otherwise): tlsconf.DevCAFile, DevAdminFile, ...
func (c *Cluster) CertsDir() string { return c.certs }
