package gateway

import (
	"math"
	"strings"
	"sync/atomic"
	"time"
)

// EventSink receives the gateway's usage events (in a cluster: the
// JetStream usage stream, see cluster.Usage). Publish must never block
// and never fail the call: a sink that cannot keep up drops the event and
// counts it. It is called once per published call, from the call's
// goroutine, after the client has its answer; it must be safe for
// concurrent use.
type EventSink interface {
	Publish(ev Event)
}

// Event is one gateway call, for analytics. Exact totals stay in the
// user's account actor (`holdctl usage`); events are sampled
// (gateway.usage_events) and delivered at most once. An event never
// carries a key (provider or virtual), a header, or any prompt or
// response text: only the figures and names of the per-call log line.
// The JSON field names are stable.
type Event struct {
	// Time is when the call arrived.
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	// User is the account the call was charged to: the virtual key's
	// user, the byok key's hash prefix, or "local" (auth none).
	User string `json:"user"`
	// KeyID is the virtual key's public ID (auth keys), never the key.
	KeyID string `json:"key_id,omitempty"`
	// Route names the API: anthropic.messages, openai.chat_completions, ...
	Route          string `json:"route"`
	Provider       string `json:"provider"`
	Model          string `json:"model"`
	RequestedModel string `json:"requested_model,omitempty"`
	// Status is the HTTP status sent to the client (499: it went away).
	Status int `json:"status"`
	// ErrorType is the failure's taxonomy name (rate_limited,
	// overload_529, sse_stall, in_stream_overloaded, settle_failed,
	// cache_silent_miss, ...); empty for a clean success.
	ErrorType string `json:"error_type,omitempty"`
	// ProviderErrorType is the error type the provider reported in the
	// body or stream (overloaded_error, ...), if any.
	ProviderErrorType string `json:"provider_error_type,omitempty"`
	Streamed          bool   `json:"streamed"`

	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
	// Estimated says the token figures are the gateway's estimates (the
	// provider reported none).
	Estimated bool  `json:"estimated"`
	CostNanos int64 `json:"cost_nanos"`

	LatencyMs float64 `json:"latency_ms"`
	TTFBMs    float64 `json:"ttfb_ms"`
	Attempts  int     `json:"attempts"`
	// SampleRate is the share of such calls that were published: 1 for
	// failures, success_sample_rate for successes (weight an event by
	// 1/SampleRate to estimate totals).
	SampleRate float64 `json:"sample_rate"`
}

// sampler keeps exactly floor(n*rate) of the first n successes, evenly
// spread (deterministic, so the share is exact and testable).
type sampler struct {
	rate float64
	n    atomic.Uint64
}

func (s *sampler) keep() bool {
	switch {
	case s.rate >= 1:
		return true
	case s.rate <= 0:
		return false
	}
	k := float64(s.n.Add(1))
	return math.Floor(k*s.rate) > math.Floor((k-1)*s.rate)
}

// publishEvent hands the call's usage event to the sink, sampled. Calls
// with no user (refused before authentication: an unknown route, a
// missing or malformed key) have no account to file them under and are
// only logged and counted.
func (c *call) publishEvent(settleErr error) {
	g := c.g
	if g.events == nil || c.user == "" {
		return
	}
	errType := c.failure
	if errType == "" && settleErr != nil {
		errType = "settle_failed"
	}
	if c.silentMiss {
		errType = strings.TrimPrefix(errType+",cache_silent_miss", ",")
	}
	failed := c.status >= 400 || errType != "" || c.usage.ErrorType != ""
	rate := 1.0
	if !failed {
		if !g.sample.keep() {
			g.m.event("sampled_out")
			return
		}
		rate = g.sample.rate
	}
	prov := ""
	if c.p != nil {
		prov = c.p.name
	}
	requested := ""
	if c.requested != c.model {
		requested = c.requested
	}
	u := c.usage
	ev := Event{
		Time: c.start, RequestID: c.id, User: c.user, KeyID: c.keyID, Route: c.routeName(),
		Provider: prov, Model: c.model, RequestedModel: requested,
		Status: c.status, ErrorType: errType, ProviderErrorType: u.ErrorType, Streamed: c.stream,
		InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
		CacheCreationInputTokens: u.CacheCreationInputTokens, CacheReadInputTokens: u.CacheReadInputTokens,
		Estimated: c.estimated, CostNanos: c.cost,
		LatencyMs: float64(g.clk.Now().Sub(c.start).Microseconds()) / 1000,
		TTFBMs:    float64(c.ttfb.Microseconds()) / 1000,
		Attempts:  c.attempts, SampleRate: rate,
	}
	g.events.Publish(ev)
	g.m.event("sent")
}
