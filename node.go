package holdfast

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"sort"
	"sync"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/api"
	"github.com/holdfast/holdfast/cluster"
	"github.com/holdfast/holdfast/cluster/faultnet"
	"github.com/holdfast/holdfast/cluster/peer"
	"github.com/holdfast/holdfast/cluster/tlsconf"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/account"
	"github.com/holdfast/holdfast/gateway/pricing"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/reflection"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Node is one running holdfast node: its store, actor runtime, gRPC and
// HTTP servers. Start it with Start, stop it with Shutdown (idempotent).
type Node struct {
	cfg      Config
	token    string // the API token, read once (empty: none)
	log      *slog.Logger
	clock    clock.Clock
	registry *prometheus.Registry
	store    *actor.BoltStore
	runtime  *actor.Runtime

	// cluster is the node's cluster membership (nil on a single node);
	// caller is what the APIs and the gateway call: the cluster's router,
	// or the runtime itself.
	cluster *cluster.Node
	peers   *peer.Pool
	secrets clusterSecrets
	caller  api.Caller
	faults  *faultnet.Switch
	// hot is the hot-key handling (node_hotkey.go): its layer wraps caller.
	hot *hotKeys

	gateway    *gateway.Gateway
	grpcServer *grpc.Server
	httpServer *http.Server
	grpcLis    net.Listener
	httpLis    net.Listener

	drain        chan struct{} // closed when shutdown begins
	state        stateFlag
	shutdownOnce sync.Once
	shutdownErr  error
	serveErr     chan error
}

type stateFlag struct {
	mu sync.Mutex
	s  string
}

func (f *stateFlag) set(s string) { f.mu.Lock(); f.s = s; f.mu.Unlock() }
func (f *stateFlag) get() string  { f.mu.Lock(); defer f.mu.Unlock(); return f.s }

// Options are what a caller may inject into a node (tests: a fake clock).
type Options struct {
	Logger *slog.Logger
	Clock  clock.Clock
	// Faults cuts the node off the network on demand (test harnesses:
	// gRPC, gossip; NATS routes are cut by the harness's proxies). nil in
	// production.
	Faults *faultnet.Switch
}

// NewNode validates cfg, opens the data directory and builds the node. It
// binds nothing until Start. A data directory that cannot be used is
// refused at once with an *actor.DataDirError naming the path and reason.
func NewNode(cfg Config, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = NewLogger(cfg.Log, os.Stderr)
	}
	clk := opts.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	token, err := cfg.token()
	if err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	n := &Node{faults: opts.Faults, cfg: cfg, token: token, log: logger, clock: clk, registry: prometheus.NewRegistry(), serveErr: make(chan error, 2), drain: make(chan struct{})}
	n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store, err := actor.OpenBoltStore(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n.store = store
	rc := cfg.actorConfig()
	if cfg.Clustered() {
		if n.secrets, err = cfg.readClusterSecrets(); err != nil {
			store.Close()
			return nil, fmt.Errorf("invalid configuration: %w", err)
		}
		cc := cfg.clusterConfig()
		cc.Logger = logger
		cc.Registerer = n.registry
		if n.cluster, err = cluster.New(cc, 2*rc.Partitions); err != nil {
			store.Close()
			return nil, fmt.Errorf("invalid configuration: %w", err)
		}
		rc.Gate = n.cluster.Gate()
	}
	var stores settingsStores
	if n.cluster != nil {
		stores = settingsStores{ratelimit: n.cluster.Settings(), account: n.cluster.AccountSettings()}
	}
	n.hot = newHotKeys()
	namespaces, err := buildNamespaces(cfg, stores, n.hot.registry)
	if err != nil {
		store.Close()
		return nil, err
	}
	rc.Clock = clk
	rc.Logger = logger
	rc.Registerer = n.registry
	rt, err := actor.New(rc, store, namespaces)
	if err != nil {
		store.Close()
		return nil, err
	}
	n.runtime = rt
	n.caller = rt
	var early gateway.EarlyCaller = rt
	if n.cluster != nil {
		n.caller, early = n.cluster, n.cluster
	}
	if n.caller, err = n.hot.wrap(cfg, n.caller, logger, clk); err != nil {
		rt.Shutdown(context.Background())
		return nil, err
	}
	prices, err := pricing.NewTable(cfg.Pricing)
	if err != nil {
		rt.Shutdown(context.Background())
		return nil, err
	}
	retired, err := pricing.NewRetirements(cfg.Models)
	if err != nil {
		rt.Shutdown(context.Background())
		return nil, err
	}
	n.gateway, err = gateway.New(cfg.Gateway, cfg.Providers, prices, retired, n.caller, gateway.Options{
		Logger: logger, Registerer: n.registry, Clock: clk, BindAddr: cfg.HTTPAddr, Events: n.usageEvents(),
		// Admits skip the hot-key layer: it serves ratelimit namespaces
		// only, never the account actors.
		Early:       early,
		CommitDefer: cfg.Runtime.CommitDefer,
	})
	if err != nil {
		rt.Shutdown(context.Background())
		return nil, fmt.Errorf("gateway: %w", err)
	}
	n.state.set("starting")
	return n, nil
}

// Start binds the gRPC and HTTP listeners and serves in the background.
func (n *Node) Start() error {
	var err error
	if n.grpcLis, err = net.Listen("tcp", n.cfg.GRPCAddr); err != nil {
		return fmt.Errorf("grpc_addr %s: %w", n.cfg.GRPCAddr, err)
	}
	n.grpcLis = n.faults.Listener(n.grpcLis)
	if n.httpLis, err = net.Listen("tcp", n.cfg.HTTPAddr); err != nil {
		n.grpcLis.Close()
		return fmt.Errorf("http_addr %s: %w", n.cfg.HTTPAddr, err)
	}
	auth := api.TokenAuth{Token: n.token}
	if n.secrets.bundle != nil {
		auth.Peer = func(st tls.ConnectionState) (string, bool) {
			id, ok := tlsconf.PeerIdentity(st)
			return string(id.Role), ok
		}
	}
	// Malformed protobuf is answered INVALID_ARGUMENT (api.Decoding), then
	// every call is authenticated.
	sopts := append(api.NewDecoding().ServerOptions(), grpc.ChainUnaryInterceptor(auth.Unary), grpc.ChainStreamInterceptor(auth.Stream),
		// Calls run on a fixed set of goroutines whose stacks have grown,
		// not on a fresh goroutine each (a new stack's growth was a large
		// share of a unary call's CPU).
		grpc.NumStreamWorkers(uint32(goruntime.GOMAXPROCS(0))))
	if n.cluster != nil {
		sopts = append(sopts, peer.ServerOptions()...)
	}
	if n.secrets.bundle != nil {
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(n.secrets.bundle.ServerConfig())))
	}
	n.grpcServer = grpc.NewServer(sopts...)
	holdfastv1.RegisterActorServiceServer(n.grpcServer, &api.ActorServer{Caller: n.caller, Drain: n.drain})
	holdfastv1.RegisterAdminServiceServer(n.grpcServer, &api.AdminServer{Admin: n.admin()})
	holdfastv1.RegisterAccountServiceServer(n.grpcServer, &account.Service{Caller: n.caller, Lister: n, Logger: n.log})
	if n.cluster != nil {
		peer.Register(n.grpcServer, n.cluster.PeerHandler())
	}
	reflection.Register(n.grpcServer)

	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", n.readyz)
	mux.Handle("/metrics", auth.HTTP(promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{})))
	mux.Handle("/v1/actors/", auth.HTTP(&api.HTTPHandler{Caller: n.caller}))
	// The provider routes authenticate by gateway.auth (virtual keys,
	// bring-your-own keys), not by the node token.
	gw := n.gateway.Handler()
	mux.Handle("/v1/", gw)
	mux.Handle("/v1beta/", gw)
	n.httpServer = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: n.cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	go func() { n.serveErr <- n.grpcServer.Serve(n.grpcLis) }()
	go func() {
		if err := n.httpServer.Serve(n.httpLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.serveErr <- err
		}
	}()
	if n.cluster != nil {
		if err := n.startCluster(); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	n.state.set("serving")
	n.log.Info("holdfast node serving", "node_id", n.cfg.NodeID, "version", Version,
		"grpc_addr", n.grpcLis.Addr().String(), "http_addr", n.httpLis.Addr().String(), "data_dir", n.cfg.DataDir)
	return nil
}

// GRPCAddr returns the bound gRPC address (after Start).
func (n *Node) GRPCAddr() string { return n.grpcLis.Addr().String() }

// HTTPAddr returns the bound HTTP address (after Start).
func (n *Node) HTTPAddr() string { return n.httpLis.Addr().String() }

// Runtime returns the node's actor runtime (in-process calls).
func (n *Node) Runtime() *actor.Runtime { return n.runtime }

// Errors delivers a fatal server error, if one happens.
func (n *Node) Errors() <-chan error { return n.serveErr }

func (n *Node) readyz(w http.ResponseWriter, r *http.Request) {
	if st := n.state.get(); st != "serving" {
		http.Error(w, "not ready: "+st, http.StatusServiceUnavailable)
		return
	}
	if err := n.runtime.Healthy(); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	if n.cluster != nil {
		if err := n.cluster.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.Write([]byte("ready\n"))
}

// Shutdown stops taking new requests, lets in-flight turns finish, flushes
// the committer and closes the store. Idempotent.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutdownOnce.Do(func() {
		var errs []error
		n.hot.close(ctx) // give back the allowances while the owners answer
		if n.cluster != nil {
			// Hand off every partition while the servers still answer:
			// peers forward calls here until they see the moves.
			n.state.set("draining")
			if err := n.cluster.Drain(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		n.state.set("stopping")
		close(n.drain)
		if n.httpServer != nil {
			if err := n.httpServer.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("http: %w", err))
			}
		}
		if err := n.gateway.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("gateway: %w", err))
		}
		if n.grpcServer != nil {
			done := make(chan struct{})
			go func() { n.grpcServer.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				n.grpcServer.Stop()
				errs = append(errs, fmt.Errorf("grpc: %w", ctx.Err()))
			}
		}
		if n.cluster != nil {
			n.cluster.Shutdown(ctx)
		}
		if n.peers != nil {
			n.peers.Close()
		}
		// The runtime gets its own bound: even when the servers used up
		// ctx, turns in flight must finish before the store closes.
		rctx, cancel := context.WithTimeout(context.Background(), max(time.Until(deadlineOr(ctx)), 5*time.Second))
		defer cancel()
		if err := n.runtime.Shutdown(rctx); err != nil {
			errs = append(errs, err)
		}
		n.shutdownErr = errors.Join(errs...)
		n.log.Info("holdfast node stopped", "node_id", n.cfg.NodeID, "err", n.shutdownErr)
	})
	return n.shutdownErr
}

// Status implements api.Admin.
func (n *Node) Status(ctx context.Context) (*holdfastv1.StatusResponse, error) {
	st := &holdfastv1.StatusResponse{
		NodeId: n.cfg.NodeID, Version: Version, Started: timestamppb.New(n.runtime.Started()),
		DataDir: n.cfg.DataDir, Partitions: int64(n.cfg.Runtime.Partitions),
		ActorsInMemory: n.runtime.ActorsInMemory(), DurableSeq: n.runtime.DurableSeq(),
		Commits: n.runtime.Commits(), AlarmsPending: int64(n.runtime.AlarmsPending()), State: n.state.get(),
	}
	if n.grpcLis != nil {
		st.GrpcAddr, st.HttpAddr = n.GRPCAddr(), n.HTTPAddr()
	}
	if n.cluster != nil {
		st.Clustered = true
		st.Members = n.clusterMembers()
		st.Partitions = int64(2 * n.cfg.Runtime.Partitions)
	}
	names := make([]string, 0, len(n.cfg.Namespaces))
	for name := range n.cfg.Namespaces {
		names = append(names, name)
	}
	sort.Strings(names)
	inMemory := n.runtime.ActorsInMemoryByNamespace()
	for _, name := range names {
		ns := n.cfg.Namespaces[name]
		d := ns.Durability
		if d == "" {
			d = "local"
		}
		st.Namespaces = append(st.Namespaces, &holdfastv1.NamespaceInfo{Name: name, Kind: ns.Kind, Durability: d, ActorsInMemory: inMemory[name]})
	}
	return st, nil
}

// ListActors implements api.Admin.
//
// On a cluster member it lists the actors of every member (each lists only
// the partitions it serves: a local bucket a node no longer owns is not
// listed), merged in key order.
func (n *Node) ListActors(ctx context.Context, namespace, prefix string, limit int) ([]actor.ActorInfo, bool, error) {
	if n.cluster == nil {
		return n.runtime.ListActors(ctx, namespace, prefix, limit)
	}
	return n.listClusterActors(ctx, namespace, prefix, limit)
}

// GetActor implements api.Admin.
func (n *Node) GetActor(ctx context.Context, id actor.ID, limit int) (actor.ActorDump, error) {
	return n.runtime.GetActor(ctx, id, limit)
}

// DeleteActor implements api.Admin.
func (n *Node) DeleteActor(ctx context.Context, id actor.ID) (int, error) {
	return n.runtime.DeleteActor(ctx, id)
}

// NewLogger builds the node's slog logger from its config.
func NewLogger(c LogConfig, w *os.File) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

func deadlineOr(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(30 * time.Second)
}

// admin is what the admin service sees: the cluster's operations too when
// this node is a member.
func (n *Node) admin() api.Admin {
	if n.cluster != nil {
		return clusterAdmin{n}
	}
	return n
}

// clusterAdmin adds api.ClusterAdmin to a clustered node's admin surface.
type clusterAdmin struct{ *Node }

// Crash stops the node abruptly (tests): no drain, no graceful stop of the
// servers; queued writes are committed so the store can be reopened, but
// no reply waits for them.
func (n *Node) Crash() {
	n.shutdownOnce.Do(func() {
		n.state.set("stopping")
		close(n.drain)
		n.hot.abort()
		if n.cluster != nil {
			n.cluster.Crash()
		}
		if n.grpcServer != nil {
			n.grpcServer.Stop()
		}
		if n.httpServer != nil {
			n.httpServer.Close()
		}
		n.gateway.Close(context.Background())
		if n.peers != nil {
			n.peers.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		n.runtime.Shutdown(ctx)
	})
}

// Caller is what the node's APIs call: the cluster router on a member, the
// runtime on a single node.
func (n *Node) Caller() api.Caller { return n.caller }
