package natsdir

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Defaults of ServerConfig.
const (
	DefaultClientAddr   = "127.0.0.1:4222"
	DefaultClusterAddr  = "127.0.0.1:6222"
	DefaultClusterName  = "holdfast"
	DefaultReadyTimeout = 10 * time.Second

	// routeUser is the user name of route (cluster) authentication; the
	// password is ServerConfig.Token.
	routeUser = "holdfast"
)

var nameRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// NodeID is the server name; it must be unique in the cluster and match
	// [A-Za-z0-9_-]+.
	NodeID string
	// DataDir holds the JetStream store, in DataDir/jetstream.
	DataDir string
	// ClientAddr is host:port for clients ("" = DefaultClientAddr). Port 0
	// picks a free port; ClientURL reports it.
	ClientAddr string
	// ClusterAddr is host:port for routes; "" runs a single node without
	// cluster (required when Routes is empty: clustered JetStream needs
	// routes). Port 0 picks a free port (ClusterAddr reports it), but
	// routes need known addresses, so a real cluster uses fixed ports.
	ClusterAddr string
	// Routes are host:port of the other nodes' cluster ports (DNS names
	// allowed; the node's own address may be listed, NATS ignores it).
	Routes []string
	// ClusterName defaults to DefaultClusterName.
	ClusterName string
	// Token authenticates clients (token auth) and routes (user "holdfast",
	// password Token). "" disables authentication: insecure, for loopback
	// only.
	Token string
	// TLS, when set, is used for client and route connections. For routes it
	// acts as both server and client config, so it must carry the
	// certificate, RootCAs and ClientCAs.
	TLS *tls.Config
	// RouteTLS, when set, is used for route connections instead of TLS
	// (tlsconf.Bundle.PeerConfig: both ends nodes, authenticated by the CA
	// and the node role rather than by the address dialed).
	RouteTLS *tls.Config
	// ReadyTimeout bounds the wait for the server to listen and JetStream to
	// start (0 = DefaultReadyTimeout).
	ReadyTimeout time.Duration
	// NoAdvertise stops the server from telling peers its route address, so
	// routes are only those configured (behind NAT, or through the test
	// harness's per-pair proxies).
	NoAdvertise bool
	// Logger receives the server's logs (nil = discarded).
	Logger *slog.Logger
}

// DefaultServerConfig returns a single node on loopback with clustering on
// the default ports; NodeID and DataDir must still be set.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		ClientAddr:   DefaultClientAddr,
		ClusterAddr:  DefaultClusterAddr,
		ClusterName:  DefaultClusterName,
		ReadyTimeout: DefaultReadyTimeout,
	}
}

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("natsdir: invalid config")

// Validate checks the configuration (after defaults for empty fields).
func (c ServerConfig) Validate() error {
	c = c.withDefaults()
	if !nameRe.MatchString(c.NodeID) {
		return fmt.Errorf("%w: node ID %q must match [A-Za-z0-9_-]+", ErrInvalidConfig, c.NodeID)
	}
	if c.DataDir == "" {
		return fmt.Errorf("%w: data dir is required", ErrInvalidConfig)
	}
	if _, _, err := splitHostPort(c.ClientAddr); err != nil {
		return fmt.Errorf("%w: client addr: %w", ErrInvalidConfig, err)
	}
	if c.ClusterAddr == "" {
		if len(c.Routes) > 0 {
			return fmt.Errorf("%w: routes given without a cluster addr", ErrInvalidConfig)
		}
	} else if _, _, err := splitHostPort(c.ClusterAddr); err != nil {
		return fmt.Errorf("%w: cluster addr: %w", ErrInvalidConfig, err)
	} else if len(c.Routes) == 0 {
		// NATS refuses to start clustered JetStream without routes.
		return fmt.Errorf("%w: a cluster addr needs routes (leave the cluster addr empty for a single node)", ErrInvalidConfig)
	}
	for _, r := range c.Routes {
		if _, port, err := splitHostPort(r); err != nil || port == 0 {
			return fmt.Errorf("%w: route %q must be host:port with a port", ErrInvalidConfig, r)
		}
	}
	if !nameRe.MatchString(c.ClusterName) {
		return fmt.Errorf("%w: cluster name %q must match [A-Za-z0-9_-]+", ErrInvalidConfig, c.ClusterName)
	}
	if strings.ContainsAny(c.Token, " \t\r\n") {
		return fmt.Errorf("%w: token must not contain white space", ErrInvalidConfig)
	}
	if c.ReadyTimeout < 0 {
		return fmt.Errorf("%w: negative ready timeout", ErrInvalidConfig)
	}
	return nil
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.ClientAddr == "" {
		c.ClientAddr = DefaultClientAddr
	}
	if c.ClusterName == "" {
		c.ClusterName = DefaultClusterName
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = DefaultReadyTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func splitHostPort(hp string) (string, int, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q", ps)
	}
	return host, port, nil
}

// natsPort maps port 0 (any free port) to NATS's RANDOM_PORT (for NATS, 0
// means the default port).
func natsPort(p int) int {
	if p == 0 {
		return server.RANDOM_PORT
	}
	return p
}

// Server is a running embedded NATS server with JetStream.
type Server struct {
	srv   *server.Server
	cfg   ServerConfig
	log   *slog.Logger
	once  sync.Once
	mu    sync.Mutex
	conns []*nats.Conn // closed by Shutdown
}

// StartServer starts the embedded server and waits (at most
// cfg.ReadyTimeout) until it accepts connections with JetStream enabled.
// JetStream always syncs every write to disk before acknowledging it
// (sync_interval: always).
func StartServer(cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	opts, err := serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsdir: new server: %w", err)
	}
	nl := &natsLogger{log: cfg.Logger.With("component", "nats-server"), secret: cfg.Token}
	srv.SetLoggerV2(nl, false, false, false)
	srv.Start()
	s := &Server{srv: srv, cfg: cfg, log: cfg.Logger}
	deadline := time.Now().Add(cfg.ReadyTimeout)
	for !srv.ReadyForConnections(100 * time.Millisecond) {
		if f := nl.fatalSuffix(); f != "" {
			s.Shutdown()
			return nil, fmt.Errorf("natsdir: server %s failed to start%s", cfg.NodeID, f)
		}
		if time.Now().After(deadline) {
			s.Shutdown()
			return nil, fmt.Errorf("natsdir: server %s not ready after %s", cfg.NodeID, cfg.ReadyTimeout)
		}
	}
	if !srv.JetStreamEnabled() {
		s.Shutdown()
		return nil, fmt.Errorf("natsdir: server %s: JetStream did not start%s", cfg.NodeID, nl.fatalSuffix())
	}
	return s, nil
}

func serverOptions(cfg ServerConfig) (*server.Options, error) {
	host, port, _ := splitHostPort(cfg.ClientAddr)
	opts := &server.Options{
		ServerName:             cfg.NodeID,
		Host:                   host,
		Port:                   natsPort(port),
		NoSigs:                 true,
		JetStream:              true,
		StoreDir:               filepath.Join(cfg.DataDir, "jetstream"),
		SyncAlways:             true, // sync_interval: always
		DisableJetStreamBanner: true,
		Authorization:          cfg.Token,
	}
	if cfg.TLS != nil {
		opts.TLS = true
		opts.TLSConfig = cfg.TLS
		opts.TLSTimeout = 2
	}
	if cfg.ClusterAddr != "" {
		chost, cport, _ := splitHostPort(cfg.ClusterAddr)
		opts.Cluster = server.ClusterOpts{
			Name: cfg.ClusterName,
			Host: chost,
			Port: natsPort(cport),

			NoAdvertise: cfg.NoAdvertise,
		}
		if cfg.Token != "" {
			opts.Cluster.Username = routeUser
			opts.Cluster.Password = cfg.Token
		}
		if rt := cmp.Or(cfg.RouteTLS, cfg.TLS); rt != nil {
			opts.Cluster.TLSConfig = rt
			opts.Cluster.TLSTimeout = 2
		}
		for _, r := range cfg.Routes {
			u := &url.URL{Scheme: "nats-route", Host: r}
			if cfg.Token != "" {
				u.User = url.UserPassword(routeUser, cfg.Token)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	return opts, nil
}

// ClientURL is the URL clients connect to (with the bound port).
// Safe for concurrent use.
func (s *Server) ClientURL() string { return s.srv.ClientURL() }

// ClusterAddr is the bound host:port of the route listener ("" without
// cluster). Safe for concurrent use.
func (s *Server) ClusterAddr() string {
	if a := s.srv.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// NATS exposes the underlying server (for health checks and tests).
func (s *Server) NATS() *server.Server { return s.srv }

// Connect opens an in-process client connection (no socket) with the
// token, named name. Shutdown closes it if the caller has not.
// Safe for concurrent use.
func (s *Server) Connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.InProcessServer(s.srv),
		nats.Name(name),
		nats.MaxReconnects(-1),
	}
	if s.cfg.Token != "" {
		opts = append(opts, nats.Token(s.cfg.Token))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.srv.Running() {
		return nil, fmt.Errorf("natsdir: connect %s: %w", name, nats.ErrConnectionClosed)
	}
	// The URL only names the server: the connection is a pipe, never TLS
	// (the server accepts plain in-process clients even with TLS on).
	nc, err := nats.Connect("nats://in-process:4222", opts...)
	if err != nil {
		return nil, fmt.Errorf("natsdir: connect %s: %w", name, err)
	}
	live := s.conns[:0]
	for _, c := range s.conns {
		if !c.IsClosed() {
			live = append(live, c)
		}
	}
	s.conns = append(live, nc)
	return nc, nil
}

// Shutdown closes the connections made by Connect, stops the server and
// waits until it has stopped. Idempotent; safe for concurrent use.
func (s *Server) Shutdown() {
	s.once.Do(func() {
		s.mu.Lock()
		conns := s.conns
		s.conns = nil
		s.mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
	})
}

// WaitJetStreamReady waits until this server's JetStream can take API
// requests: a meta leader is known (in a cluster) and the account answers.
func (s *Server) WaitJetStreamReady(ctx context.Context) error {
	for {
		if !s.srv.JetStreamIsClustered() || s.srv.JetStreamIsCurrent() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("natsdir: JetStream of %s not ready: %w", s.cfg.NodeID, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// natsLogger adapts the server's logger to slog. Notices are Info, debug
// and trace (off) are Debug. The token is redacted from every line.
type natsLogger struct {
	log    *slog.Logger
	secret string
	mu     sync.Mutex
	fatal  string
}

func (l *natsLogger) msg(format string, v []any) string {
	m := strings.TrimRight(fmt.Sprintf(format, v...), "\r\n")
	if l.secret != "" {
		m = strings.ReplaceAll(m, l.secret, "[REDACTED]")
	}
	return m
}

func (l *natsLogger) Noticef(format string, v ...any) { l.log.Info(l.msg(format, v)) }
func (l *natsLogger) Warnf(format string, v ...any)   { l.log.Warn(l.msg(format, v)) }
func (l *natsLogger) Errorf(format string, v ...any)  { l.log.Error(l.msg(format, v)) }
func (l *natsLogger) Debugf(format string, v ...any)  { l.log.Debug(l.msg(format, v)) }
func (l *natsLogger) Tracef(format string, v ...any)  { l.log.Debug(l.msg(format, v)) }

// Fatalf is logged as an error (an embedded server never exits the
// process); StartServer reports it.
func (l *natsLogger) Fatalf(format string, v ...any) {
	m := l.msg(format, v)
	l.mu.Lock()
	l.fatal = m
	l.mu.Unlock()
	l.log.Error(m, "fatal", true)
}

func (l *natsLogger) fatalSuffix() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fatal == "" {
		return ""
	}
	return ": " + l.fatal
}
