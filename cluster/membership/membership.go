// Package membership runs one node's membership in its region's LAN pool
// (hashicorp/memberlist, SWIM) and gossips the node's metadata: node ID,
// incarnation, region, gRPC and HTTP addresses, state and load.
//
// # Contract
//
// Start binds the gossip port (TCP and UDP) and returns at once: joining the
// seeds happens in the background and is retried every JoinRetry until
// another member is known, so a node started before its seeds joins them when
// they come up, and Start never fails because seeds are down. A seed may be a
// DNS name resolving to several addresses.
//
// Members is memberlist's view: alive (and suspect) nodes, self included. It
// is a hint for placement and routing, never a safety argument (safety comes
// from leases in the directory). Nodes whose metadata cannot be decoded or
// names another node are left out and logged.
//
// With Config.SecretKey set, gossip is encrypted and authenticated; nodes
// with another key (or none) cannot join. A node that comes back under its
// old name at another address is accepted once DeadNodeReclaimTime has passed
// since it was declared dead.
//
// # Thread-safety
//
// Every method of *Membership is safe for concurrent use. Members, Self,
// LocalAddr and Subscribe never block on the network. Update and Leave wait
// up to their broadcast timeout; Shutdown waits for an Update or Leave in
// progress and for the join goroutine (whose attempt may take up to
// memberlist's TCP timeout, 10s, against an unreachable seed). Shutdown is
// idempotent; after it, Update and Leave return ErrShutdown.
package membership

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/holdfast/holdfast/actor/clock"
)

// Errors returned by Update and Leave.
var (
	ErrShutdown = errors.New("membership: shut down")
	ErrLeft     = errors.New("membership: left the pool")
)

// Membership is one node's membership. Create it with Start; stop it with
// Shutdown (after Leave for a graceful exit).
type Membership struct {
	cfg       Config
	log       *slog.Logger
	clk       clock.Clock
	ml        *memberlist.Memberlist
	localAddr string

	// life guards the memberlist against Leave/UpdateNode after Shutdown:
	// Update and Leave hold it shared, Shutdown exclusively.
	life     sync.RWMutex
	closed   bool        // under life (written exclusively)
	left     atomic.Bool // Leave was called
	updateMu sync.Mutex  // serializes Update

	stop     chan struct{} // closed by Leave or Shutdown: stops the join loop
	stopOnce sync.Once
	wg       sync.WaitGroup

	joinAttempts atomic.Int64 // for tests

	mu      sync.Mutex
	self    Meta
	selfRaw []byte
	peers   map[string]Meta // alive nodes with valid meta, self included
	failed  map[string]failedMember
	subs    map[uint64]chan struct{}
	nextSub uint64
}

// Start validates cfg, binds the gossip port and starts joining cfg.Join in
// the background.
func Start(cfg Config) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Membership{
		cfg:    cfg,
		log:    cfg.Logger,
		clk:    cfg.Clock,
		stop:   make(chan struct{}),
		peers:  make(map[string]Meta),
		failed: make(map[string]failedMember),
		subs:   make(map[uint64]chan struct{}),
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	base := m.log.With("node", cfg.NodeID)
	m.log = base.With("component", "membership")
	if m.clk == nil {
		m.clk = clock.Real{}
	}
	m.self = cfg.initialMeta()
	raw, err := m.self.encode()
	if err != nil {
		return nil, err
	}
	m.selfRaw = raw

	bindIP, bindPort, _ := splitIPPort(cfg.BindAddr, true)
	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeID
	mc.BindAddr = bindIP
	mc.BindPort = bindPort
	mc.AdvertisePort = bindPort
	if cfg.AdvertiseAddr != "" {
		mc.AdvertiseAddr, mc.AdvertisePort, _ = splitIPPort(cfg.AdvertiseAddr, false)
	}
	if cfg.SecretKey != nil {
		mc.SecretKey = slices.Clone(cfg.SecretKey)
	}
	mc.DeadNodeReclaimTime = cfg.DeadNodeReclaimTime
	mc.ProbeInterval = cfg.ProbeInterval
	mc.ProbeTimeout = cfg.ProbeTimeout
	mc.GossipInterval = cfg.GossipInterval
	mc.SuspicionMult = cfg.SuspicionMult
	mc.PushPullInterval = cfg.PushPullInterval
	d := (*delegate)(m)
	mc.Delegate = d
	mc.Events = d
	mc.Conflict = d
	mc.Logger = log.New(&logWriter{log: base.With("component", "memberlist")}, "", 0)

	if cfg.WrapTransport != nil {
		nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{BindAddrs: []string{bindIP}, BindPort: bindPort, Logger: mc.Logger})
		if err != nil {
			return nil, fmt.Errorf("membership: start memberlist on %s: %w", cfg.BindAddr, err)
		}
		if mc.AdvertiseAddr == "" {
			mc.AdvertiseAddr, mc.AdvertisePort = bindIP, nt.GetAutoBindPort()
		}
		mc.Transport = cfg.WrapTransport(nt)
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("membership: start memberlist on %s: %w", cfg.BindAddr, err)
	}
	m.ml = ml
	ln := ml.LocalNode()
	m.localAddr = net.JoinHostPort(ln.Addr.String(), strconv.Itoa(int(ln.Port)))
	m.log.Info("membership started", "addr", m.localAddr, "encrypted", cfg.SecretKey != nil, "seeds", cfg.Join)

	if len(cfg.Join) > 0 {
		m.goroutine(m.joinLoop)
	}
	m.goroutine(m.reconnectLoop)
	return m, nil
}

// goroutine runs f on a goroutine that Shutdown waits for.
func (m *Membership) goroutine(f func()) { m.wg.Go(f) }

// joinLoop tries the seeds until another member is known, or until Leave or
// Shutdown.
func (m *Membership) joinLoop() {
	for attempt := 1; ; attempt++ {
		select {
		case <-m.stop:
			return
		default:
		}
		n, err := m.ml.Join(m.cfg.Join)
		m.joinAttempts.Add(1)
		if n > 0 && m.ml.NumMembers() > 1 {
			m.log.Info("joined pool", "seeds_contacted", n, "members", m.ml.NumMembers(), "attempts", attempt)
			return
		}
		switch {
		case attempt == 1 || attempt%60 == 0:
			m.log.Warn("no seed answered yet; retrying", "seeds", m.cfg.Join, "attempts", attempt, "err", err)
		default:
			m.log.Debug("join attempt failed", "attempt", attempt, "err", err)
		}
		wake := make(chan struct{})
		t := m.clk.AfterFunc(m.cfg.JoinRetry, func() { close(wake) })
		select {
		case <-wake:
		case <-m.stop:
			t.Stop()
			return
		}
	}
}

// failedMember is a member that failed (not left): reconnectLoop tries it.
type failedMember struct {
	addr  string
	since time.Time
}

// reconnectLoop tries, every ReconnectInterval, to join the members that
// failed (as Serf does): memberlist alone never speaks to a dead member
// again, so both sides of a healed partition would stay apart. Members
// failed for longer than ReconnectTimeout are forgotten.
func (m *Membership) reconnectLoop() {
	for {
		wake := make(chan struct{})
		t := m.clk.AfterFunc(m.cfg.ReconnectInterval, func() { close(wake) })
		select {
		case <-wake:
		case <-m.stop:
			t.Stop()
			return
		}
		now := m.clk.Now()
		var addrs []string
		m.mu.Lock()
		for name, f := range m.failed {
			if now.Sub(f.since) > m.cfg.ReconnectTimeout {
				delete(m.failed, name)
				continue
			}
			addrs = append(addrs, f.addr)
		}
		m.mu.Unlock()
		if len(addrs) == 0 {
			continue
		}
		if n, err := m.ml.Join(addrs); n > 0 {
			m.log.Info("reconnected to failed members", "contacted", n)
		} else {
			m.log.Debug("failed members still unreachable", "members", len(addrs), "err", err)
		}
	}
}

// Members returns the alive members (self included) with valid metadata,
// sorted by NodeID. Never blocks on the network.
func (m *Membership) Members() []Meta {
	m.mu.Lock()
	out := make([]Meta, 0, len(m.peers)+1)
	for name, meta := range m.peers {
		if name != m.self.NodeID {
			out = append(out, meta)
		}
	}
	out = append(out, m.self)
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Meta) int {
		switch {
		case a.NodeID < b.NodeID:
			return -1
		case a.NodeID > b.NodeID:
			return 1
		}
		return 0
	})
	return out
}

// Self returns this node's current metadata.
func (m *Membership) Self() Meta {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.self
}

// LocalAddr returns the gossip address this node advertises ("ip:port", the
// port actually bound when BindAddr had port 0): what peers use as a seed.
func (m *Membership) LocalAddr() string { return m.localAddr }

// Update changes this node's metadata with fn and gossips it. fn gets a copy
// of the current Meta; it must not change NodeID, and must not call Update.
// Concurrent Updates are serialized (each waits for the previous one's
// broadcast). The change is applied locally at once;
// Update then waits up to BroadcastTimeout for it to be sent to a peer (a
// timeout is logged, not returned: anti-entropy still spreads it). It fails
// with ErrInvalidMeta (nothing changed), ErrLeft or ErrShutdown.
func (m *Membership) Update(fn func(*Meta)) error {
	m.life.RLock()
	defer m.life.RUnlock()
	if m.closed {
		return ErrShutdown
	}
	if m.left.Load() {
		return ErrLeft
	}
	// Held across UpdateNode too: memberlist's UpdateNode reads the local
	// node's state unlocked and must not run concurrently with itself.
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	cur := m.Self()
	next := cur
	fn(&next)
	if next.NodeID != cur.NodeID {
		return fmt.Errorf("%w: NodeID cannot change (%q -> %q)", ErrInvalidMeta, cur.NodeID, next.NodeID)
	}
	raw, err := next.encode()
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.self, m.selfRaw = next, raw
	m.mu.Unlock()

	if err := m.ml.UpdateNode(m.cfg.BroadcastTimeout); err != nil {
		m.log.Warn("metadata update not yet broadcast", "err", err)
	}
	return nil
}

// Subscribe returns a channel that receives a notification (coalesced,
// buffered 1) after every change of membership or of a member's metadata,
// self included, and a function that unsubscribes. The channel is closed by
// the unsubscribe function and by Shutdown. Read Members after each
// notification: the notification carries no data.
func (m *Membership) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	if m.subs == nil { // shut down
		m.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	id := m.nextSub
	m.nextSub++
	m.subs[id] = ch
	m.mu.Unlock()
	return ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if c, ok := m.subs[id]; ok {
			delete(m.subs, id)
			close(c)
		}
	}
}

// notifyLocked wakes every subscriber without blocking. m.mu must be held.
func (m *Membership) notifyLocked() {
	for _, ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Leave tells the pool this node is leaving and waits up to timeout
// (BroadcastTimeout when timeout <= 0) for the message to go out. Gossip
// keeps running until Shutdown; the join loop stops, and Update fails with
// ErrLeft from now on. Calling it again does nothing.
func (m *Membership) Leave(timeout time.Duration) error {
	m.life.RLock()
	defer m.life.RUnlock()
	if m.closed {
		return ErrShutdown
	}
	m.left.Store(true)
	m.stopOnce.Do(func() { close(m.stop) })
	if timeout <= 0 {
		timeout = m.cfg.BroadcastTimeout
	}
	if err := m.ml.Leave(timeout); err != nil {
		return fmt.Errorf("membership: leave: %w", err)
	}
	m.log.Info("left pool")
	return nil
}

// Shutdown stops gossip (without a leave message: peers detect the node as
// failed unless Leave was called first), stops the join loop and closes
// subscriber channels. Idempotent.
func (m *Membership) Shutdown() error {
	m.stopOnce.Do(func() { close(m.stop) })
	m.life.Lock()
	defer m.life.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	m.wg.Wait()
	err := m.ml.Shutdown()
	m.mu.Lock()
	for id, ch := range m.subs {
		delete(m.subs, id)
		close(ch)
	}
	m.subs = nil
	m.mu.Unlock()
	m.log.Info("membership shut down")
	if err != nil {
		return fmt.Errorf("membership: shutdown: %w", err)
	}
	return nil
}

// delegate implements memberlist's Delegate, EventDelegate and
// ConflictDelegate. The event methods run under memberlist's node lock: they
// only touch m.mu and never call memberlist back.
type delegate Membership

func (d *delegate) m() *Membership { return (*Membership)(d) }

// NodeMeta returns the encoded self meta (validated to fit MaxMetaSize).
func (d *delegate) NodeMeta(limit int) []byte {
	m := d.m()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.selfRaw) > limit {
		// Cannot happen (Update validates MaxMetaSize); memberlist would panic.
		m.log.Error("node meta larger than memberlist's limit", "size", len(m.selfRaw), "limit", limit)
		return nil
	}
	return slices.Clone(m.selfRaw)
}

func (d *delegate) NotifyMsg([]byte)                           {}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}

func (d *delegate) NotifyJoin(n *memberlist.Node)   { d.upsert(n, "join") }
func (d *delegate) NotifyUpdate(n *memberlist.Node) { d.upsert(n, "update") }

func (d *delegate) NotifyLeave(n *memberlist.Node) {
	m := d.m()
	m.log.Info("member gone", "member", n.Name, "addr", n.Address(), "left", n.State == memberlist.StateLeft)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.peers, n.Name)
	if n.State != memberlist.StateLeft && n.Name != m.self.NodeID {
		// Failed, not left: try to reach it again (a partition heals).
		m.failed[n.Name] = failedMember{addr: n.Address(), since: m.clk.Now()}
	} else {
		delete(m.failed, n.Name)
	}
	m.notifyLocked()
}

func (d *delegate) upsert(n *memberlist.Node, what string) {
	m := d.m()
	meta, err := decodeMeta(n.Name, n.Meta)
	if err != nil {
		m.log.Warn("member left out: bad metadata", "member", n.Name, "addr", n.Address(), "err", err)
	} else if what == "join" {
		m.log.Info("member joined", "member", n.Name, "addr", n.Address(), "state", meta.State)
	} else {
		m.log.Debug("member updated", "member", n.Name, "state", meta.State, "load", meta.Load)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.failed, n.Name)
	if err != nil {
		delete(m.peers, n.Name)
	} else {
		m.peers[n.Name] = meta
	}
	m.notifyLocked()
}

// NotifyConflict logs two nodes claiming one name from different addresses.
func (d *delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.m().log.Warn("node name conflict: another node claims a known name",
		"member", existing.Name, "known_addr", existing.Address(), "other_addr", other.Address())
}
