package gateway

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/gateway/usage"
)

// maxCapture bounds the copy of a non-SSE response kept to read its usage.
const maxCapture = 16 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// clientWriter writes the response to the client. The status and headers
// go out with the first byte, not before: until then nothing has reached
// the client, and the attempt may still be retried.
type clientWriter struct {
	c      *call
	w      http.ResponseWriter
	rc     *http.ResponseController
	status int
	header http.Header // the upstream's, filtered into w's at commit
	sse    bool
	wrote  bool // status and headers sent
	writes int  // Write calls: one per upstream read of a non-SSE body
	// final: the upstream's body ended with the read being written, so
	// Flush leaves the bytes to the end of the handler, where net/http
	// writes them together with the end of the response (the chunked
	// terminator): one write to the client instead of two.
	final  bool
	err    error
	onWire func()
}

// commit sends the status and headers, once the admit is durable.
func (cw *clientWriter) commit() {
	if cw.wrote || cw.err != nil {
		return
	}
	if err := cw.c.waitAdmit(); err != nil {
		cw.err = errAdmitNotDurable
		return
	}
	cw.wrote = true
	copyResponseHeader(cw.w.Header(), cw.header, cw.sse)
	cw.c.status = cw.status
	cw.w.WriteHeader(cw.status)
	if cw.onWire != nil {
		cw.onWire()
	}
}

func (cw *clientWriter) Write(p []byte) (int, error) {
	if cw.err != nil {
		return 0, cw.err
	}
	if cw.commit(); cw.err != nil {
		return 0, cw.err
	}
	cw.writes++
	n, err := cw.w.Write(p)
	if err != nil {
		cw.err = err
	}
	return n, err
}

func (cw *clientWriter) Flush() error {
	if cw.err != nil {
		return cw.err
	}
	if cw.commit(); cw.err != nil || cw.final {
		return cw.err
	}
	if err := cw.rc.Flush(); err != nil {
		if errors.Is(err, http.ErrNotSupported) {
			// A wrapping ResponseWriter that cannot flush (and does not
			// Unwrap): the stream is buffered, but not broken.
			return nil
		}
		cw.err = err
		return err
	}
	return nil
}

func isSSE(contentType string) bool {
	if contentType == "text/event-stream" || strings.EqualFold(contentType, "text/event-stream; charset=utf-8") {
		return true // the usual cases, without ParseMediaType's map
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/event-stream"
}

// relay passes a 2xx response to the client as it arrives, flushed once
// per upstream read: SSE through a usage.Tee (the complete events of the
// read), anything else as read. Idle upstream silence is bounded by the
// watchdog. A failure before any byte reached the client is returned for
// a retry; after that the client's stream is cut the same way the
// upstream's was (c.abort).
func (c *call) relay(ctx context.Context, cancel context.CancelCauseFunc, resp *http.Response, start time.Time) attemptResult {
	g := c.g
	defer resp.Body.Close()
	c.hurryAdmit() // the answer has begun: a deferred admit commits now
	sse := isSSE(resp.Header.Get("Content-Type"))
	if c.rc == nil {
		c.rc = http.NewResponseController(c.w)
	}
	cw := &c.cw // one per call: an attempt relays only after the last one ended
	*cw = clientWriter{c: c, w: c.w, rc: c.rc, status: resp.StatusCode, header: resp.Header, sse: sse}

	wd := newWatchdog(g.clk, g.cfg.StreamIdleTimeout, func() { cancel(errStall) })
	defer wd.stop()

	var (
		tee      *usage.Tee
		capture  []byte
		overflow bool      // the body outgrew maxCapture: no usage from it
		out      io.Writer = cw
	)
	if sse {
		acc, _ := usage.NewAccumulator(usageProvider(c.rt.op))
		tee = usage.NewTee(cw, acc, usage.TeeOptions{Flush: cw.Flush, DropUsageOnly: c.inserted})
		out = tee
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	first := true
	var readErr, writeErr error
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			cw.final = err == io.EOF
			wd.touch()
			if first {
				first = false
				now := g.clk.Now()
				c.ttfb = now.Sub(start)
				if g.deferFrom > 0 {
					c.firstBytesOf().observe(now, c.ttfb, g.deferFrom)
				}
			}
			if !sse && !overflow {
				if len(capture)+n <= maxCapture {
					capture = append(capture, buf[:n]...)
				} else {
					capture, overflow = nil, true
				}
			}
			if _, werr := out.Write(buf[:n]); werr != nil {
				writeErr = werr
				break
			}
			if !sse {
				if werr := cw.Flush(); werr != nil {
					writeErr = werr
					break
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
	}
	c.upstream = g.clk.Now().Sub(start)
	c.eventsOut = cw.writes
	if tee != nil {
		// The Tee writes a run of events at once: count events, not writes.
		c.eventsOut = tee.Forwarded()
	}

	switch {
	case errors.Is(cw.err, errAdmitNotDurable):
		// Nothing reached the client; the answer is not the provider's.
		cancel(errAdmitNotDurable)
		c.refuse(admitLost())
		return attemptResult{done: true}
	case writeErr != nil && cw.err != nil:
		// The client went away: stop the upstream request at once.
		cancel(errClientGone)
		c.failure = "client_cancelled"
	case writeErr != nil:
		// An event over the size limit: a broken upstream.
		cancel(writeErr)
		c.failure, c.detail = "upstream_protocol", writeErr.Error()
		c.abort = cw.wrote
	case readErr != nil:
		cause := context.Cause(ctx)
		failure := "upstream_connection"
		switch {
		case c.r.Context().Err() != nil:
			failure = "client_cancelled"
		case errors.Is(cause, errStall) && sse:
			failure = "sse_stall"
		case errors.Is(cause, errStall):
			failure = "upstream_timeout"
		}
		if !cw.wrote && failure != "client_cancelled" {
			// Nothing reached the client: as good as no answer.
			return attemptResult{retryable: true, failure: failure, err: readErr, timeout: errors.Is(cause, errStall)}
		}
		c.failure, c.detail = failure, readErr.Error()
		c.abort = cw.wrote // never fabricate an ending: cut the stream
	default:
		if tee != nil {
			if err := tee.Close(); err != nil && cw.err != nil {
				c.failure = "client_cancelled"
			}
			c.eventsOut = tee.Forwarded() // with an unterminated tail Close forwarded
		}
		if !cw.wrote && cw.err == nil {
			cw.commit() // an empty body
		}
	}

	// Usage: what the provider reported, even for a stream cut short.
	var u usage.Usage
	if sse {
		u = tee.Usage()
	} else if !overflow && readErr == nil {
		u, _ = usage.FromBody(usageProvider(c.rt.op), capture)
	}
	c.account(u)
	if u.ErrorType != "" && c.failure == "" {
		c.failure = "in_stream_error"
		if u.ErrorType == "overloaded_error" {
			c.failure = "in_stream_overloaded"
		}
	}
	if c.failure != "" {
		g.m.failure(c.p.name, c.failure)
	}
	return attemptResult{done: true}
}

// account records the call's usage and cost: the figures the provider
// reported; estimates (input: the admit's estimate, output: one token per
// forwarded event, the providers' usual granularity) when it reported
// none but output reached the client; nothing when the call failed.
func (c *call) account(u usage.Usage) {
	seen := u.Complete || u.TotalInputTokens() > 0 || u.OutputTokens > 0
	switch {
	case c.rt.op == opCountTokens:
		c.usageSeen = true // served; free, with no usage to read
		return
	case seen:
		c.usage, c.usageSeen = u, true
	case c.eventsOut > 0:
		c.usage = usage.Usage{InputTokens: c.inEst, OutputTokens: int64(c.eventsOut), ErrorType: u.ErrorType}
		c.usageSeen, c.estimated = true, true
	default:
		return
	}
	cost, err := c.g.prices.Cost(c.model, pricingUsage(c.usage))
	if err == nil {
		c.cost = cost
	}
	if c.hasPrefix {
		c.silentMiss = c.g.checkCache(c.prefixHash, c.usage)
	}
}

// watchdog cancels an attempt after d without progress. One timer per
// idle period, not per read: touch only stores the time, and the timer,
// when it fires early, re-arms itself for the remainder.
type watchdog struct {
	clk     clock.Clock
	d       time.Duration
	trip    func()
	last    atomic.Int64 // unix nanos of the last progress
	mu      sync.Mutex
	timer   clock.Timer
	stopped bool
}

func newWatchdog(clk clock.Clock, d time.Duration, trip func()) *watchdog {
	w := &watchdog{clk: clk, d: d, trip: trip}
	w.touch()
	w.mu.Lock()
	w.timer = clk.AfterFunc(d, w.fire)
	w.mu.Unlock()
	return w
}

func (w *watchdog) touch() { w.last.Store(w.clk.Now().UnixNano()) }

func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	idle := time.Duration(w.clk.Now().UnixNano() - w.last.Load())
	if idle >= w.d {
		w.stopped = true
		w.trip() // a context cancel: never blocks
		return
	}
	w.timer = w.clk.AfterFunc(w.d-idle, w.fire)
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
}

// watchedReader touches a watchdog on every read with data.
type watchedReader struct {
	r  io.Reader
	wd *watchdog
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.wd.touch()
	}
	return n, err
}
