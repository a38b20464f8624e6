package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/trace"
	"sync"
	"time"

	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/api"
	"github.com/holdfast/holdfast/gateway/envelope"
	"github.com/holdfast/holdfast/gateway/h1"
	"github.com/holdfast/holdfast/gateway/pricing"
	"github.com/holdfast/holdfast/gateway/usage"
	"github.com/prometheus/client_golang/prometheus"
)

// HeaderRequestID carries the gateway's own request ID on every answer.
const HeaderRequestID = "X-Holdfast-Request-Id"

// HeaderProvider selects a provider by name, overriding model routing.
const HeaderProvider = "X-Holdfast-Provider"

// Gateway is the HTTP front door to the LLM providers. Safe for
// concurrent use.
type Gateway struct {
	cfg      Config
	all      []*provider
	byFamily map[envelope.Family][]*provider
	prices   *pricing.Table
	retired  *pricing.Retirements
	caller   api.Caller
	early    EarlyCaller // nil: admits wait for their commit
	// deferFrom is the first-byte time from which a provider's admits
	// defer their commit (admitdefer.go); 0: never.
	deferFrom time.Duration
	log       *slog.Logger
	clk       clock.Clock
	sleep     func(context.Context, time.Duration) error
	client    *http.Client
	h1        *h1.Transport // plain http:// providers (gateway.upstream_client auto), or nil
	m         *metrics
	events    EventSink // nil: no usage events
	sample    *sampler  // successes published

	remaining *lru[string, admitState] // (user, key ID) → bucket after the last admit
	cacheSeen *lru[uint64, time.Time]  // prompt-prefix hash → last cache read

	inflight inflight  // calls being served or settled
	adm      admission // calls being served: gateway.max_concurrent_calls

	// settler batches each user's settles (settle.go).
	settler settler
	// settles holds a slot per settle turn in flight to the account
	// actors (at most one per user: settler). Settles run after the
	// response, so nothing slows them down when calls arrive faster than
	// they settle; unbounded, they would fill the actors' mailboxes
	// (limits.mailbox_depth) and get admits, which a client is waiting
	// for, refused with 529. Queued here instead, they wait in the
	// gateway's memory.
	settles chan struct{}
}

// maxSettlesInFlight leaves most of an actor's default mailbox (1024) to
// admits, and is far above what group commit needs to batch them (a
// commit takes about a millisecond).
const maxSettlesInFlight = 256

// inflight counts calls from arrival until their settle and log line are
// done. Unlike a WaitGroup it may be waited on while calls come and go.
type inflight struct {
	mu      sync.Mutex
	n       int
	waiters []chan struct{}
}

func (f *inflight) add(d int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n += d
	if f.n == 0 {
		for _, w := range f.waiters {
			close(w)
		}
		f.waiters = nil
	}
}

func (f *inflight) idle() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := make(chan struct{})
	if f.n == 0 {
		close(ch)
	} else {
		f.waiters = append(f.waiters, ch)
	}
	return ch
}

// New builds a gateway. providers nil or empty means DefaultProviders();
// prices and retired nil mean the built-in tables. caller reaches the
// account actors; it may be nil only with auth none (no accounting).
func New(cfg Config, providers map[string]ProviderConfig, prices *pricing.Table, retired *pricing.Retirements, caller api.Caller, opts Options) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(providers) == 0 {
		providers = DefaultProviders()
	}
	if err := ValidateProviders(providers, cfg.Auth != AuthBYOK); err != nil {
		return nil, err
	}
	if cfg.Auth == AuthNone && !cfg.ForceNoAuth && !isLoopback(opts.BindAddr) {
		addr := opts.BindAddr
		if addr == "" {
			addr = "an unknown address"
		}
		return nil, fmt.Errorf("gateway.auth is none but the gateway listens on %s, not loopback: set gateway.auth to keys or byok, or gateway.force_no_auth: true", addr)
	}
	if caller == nil && cfg.Auth != AuthNone {
		return nil, fmt.Errorf("gateway.auth %s needs the account actors: no api.Caller given", cfg.Auth)
	}
	if prices == nil {
		prices = pricing.DefaultTable()
	}
	if retired == nil {
		retired = pricing.DefaultRetirements()
	}
	g := &Gateway{
		cfg: cfg, prices: prices, retired: retired, caller: caller, early: opts.Early,
		log: opts.Logger, clk: opts.Clock, sleep: opts.Sleep, client: opts.HTTPClient,
		remaining: newLRU[string, admitState](100_000),
		cacheSeen: newLRU[uint64, time.Time](65_536),
		sample:    &sampler{rate: cfg.UsageEvents.SuccessSampleRate},
		settles:   make(chan struct{}, maxSettlesInFlight),
		deferFrom: deferThreshold(cfg, opts),
	}
	g.adm.limit = concurrencyLimit(cfg.MaxConcurrentCalls, openFileLimit())
	if cfg.UsageEvents.Enabled {
		g.events = opts.Events
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.clk == nil {
		g.clk = clock.Real{}
	}
	if g.sleep == nil {
		g.sleep = clockSleep(g.clk)
	}
	if g.client == nil {
		tr := opts.Transport
		if tr == nil {
			tr = defaultTransport()
			if cfg.UpstreamClient == UpstreamClientAuto {
				h, err := h1.New(h1.DefaultConfig())
				if err != nil {
					return nil, fmt.Errorf("gateway upstream client: %w", err)
				}
				g.h1 = h
			}
		}
		g.client = &http.Client{
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = lookupEnv
	}
	if err := g.buildProviders(providers, lookup); err != nil {
		return nil, err
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("gateway metrics: %w", err)
	}
	active := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "holdfast", Subsystem: "gateway", Name: "calls_active",
		Help: "Calls being served (arrival to the end of the response); bounded by gateway.max_concurrent_calls."},
		func() float64 { return float64(g.adm.active.Load()) })
	if err := reg.Register(active); err != nil {
		return nil, fmt.Errorf("gateway metrics: %w", err)
	}
	g.m = m
	return g, nil
}

// Handler serves the provider routes and answers anything else under
// /v1/ and /v1beta/ with 404 in the family's envelope. Mount it at both
// prefixes; /v1/actors/ stays the node's.
func (g *Gateway) Handler() http.Handler { return http.HandlerFunc(g.serveHTTP) }

// Close waits until no call is in flight — being served, or settling
// with its account actor after its response — or for ctx. Call it after
// the HTTP server's Shutdown, so that no call starts meanwhile; requests
// arriving after Close are still served.
func (g *Gateway) Close(ctx context.Context) error {
	if g.h1 != nil {
		defer g.h1.CloseIdleConnections() // a later call dials again
	}
	select {
	case <-g.inflight.idle():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call is the state of one request, from arrival to its log line.
type call struct {
	g     *Gateway
	w     http.ResponseWriter
	r     *http.Request
	id    string
	start time.Time
	rt    route
	fam   envelope.Family

	// policy
	user    string
	keyID   string
	keyHash []byte
	clientK string // byok: the client's provider key

	// request
	p           *provider
	model       string // as routed and priced (after a redirect)
	requested   string // as the client asked
	body        *body
	stream      bool
	inserted    bool // include_usage inserted: drop the usage chunk
	estimated   bool // usage figures are estimates
	inEst       int64
	outEst      int64
	spendEst    int64
	exactInput  bool // inEst came from count_tokens
	countBody   []byte
	prefixHash  uint64
	hasPrefix   bool
	upstreamKey string
	admitted    bool
	admitGate   *pendingAdmit // the admit's output gate, until waitAdmit
	admitErr    error         // the admit did not become durable

	// outcome
	status     int
	failure    string
	attempts   int
	retries    int
	usage      usage.Usage
	usageSeen  bool
	cost       int64
	ttfb       time.Duration
	upstream   time.Duration
	eventsOut  int
	abort      bool
	detail     string // internal detail for the log; never a key or a body
	silentMiss bool

	// relay state, kept in the call to save allocations
	rc *http.ResponseController
	cw clientWriter
}

func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	route := trace.StartRegion(r.Context(), "gateway.route")
	g.inflight.add(1)
	c := &call{g: g, w: w, r: r, id: api.NewRequestID(), start: g.clk.Now()}
	w.Header().Set(HeaderRequestID, c.id)
	if !g.adm.enter() {
		route.End()
		if fam, known := envelope.FamilyForPath(r.URL.Path); known {
			c.fam = fam
		} else {
			c.fam = envelope.OpenAI
		}
		c.refuse(overloaded())
		c.finish()
		return
	}
	defer g.adm.leave()
	rt, ok := matchRoute(r)
	route.End()
	if !ok {
		fam, known := envelope.FamilyForPath(r.URL.Path)
		if !known {
			fam = envelope.OpenAI
		}
		c.fam = fam
		c.refuse(refusal{kind: envelope.NotFound, failure: "not_found",
			msg: fmt.Sprintf("No route for %s %s on this gateway.", r.Method, r.URL.Path)})
		c.finish()
		return
	}
	c.rt, c.fam = rt, rt.op.family()
	func() {
		defer func() {
			if c.body != nil {
				c.body.Close()
			}
		}()
		c.serve()
	}()
	_ = c.waitAdmit() // every path waits on the admit's gate once
	c.finish()
	if c.abort {
		// The upstream broke off mid-stream: end the client's stream the
		// same way, so its SDK reports an error instead of a clean end.
		panic(http.ErrAbortHandler)
	}
}

// serve runs the policy and forwards. Every exit has answered the client.
// Its steps are runtime/trace regions (a few nanoseconds when no trace
// runs), which gatewaybench -trace reports per request.
func (c *call) serve() {
	for _, step := range policySteps {
		reg := trace.StartRegion(c.r.Context(), step.region)
		ref := step.run(c)
		reg.End()
		if ref != nil {
			c.refuse(*ref)
			return
		}
	}
	c.forward()
}

// policySteps run in order before a call is forwarded; the first refusal
// answers it.
var policySteps = [...]struct {
	region string
	run    func(*call) *refusal
}{
	{"gateway.authenticate", (*call).authenticate},
	{"gateway.read_body", (*call).readRequest},
	{"gateway.preflight", (*call).preflight},
}

// refusal is an answer the gateway gives itself, in the family's envelope.
type refusal struct {
	kind       envelope.Kind
	msg        string
	retryAfter time.Duration
	noRetry    bool
	failure    string
	counted    bool // the failure was counted already (a failed attempt)
}

func (c *call) refuse(ref refusal) {
	if c.waitAdmit() != nil && ref.failure != "client_cancelled" && ref.failure != "admit_unavailable" {
		ref = admitLost()
	}
	if ref.failure == "client_cancelled" {
		// Nobody to answer.
		c.failure, c.status = ref.failure, 499
		c.g.m.failure("", ref.failure)
		return
	}
	c.status = envelope.Status(c.fam, ref.kind)
	if c.failure == "" {
		c.failure = ref.failure
	}
	if ref.failure != "" && !ref.counted {
		prov := ""
		if c.p != nil {
			prov = c.p.name
		}
		c.g.m.failure(prov, ref.failure)
	}
	_ = envelope.Write(c.w, c.fam, envelope.Refusal{Kind: ref.kind, Message: ref.msg, RequestID: c.id},
		envelope.Options{RetryAfter: ref.retryAfter, NoRetry: ref.noRetry})
}

// finish counts and logs the call, publishes its usage event (sampled),
// and settles it with the account actor when it was admitted (in the
// background, the event after the settle: the client already has its
// answer).
func (c *call) finish() {
	if c.status == 0 {
		c.status = 499 // the client went away before any answer
	}
	c.g.m.observe(c)
	if !c.admitted || c.g.caller == nil {
		c.logLine(nil)
		c.publishEvent(nil)
		c.g.inflight.add(-1)
		return
	}
	c.g.enqueueSettle(c)
}

var errClientGone = errors.New("client went away")
