package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/cluster/membership"
	"github.com/holdfast/holdfast/cluster/natsdir"
	"github.com/holdfast/holdfast/cluster/ownership"
	"github.com/holdfast/holdfast/cluster/peer"
	"github.com/holdfast/holdfast/cluster/placement"
	"github.com/holdfast/holdfast/cluster/settings"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Deps are the node's local parts, built before the cluster starts.
type Deps struct {
	Runtime *actor.Runtime
	Store   actor.PartitionStore
	// GRPCAddr and HTTPAddr are the bound addresses announced in gossip.
	GRPCAddr string
	HTTPAddr string
	// Pool dials peers (TLS and token already configured).
	Pool *peer.Pool
	// NATS is the embedded server's config (ignored with Config.NATSURL).
	NATS natsdir.ServerConfig
	// Membership is memberlist's config (addresses, key, meta filled here).
	Membership membership.Config
	// Clock defaults to CLOCK_BOOTTIME.
	Clock clock.Clock
}

// Node is this process's membership in the cluster. Create with New, then
// hand Gate to the runtime, then Start; stop with Shutdown (idempotent).
type Node struct {
	cfg     Config
	log     *slog.Logger
	clock   clock.Clock
	gate    *gate
	metrics *metrics

	rt    *actor.Runtime
	store actor.PartitionStore
	pool  *peer.Pool
	deps  Deps

	natsSrv *natsdir.Server
	nc      *nats.Conn
	js      jetstream.JetStream
	dirPtr  atomic.Pointer[natsdir.Directory]
	members *membership.Membership

	settings        settingsRef[ratelimit.KeySettings]
	accountSettings settingsRef[*holdfastv1.AccountLimits]
	usage           Usage // usage events stream (usage.go)

	inputs chan ownership.Input
	drops  map[int]chan struct{} // pending background drops (drop.go); driver loop only
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		node      *ownership.Node
		placement *placement.Placement
		addrs     map[string]membership.Meta // by node ID
		synced    bool
		draining  bool
		leases    map[string]leaseSeen
		reach     map[string]bool
		replicas  replicaView
	}
	xfer struct {
		sync.Mutex
		sending   map[string]context.CancelFunc // handoff ID -> transfer cancel
		receiving map[string]*receiver
		arriving  map[string]int // handoff ID -> partition with complete staging
	}
	drained      chan struct{}
	drainOnce    sync.Once
	started      chan struct{} // closed when the ownership Node runs
	shutdownOnce sync.Once
	shutdownErr  error
}

type receiver struct {
	cancel context.CancelFunc
	ack    chan bool // true: acknowledged; false: dropped
}

// New validates cfg and prepares the gate; nothing runs until Start.
func New(cfg Config, partitions int) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "cluster"),
		inputs:  make(chan ownership.Input, 4096),
		drops:   map[int]chan struct{}{},
		drained: make(chan struct{}),
		started: make(chan struct{}),
		metrics: newMetrics(cfg.Registerer),
	}
	n.mu.addrs = map[string]membership.Meta{}
	n.mu.leases = map[string]leaseSeen{}
	n.mu.reach = map[string]bool{}
	n.xfer.sending = map[string]context.CancelFunc{}
	n.xfer.receiving = map[string]*receiver{}
	n.xfer.arriving = map[string]int{}
	n.gate = newGate(partitions, n.canServe, n.onHeldIdle)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// Gate is what the runtime consults before every turn.
func (n *Node) Gate() actor.Gate { return n.gate }

// ID is this node's ID.
func (n *Node) ID() string { return n.cfg.NodeID }

func (n *Node) goFunc(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

func (n *Node) canServe(p int, epoch uint64) bool {
	now := n.clock.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.node == nil {
		return false
	}
	return n.mu.node.CanServe(ownership.Partition(p), epoch, now)
}

// Start joins the cluster: NATS, gossip, then (in the background, since a
// JetStream cluster needs its peers) the directory and the ownership loop.
func (n *Node) Start(d Deps) error {
	n.deps, n.rt, n.store, n.pool = d, d.Runtime, d.Store, d.Pool
	n.clock = d.Clock
	if n.clock == nil {
		n.clock = bootClock{}
	}
	if n.cfg.NATSURL == "" {
		srv, err := natsdir.StartServer(d.NATS)
		if err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
		n.natsSrv = srv
	}
	mc := d.Membership
	mc.Meta = membership.Meta{NodeID: n.cfg.NodeID, Incarnation: uint64(time.Now().UnixNano()), Region: n.cfg.Region,
		GRPCAddr: d.GRPCAddr, HTTPAddr: d.HTTPAddr, State: membership.StateJoining}
	m, err := membership.Start(mc)
	if err != nil {
		n.stopNATS()
		return fmt.Errorf("gossip: %w", err)
	}
	n.members = m
	n.refreshMembers()
	n.goFunc(n.watchMembers)
	n.goFunc(n.loadLoop)
	n.goFunc(n.boot)
	return nil
}

// boot opens the directory (retrying while JetStream has no quorum yet),
// builds the ownership Node from the disk, and runs the loop.
func (n *Node) boot() {
	for {
		err := n.openDirectory()
		if err == nil {
			break
		}
		n.log.Warn("directory not available yet; retrying", "err", err)
		if !n.sleep(n.ctx, time.Second) {
			return
		}
	}
	disk, err := n.store.PartitionDisk()
	if err != nil {
		n.log.Error("reading partition state from disk", "err", err)
		return
	}
	on, err := ownership.New(n.ownershipConfig(), toDisk(disk))
	if err != nil {
		n.log.Error("ownership state machine", "err", err)
		return
	}
	n.mu.Lock()
	n.mu.node = on
	n.mu.Unlock()
	close(n.started)
	n.goFunc(func() {
		err := n.directory().Watch(n.ctx, func(in ownership.Input) {
			if _, ok := in.(ownership.WatchSynced); ok {
				n.mu.Lock()
				n.mu.synced = true
				n.mu.Unlock()
			}
			n.noteWatch(in)
			n.feed(in)
		})
		if err != nil && n.ctx.Err() == nil {
			n.log.Error("directory watch ended", "err", err)
		}
	})
	n.goFunc(n.pingLoop)
	n.loop()
}

func (n *Node) openDirectory() error {
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	defer cancel()
	if n.nc == nil {
		var nc *nats.Conn
		var err error
		if n.natsSrv != nil {
			nc, err = n.natsSrv.Connect("holdfast-" + n.cfg.NodeID)
		} else {
			opts := []nats.Option{nats.Name("holdfast-" + n.cfg.NodeID)}
			if n.deps.NATS.Token != "" {
				opts = append(opts, nats.Token(n.deps.NATS.Token))
			}
			if n.deps.NATS.TLS != nil {
				opts = append(opts, nats.Secure(n.deps.NATS.TLS))
			}
			nc, err = nats.Connect(n.cfg.NATSURL, opts...)
			if err == nil {
				// A client cannot read the server's sync_interval: say what
				// the directory's durability rests on.
				n.log.Warn("using an external NATS cluster: every server must run JetStream with sync_interval: always, or acknowledged ownership changes can be lost on power loss (Jepsen, NATS 2.12.1)",
					"server_version", nc.ConnectedServerVersion())
			}
		}
		if err != nil {
			return err
		}
		n.nc = nc
	}
	js, err := jetstream.New(n.nc)
	if err != nil {
		return err
	}
	dir, err := natsdir.OpenDirectory(ctx, js, natsdir.DirectoryConfig{Replicas: 1, OpTimeout: n.cfg.KVTimeout, Logger: n.log,
		OnWatchRestart: func(why string) { n.metrics.watchRestarts.WithLabelValues(why).Inc() }})
	if err != nil {
		return err
	}
	params := n.placementParams()
	if err := dir.CheckPlacement(ctx, natsdir.PlacementRecord{Partitions: params.Partitions, Hasher: placement.HasherName, Library: placement.Library, LoadFactor: params.LoadFactor, ReplicationFactor: params.ReplicationFactor}); err != nil {
		var mm *natsdir.PlacementMismatchError
		if errors.As(err, &mm) {
			n.log.Error("this node's placement parameters differ from the cluster's: refusing to join", "err", err)
			n.cancel()
		}
		return err
	}
	if _, err := natsdir.OpenSettings(ctx, js, 1); err != nil {
		return err
	}
	sc, err := settings.Open(ctx, js, settings.RateLimit, n.log)
	if err != nil {
		return err
	}
	n.settings.cache.Store(sc)
	ac, err := settings.Open(ctx, js, settings.Account, n.log)
	if err != nil {
		return err
	}
	n.accountSettings.cache.Store(ac)
	n.openUsage(js) // in the background: analytics never hold up the directory
	n.js = js
	n.dirPtr.Store(dir)
	return nil
}

func (n *Node) placementParams() placement.Params {
	p := placement.DefaultParams()
	p.Partitions = len(n.gate.parts)
	p.LoadFactor = n.cfg.LoadFactor
	return p
}

func (n *Node) ownershipConfig() ownership.Config {
	var nonce [8]byte
	rand.Read(nonce[:])
	half := len(n.gate.parts) / 2
	n.mu.Lock()
	pl := n.mu.placement
	n.mu.Unlock()
	var plc ownership.Placement = pl
	if pl == nil {
		plc = emptyPlacement{}
	}
	return ownership.Config{
		NodeID:         ownership.NodeID(n.cfg.NodeID),
		Partitions:     len(n.gate.parts),
		TTL:            n.cfg.LeaseTTL,
		Epsilon:        n.cfg.Epsilon,
		RenewInterval:  n.cfg.RenewInterval,
		RetryInterval:  n.cfg.RetryInterval,
		HandoffTimeout: n.cfg.HandoffTimeout,
		BootNonce:      hex.EncodeToString(nonce[:]),
		Placement:      plc,
		Policy: func(p ownership.Partition) ownership.OnOwnerLoss {
			if int(p) >= half {
				return ownership.OwnerLossReset
			}
			return ownership.OwnerLossWait
		},
	}
}

type emptyPlacement struct{}

func (emptyPlacement) DesiredOwner(ownership.Partition, ownership.NodeID) (ownership.NodeID, bool) {
	return "", false
}

func toDisk(d actor.PartitionDisk) ownership.Disk {
	out := ownership.Disk{Buckets: map[ownership.Partition]uint64{}, Highest: map[ownership.Partition]uint64{}}
	for p, e := range d.Stamped {
		out.Buckets[ownership.Partition(p)] = e
	}
	for p, e := range d.Highest {
		out.Highest[ownership.Partition(p)] = e
	}
	for _, s := range d.Staging {
		out.Staging = append(out.Staging, ownership.StagedHandoff{HandoffID: s.HandoffID, Partition: ownership.Partition(s.Partition),
			FromEpoch: s.FromEpoch, From: ownership.NodeID(s.From), Complete: s.Complete})
	}
	return out
}

func (n *Node) directory() *natsdir.Directory { return n.dirPtr.Load() }

// afterTick announces this node as serving once it holds a lease and its
// directory view is synced.
func (n *Node) afterTick() {
	n.mu.Lock()
	ready := n.mu.node.Incarnation() > 0 && n.mu.synced && !n.mu.draining
	n.mu.Unlock()
	if ready && n.members.Self().State == membership.StateJoining {
		n.members.Update(func(m *membership.Meta) { m.State = membership.StateServing })
		n.log.Info("cluster member serving", "node_id", n.cfg.NodeID)
	}
}

// feed queues an input for the loop; it never blocks past shutdown.
func (n *Node) feed(in ownership.Input) {
	select {
	case n.inputs <- in:
	case <-n.ctx.Done():
	}
}

// loop is the only goroutine that steps the ownership Node and executes its
// outputs.
func (n *Node) loop() {
	tick := n.cfg.RetryInterval / 2
	if tick > 250*time.Millisecond {
		tick = 250 * time.Millisecond
	}
	ticks := make(chan struct{}, 1)
	arm := func() {
		n.clock.AfterFunc(tick, func() {
			select {
			case ticks <- struct{}{}:
			default:
			}
		})
	}
	arm()
	n.step(ownership.Tick{})
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-ticks:
			arm()
			n.step(ownership.Tick{})
			n.afterTick()
		case in := <-n.inputs:
			n.step(in)
		}
	}
}

func (n *Node) step(in ownership.Input) {
	now := n.clock.Now()
	n.mu.Lock()
	before := n.mu.node.Credit()
	outs, err := n.mu.node.Step(now, in)
	credited := n.mu.node.Credit() - before
	n.mu.Unlock()
	if credited > 0 {
		n.metrics.credit.Add(credited.Seconds())
	}
	if err != nil {
		n.log.Error("ownership step refused an input", "input", fmt.Sprintf("%T", in), "err", err)
		return
	}
	for _, o := range outs {
		n.exec(o)
	}
}

// exec carries out one output. Disk outputs complete before it returns (a
// Persist is durable before the Serve after it); network outputs start a
// goroutine whose result comes back as an input.
func (n *Node) exec(o ownership.Output) {
	switch o := o.(type) {
	case ownership.KVOp:
		n.goFunc(func() {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.KVTimeout)
			defer cancel()
			sent := n.clock.Now()
			res := n.directory().Do(ctx, o)
			if o.Renewal {
				n.metrics.renewal(n.clock.Now().Sub(sent), res.Status)
			}
			n.feed(res)
		})
	case ownership.Persist:
		n.must("persist highest epoch", n.store.SetHighestEpoch(int(o.Partition), o.Epoch))
	case ownership.Serve:
		p := int(o.Partition)
		n.dropNow(p)
		n.must("stamp partition", n.store.StampPartition(p, o.Epoch))
		n.must("load partition alarms", n.rt.ServePartition(p))
		n.gate.serve(p, o.Epoch)
		n.log.Debug("serving partition", "partition", p, "epoch", o.Epoch)
	case ownership.Stop:
		n.gate.stop(int(o.Partition), "")
		n.dropLater(int(o.Partition))
	case ownership.StopAll:
		for p := range n.gate.served() {
			n.gate.stop(p, "")
			n.dropLater(p)
		}
		n.log.Warn("lease lost: stopped serving every partition")
	case ownership.Wipe:
		n.dropNow(int(o.Partition))
		n.must("wipe partition", n.store.WipePartition(int(o.Partition), o.Epoch))
	case ownership.Stamp:
		n.must("stamp partition", n.store.StampPartition(int(o.Partition), o.Epoch))
	case ownership.PromoteStaging:
		n.xfer.Lock()
		delete(n.xfer.arriving, o.HandoffID)
		n.xfer.Unlock()
		n.dropNow(int(o.Partition))
		n.must("promote staging", n.store.PromoteStaging(o.HandoffID, int(o.Partition), o.Epoch))
	case ownership.DropStaging:
		n.xfer.Lock()
		if p, ok := n.xfer.arriving[o.HandoffID]; ok {
			delete(n.xfer.arriving, o.HandoffID)
			n.gate.unarrive(p)
		}
		if r := n.xfer.receiving[o.HandoffID]; r != nil {
			delete(n.xfer.receiving, o.HandoffID)
			r.cancel()
			select {
			case r.ack <- false:
			default:
			}
		}
		n.xfer.Unlock()
		n.must("drop staging", n.store.DropStaging(o.HandoffID))
	case ownership.Hold:
		n.log.Debug("handoff: holding partition", "partition", o.Partition)
		n.gate.hold(int(o.Partition))
		// The handoff waits for the partition's turns; a deferred one
		// (a settle) ends when its writes are durable: commit them now
		// rather than after runtime.commit_defer.
		n.rt.HurryCommits()
	case ownership.Resume:
		n.log.Debug("handoff aborted: serving partition again", "partition", o.Partition)
		n.gate.resume(int(o.Partition))
	case ownership.ReleaseHeld:
		n.log.Debug("handoff: released partition", "partition", o.Partition, "new_owner", o.NotOwner)
		n.gate.stop(int(o.Partition), string(o.NotOwner))
		n.dropLater(int(o.Partition))
	case ownership.StartTransfer:
		n.startTransfer(o)
	case ownership.AbortTransfer:
		n.xfer.Lock()
		if c := n.xfer.sending[o.HandoffID]; c != nil {
			c()
			delete(n.xfer.sending, o.HandoffID)
		}
		n.xfer.Unlock()
		n.goFunc(func() { n.sendAborted(string(o.Target), o.HandoffID) })
	case ownership.AckTransfer:
		n.xfer.Lock()
		r := n.xfer.receiving[o.HandoffID]
		delete(n.xfer.receiving, o.HandoffID)
		n.xfer.Unlock()
		if r != nil {
			select {
			case r.ack <- true:
			default:
			}
		}
	case ownership.SendHandoffDone:
		n.goFunc(func() { n.sendHandoffDone(o) })
	case ownership.Drained:
		n.drainOnce.Do(func() { close(n.drained) })
	case ownership.Alert:
		n.log.Warn("ownership alert", "err", o.Err)
	default:
		n.log.Error("unknown ownership output", "output", fmt.Sprintf("%T", o))
	}
}

// must logs a failed disk output. A disk that refuses writes makes the
// node unsafe to serve: the runtime's committer fails the same way and
// /readyz reports it.
func (n *Node) must(what string, err error) {
	if err != nil {
		n.log.Error("cluster disk operation failed", "op", what, "err", err)
	}
}

// onHeldIdle runs when a held partition has no turn in flight: once its
// last write is durable the Node may start the transfer.
func (n *Node) onHeldIdle(p int) {
	n.goFunc(func() {
		if err := n.rt.WaitPartitionDurable(n.ctx, p); err != nil {
			return
		}
		n.feed(ownership.DrainedAndDurable{Partition: ownership.Partition(p)})
	})
}

// sleep waits d on the node's clock, false when ctx ended first.
func (n *Node) sleep(ctx context.Context, d time.Duration) bool {
	c := n.clock
	if c == nil {
		c = clock.Real{}
	}
	done := make(chan struct{})
	t := c.AfterFunc(d, func() { close(done) })
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

func (n *Node) stopNATS() {
	n.settings.close()
	n.accountSettings.close()
	if err := n.usage.close(); err != nil {
		n.log.Warn("usage events stream", "err", err)
	}
	if n.nc != nil {
		n.nc.Close()
	}
	if n.natsSrv != nil {
		n.natsSrv.Shutdown()
	}
}

// Shutdown drains (hands off every partition, bounded by DrainTimeout and
// ctx), leaves the gossip pool and stops NATS. Idempotent.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutdownOnce.Do(func() {
		if err := n.Drain(ctx); err != nil {
			n.log.Warn("drain incomplete at shutdown", "err", err)
			n.shutdownErr = err
		} else if len(n.gate.served()) == 0 && n.hasDrainTarget() && n.directory() != nil {
			// Handed everything off: move this server's stream replicas
			// to the others, or every stream stays a replica short.
			lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := natsdir.LeaveStreams(lctx, n.nc, n.js, n.cfg.NodeID, natsdir.Streams); err != nil {
				n.log.Warn("moving this node's stream replicas away", "err", err)
			}
			cancel()
		}
		if n.members != nil {
			n.members.Leave(2 * time.Second)
		}
		n.cancel()
		n.wg.Wait()
		if n.members != nil {
			n.members.Shutdown()
		}
		n.stopNATS()
	})
	return n.shutdownErr
}

// Config returns the node's cluster configuration.
func (n *Node) Config() Config { return n.cfg }

// GossipAddr is the bound gossip address (after Start).
func (n *Node) GossipAddr() string { return n.members.LocalAddr() }

// NATSClientURL is the embedded NATS server's client URL ("" with nats_url).
func (n *Node) NATSClientURL() string {
	if n.natsSrv == nil {
		return ""
	}
	return n.natsSrv.ClientURL()
}

// Crash stops the node abruptly, as a killed process would: no drain, no
// gossip leave, no lease release. Tests use it; the others revoke the
// lease after TTL + ε.
func (n *Node) Crash() {
	n.shutdownOnce.Do(func() {
		n.cancel()
		if n.members != nil {
			n.members.Shutdown()
		}
		n.stopNATS()
		n.wg.Wait()
	})
}

// NATSClusterAddr is the embedded NATS server's bound route address (""
// with nats_url or when it runs unclustered).
func (n *Node) NATSClusterAddr() string {
	if n.natsSrv == nil {
		return ""
	}
	return n.natsSrv.ClusterAddr()
}
