package peer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// PoolConfig configures a Pool. Zero fields take DefaultPoolConfig's values.
type PoolConfig struct {
	// TLS secures the connections (mTLS: set Certificates and RootCAs);
	// nil means plaintext.
	TLS *tls.Config
	// Token, when set, is sent with every RPC as `authorization: Bearer
	// TOKEN` (what api.TokenAuth checks), for clusters without mTLS. Never
	// logged.
	Token string
	// DialTimeout bounds one connection attempt.
	DialTimeout time.Duration
	// BatchWindow is how long calls to a busy peer wait for company before
	// their batch goes (a call to an idle peer never waits).
	BatchWindow time.Duration
	// MaxBatch and MaxBatchBytes send a batch early once it holds that many
	// calls or bytes of requests.
	MaxBatch      int
	MaxBatchBytes int
	// MaxMessageBytes bounds a message sent or received (match the peer
	// server's ServerOptions).
	MaxMessageBytes int
	// KeepaliveTime and KeepaliveTimeout: ping an idle connection after
	// KeepaliveTime, drop it when the ping is not answered within
	// KeepaliveTimeout (the server must allow it: ServerOptions).
	KeepaliveTime    time.Duration
	KeepaliveTimeout time.Duration
	// ReconnectMaxDelay caps the backoff between connection attempts to a
	// peer that is down (calls meanwhile fail at once, never sent).
	ReconnectMaxDelay time.Duration
	// Logger receives debug lines (connections, failed RPCs); nil discards.
	Logger *slog.Logger
	// Dialer, when set, opens the TCP connections (fault injection in
	// tests: cluster/faultnet). nil: the default dialer.
	Dialer func(ctx context.Context, addr string) (net.Conn, error)
}

// DefaultPoolConfig is the configuration of a plaintext pool without token.
func DefaultPoolConfig() PoolConfig {
	return PoolConfig{
		DialTimeout:       5 * time.Second,
		BatchWindow:       200 * time.Microsecond,
		MaxBatch:          128,
		MaxBatchBytes:     4 << 20,
		MaxMessageBytes:   DefaultMaxMessageBytes,
		KeepaliveTime:     30 * time.Second,
		KeepaliveTimeout:  10 * time.Second,
		ReconnectMaxDelay: 2 * time.Second,
	}
}

func (c PoolConfig) withDefaults() PoolConfig {
	d := DefaultPoolConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v == 0 {
			*v = def
		}
	}
	set(&c.DialTimeout, d.DialTimeout)
	set(&c.BatchWindow, d.BatchWindow)
	set(&c.KeepaliveTime, d.KeepaliveTime)
	set(&c.KeepaliveTimeout, d.KeepaliveTimeout)
	set(&c.ReconnectMaxDelay, d.ReconnectMaxDelay)
	if c.MaxBatch == 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = d.MaxBatchBytes
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = d.MaxMessageBytes
	}
	return c
}

// Validate reports a field out of range (after defaults are applied, zero
// fields are fine).
func (c PoolConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	pos := func(name string, v time.Duration) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("peer: %s = %v, must be positive", name, v))
		}
	}
	pos("dial_timeout", c.DialTimeout)
	pos("batch_window", c.BatchWindow)
	pos("keepalive_timeout", c.KeepaliveTimeout)
	pos("reconnect_max_delay", c.ReconnectMaxDelay)
	if c.KeepaliveTime < 10*time.Second {
		errs = append(errs, fmt.Errorf("peer: keepalive_time = %v, at least 10s (gRPC's floor)", c.KeepaliveTime))
	}
	if c.MaxBatch < 1 || c.MaxBatch > MaxServerBatch {
		errs = append(errs, fmt.Errorf("peer: max_batch = %d, must be in [1, %d]", c.MaxBatch, MaxServerBatch))
	}
	if c.MaxBatchBytes < 1 {
		errs = append(errs, fmt.Errorf("peer: max_batch_bytes = %d, must be positive", c.MaxBatchBytes))
	}
	if c.MaxMessageBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("peer: max_message_bytes = %d, at least 1 MiB", c.MaxMessageBytes))
	}
	return errors.Join(errs...)
}

// ErrClosed: the pool is closed. Calls it refuses were never sent.
var ErrClosed = errors.New("peer: pool closed")

// Pool holds one connection per peer address and batches forwarded calls.
// Safe for concurrent use.
type Pool struct {
	cfg    PoolConfig
	log    *slog.Logger
	ctx    context.Context // canceled by Close: ends the RPCs in flight
	cancel context.CancelFunc

	mu     sync.Mutex // guards peers, closed; taken after a peer's mu, never before
	peers  map[string]*peer
	closed bool
	wg     sync.WaitGroup // the batch senders

	closeOnce sync.Once
	closeErr  error
}

// NewPool returns a pool; it connects to nothing until asked.
func NewPool(cfg PoolConfig) (*Pool, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Pool{cfg: cfg, log: log, ctx: ctx, cancel: cancel, peers: map[string]*peer{}}, nil
}

// Client returns the PeerService client of addr ("host:port"), creating
// its connection on first use (lazily: no I/O here). Errors of RPCs made
// through it answer NeverRan. Fails only when the pool is closed (the error
// matches ErrClosed) or addr is unusable; NeverRan is true for both.
func (p *Pool) Client(addr string) (holdfastv1.PeerServiceClient, error) {
	pr, err := p.peer(addr)
	if err != nil {
		return nil, &notSentError{err}
	}
	return pr.client, nil
}

func (p *Pool) peer(addr string) (*peer, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if pr := p.peers[addr]; pr != nil {
		p.mu.Unlock()
		return pr, nil
	}
	p.mu.Unlock()

	conn, err := p.dial(addr)
	if err != nil {
		return nil, fmt.Errorf("peer %s: %w", addr, err)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		conn.Close()
		return nil, ErrClosed
	}
	if pr := p.peers[addr]; pr != nil { // lost a race
		p.mu.Unlock()
		conn.Close()
		return pr, nil
	}
	pr := &peer{pool: p, addr: addr, conn: conn, client: holdfastv1.NewPeerServiceClient(conn)}
	p.peers[addr] = pr
	p.mu.Unlock()
	p.log.Debug("peer connection created", "addr", addr)
	return pr, nil
}

func (p *Pool) dial(addr string) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if p.cfg.TLS != nil {
		creds = credentials.NewTLS(p.cfg.TLS.Clone())
	}
	bo := backoff.DefaultConfig
	bo.BaseDelay = 100 * time.Millisecond
	bo.MaxDelay = p.cfg.ReconnectMaxDelay
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: p.cfg.KeepaliveTime, Timeout: p.cfg.KeepaliveTimeout, PermitWithoutStream: true,
		}),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: p.cfg.DialTimeout}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(p.cfg.MaxMessageBytes), grpc.MaxCallSendMsgSize(p.cfg.MaxMessageBytes)),
		grpc.WithStatsHandler(sentTracker{}),
		grpc.WithChainUnaryInterceptor(traceUnary),
		grpc.WithChainStreamInterceptor(traceStream),
	}
	if p.cfg.Dialer != nil {
		opts = append(opts, grpc.WithContextDialer(p.cfg.Dialer))
	}
	if p.cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer{token: p.cfg.Token, secure: p.cfg.TLS != nil}))
	}
	// passthrough: the address is dialed as given (a pod's DNS name is
	// resolved again at each connection attempt).
	return grpc.NewClient("passthrough:///"+addr, opts...)
}

// spawn runs f on a pool goroutine; false once the pool is closed.
func (p *Pool) spawn(f func()) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Go(f)
	return true
}

// Close fails the calls not yet sent (ErrClosed, NeverRan), cancels the
// RPCs in flight, waits for the pool's goroutines and closes every
// connection. Idempotent; later calls return the first result.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		peers := p.peers
		p.peers = nil
		p.mu.Unlock()
		for _, pr := range peers {
			pr.close()
		}
		p.cancel()
		p.wg.Wait()
		var errs []error
		for _, pr := range peers {
			if err := pr.conn.Close(); err != nil {
				errs = append(errs, fmt.Errorf("peer %s: %w", pr.addr, err))
			}
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}

// Transfer sends one partition to addr over a Transfer stream: a first
// chunk carrying hdr, then one chunk per call of next until next returns
// io.EOF, then the done chunk; it returns the ack, which the receiver sends
// only once its staging bucket is durably complete. Any other error of next
// cancels the stream (the receiver drops its staging bucket) and is
// returned. Cancel ctx to abandon the transfer.
func (p *Pool) Transfer(ctx context.Context, addr string, hdr *holdfastv1.TransferHeader, next func() ([]*holdfastv1.PartitionRecord, error)) (*holdfastv1.TransferAck, error) {
	c, err := p.Client(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Transfer(ctx)
	if err != nil {
		return nil, err
	}
	send := func(ch *holdfastv1.TransferChunk) error {
		if err := stream.Send(ch); err != nil {
			if err == io.EOF { // the receiver ended the stream: its status
				_, err = stream.CloseAndRecv()
				if err == nil {
					err = fmt.Errorf("peer %s: transfer stream ended early", addr)
				}
			}
			return err
		}
		return nil
	}
	if err := send(&holdfastv1.TransferChunk{Header: hdr}); err != nil {
		return nil, err
	}
	for {
		recs, err := next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err // the deferred cancel resets the stream
		}
		if len(recs) == 0 {
			continue
		}
		if err := send(&holdfastv1.TransferChunk{Records: recs}); err != nil {
			return nil, err
		}
	}
	if err := send(&holdfastv1.TransferChunk{Done: true}); err != nil {
		return nil, err
	}
	ack, err := stream.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	if ack.GetHandoffId() != hdr.GetHandoffId() {
		return nil, fmt.Errorf("peer %s: transfer %q acknowledged as %q", addr, hdr.GetHandoffId(), ack.GetHandoffId())
	}
	return ack, nil
}

// bearer is the per-RPC token. secure tells whether the connection is TLS
// (a token without TLS is allowed: plaintext clusters on a private network).
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// String keeps the token out of any %v of the config.
func (b bearer) String() string { return "bearer(redacted)" }

// Conn returns the pooled connection to addr, for the other services a
// node serves (the admin service when an admin call must reach the owner).
func (p *Pool) Conn(addr string) (grpc.ClientConnInterface, error) {
	pr, err := p.peer(addr)
	if err != nil {
		return nil, &notSentError{err}
	}
	return pr.conn, nil
}
