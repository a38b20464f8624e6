package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"runtime/trace"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/gateway/envelope"
)

var (
	errHeaderTimeout = errors.New("upstream_header_timeout passed without response headers")
	errStall         = errors.New("stream_idle_timeout passed without upstream data")
)

// hopByHop are the headers of one connection, never forwarded
// (RFC 9110 §7.6.1), plus Proxy-Connection which old clients send.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// dropRequest are client headers the provider must not see: the client's
// credentials (replaced by the provider key), what net/http sets itself,
// cookies, the client's address, and the gateway's own headers.
var dropRequest = map[string]bool{
	"Host": true, "Content-Length": true, "Accept-Encoding": true, "Expect": true,
	"X-Api-Key": true, "Authorization": true, "X-Goog-Api-Key": true, "Cookie": true,
	"Forwarded": true, "X-Forwarded-For": true, "X-Forwarded-Host": true,
	"X-Forwarded-Proto": true, "X-Real-Ip": true,
}

// dropResponse are upstream headers the client must not get: cookies and
// alternative services of the provider's host, the length of a stream.
var dropResponse = map[string]bool{
	"Set-Cookie": true, "Alt-Svc": true, "X-Holdfast-Request-Id": true,
}

// connectionTokens are the headers a Connection header names, which are
// hop-by-hop too.
func connectionTokens(h http.Header) map[string]bool {
	var out map[string]bool
	for _, v := range h.Values("Connection") {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				if out == nil {
					out = map[string]bool{}
				}
				out[textproto.CanonicalMIMEHeaderKey(t)] = true
			}
		}
	}
	return out
}

// upstreamHeader is what passes from the client to the provider:
// everything the provider may need (anthropic-version, anthropic-beta,
// content-type, openai-organization, openai-project, user-agent, the
// SDK's x-stainless-* ...) minus hop-by-hop headers, credentials and the
// rest of dropRequest, and minus x-holdfast-*.
func upstreamHeader(in http.Header) http.Header {
	conn := connectionTokens(in)
	h := make(http.Header, len(in))
	for k, v := range in {
		if hopByHop[k] || dropRequest[k] || conn[k] || strings.HasPrefix(k, "X-Holdfast-") {
			continue
		}
		// Shared with the client's request, capacity-limited so that an
		// append copies: nothing modifies a value in place (Set and Del
		// replace or remove the whole slice).
		h[k] = v[:len(v):len(v)]
	}
	return h
}

// setProviderKey puts key where provider type typ expects it.
func setProviderKey(req *http.Request, typ, key string) {
	switch typ {
	case TypeAnthropic:
		req.Header.Set("X-Api-Key", key)
	case TypeOpenAI:
		req.Header.Set("Authorization", "Bearer "+key)
	case TypeGemini:
		req.Header.Set("X-Goog-Api-Key", key)
	}
}

// copyResponseHeader sets in dst what passes from the provider to the
// client: status headers such as request-id, anthropic-ratelimit-*,
// x-ratelimit-*, retry-after, content-type, minus hop-by-hop and
// dropResponse. A stream gets no Content-Length and cache-control:
// no-cache. It writes straight into the ResponseWriter's header, with no
// intermediate map, and allocates nothing of its own unless a Connection
// header names further hop-by-hop headers: it runs on the way to every
// response's first byte.
func copyResponseHeader(dst, up http.Header, sse bool) {
	conn := connectionTokens(up)
	for k, v := range up {
		if notForwarded(k) || conn[k] || sse && k == "Content-Length" {
			continue
		}
		dst[k] = v
	}
	if sse {
		// What Set would do, without a new slice and a key check per
		// response: the values are shared, and as len == cap an append
		// copies; nothing modifies a value in place (see upstreamHeader).
		dst["Cache-Control"] = noCache
		dst["X-Accel-Buffering"] = noBuffering // nginx and friends: do not buffer
	}
}

var (
	noCache     = []string{"no-cache"}
	noBuffering = []string{"no"}
)

// notForwarded reports whether hopByHop or dropResponse holds k. A switch
// on the canonical key is cheaper than two map lookups per header of every
// response; TestNotForwardedMatchesMaps keeps it in step with the maps.
func notForwarded(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade",
		"Set-Cookie", "Alt-Svc", "X-Holdfast-Request-Id":
		return true
	}
	return false
}

// forwardQuery is the client's query without key= (a Gemini credential).
func forwardQuery(raw string) string {
	if raw == "" || !strings.Contains(raw, "ey") { // "key", "%6Bey"...
		return raw
	}
	parts := strings.Split(raw, "&")
	kept := parts[:0]
	for _, p := range parts {
		name, _, _ := strings.Cut(p, "=")
		if n, err := url.QueryUnescape(name); err == nil && n == "key" || name == "key" || err != nil {
			continue
		}
		kept = append(kept, p)
	}
	return strings.Join(kept, "&")
}

// h1MaxBody bounds the request bodies gateway/h1 sends. It writes the
// whole body before it reads, on one goroutine: an upstream that answers
// early (413, 401) without reading a large body would block the write
// until the header timeout. Below what the socket buffers take, the write
// always completes; larger bodies go through net/http, which reads the
// early answer while it writes (and whose hand-off costs are small next
// to sending them).
const h1MaxBody = 64 << 10

// do sends one upstream request: in-process for a mock provider.
func (g *Gateway) do(p *provider, req *http.Request) (*http.Response, error) {
	switch {
	case p.rt != nil:
		return p.rt.RoundTrip(req)
	case p.h1 != nil && req.ContentLength >= 0 && req.ContentLength <= h1MaxBody:
		return p.h1.RoundTrip(req)
	}
	return g.client.Do(req)
}

func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.ForceAttemptHTTP2 = true
	return t
}

func lookupEnv(k string) (string, bool) { return os.LookupEnv(k) }

// attemptResult is how one upstream attempt ended when it did not answer
// the client: an HTTP error to pass on, or no answer at all.
type attemptResult struct {
	done       bool // the client has been answered (success or stream)
	retryable  bool
	failure    string
	retryAfter time.Duration
	// An upstream HTTP error answer (status != 0), passed on if this is
	// the last attempt.
	status  int
	header  http.Header
	errBody []byte
	// No usable answer: a connection error, a header timeout, or a body
	// that failed before anything reached the client.
	err     error
	timeout bool
}

// forward runs the attempts and the retry policy.
func (c *call) forward() {
	g := c.g
	ctx := c.r.Context()
	for {
		c.attempts++
		res := c.attempt()
		if res.done {
			return
		}
		if res.failure != "" {
			g.m.failure(c.p.name, res.failure)
		}
		if ctx.Err() != nil {
			c.failure, c.status = "client_cancelled", 499
			return
		}
		if !res.retryable || c.retries >= g.cfg.MaxRetries {
			c.giveUp(res)
			return
		}
		wait := retryWait(c.retries, res.retryAfter)
		if wait > maxRetryWait {
			c.giveUp(res)
			return
		}
		c.retries++
		g.m.retries.WithLabelValues(c.p.name, res.failure).Inc()
		if err := g.sleep(ctx, wait); err != nil {
			c.failure, c.status = "client_cancelled", 499
			return
		}
	}
}

// giveUp answers with the last attempt's failure. After retries the
// answer says x-should-retry: false, so the SDK does not multiply them.
func (c *call) giveUp(res attemptResult) {
	if c.waitAdmit() != nil {
		c.refuse(admitLost())
		return
	}
	c.failure = res.failure
	noRetry := c.retries > 0
	if res.status != 0 {
		h := c.w.Header()
		copyResponseHeader(h, res.header, false)
		// The body as read: net/http's Transport, when it decompressed
		// (it asked for gzip), already removed Content-Encoding;
		// gateway/h1 asks for nothing and decodes nothing, so an encoding
		// the upstream chose anyway stays named.
		h.Set("Content-Length", strconv.Itoa(len(res.errBody)))
		if noRetry && res.retryable {
			h.Set("X-Should-Retry", "false")
		}
		c.status = res.status
		c.w.WriteHeader(res.status)
		_, _ = c.w.Write(res.errBody)
		return
	}
	if res.err != nil {
		c.detail = res.err.Error()
	}
	kind, msg := envelope.Unavailable, "The upstream provider could not be reached."
	if res.timeout {
		kind, msg = envelope.Timeout, "The upstream provider did not answer in time."
	}
	c.refuse(refusal{kind: kind, msg: msg, noRetry: noRetry, failure: res.failure, counted: true})
}

// attempt sends the request once. On a 2xx it relays the response.
func (c *call) attempt() attemptResult {
	g, p := c.g, c.p
	build := trace.StartRegion(c.r.Context(), "gateway.build_request")
	ctx, cancel := context.WithCancelCause(c.r.Context())
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		p.upstreamURL(c.rt, c.model, forwardQuery(c.r.URL.RawQuery)), c.body.Reader())
	if err != nil {
		build.End()
		return attemptResult{failure: "internal", err: err}
	}
	req.ContentLength = c.body.Len()
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(c.body.Reader()), nil }
	req.Header = upstreamHeader(c.r.Header)
	setProviderKey(req, p.typ, c.upstreamKey)

	start := g.clk.Now()
	ht := g.clk.AfterFunc(c.headerTimeout(), func() { cancel(errHeaderTimeout) })
	build.End()
	reg := trace.StartRegion(ctx, "gateway.upstream_headers")
	resp, err := g.do(p, req)
	reg.End()
	ht.Stop()
	if err != nil {
		if c.r.Context().Err() != nil {
			return attemptResult{failure: "client_cancelled", err: err}
		}
		if errors.Is(context.Cause(ctx), errHeaderTimeout) {
			return attemptResult{retryable: true, failure: "upstream_timeout", err: errHeaderTimeout, timeout: true}
		}
		return attemptResult{retryable: true, failure: "upstream_connection", err: err}
	}
	if resp.StatusCode < 100 || resp.StatusCode > 999 {
		// A status line net/http's parser takes ("099") that no answer may
		// carry (WriteHeader panics on it): a broken upstream.
		resp.Body.Close()
		return attemptResult{retryable: true, failure: "upstream_protocol", err: errBadUpstreamStatus}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.upstreamError(cancel, resp, start)
	}
	return c.relay(ctx, cancel, resp, start)
}

var errBadUpstreamStatus = errors.New("the upstream answered with a status code outside 100-999")

// minNonStreamHeaderTimeout: a non-streaming answer has its headers only
// once the whole generation is done, which for long outputs takes
// minutes; upstream_header_timeout (meant for time to first byte) would
// cut, and then retry, legitimate calls.
const minNonStreamHeaderTimeout = 10 * time.Minute

func (c *call) headerTimeout() time.Duration {
	if c.stream || c.rt.op == opCountTokens {
		return c.g.cfg.UpstreamHeaderTimeout
	}
	return max(c.g.cfg.UpstreamHeaderTimeout, minNonStreamHeaderTimeout)
}

// maxErrorBody bounds an upstream error body read for passing on.
const maxErrorBody = 1 << 20

// upstreamError reads an error answer and classifies it.
func (c *call) upstreamError(cancel context.CancelCauseFunc, resp *http.Response, start time.Time) attemptResult {
	defer resp.Body.Close()
	wd := newWatchdog(c.g.clk, c.g.cfg.StreamIdleTimeout, func() { cancel(errStall) })
	b, err := io.ReadAll(&watchedReader{r: io.LimitReader(resp.Body, maxErrorBody), wd: wd})
	wd.stop()
	c.upstream = c.g.clk.Now().Sub(start)
	if err != nil && len(b) == 0 {
		// The error answer itself broke off: treat as a connection error.
		return attemptResult{retryable: true, failure: "upstream_connection", err: err}
	}
	res := attemptResult{status: resp.StatusCode, header: resp.Header, errBody: b,
		retryAfter: parseRetryAfter(resp.Header, c.g.clk.Now())}
	switch s := resp.StatusCode; {
	case s == 529:
		res.retryable, res.failure = true, "overload_529"
	case s == http.StatusTooManyRequests:
		res.retryable, res.failure = true, "rate_limit_429"
	case s >= 500:
		res.retryable, res.failure = true, "upstream_5xx"
	case s == http.StatusUnauthorized:
		res.failure = "upstream_401"
		if c.p.key.rotated(c.upstreamKey) {
			res.failure = "key_rotation_401"
		}
	default:
		res.failure = "upstream_4xx"
	}
	return res
}
