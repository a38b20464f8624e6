package ownership

// This file is a deterministic simulation harness for the state machine:
// a fake KV with revisions and faults, fake clocks, several nodes, a lossy
// network, disks, turns and a checker. It is not a _test file so that the
// driver's tests can reuse FakeKV and Sim. Everything runs on the calling
// goroutine from one seeded random source: the same seed replays the same
// run.

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// TB is the part of testing.TB the simulation uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

// SimConfig sets up a Sim. Zero durations get defaults.
type SimConfig struct {
	Seed       uint64
	Nodes      []NodeID
	Partitions int
	Policy     func(Partition) OnOwnerLoss

	TTL, Epsilon, RenewInterval, RetryInterval, HandoffTimeout time.Duration

	Tick         time.Duration // between two Ticks of a node (100ms)
	KVLatency    time.Duration // one way to the stream leader (5ms)
	NetLatency   time.Duration // one way between nodes (5ms)
	OpTimeout    time.Duration // the driver reports StatusUnknown after (1s)
	TransferTime time.Duration // streaming a bucket (50ms)
	// DriftPPM is each node's clock rate error, parts per million (the
	// Epsilon margin must cover twice the largest).
	DriftPPM map[NodeID]int64
}

func (c *SimConfig) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.TTL, 15*time.Second)
	def(&c.Epsilon, time.Second)
	def(&c.RenewInterval, 5*time.Second)
	def(&c.RetryInterval, 500*time.Millisecond)
	def(&c.HandoffTimeout, 5*time.Second)
	def(&c.Tick, 100*time.Millisecond)
	def(&c.KVLatency, 5*time.Millisecond)
	def(&c.NetLatency, 5*time.Millisecond)
	def(&c.OpTimeout, time.Second)
	def(&c.TransferTime, 50*time.Millisecond)
	if c.Partitions == 0 {
		c.Partitions = 8
	}
}

// SimBucket is a local bucket on a simulated disk. Its data is a lineage
// token (a fresh state gets a new one) and a count of writes.
type SimBucket struct {
	Epoch uint64
	Token uint64
	Count int
}

// SimStaging is a staging bucket on a simulated disk.
type SimStaging struct {
	Partition Partition
	FromEpoch uint64
	From      NodeID
	Complete  bool
	Token     uint64
	Count     int
}

// SimDisk is what survives a crash.
type SimDisk struct {
	Buckets map[Partition]*SimBucket
	Staging map[string]*SimStaging
	Highest map[Partition]uint64
}

// Logged is one output of a node, with the simulated time it was emitted
// and the process generation (incremented by each crash).
type Logged struct {
	At  time.Duration
	Gen int
	Out Output
}

// SimNode is one simulated node: a process (M, nil while crashed) and a disk.
type SimNode struct {
	ID      NodeID
	M       *Node
	Gen     int
	Paused  bool
	Crashed bool
	Disk    SimDisk
	Log     []Logged
	Alerts  []error
	Drained bool

	sim       *Sim
	drift     int64
	inbox     []func()
	held      map[Partition]*simHold
	turns     map[Partition]*simTurn
	watchPos  int
	snapshot  bool
	lastReach map[NodeID]bool
	nonces    int
}

type simHold struct {
	drained bool
	calls   []string
}

type simTurn struct {
	epoch uint64
	call  string
}

type simTransfer struct {
	id           string
	from, to     NodeID
	fromGen      int
	p            Partition
	token        uint64
	count        int
	dead         bool
	senderFailed bool
}

type lineage struct {
	fresh bool // the next state served must be a fresh one (reset or creation)
	token uint64
	acked int
}

// SimStats counts what happened.
type SimStats struct {
	TurnsAcked, TurnsUnknown, TurnsFailed int
	Claims, Handoffs                      int
}

// Sim is a discrete-event simulation of several nodes, a KV and a network.
type Sim struct {
	T   TB
	Cfg SimConfig
	KV  *FakeKV
	Rng *rand.Rand

	// Fault knobs, changeable at any time.
	MsgLoss   float64 // probability that a message between nodes is lost
	ReplyLoss float64 // probability that a KV reply is lost (op applied)
	OpFail    float64 // probability that a KV op is refused
	// MaxReplyDelay bounds a random extra delay of each KV reply.
	MaxReplyDelay time.Duration
	// KVFault, if set, decides the fate of each KV op before the knobs.
	KVFault func(n NodeID, op KVOp) KVFault
	// MsgFilter, if set, drops the messages for which it returns true.
	MsgFilter func(from, to NodeID, in Input) bool
	// OnOutput, if set, sees each output after the harness applied it.
	OnOutput func(n *SimNode, o Output)
	// AutoTurns is the probability, per tick and served partition, of
	// running a turn; a quarter of them span several ticks.
	AutoTurns float64
	// Verbose logs every input and output.
	Verbose bool

	Stats SimStats
	// Calls records what happened to each call started with Call.
	Calls map[string][]string

	now        time.Duration
	base       time.Time
	seq        uint64
	queue      eventQueue
	nodes      map[NodeID]*SimNode
	members    []NodeID
	placement  Placement
	cut        map[[2]NodeID]bool
	kvCut      map[NodeID]bool
	stalled    map[NodeID]bool
	kvDown     time.Duration // unavailable until then (leader election)
	lineage    map[Partition]*lineage
	epochOwner map[[2]uint64]NodeID
	transfers  map[string]*simTransfer
	tokens     uint64
	trace      []string
	checking   bool
}

// NewSim builds a simulation; call Start to boot the nodes.
func NewSim(t TB, cfg SimConfig) *Sim {
	cfg.defaults()
	s := &Sim{
		T:          t,
		Cfg:        cfg,
		KV:         NewFakeKV(),
		Rng:        rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		Calls:      map[string][]string{},
		base:       time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
		nodes:      map[NodeID]*SimNode{},
		members:    slices.Clone(cfg.Nodes),
		placement:  RendezvousPlacement{Members: slices.Clone(cfg.Nodes)},
		cut:        map[[2]NodeID]bool{},
		kvCut:      map[NodeID]bool{},
		stalled:    map[NodeID]bool{},
		lineage:    map[Partition]*lineage{},
		epochOwner: map[[2]uint64]NodeID{},
		transfers:  map[string]*simTransfer{},
	}
	s.KV.OnWrite = s.onKVWrite
	for i, id := range cfg.Nodes {
		n := &SimNode{
			ID:    id,
			sim:   s,
			drift: cfg.DriftPPM[id],
			Disk: SimDisk{Buckets: map[Partition]*SimBucket{}, Staging: map[string]*SimStaging{},
				Highest: map[Partition]uint64{}},
			Crashed: true,
		}
		s.nodes[id] = n
		// Ticks of different nodes interleave at fixed offsets.
		off := time.Duration(i) * cfg.Tick / time.Duration(len(cfg.Nodes)+1)
		s.schedule(off, func() { s.tick(n) })
	}
	return s
}

// Start boots every node that has never run.
func (s *Sim) Start() {
	for _, id := range s.Cfg.Nodes {
		if n := s.nodes[id]; n.Crashed && n.Gen == 0 {
			s.Restart(id)
		}
	}
}

// Now is the simulated (true) time since the start.
func (s *Sim) Now() time.Duration { return s.now }

// Node returns a simulated node.
func (s *Sim) Node(id NodeID) *SimNode { return s.nodes[id] }

// LocalNow is node n's clock reading now (its drift applied).
func (s *Sim) LocalNow(n *SimNode) time.Time {
	return s.base.Add(s.now + time.Duration(int64(s.now)*n.drift/1e6))
}

func (s *Sim) config(id NodeID, nonce int) Config {
	return Config{
		NodeID: id, Partitions: s.Cfg.Partitions,
		TTL: s.Cfg.TTL, Epsilon: s.Cfg.Epsilon, RenewInterval: s.Cfg.RenewInterval,
		RetryInterval: s.Cfg.RetryInterval, HandoffTimeout: s.Cfg.HandoffTimeout,
		BootNonce: fmt.Sprintf("boot%d", nonce),
		Placement: s.placement,
		Policy:    s.Cfg.Policy,
	}
}

// Crash kills node id's process; its disk stays.
func (s *Sim) Crash(id NodeID) {
	n := s.nodes[id]
	if n.Crashed {
		return
	}
	s.tracef("%s CRASH", id)
	n.M, n.Crashed, n.Paused = nil, true, false
	n.Gen++
	n.inbox, n.held, n.turns = nil, nil, nil
	for _, hid := range sortedKeys(s.transfers) {
		tr := s.transfers[hid]
		if tr.dead || (tr.from != id && tr.to != id) {
			continue
		}
		tr.dead = true
		if tr.to == id {
			s.failSender(tr)
		}
	}
}

// Restart starts a new process on node id's disk.
func (s *Sim) Restart(id NodeID) {
	n := s.nodes[id]
	if !n.Crashed {
		return
	}
	n.nonces++
	disk := Disk{Buckets: map[Partition]uint64{}, Highest: map[Partition]uint64{}}
	for p, b := range n.Disk.Buckets {
		disk.Buckets[p] = b.Epoch
	}
	for p, e := range n.Disk.Highest {
		disk.Highest[p] = e
	}
	for _, hid := range sortedKeys(n.Disk.Staging) {
		st := n.Disk.Staging[hid]
		disk.Staging = append(disk.Staging, StagedHandoff{HandoffID: hid, Partition: st.Partition,
			FromEpoch: st.FromEpoch, From: st.From, Complete: st.Complete})
	}
	m, err := New(s.config(id, n.nonces), disk)
	if err != nil {
		s.fail("restart %s: %v", id, err)
	}
	s.tracef("%s RESTART gen %d", id, n.Gen)
	n.M, n.Crashed = m, false
	n.held, n.turns = map[Partition]*simHold{}, map[Partition]*simTurn{}
	n.snapshot, n.lastReach, n.Drained = true, nil, false
}

// Pause freezes node id's process (a GC pause, a stopped VM); its clock runs on.
func (s *Sim) Pause(id NodeID) {
	if n := s.nodes[id]; !n.Crashed {
		s.tracef("%s PAUSE", id)
		n.Paused = true
	}
}

// Resume unfreezes node id; what arrived meanwhile is delivered in order.
func (s *Sim) Resume(id NodeID) {
	n := s.nodes[id]
	if n.Crashed || !n.Paused {
		return
	}
	s.tracef("%s RESUME", id)
	n.Paused = false
	for len(n.inbox) > 0 && !n.Paused && !n.Crashed {
		f := n.inbox[0]
		n.inbox = n.inbox[1:]
		f()
	}
}

// Cut stops gRPC between a and b (pings and messages), both ways.
func (s *Sim) Cut(a, b NodeID) { s.cut[[2]NodeID{a, b}], s.cut[[2]NodeID{b, a}] = true, true }

// Isolate cuts id from every other node (not from the KV).
func (s *Sim) Isolate(id NodeID) {
	for _, o := range s.Cfg.Nodes {
		if o != id {
			s.Cut(id, o)
		}
	}
}

// HealNetwork undoes every Cut and KV cut.
func (s *Sim) HealNetwork() {
	s.cut = map[[2]NodeID]bool{}
	s.kvCut = map[NodeID]bool{}
}

// CutKV makes node id unable to reach the KV (its ops fail, its watch stalls).
func (s *Sim) CutKV(id NodeID, cut bool) { s.kvCut[id] = cut }

// StallWatch holds back node id's watch events (a lagging consumer) until
// called again with false.
func (s *Sim) StallWatch(id NodeID, stall bool) { s.stalled[id] = stall }

// KVUnavailable simulates a JetStream leader election lasting d: ops fail
// or time out without being applied, watches stall.
func (s *Sim) KVUnavailable(d time.Duration) {
	s.tracef("KV UNAVAILABLE for %v", d)
	s.kvDown = max(s.kvDown, s.now+d)
}

// KVAvailable tells whether the KV answers now.
func (s *Sim) KVAvailable() bool { return s.now >= s.kvDown }

// SetMembers makes the placement a RendezvousPlacement over ids and tells
// every node.
func (s *Sim) SetMembers(ids ...NodeID) {
	s.members = slices.Clone(ids)
	s.SetPlacement(RendezvousPlacement{Members: slices.Clone(ids)})
}

// SetPlacement changes the desired map and tells every node (a paused node
// when it resumes; a restarted node gets it in its Config).
func (s *Sim) SetPlacement(pl Placement) {
	s.placement = pl
	s.tracef("PLACEMENT %+v", pl)
	for _, id := range s.Cfg.Nodes {
		n := s.nodes[id]
		s.deliver(n, n.Gen, func() { s.step(n, SetPlacement{Placement: pl}) })
	}
}

// Placement returns the current desired map.
func (s *Sim) Placement() Placement { return s.placement }

// Pin moves the desired owner of p to id (the rest stays as it is).
func (s *Sim) Pin(p Partition, id NodeID) {
	base := s.placement
	fixed := map[Partition]NodeID{}
	if o, ok := base.(OverridePlacement); ok {
		base = o.Base
		for k, v := range o.Fixed {
			fixed[k] = v
		}
	}
	fixed[p] = id
	s.SetPlacement(OverridePlacement{Base: base, Fixed: fixed})
}

// Members returns the placement's member list.
func (s *Sim) Members() []NodeID { return slices.Clone(s.members) }

// Drain sends Drain to node id.
func (s *Sim) Drain(id NodeID) {
	n := s.nodes[id]
	s.deliver(n, n.Gen, func() { s.step(n, Drain{}) })
}

// After runs fn (a test's fault injection, say) d from now.
func (s *Sim) After(d time.Duration, fn func()) { s.schedule(d, fn) }

// RunFor advances the simulation by d.
func (s *Sim) RunFor(d time.Duration) {
	end := s.now + d
	for len(s.queue) > 0 && s.queue[0].at <= end {
		ev := heap.Pop(&s.queue).(*simEvent)
		s.now = ev.at
		ev.fn()
	}
	s.now = end
}

// RunUntil advances until cond holds (checked after every event) or limit
// passes; it reports whether cond held.
func (s *Sim) RunUntil(cond func() bool, limit time.Duration) bool {
	end := s.now + limit
	if cond() {
		return true
	}
	for len(s.queue) > 0 && s.queue[0].at <= end {
		ev := heap.Pop(&s.queue).(*simEvent)
		s.now = ev.at
		ev.fn()
		if cond() {
			return true
		}
	}
	s.now = end
	return cond()
}

// Serving returns the nodes for which CanServe holds now for p, with epochs.
func (s *Sim) Serving(p Partition) (ids []NodeID, epochs []uint64) {
	for _, id := range s.Cfg.Nodes {
		n := s.nodes[id]
		if n.Crashed {
			continue
		}
		if e, ok := n.M.Epoch(p); ok && n.M.CanServe(p, e, s.LocalNow(n)) {
			ids, epochs = append(ids, id), append(epochs, e)
		}
	}
	return ids, epochs
}

// Owner returns the single node serving p now, if exactly one does.
func (s *Sim) Owner(p Partition) (NodeID, uint64, bool) {
	ids, es := s.Serving(p)
	if len(ids) != 1 {
		return "", 0, false
	}
	return ids[0], es[0], true
}

// AllServed tells whether every partition has exactly one serving node.
func (s *Sim) AllServed() bool {
	for p := 0; p < s.Cfg.Partitions; p++ {
		if _, _, ok := s.Owner(Partition(p)); !ok {
			return false
		}
	}
	return true
}

// Outputs returns the outputs node id emitted that match f.
func (s *Sim) Outputs(id NodeID, f func(Logged) bool) []Logged {
	var out []Logged
	for _, l := range s.nodes[id].Log {
		if f == nil || f(l) {
			out = append(out, l)
		}
	}
	return out
}

// StartTurn starts a turn on p at node id lasting d (0: commits at once),
// as the runtime would: only if CanServe holds and p is not held. call, if
// not empty, names the call for Calls.
func (s *Sim) StartTurn(id NodeID, p Partition, d time.Duration, call string) bool {
	n := s.nodes[id]
	if n.Crashed || n.Paused {
		return false
	}
	if h := n.held[p]; h != nil {
		if call != "" {
			h.calls = append(h.calls, call)
			s.Calls[call] = append(s.Calls[call], "held@"+string(id))
		}
		return false
	}
	e, ok := n.M.Epoch(p)
	if !ok || n.turns[p] != nil || !n.M.CanServe(p, e, s.LocalNow(n)) {
		return false
	}
	n.turns[p] = &simTurn{epoch: e, call: call}
	if d == 0 {
		s.commitTurn(n, p)
		return true
	}
	gen := n.Gen
	s.schedule(d, func() { s.deliver(n, gen, func() { s.commitTurn(n, p) }) })
	return true
}

// Call is a client call to p at node id, run at once as a turn, held if
// the partition is held.
func (s *Sim) Call(id NodeID, p Partition, call string) bool {
	return s.StartTurn(id, p, 0, call)
}

func (s *Sim) commitTurn(n *SimNode, p Partition) {
	t := n.turns[p]
	if t == nil {
		return
	}
	delete(n.turns, p)
	defer s.checkHolds(n)
	b := n.Disk.Buckets[p]
	if b == nil || b.Epoch != t.epoch {
		s.Stats.TurnsFailed++
		return
	}
	// The runtime checks again after the commit, before the reply leaves.
	if !n.M.CanServe(p, t.epoch, s.LocalNow(n)) {
		b.Count++ // committed locally, reply is "unknown outcome"
		s.Stats.TurnsUnknown++
		s.tracef("%s turn on partition %d at epoch %d: unknown outcome", n.ID, p, t.epoch)
		if t.call != "" {
			s.Calls[t.call] = append(s.Calls[t.call], "unknown@"+string(n.ID))
		}
		return
	}
	lin := s.lineage[p]
	switch {
	case lin == nil:
		s.fail("partition %d served at %s epoch %d but never created in the KV", p, n.ID, t.epoch)
	case lin.fresh:
		// Any state born after the lineage it replaces will do (it may hold
		// writes whose outcome was unknown); an older one is a resurrection.
		if b.Token <= lin.token {
			s.fail("partition %d: %s epoch %d serves lineage %d (%d writes) where a state fresher than %d is due (resurrection)",
				p, n.ID, t.epoch, b.Token, b.Count, lin.token)
		}
		lin.fresh, lin.token, lin.acked = false, b.Token, 0
	case b.Token != lin.token:
		s.fail("partition %d: %s epoch %d serves lineage %d, current is %d (resurrected or lost state)",
			p, n.ID, t.epoch, b.Token, lin.token)
	case b.Count < lin.acked:
		s.fail("partition %d: %s epoch %d has %d writes, %d were acknowledged (lost writes)",
			p, n.ID, t.epoch, b.Count, lin.acked)
	}
	b.Count++
	lin.acked = b.Count
	s.Stats.TurnsAcked++
	if t.call != "" {
		s.Calls[t.call] = append(s.Calls[t.call], "executed@"+string(n.ID))
	}
}

// onKVWrite tracks when a partition's state legitimately starts afresh: at
// creation and at a claim under reset (owner changes without a handoff).
func (s *Sim) onKVWrite(c KVChange, prev *KVChange) {
	if c.Key.Kind != EntryKeyKind || c.Entry == nil {
		return
	}
	p := c.Key.Partition
	fresh := prev == nil || prev.Entry == nil ||
		(c.Entry.Owner != prev.Entry.Owner && c.Entry.HandoffID == "" && !c.Entry.Orphaned)
	if fresh {
		s.Stats.Claims++
		if s.lineage[p] == nil {
			s.lineage[p] = &lineage{}
		}
		s.lineage[p].fresh = true
	}
	if c.Entry.HandoffID != "" && (prev == nil || prev.Entry == nil || prev.Entry.HandoffID != c.Entry.HandoffID) {
		s.Stats.Handoffs++
	}
	s.tracef("KV rev %d %s = %+v", c.Rev, c.Key, *c.Entry)
}

// --- events ---

type simEvent struct {
	at  time.Duration
	seq uint64
	fn  func()
}

type eventQueue []*simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	ev := old[len(old)-1]
	*q = old[:len(old)-1]
	return ev
}

// schedule runs fn d from now.
func (s *Sim) schedule(d time.Duration, fn func()) {
	s.seq++
	heap.Push(&s.queue, &simEvent{at: s.now + d, seq: s.seq, fn: fn})
}

// deliver runs fn on node n now, if it is still the same process; a paused
// process gets it when it resumes.
func (s *Sim) deliver(n *SimNode, gen int, fn func()) {
	if n.Crashed || n.Gen != gen {
		return
	}
	if n.Paused {
		n.inbox = append(n.inbox, fn)
		return
	}
	fn()
}

func (s *Sim) linkUp(a, b NodeID) bool { return !s.cut[[2]NodeID{a, b}] }

// send delivers a message from one node to another after NetLatency unless
// it is lost.
func (s *Sim) send(from, to NodeID, in Input) {
	dst := s.nodes[to]
	if dst == nil || !s.linkUp(from, to) || s.Rng.Float64() < s.MsgLoss ||
		(s.MsgFilter != nil && s.MsgFilter(from, to, in)) {
		s.tracef("LOST %s->%s %T%+v", from, to, in, in)
		return
	}
	gen := dst.Gen
	s.schedule(s.Cfg.NetLatency, func() { s.deliver(dst, gen, func() { s.step(dst, in) }) })
}

func (s *Sim) tick(n *SimNode) {
	s.schedule(s.Cfg.Tick, func() { s.tick(n) })
	if n.Crashed || n.Paused {
		return
	}
	s.deliverWatch(n)
	s.updateReach(n)
	s.step(n, Tick{})
	if s.AutoTurns > 0 {
		for p := 0; p < s.Cfg.Partitions; p++ {
			if s.Rng.Float64() < s.AutoTurns {
				d := time.Duration(0)
				if s.Rng.IntN(4) == 0 {
					d = time.Duration(1+s.Rng.IntN(3)) * s.Cfg.Tick
				}
				s.StartTurn(n.ID, Partition(p), d, "")
			}
		}
	}
	s.checkHolds(n)
}

func (s *Sim) deliverWatch(n *SimNode) {
	if s.kvCut[n.ID] || s.stalled[n.ID] || !s.KVAvailable() {
		return // the watch stalls
	}
	if n.snapshot {
		n.snapshot = false
		n.watchPos = len(s.KV.Log)
		for _, c := range s.KV.Snapshot() {
			s.step(n, WatchEvent{Key: c.Key, Rev: c.Rev, Lease: clonePtr(c.Lease), Entry: clonePtr(c.Entry)})
			if n.Crashed || n.Paused {
				return
			}
		}
		s.step(n, WatchSynced{})
		return
	}
	for n.watchPos < len(s.KV.Log) && !n.Crashed && !n.Paused {
		c := s.KV.Log[n.watchPos]
		n.watchPos++
		s.step(n, WatchEvent{Key: c.Key, Rev: c.Rev, Lease: clonePtr(c.Lease), Entry: clonePtr(c.Entry)})
	}
}

func (s *Sim) updateReach(n *SimNode) {
	r := map[NodeID]bool{}
	for _, id := range s.Cfg.Nodes {
		o := s.nodes[id]
		if id != n.ID && !o.Crashed && !o.Paused && s.linkUp(n.ID, id) && s.linkUp(id, n.ID) {
			r[id] = true
		}
	}
	if n.lastReach != nil && mapsEqual(r, n.lastReach) {
		return
	}
	n.lastReach = r
	s.step(n, Reachability{Reachable: r})
}

func mapsEqual(a, b map[NodeID]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func (s *Sim) checkHolds(n *SimNode) {
	if n.Crashed || n.Paused {
		return
	}
	for _, p := range sortedKeys(n.held) {
		h := n.held[p]
		if h != nil && !h.drained && n.turns[p] == nil {
			h.drained = true
			// Delivered as its own event, like the runtime's notification.
			gen := n.Gen
			s.schedule(0, func() { s.deliver(n, gen, func() { s.step(n, DrainedAndDurable{Partition: p}) }) })
		}
	}
}

// step feeds one input to node n, applies the outputs and checks the
// invariants.
func (s *Sim) step(n *SimNode, in Input) {
	if n.M == nil {
		return
	}
	if s.Verbose {
		s.T.Logf("%9v %s <- %T%+v", s.now, n.ID, in, in)
	}
	outs, err := n.M.Step(s.LocalNow(n), in)
	if err != nil {
		s.fail("%s: step %T: %v", n.ID, in, err)
	}
	gen := n.Gen
	for _, o := range outs {
		if n.Gen != gen {
			break
		}
		n.Log = append(n.Log, Logged{At: s.now, Gen: gen, Out: o})
		s.tracef("%s -> %T%+v", n.ID, o, o)
		s.apply(n, o)
		if s.OnOutput != nil {
			s.OnOutput(n, o)
		}
	}
	s.Check()
}

func (s *Sim) newToken() uint64 {
	s.tokens++
	return s.tokens
}

// apply executes one output the way a driver would.
func (s *Sim) apply(n *SimNode, o Output) {
	d := &n.Disk
	switch o := o.(type) {
	case KVOp:
		s.submitKV(n, o)
	case Persist:
		if o.Epoch < d.Highest[o.Partition] {
			s.fail("%s persisted epoch %d for partition %d below %d", n.ID, o.Epoch, o.Partition, d.Highest[o.Partition])
		}
		d.Highest[o.Partition] = o.Epoch
	case Serve:
		if o.Epoch < d.Highest[o.Partition] {
			s.fail("%s serves partition %d at epoch %d below persisted %d", n.ID, o.Partition, o.Epoch, d.Highest[o.Partition])
		}
		b := d.Buckets[o.Partition]
		if b == nil {
			b = &SimBucket{Token: s.newToken()}
			d.Buckets[o.Partition] = b
		}
		b.Epoch = o.Epoch
	case Wipe:
		if o.Epoch == 0 {
			delete(d.Buckets, o.Partition)
		} else {
			d.Buckets[o.Partition] = &SimBucket{Epoch: o.Epoch, Token: s.newToken()}
		}
	case Stamp:
		b := d.Buckets[o.Partition]
		if b == nil || b.Epoch+1 != o.Epoch {
			s.fail("%s stamps partition %d with epoch %d but its bucket is %+v", n.ID, o.Partition, o.Epoch, b)
		}
		b.Epoch = o.Epoch
	case PromoteStaging:
		st := d.Staging[o.HandoffID]
		if st == nil || !st.Complete || st.Partition != o.Partition {
			s.fail("%s promotes staging %s of partition %d which is not a complete staging of it (%+v)", n.ID, o.HandoffID, o.Partition, st)
		}
		d.Buckets[o.Partition] = &SimBucket{Epoch: o.Epoch, Token: st.Token, Count: st.Count}
		delete(d.Staging, o.HandoffID)
	case DropStaging:
		delete(d.Staging, o.HandoffID)
		if tr := s.transfers[o.HandoffID]; tr != nil && !tr.dead && tr.to == n.ID {
			tr.dead = true
			s.failSender(tr)
		}
	case Hold:
		n.held[o.Partition] = &simHold{}
	case Resume:
		if h := n.held[o.Partition]; h != nil {
			delete(n.held, o.Partition)
			for _, c := range h.calls {
				s.Calls[c] = append(s.Calls[c], "resumed@"+string(n.ID))
				s.StartTurn(n.ID, o.Partition, 0, c)
			}
		}
	case ReleaseHeld:
		if h := n.held[o.Partition]; h != nil {
			delete(n.held, o.Partition)
			for _, c := range h.calls {
				s.Calls[c] = append(s.Calls[c], fmt.Sprintf("not-owner@%s->%s", n.ID, o.NotOwner))
			}
		}
	case StartTransfer:
		s.startTransfer(n, o)
	case AbortTransfer:
		if tr := s.transfers[o.HandoffID]; tr != nil {
			tr.dead = true
		}
		s.send(n.ID, o.Target, HandoffAborted{HandoffID: o.HandoffID})
	case AckTransfer:
		s.send(n.ID, o.To, TransferAcked{HandoffID: o.HandoffID})
	case SendHandoffDone:
		s.send(n.ID, o.To, HandoffDone{HandoffID: o.HandoffID, Partition: o.Partition, Epoch: o.Epoch, From: n.ID})
	case Drained:
		n.Drained = true
	case Alert:
		n.Alerts = append(n.Alerts, o.Err)
	case Stop, StopAll:
		// Running turns find out at their commit check.
	default:
		s.fail("%s: unknown output %T", n.ID, o)
	}
}

func (s *Sim) startTransfer(n *SimNode, o StartTransfer) {
	b := n.Disk.Buckets[o.Partition]
	if b == nil || b.Epoch != o.Epoch {
		s.fail("%s streams partition %d at epoch %d but its bucket is %+v", n.ID, o.Partition, o.Epoch, b)
	}
	if n.turns[o.Partition] != nil {
		s.fail("%s streams partition %d while a turn is running", n.ID, o.Partition)
	}
	tr := &simTransfer{id: o.HandoffID, from: n.ID, fromGen: n.Gen, to: o.Target, p: o.Partition, token: b.Token, count: b.Count}
	s.transfers[o.HandoffID] = tr
	dst := s.nodes[o.Target]
	if dst == nil || dst.Crashed || !s.linkUp(n.ID, o.Target) || s.Rng.Float64() < s.MsgLoss {
		tr.dead = true
		if s.Rng.IntN(2) == 0 {
			s.failSender(tr) // the stream reports the break; else the handoff times out
		}
		return
	}
	gen := dst.Gen
	s.schedule(s.Cfg.NetLatency, func() {
		s.deliver(dst, gen, func() {
			if tr.dead {
				return
			}
			dst.Disk.Staging[tr.id] = &SimStaging{Partition: tr.p, FromEpoch: o.Epoch, From: n.ID}
			s.step(dst, StagingStarted{HandoffID: tr.id, Partition: tr.p, FromEpoch: o.Epoch, From: n.ID})
			if tr.dead {
				return
			}
			s.schedule(s.Cfg.TransferTime, func() {
				s.deliver(dst, gen, func() {
					st := dst.Disk.Staging[tr.id]
					if tr.dead || st == nil {
						return
					}
					st.Token, st.Count, st.Complete = tr.token, tr.count, true
					s.step(dst, StagingCompleted{HandoffID: tr.id})
				})
			})
		})
	})
}

func (s *Sim) failSender(tr *simTransfer) {
	if tr.senderFailed {
		return
	}
	tr.senderFailed = true
	src := s.nodes[tr.from]
	gen := tr.fromGen
	s.schedule(s.Cfg.NetLatency, func() { s.deliver(src, gen, func() { s.step(src, TransferFailed{HandoffID: tr.id}) }) })
}

func (s *Sim) submitKV(n *SimNode, op KVOp) {
	gen := n.Gen
	var f KVFault
	if s.KVFault != nil {
		f = s.KVFault(n.ID, op)
	}
	if s.Rng.Float64() < s.ReplyLoss {
		f.LoseReply = true
	}
	if s.Rng.Float64() < s.OpFail {
		f.Fail = true
	}
	if s.MaxReplyDelay > 0 && f.ReplyDelay == 0 {
		f.ReplyDelay = time.Duration(s.Rng.Int64N(int64(s.MaxReplyDelay)))
	}
	answered := false
	answer := func(r KVResult) {
		if answered {
			return
		}
		answered = true
		r.Op = op.ID
		s.deliver(n, gen, func() { s.step(n, r) })
	}
	// The driver gives up waiting after OpTimeout: unknown outcome.
	s.schedule(s.Cfg.OpTimeout, func() { answer(KVResult{Status: StatusUnknown}) })
	s.schedule(s.Cfg.KVLatency+f.Delay, func() {
		switch {
		case f.Fail || s.kvCut[n.ID]:
			s.schedule(s.Cfg.KVLatency, func() { answer(KVResult{Status: StatusFailed}) })
			return
		case !s.KVAvailable():
			if s.Rng.IntN(2) == 0 {
				s.schedule(s.Cfg.KVLatency, func() { answer(KVResult{Status: StatusFailed}) })
			}
			return // else: times out, never applied
		}
		res := s.KV.Apply(op, s.now)
		s.tracef("%s op#%d %s %s -> %s rev %d", n.ID, op.ID, op.Kind, op.Key, res.Status, res.Rev)
		if f.LoseReply {
			s.tracef("%s op#%d reply lost", n.ID, op.ID)
			return
		}
		s.schedule(s.Cfg.KVLatency+f.ReplyDelay, func() { answer(res) })
	})
}

// Check asserts the safety invariants at this instant: no partition has two
// nodes for which CanServe holds; no node serves below an epoch it has
// persisted; an epoch of a partition is only ever served by one node; a
// served partition's bucket is stamped with the served epoch.
func (s *Sim) Check() {
	if s.checking {
		return
	}
	s.checking = true
	defer func() { s.checking = false }()
	for p := 0; p < s.Cfg.Partitions; p++ {
		var who []string
		for _, id := range s.Cfg.Nodes {
			n := s.nodes[id]
			if n.Crashed {
				continue
			}
			e, ok := n.M.Epoch(Partition(p))
			if !ok || !n.M.CanServe(Partition(p), e, s.LocalNow(n)) {
				continue
			}
			who = append(who, fmt.Sprintf("%s@%d", id, e))
			if h := n.Disk.Highest[Partition(p)]; e < h {
				s.fail("%s can serve partition %d at epoch %d below its persisted %d", id, p, e, h)
			}
			if b := n.Disk.Buckets[Partition(p)]; b == nil || b.Epoch != e {
				s.fail("%s can serve partition %d at epoch %d but its bucket is %+v", id, p, e, b)
			}
			k := [2]uint64{uint64(p), e}
			if o, ok := s.epochOwner[k]; ok && o != id {
				s.fail("partition %d epoch %d served by %s and, earlier, by %s", p, e, id, o)
			}
			s.epochOwner[k] = id
		}
		if len(who) > 1 {
			s.fail("partition %d can be served by %s at once", p, strings.Join(who, " and "))
		}
	}
}

func (s *Sim) tracef(format string, args ...any) {
	line := fmt.Sprintf("%9v ", s.now) + fmt.Sprintf(format, args...)
	if s.Verbose {
		s.T.Logf("%s", line)
	}
	s.trace = append(s.trace, line)
	if len(s.trace) > 400 {
		s.trace = s.trace[len(s.trace)-300:]
	}
}

func (s *Sim) fail(format string, args ...any) {
	s.T.Helper()
	tail := s.trace
	if len(tail) > 150 {
		tail = tail[len(tail)-150:]
	}
	s.T.Fatalf("seed %d, at %v: %s\nrecent events:\n%s", s.Cfg.Seed, s.now, fmt.Sprintf(format, args...), strings.Join(tail, "\n"))
}
