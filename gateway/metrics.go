package gateway

import (
	"strconv"
	"sync"

	"github.com/holdfast/holdfast/gateway/pricing"
	"github.com/holdfast/holdfast/gateway/usage"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics (all prefixed holdfast_gateway_):
//
//	requests_total{provider,model,status}           calls by final status sent to the client
//	upstream_latency_seconds{provider}              upstream attempt start to end of body (last attempt)
//	upstream_ttfb_seconds{provider}                 upstream attempt start to first body byte
//	tokens_total{provider,model,kind,estimated}     kind: input, output, cache_write_5m, cache_write_1h, cache_read
//	cost_nanodollars_total{provider,model}          priced cost
//	retries_total{provider,reason}                  upstream retries, by the failure that caused them
//	failures_total{provider,failure}                every failure by taxonomy name (per attempt for upstream ones)
//	usage_events_total{result}                      usage events: sent (to the sink), sampled_out
//	admits_deferred_total                           admits whose commit waited to be shared (defer_admit_commits)
//
// Cache hit ratio over any window:
//
//	sum(rate(holdfast_gateway_tokens_total{kind="cache_read"}[5m]))
//	  / sum(rate(holdfast_gateway_tokens_total{kind=~"input|cache_write_5m|cache_write_1h|cache_read"}[5m]))
//
// The model label is the routed model; at most maxModelLabels distinct
// values are used, later ones count as "other" (clients choose model
// strings, and labels must stay bounded).
type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	ttfb     *prometheus.HistogramVec
	tokens   *prometheus.CounterVec
	cost     *prometheus.CounterVec
	retries  *prometheus.CounterVec
	failures *prometheus.CounterVec
	events   *prometheus.CounterVec

	admitsDeferred prometheus.Counter

	// The children of the vectors above, looked up once per label set:
	// WithLabelValues hashes every label value on every call. Keys hold
	// model labels (bounded by maxModelLabels), never raw client strings.
	mu       sync.RWMutex
	models   map[string]bool
	counters map[seriesKey]prometheus.Counter
	observer map[seriesKey]prometheus.Observer
}

// seriesKey names one child: which vector, and its label values (n: a
// status code, a tokenKinds index, or an estimated flag).
type seriesKey struct {
	vec             uint8
	provider, label string
	n               int
}

// Vector identifiers for seriesKey.vec.
const (
	vecRequests uint8 = iota
	vecTokens
	vecCost
	vecFailures
	vecEvents
	vecLatency
	vecTTFB
)

// tokenKinds are the kind label values of tokens_total.
var tokenKinds = [...]string{"input", "output", "cache_write_5m", "cache_write_1h", "cache_read"}

const maxModelLabels = 256

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "holdfast", "gateway"
	buckets := []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Gateway calls by provider, model and the status sent to the client."}, []string{"provider", "model", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "upstream_latency_seconds",
			Help: "Upstream attempt duration, from request to the end of the response body.", Buckets: buckets}, []string{"provider"}),
		ttfb: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "upstream_ttfb_seconds",
			Help: "Upstream time to the first response body byte.", Buckets: buckets}, []string{"provider"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "tokens_total",
			Help: "Tokens by kind (input, output, cache_write_5m, cache_write_1h, cache_read); estimated=true when the provider reported none."},
			[]string{"provider", "model", "kind", "estimated"}),
		cost: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "cost_nanodollars_total",
			Help: "Priced cost of calls in nano-dollars."}, []string{"provider", "model"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "retries_total",
			Help: "Upstream retries by the failure that caused them."}, []string{"provider", "reason"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "failures_total",
			Help: "Failures by taxonomy name (overload_529, in_stream_overloaded, rate_limit_429, sse_stall, key_rotation_401, model_retired, upstream_5xx, client_cancelled, budget_exhausted, cache_silent_miss, ...)."},
			[]string{"provider", "failure"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "usage_events_total",
			Help: "Usage events by result: sent to the event sink, or sampled_out (a success beyond gateway.usage_events.success_sample_rate)."},
			[]string{"result"}),
		admitsDeferred: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "admits_deferred_total",
			Help: "Admits whose commit waited, up to runtime.commit_defer, to be shared, because their provider's first bytes were slow (gateway.defer_admit_commits)."}),
		models:   map[string]bool{},
		counters: map[seriesKey]prometheus.Counter{},
		observer: map[seriesKey]prometheus.Observer{},
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.ttfb, m.tokens, m.cost, m.retries, m.failures, m.events, m.admitsDeferred} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) modelLabel(model string) string {
	if model == "" {
		return ""
	}
	m.mu.RLock()
	known, full := m.models[model], len(m.models) >= maxModelLabels
	m.mu.RUnlock()
	switch {
	case known:
		return model
	case full:
		return "other"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.models[model] && len(m.models) >= maxModelLabels {
		return "other"
	}
	m.models[model] = true
	return model
}

// counter returns the child for k, made by mk on first use.
func (m *metrics) counter(k seriesKey, mk func() prometheus.Counter) prometheus.Counter {
	return cachedChild(&m.mu, m.counters, k, mk)
}

// histogram returns vec's child for k's provider.
func (m *metrics) histogram(k seriesKey, vec *prometheus.HistogramVec) prometheus.Observer {
	return cachedChild(&m.mu, m.observer, k, func() prometheus.Observer { return vec.WithLabelValues(k.provider) })
}

// cachedChild returns cache[k], made by mk under mu on first use: a read
// lock on the hot path, the vector's label lookup once per series.
func cachedChild[C comparable](mu *sync.RWMutex, cache map[seriesKey]C, k seriesKey, mk func() C) C {
	var zero C
	mu.RLock()
	c := cache[k]
	mu.RUnlock()
	if c != zero {
		return c
	}
	mu.Lock()
	defer mu.Unlock()
	if c = cache[k]; c == zero {
		c = mk()
		cache[k] = c
	}
	return c
}

// failure counts one failure by taxonomy name (a fixed set of names:
// the cache stays bounded).
func (m *metrics) failure(provider, name string) {
	m.counter(seriesKey{vec: vecFailures, provider: provider, label: name}, func() prometheus.Counter {
		return m.failures.WithLabelValues(provider, name)
	}).Inc()
}

// event counts one usage event by result.
func (m *metrics) event(result string) {
	m.counter(seriesKey{vec: vecEvents, label: result}, func() prometheus.Counter {
		return m.events.WithLabelValues(result)
	}).Inc()
}

// observe counts a finished call. Upstream failures were counted per
// attempt as they happened; refusals were counted by refuse.
func (m *metrics) observe(c *call) {
	prov := ""
	if c.p != nil {
		prov = c.p.name
	}
	model := m.modelLabel(c.model)
	m.counter(seriesKey{vec: vecRequests, provider: prov, label: model, n: c.status}, func() prometheus.Counter {
		return m.requests.WithLabelValues(prov, model, strconv.Itoa(c.status))
	}).Inc()
	if c.attempts > 0 {
		m.histogram(seriesKey{vec: vecLatency, provider: prov}, m.latency).Observe(c.upstream.Seconds())
		if c.ttfb > 0 {
			m.histogram(seriesKey{vec: vecTTFB, provider: prov}, m.ttfb).Observe(c.ttfb.Seconds())
		}
	}
	if c.usageSeen {
		u := c.usage
		est := 0
		if c.estimated {
			est = 1
		}
		for kind, n := range [len(tokenKinds)]int64{u.InputTokens, u.OutputTokens,
			u.CacheCreation5mInputTokens, u.CacheCreation1hInputTokens, u.CacheReadInputTokens} {
			if n > 0 {
				m.counter(seriesKey{vec: vecTokens, provider: prov, label: model, n: kind<<1 | est}, func() prometheus.Counter {
					return m.tokens.WithLabelValues(prov, model, tokenKinds[kind], strconv.FormatBool(est == 1))
				}).Add(float64(n))
			}
		}
		m.counter(seriesKey{vec: vecCost, provider: prov, label: model}, func() prometheus.Counter {
			return m.cost.WithLabelValues(prov, model)
		}).Add(float64(c.cost))
	}
	if c.silentMiss {
		m.failure(prov, "cache_silent_miss")
	}
}

func pricingUsage(u usage.Usage) pricing.Usage {
	return pricing.Usage{
		InputTokens:                u.InputTokens,
		OutputTokens:               u.OutputTokens,
		CacheCreation5mInputTokens: u.CacheCreation5mInputTokens,
		CacheCreation1hInputTokens: u.CacheCreation1hInputTokens,
		CacheReadInputTokens:       u.CacheReadInputTokens,
	}
}
