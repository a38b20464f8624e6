package actor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/actor/clock"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

type namespace struct {
	cfg         NamespaceConfig
	group       int // placement group: 1 iff on_owner_loss is reset
	idle        time.Duration
	turnSeconds prometheus.Observer
}

// Runtime runs the actors of one node. Create it with New, stop it with
// Shutdown. All methods are safe for concurrent use.
type Runtime struct {
	cfg        Config
	clock      clock.Clock
	log        *slog.Logger
	metrics    *metrics
	store      Store     // local durability
	mem        *MemStore // memory durability
	committer  *committer
	namespaces map[string]*namespace
	cells      *registry
	alarms     *alarmScheduler
	started    time.Time
	realClock  bool // cfg.Clock is clock.Real: one reading serves both clocks

	// alarmCtx is Gate.Enter's context for alarm fires: Shutdown cancels
	// it, so a fire waiting on a held partition does not hold Shutdown.
	alarmCtx    context.Context
	alarmCancel context.CancelFunc

	// calls counts the calls in flight, with callsClosed set once
	// Shutdown began (one atomic add per call on the hot path, where a
	// RWMutex and a WaitGroup cost four); drained is closed when it is
	// callsClosed and no call is in flight.
	calls        atomic.Int64
	drained      chan struct{}
	drainOnce    sync.Once
	stop         chan struct{}
	goroutines   sync.WaitGroup
	shutdownOnce sync.Once
	shutdownErr  error
}

// New starts a runtime over store (the `local` durability store; nil gives
// every local namespace an in-memory store, for tests). It schedules every
// alarm found in store's alarm index.
func New(cfg Config, store Store, namespaces []NamespaceConfig) (*Runtime, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("actor config: %w", err)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if store == nil {
		store = NewMemStore()
	}
	r := &Runtime{
		cfg:        cfg,
		clock:      cfg.Clock,
		log:        cfg.Logger,
		metrics:    newMetrics(cfg.Registerer),
		store:      store,
		mem:        NewMemStore(),
		namespaces: make(map[string]*namespace),
		cells:      newRegistry(),
		drained:    make(chan struct{}),
		stop:       make(chan struct{}),
	}
	r.started = r.clock.Now()
	r.alarmCtx, r.alarmCancel = context.WithCancel(context.Background())
	_, r.realClock = r.clock.(clock.Real)
	for _, ns := range namespaces {
		if err := ns.validate(); err != nil {
			return nil, err
		}
		if _, dup := r.namespaces[ns.Name]; dup {
			return nil, fmt.Errorf("namespace %q declared twice", ns.Name)
		}
		idle := ns.IdleTimeout
		if idle <= 0 {
			idle = cfg.IdleTimeout
		}
		r.namespaces[ns.Name] = &namespace{cfg: ns, group: ns.OnOwnerLoss.group(), idle: idle, turnSeconds: r.metrics.turnSeconds.WithLabelValues(ns.Name)}
	}
	r.committer = newCommitter(store, cfg.CommitMaxBatch, cfg.CommitDefer, r.clock, r.metrics)
	r.alarms = newAlarmScheduler(r)
	if err := r.alarms.load(); err != nil {
		return nil, fmt.Errorf("loading alarm index: %w", err)
	}
	r.goFunc(func() { r.committer.run(r.stop) })
	r.scheduleJanitor()
	return r, nil
}

// goFunc starts every goroutine of the runtime, so Shutdown can wait for all.
func (r *Runtime) goFunc(f func()) {
	r.goroutines.Add(1)
	go func() {
		defer r.goroutines.Done()
		f()
	}()
}

func (r *Runtime) storeFor(ns *namespace) Store {
	if ns.cfg.Durability == Memory {
		return r.mem
	}
	return r.store
}

// callsClosed is the bit of Runtime.calls that Shutdown sets.
const callsClosed = int64(1) << 62

// enter registers a call in flight; it fails once Shutdown began. A call
// that entered calls leave exactly once.
func (r *Runtime) enter() error {
	if r.calls.Add(1)&callsClosed != 0 {
		r.leave()
		return ErrShuttingDown
	}
	return nil
}

// leave ends a call registered by enter (or refused by it).
func (r *Runtime) leave() {
	if r.calls.Add(-1) == callsClosed {
		r.drainOnce.Do(func() { close(r.drained) })
	}
}

// Inline reports that a call to id never waits on I/O: its namespace has
// memory durability (no commit to wait for) and the runtime has no gate
// (no cluster to ask). Such a call is a few microseconds of CPU, waiting at
// most for the actor's turn lock; the API runs it on the goroutine at hand
// instead of overlapping it on another, which costs more than the call.
func (r *Runtime) Inline(id ID) bool {
	ns := r.namespaces[id.Namespace]
	return ns != nil && ns.cfg.Durability == Memory && r.cfg.Gate == nil
}

// Call delivers msg to the actor id as one turn and returns its reply, after
// the output gate: the reply leaves only when everything the turn could
// have observed is durable. Messages the runtime handles itself (alarm get,
// set, delete) work on every namespace; the rest go to the kind's Handler.
// A call for an actor on this node runs in-process on the caller's
// goroutine.
func (r *Runtime) Call(ctx context.Context, id ID, msg proto.Message) (proto.Message, error) {
	reqID := requestID(msg)
	// A literal here, not a constructor's result: it stays on the stack.
	body := func(t *Turn, c *cell) (proto.Message, error) { return r.receive(t, c, msg) }
	if r.cfg.Gate != nil {
		return r.gatedTurn(ctx, id, reqID, nil, body)
	}
	resp, _, err := r.runTurn(ctx, id, reqID, body) // the hot path: no gate, no extra frame
	return resp, err
}

type turnBody func(t *Turn, c *cell) (proto.Message, error)

// requestID is msg's request ID ("" if its message has none).
func requestID(msg proto.Message) string {
	if m, ok := msg.(requestIDer); ok {
		return m.GetRequestId()
	}
	return ""
}

// receive is the turn of a call carrying msg.
func (r *Runtime) receive(t *Turn, c *cell, msg proto.Message) (proto.Message, error) {
	if resp, ok, err := r.alarmOp(t, msg); ok {
		return resp, err
	}
	return c.handler.Receive(t, msg)
}

// turnOpts adjust an internal turn (an alarm fire); calls pass nil.
type turnOpts struct {
	// enterCtx replaces the turn's context for Gate.Enter (an alarm fire
	// runs on context.Background but must stop waiting at Shutdown).
	enterCtx context.Context
	// enterFailed is set when Gate.Enter refused the turn.
	enterFailed bool
}

func (r *Runtime) turn(ctx context.Context, id ID, reqID string, opts *turnOpts, body turnBody) (proto.Message, error) {
	if r.cfg.Gate != nil {
		return r.gatedTurn(ctx, id, reqID, opts, body)
	}
	resp, _, err := r.runTurn(ctx, id, reqID, body)
	return resp, err
}

// Outcomes of runTurn.
const (
	turnNotRun = iota // refused before the turn lock (shutdown, limits, mailbox)
	turnRan           // ran and wrote nothing
	turnWrote         // ran and enqueued a write
)

// gatedTurn runs a turn through the cluster's gate (Config.Gate): Enter
// before the turn lock, Valid after the output gate, done last. Waiting in
// Enter (a partition held for a handoff) is bounded by ctx, not by the turn
// deadline, which starts once the gate let the turn in.
func (r *Runtime) gatedTurn(ctx context.Context, id ID, reqID string, opts *turnOpts, body turnBody) (proto.Message, error) {
	p, err := r.PartitionOf(id)
	if err != nil {
		return nil, err
	}
	ectx := ctx
	if opts != nil && opts.enterCtx != nil {
		ectx = opts.enterCtx
	}
	epoch, done, err := r.cfg.Gate.Enter(ectx, p)
	if err != nil {
		if opts != nil {
			opts.enterFailed = true
		}
		return nil, err
	}
	if done != nil {
		defer done() // after the output gate and the Valid check, on every path
	}
	resp, outcome, err := r.runTurn(ctx, id, reqID, body)
	if lerr := r.lostAfterTurn(p, epoch, id, reqID, outcome, err); lerr != nil {
		return nil, lerr
	}
	return resp, err
}

// runTurn runs one turn on this node and reports how far it got, after
// the output gate.
func (r *Runtime) runTurn(ctx context.Context, id ID, reqID string, body turnBody) (proto.Message, int, error) {
	if err := r.enter(); err != nil {
		return nil, turnNotRun, err
	}
	defer r.leave()
	resp, outcome, out, err := r.runUngated(ctx, id, reqID, body)
	if werr := r.outputGate(ctx, &out); werr != nil {
		return nil, outcome, werr
	}
	return resp, outcome, err
}

// pendingOutput is what the output gate of a turn that ran needs: the
// durable sequence the turn could observe, and its bounds.
type pendingOutput struct {
	ns       *namespace // nil: the turn did not run, nothing to wait for
	id       ID
	reqID    string
	wrote    bool
	deferred bool // the turn wrote with DeferCommit: its wait does not hurry the commit
	target   uint64
	start    time.Time // the turn's arrival (turn latency)
	now      time.Time // the clock when the turn ended
	deadline time.Time
}

// outputGate waits until what the turn could observe is durable: no
// reply of any kind leaves before. Its error replaces the turn's reply.
func (r *Runtime) outputGate(ctx context.Context, out *pendingOutput) error {
	ns := out.ns
	if ns == nil {
		return nil
	}
	now := out.now
	if ns.cfg.Durability == Local && r.committer.durable.Load() < out.target {
		if werr := r.waitDurable(ctx, out.target, out.deadline, out.deferred); werr != nil {
			if errors.Is(werr, ErrStorage) {
				return werr
			}
			if out.wrote && out.reqID != "" {
				return &UnknownOutcomeError{RequestID: out.reqID, Err: werr}
			}
			return fmt.Errorf("actor %s: waiting for durability: %w (%v)", out.id, ErrTurnDeadline, werr)
		}
		now = r.clock.Now()
	}
	ns.turnSeconds.Observe(now.Sub(out.start).Seconds())
	return nil
}

// runUngated runs one turn on this node up to, not including, its output
// gate. The caller has entered the runtime (r.enter).
func (r *Runtime) runUngated(ctx context.Context, id ID, reqID string, body turnBody) (resp proto.Message, outcome int, out pendingOutput, err error) {
	ns := r.namespaces[id.Namespace]
	if ns == nil {
		return nil, turnNotRun, out, fmt.Errorf("%w %q", ErrUnknownNamespace, id.Namespace)
	}
	if len(id.Key) > r.cfg.Limits.MaxKeyBytes {
		return nil, turnNotRun, out, &LimitError{Limit: "max_key_bytes", Max: int64(r.cfg.Limits.MaxKeyBytes), Got: int64(len(id.Key)), What: "the actor key"}
	}
	if len(reqID) > 256 {
		return nil, turnNotRun, out, &LimitError{Limit: "max_request_id_bytes", Max: 256, Got: int64(len(reqID)), What: "the request id"}
	}
	start := r.clock.Now()
	// The turn deadline bounds real elapsed time, as a context deadline
	// does: it runs on the monotonic clock, not the injected protocol
	// clock, so a test's fake clock jumping forward never aborts a turn.
	// (With the real clock the two are one reading: clock reads are a
	// measurable share of a turn.)
	mono := start
	if !r.realClock {
		mono = time.Now()
	}
	deadline := mono.Add(r.cfg.Limits.TurnDeadline)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}

	var encBuf [128]byte
	enc := id.AppendEncode(encBuf[:0])
	c, created := r.cells.acquire(id, enc, r.cfg.Partitions, ns)
	if created {
		r.metrics.actorsInMemory.Set(float64(r.cells.count.Load()))
	}
	defer r.cells.release(c)

	// The mailbox: fast path when the turn lock is free or frees within a
	// short spin (turns are short: parking costs more than they do);
	// otherwise wait, bounded by depth and by the deadline (a timer is
	// armed only here).
	turnStart := start
	fast := c.lock.tryLockSpin()
	if !fast {
		depth := c.waiting.Add(1)
		r.metrics.mailboxDepth.Observe(float64(depth))
		if int(depth) > r.cfg.Limits.MailboxDepth {
			c.waiting.Add(-1)
			r.metrics.overloaded.Inc()
			return nil, turnNotRun, out, fmt.Errorf("actor %s: %w: %d calls queued (limit mailbox_depth = %d)", id, ErrOverloaded, depth-1, r.cfg.Limits.MailboxDepth)
		}
		if err := r.acquireSlow(ctx, c, deadline); err != nil {
			c.waiting.Add(-1)
			return nil, turnNotRun, out, fmt.Errorf("actor %s: waiting in the mailbox: %w (%v)", id, ErrTurnDeadline, err)
		}
		c.waiting.Add(-1)
		turnStart = r.clock.Now()
	}
	resp, wrote, end, err := r.runLocked(ctx, c, reqID, turnStart, mono, deadline, body)
	outcome = turnRan
	if wrote {
		outcome = turnWrote
	}
	target := c.turnGate
	// Only a deferred turn's own writes may wait for a commit; any other
	// turn that could observe them needs them at once.
	deferred := wrote && c.lastWriteDeferred
	now := end
	if !r.realClock || now.IsZero() {
		now = r.clock.Now()
	}
	c.lastUsed.Store(now.UnixNano())
	c.lock.unlock()
	if fast {
		// Observed after the turn lock is released: a histogram update
		// is a few atomic adds on lines other callers share.
		r.metrics.mailboxDepth.Observe(0)
	}
	out = pendingOutput{ns: ns, id: id, reqID: reqID, wrote: wrote, deferred: deferred, target: target, start: start, now: now, deadline: deadline}
	return resp, outcome, out, err
}

// acquireSlow waits for the turn lock until ctx ends or the deadline.
func (r *Runtime) acquireSlow(ctx context.Context, c *cell, deadline time.Time) error {
	return c.lock.lockSlow(ctx, deadline)
}

func (r *Runtime) waitDurable(ctx context.Context, target uint64, deadline time.Time, deferred bool) error {
	if deferred {
		return r.committer.wait(ctx, target, deadline)
	}
	return r.committer.waitUrgent(ctx, target, deadline)
}

// turnPool recycles Turns: a Turn is invalid once its handler returned, and
// allocating one (a few hundred bytes) was a measurable share of a turn.
var turnPool = sync.Pool{New: func() any { return new(Turn) }}

// runLocked runs one turn with the turn lock held. wrote reports that the
// turn enqueued a write; end is the time its handler returned, read from
// the monotonic clock as mono plus the time elapsed since (zero when the
// handler did not run).
func (r *Runtime) runLocked(ctx context.Context, c *cell, reqID string, turnStart, mono, deadline time.Time, body turnBody) (resp proto.Message, wrote bool, end time.Time, err error) {
	c.turnGate = c.lastWriteSeq
	if c.dropped {
		return nil, false, end, fmt.Errorf("actor %s: %w (its partition was dropped from this node)", c.id, ErrOwnershipLost)
	}
	if c.ns.cfg.Durability == Local {
		if err := r.committer.failed(); err != nil {
			return nil, false, end, err
		}
	}
	if c.overlay != nil && !c.overlay.empty() {
		c.overlay.prune(r.committer.durable.Load())
	}
	t := turnPool.Get().(*Turn)
	defer turnPool.Put(t) // nothing keeps t: the layers and writes copy what they keep
	*t = Turn{
		ctx:     ctx,
		id:      c.id,
		now:     turnStart,
		limits:  &r.cfg.Limits,
		store:   r.storeFor(c.ns),
		part:    c.part,
		enc:     c.enc,
		overlay: c.overlay,
		log:     r.log,
	}
	if c.ns.cfg.Durability == Memory {
		if c.mem == nil {
			c.mem = r.mem.actor(c.part, c.enc) // nil until the actor has data
		}
		t.mem = c.mem
	}
	t.writes.small = t.writesBuf[:0]
	if !c.alarmLoaded {
		a, err := loadAlarm(t)
		if err != nil {
			return nil, false, end, fmt.Errorf("actor %s: loading alarm: %w", c.id, err)
		}
		c.alarm, c.alarmLoaded = a, true
	}
	t.alarm = c.alarm
	if c.handler == nil {
		c.handler = c.ns.cfg.New(c.id)
	}

	if reqID != "" {
		if resp, ok, err := r.replay(t, reqID); err != nil || ok {
			if ok {
				r.metrics.duplicates.Inc()
			}
			return resp, false, end, err
		}
	}

	resp, err, panicked := r.safeRun(t, c, body)
	if t.gateOnReads && !t.readAll && !panicked {
		// Until it writes (below), the reply shows only what it read.
		c.turnGate = min(c.lastWriteSeq, t.readSeq)
	}
	if panicked {
		c.handler = nil // reset the actor
		return nil, false, end, &PanicError{Actor: c.id}
	}
	if err != nil {
		var abort *AbortError
		if errors.As(err, &abort) {
			return abort.Reply, false, end, nil // rolled back, answered normally
		}
		return nil, false, end, err
	}
	end = mono.Add(time.Since(mono)) // one monotonic clock read; time.Now reads two clocks
	if ctx.Err() != nil || end.After(deadline) {
		return nil, false, end, fmt.Errorf("actor %s: turn ran past its deadline (rolled back): %w", c.id, ErrTurnDeadline)
	}
	if reqID != "" {
		// Recorded even when the turn wrote nothing: its effect may be
		// outside the actor (a settings store), and a repeat must not
		// apply it again. (Callers that never resend, such as the
		// gateway's admit, send no request ID and pay no record.)
		if err := r.record(t, reqID, resp); err != nil {
			return nil, false, end, err
		}
	}
	if t.writes.empty() && !t.alarmChanged {
		return resp, false, end, nil
	}
	if err := r.commitTurn(c, t); err != nil {
		return nil, false, end, err
	}
	c.turnGate = c.lastWriteSeq
	return resp, true, end, nil
}

func (r *Runtime) safeRun(t *Turn, c *cell, body turnBody) (resp proto.Message, err error, panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			r.metrics.panics.Inc()
			r.log.Error("actor turn panicked; writes rolled back, actor reset",
				"actor", c.id.String(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			resp, err, panicked = nil, nil, true
		}
	}()
	resp, err = body(t, c)
	return resp, err, false
}

// commitTurn makes the turn's writes visible to later turns and hands them
// to the committer (local) or applies them at once (memory).
func (r *Runtime) commitTurn(c *cell, t *Turn) error {
	var alarmIndex []Op
	if t.alarmChanged && c.alarm.at != t.alarm.at {
		if c.alarm.at != 0 {
			alarmIndex = append(alarmIndex, Op{Kind: OpDelete, Key: alarmIndexKey(c.alarm.at, c.enc)})
		}
		if t.alarm.at != 0 {
			alarmIndex = append(alarmIndex, Op{Kind: OpPut, Key: alarmIndexKey(t.alarm.at, c.enc)})
		}
	}
	if c.ns.cfg.Durability == Memory {
		// Applied at once and not kept: the Write stays on the stack.
		var ops [2]Op
		w := Write{Partition: c.part, Actor: c.enc, Ops: t.writes.appendOps(ops[:0]), AlarmIndex: alarmIndex}
		c.mem = r.mem.applyVia(c.mem, &w)
	} else {
		w := t.writes.write(c.part, c.enc)
		w.AlarmIndex = alarmIndex
		seq, err := r.committer.enqueue(w, t.deferCommit)
		if err != nil {
			return err
		}
		c.overlay.mergeFrom(&t.writes, seq)
		c.lastWriteSeq = seq
		c.lastWriteDeferred = t.deferCommit
	}
	if c.alarm.at != t.alarm.at {
		if t.alarm.at != 0 {
			r.alarms.schedule(c.enc, t.alarm.at, c.part)
		} else {
			r.alarms.cancel(c.enc)
		}
	}
	c.alarm = t.alarm
	return nil
}

// Shutdown stops taking calls, lets the calls in flight finish, commits
// what is queued, and closes the store. Idempotent; later calls return the
// first result.
func (r *Runtime) Shutdown(ctx context.Context) error {
	r.shutdownOnce.Do(func() {
		if r.calls.Or(callsClosed) == 0 {
			r.drainOnce.Do(func() { close(r.drained) }) // no call in flight
		}
		r.alarmCancel()
		r.committer.hurry()
		select {
		case <-r.drained:
		case <-ctx.Done():
			r.shutdownErr = fmt.Errorf("shutdown: calls still in flight: %w", ctx.Err())
		}
		r.alarms.stop()
		close(r.stop)
		r.goroutines.Wait()
		if err := r.store.Close(); err != nil && r.shutdownErr == nil {
			r.shutdownErr = err
		}
	})
	return r.shutdownErr
}

// scheduleJanitor arms the idle-eviction pass.
func (r *Runtime) scheduleJanitor() {
	every := r.cfg.IdleTimeout / 2
	for _, ns := range r.namespaces {
		if ns.idle/2 < every {
			every = ns.idle / 2
		}
	}
	if every < 10*time.Millisecond {
		every = 10 * time.Millisecond
	}
	var arm func()
	arm = func() {
		r.clock.AfterFunc(every, func() {
			select {
			case <-r.stop:
				return
			default:
			}
			r.EvictIdle()
			arm()
		})
	}
	arm()
}

// EvictIdle removes from memory every actor idle for longer than its
// namespace's idle timeout whose writes are all durable. Its state stays in
// the store. Returns how many were evicted.
func (r *Runtime) EvictIdle() int {
	now := r.clock.Now().UnixNano()
	durable := r.committer.durable.Load()
	n := r.cells.evictIdle(func(c *cell) bool {
		// refs == 0: no turn holds or waits for the turn lock, and the last
		// one's writes to these fields happened before its release.
		return now-c.lastUsed.Load() >= int64(c.ns.idle) && c.lastWriteSeq <= durable
	})
	if n > 0 {
		r.metrics.evictions.Add(float64(n))
		r.metrics.actorsInMemory.Set(float64(r.cells.count.Load()))
	}
	return n
}

// ActorsInMemory returns how many actors are activated.
func (r *Runtime) ActorsInMemory() int64 { return r.cells.count.Load() }

// DurableSeq returns the last write sequence made durable.
func (r *Runtime) DurableSeq() uint64 { return r.committer.durable.Load() }

// HurryCommits commits the writes queued so far without waiting out
// CommitDefer for deferred ones, and treats the deferred writes queued in
// the next CommitDefer as urgent too (those of turns running now), and
// returns at once. The cluster calls it when it holds a partition for a
// handoff: the handoff waits for the partition's turns, and a deferred
// turn ends only once its writes are durable.
func (r *Runtime) HurryCommits() { r.committer.hurryWindow() }

// EnqueuedSeq returns the sequence of the last write handed to the
// committer; EnqueuedSeq − DurableSeq writes are waiting for a commit.
func (r *Runtime) EnqueuedSeq() uint64 { return r.committer.enqueued() }

// Commits returns how many group commits ran.
func (r *Runtime) Commits() int64 { return r.committer.commits.Load() }

// Healthy returns the sticky storage error, if the store failed.
func (r *Runtime) Healthy() error { return r.committer.failed() }

// Config returns the runtime's configuration.
func (r *Runtime) Config() Config { return r.cfg }

// Started returns when the runtime started.
func (r *Runtime) Started() time.Time { return r.started }

// MailboxDepth returns how many calls wait for the actor's turn lock (0 if
// it is not activated).
func (r *Runtime) MailboxDepth(id ID) int {
	c := r.cells.lookup(id.Encode())
	if c == nil {
		return 0
	}
	return int(c.waiting.Load())
}
