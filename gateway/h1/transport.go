package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// Transport is an http.RoundTripper for http:// origins; see the package
// documentation. It is safe for concurrent use.
type Transport struct {
	cfg Config

	mu         sync.Mutex
	idle       map[string][]*pconn
	closed     bool
	timer      *time.Timer
	timerArmed bool
}

var _ http.RoundTripper = (*Transport)(nil)

// New returns a Transport, or the Validate error for cfg.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Transport{cfg: cfg, idle: make(map[string][]*pconn)}, nil
}

// Close closes the idle connections and makes later RoundTrips fail with
// ErrClosed. Responses in flight keep their connections, which are closed
// instead of pooled when their bodies end. Close is idempotent.
func (t *Transport) Close() error {
	t.mu.Lock()
	t.closed = true
	if t.timer != nil {
		t.timer.Stop()
		t.timerArmed = false
	}
	t.mu.Unlock()
	t.CloseIdleConnections()
	return nil
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// RoundTrip implements http.RoundTripper. It always closes req.Body.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	addr, err := t.check(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	ctx := req.Context()
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	r := req
	fresh := false
	for {
		pc, err := t.getConn(ctx, addr, fresh)
		if err != nil {
			closeBody(r)
			return nil, err
		}
		resp, retry, err := t.roundTrip(ctx, pc, r, req)
		if err == nil {
			return resp, nil
		}
		if !retry || fresh || !replayable || ctx.Err() != nil {
			return nil, err
		}
		if req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, err
			}
			r2 := *req
			r2.Body = body
			r = &r2
		}
		fresh = true
	}
}

// check validates req the way http.Transport does and returns host:port.
func (t *Transport) check(req *http.Request) (string, error) {
	if req.URL == nil {
		return "", fmt.Errorf("%w: nil URL", ErrInvalidRequest)
	}
	if req.URL.Scheme != "http" {
		return "", ErrUnsupportedScheme
	}
	if req.URL.Host == "" {
		return "", fmt.Errorf("%w: no host in URL", ErrInvalidRequest)
	}
	if err := validateRequest(req); err != nil {
		return "", err
	}
	if t.isClosed() {
		return "", ErrClosed
	}
	if req.URL.Port() != "" {
		return req.URL.Host, nil
	}
	return net.JoinHostPort(req.URL.Hostname(), "80"), nil
}

// getConn takes a live idle connection or dials a new one.
func (t *Transport) getConn(ctx context.Context, addr string, fresh bool) (*pconn, error) {
	if err := ctx.Err(); err != nil {
		return nil, &Error{Op: OpDial, Addr: addr, Err: err}
	}
	if !fresh {
		for {
			pc := t.popIdle(addr)
			if pc == nil {
				break
			}
			if pc.alive() {
				pc.reused = true
				return pc, nil
			}
			pc.close()
		}
	}
	dctx, cancel := context.WithTimeout(ctx, t.cfg.DialTimeout)
	c, err := t.cfg.Dial(dctx, "tcp", addr)
	cancel()
	if err == nil && c == nil {
		err = errors.New("dial hook returned no connection")
	}
	if err != nil {
		if c != nil {
			_ = c.Close()
		}
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case dctx.Err() == context.DeadlineExceeded: // cancel() above leaves Canceled otherwise
			err = fmt.Errorf("%w after %v: %w", ErrDialTimeout, t.cfg.DialTimeout, err)
		}
		return nil, &Error{Op: OpDial, Addr: addr, Err: err}
	}
	return newPconn(t, addr, c), nil
}

// roundTrip runs one attempt on pc: r is what is written (a copy of orig with
// a replayed body on retry), orig is what the response points back to. retry
// reports whether a failure may be retried on a fresh connection.
func (t *Transport) roundTrip(ctx context.Context, pc *pconn, r, orig *http.Request) (resp *http.Response, retry bool, err error) {
	pc.begin()
	stop := context.AfterFunc(ctx, pc.cancel)
	fail := func(op string, cause error) (*http.Response, bool, error) {
		stop()
		pc.close()
		if e := ctx.Err(); e != nil {
			cause = e
		}
		return nil, false, &Error{Op: op, Addr: pc.addr, Reused: pc.reused, Err: cause}
	}

	werr := pc.writeRequest(r)
	if werr == nil {
		werr = pc.bw.Flush()
	}
	if werr != nil {
		if ctx.Err() == nil && pc.werr != nil && pc.nwritten > 0 {
			// The upstream may have answered early (413, 401) and closed
			// without reading the rest: return that answer if it is there.
			if resp, f, rerr := t.readHeaders(pc, r); rerr == nil {
				return t.finish(ctx, pc, stop, resp, f, orig, false), false, nil
			}
		}
		resp, _, err = fail(OpWrite, werr)
		// Nothing reached the upstream: safe to replay elsewhere.
		retry = pc.reused && pc.werr != nil && pc.nwritten == 0 && ctx.Err() == nil
		return resp, retry, err
	}

	resp, f, rerr := t.readHeaders(pc, r)
	if rerr != nil {
		nothingRead := pc.nread == 0 && pc.rerr != nil
		resp, _, err = fail(OpReadHeaders, rerr)
		retry = pc.reused && nothingRead && idempotent(r.Method) && ctx.Err() == nil
		return resp, retry, err
	}
	keep := !r.Close && !httpguts.HeaderValuesContainsToken(r.Header["Connection"], "close")
	return t.finish(ctx, pc, stop, resp, f, orig, keep), false, nil
}

// readHeaders reads the final response's status line and headers, skipping
// informational answers, on the calling goroutine.
func (t *Transport) readHeaders(pc *pconn, r *http.Request) (*http.Response, framing, error) {
	for {
		resp, f, err := readResponse(pc.br, r.Method)
		if err != nil {
			switch {
			case pc.limitHit:
				return nil, f, &LimitError{Limit: "max_response_header_bytes", Max: t.cfg.MaxResponseHeaderBytes}
			case err == errMalformed:
				return nil, f, ErrMalformedResponse
			case pc.rerr != nil:
				// A socket error or EOF, possibly turned into
				// io.ErrUnexpectedEOF: no response bytes in the text.
				return nil, f, ioError(err, pc.rerr)
			default:
				// No socket error, no parse error (io.ErrNoProgress from
				// a connection that reads nothing): nothing to quote.
				return nil, f, ErrMalformedResponse
			}
		}
		switch {
		case resp.StatusCode == http.StatusSwitchingProtocols:
			return nil, f, ErrUnsupportedUpgrade
		case resp.StatusCode >= 100 && resp.StatusCode < 200:
			continue // 100 Continue, 103 Early Hints: the final answer follows
		}
		pc.limit = -1 // the body is unbounded
		return resp, f, nil
	}
}

// finish wires the body to pc, or releases pc at once when there is none.
func (t *Transport) finish(ctx context.Context, pc *pconn, stop func() bool, resp *http.Response, f framing, orig *http.Request, keep bool) *http.Response {
	resp.Request = orig
	keep = keep && !resp.Close
	if resp.Body == http.NoBody {
		t.release(pc, stop, keep)
		return resp
	}
	resp.Body = &body{pc: pc, f: f, stop: stop, ctx: ctx, keep: keep}
	return resp
}

// release ends a round trip: pc returns to the pool only if it may be kept,
// its cancel hook had not fired, no socket read failed and no stray bytes
// follow the response.
func (t *Transport) release(pc *pconn, stop func() bool, keep bool) {
	fired := !stop()
	// A socket read error (the peer's EOF with the last bytes, say)
	// leaves nothing to reuse, as net/http's sawEOF.
	if !keep || fired || pc.rerr != nil || pc.br.Buffered() > 0 {
		pc.close()
		return
	}
	pc.reused = false
	t.putIdle(pc)
}

// ioError keeps err when it is (derived from) the socket error, else the
// socket error itself, so parser text never leaks.
func ioError(err, sockErr error) error {
	if err == io.ErrUnexpectedEOF || errors.Is(err, sockErr) {
		return err
	}
	return sockErr
}

func idempotent(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}
