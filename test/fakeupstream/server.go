package fakeupstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
)

// Options configure a Server.
type Options struct {
	// Default answers provider requests when no script is queued; nil
	// means the zero Script, a realistic success.
	Default *Script
}

// Server is the fake upstream. Its methods are safe for concurrent use.
type Server struct {
	opts      Options
	ts        *httptest.Server
	rec       recorder
	queue     queue
	done      chan struct{} // closed by Close: releases gates and stalls
	closeOnce sync.Once
}

// New starts a server on 127.0.0.1:0 (a real TCP socket). Close it when done.
func New(opts Options) *Server {
	s := &Server{opts: opts, done: make(chan struct{})}
	s.ts = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// URL is the base URL, "http://127.0.0.1:port" without a trailing slash.
// Use it as the Anthropic SDK base URL, and URL()+"/v1" as the OpenAI one.
func (s *Server) URL() string { return s.ts.URL }

// Close drops every client connection (an unfinished response ends in a
// connection error, not a clean end), releases gated and stalled handlers
// and waits for them to return.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.ts.CloseClientConnections()
		close(s.done)
		s.ts.Close()
	})
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	e := s.rec.add(r, body)
	defer func() { s.rec.finish(e, r.Context().Err() != nil) }()
	if err != nil {
		return // the client went away while sending
	}
	req := s.rec.snapshot(e)
	if routeOf(r.URL.Path) == routeNone || r.Method != http.MethodPost {
		s.write(w, r, e, Script{}, notFoundPlan(req))
		return
	}
	sc, ok := s.queue.pop(r.URL.Path)
	if !ok && s.opts.Default != nil {
		sc = *s.opts.Default
	}
	s.rec.setScript(e, sc)
	s.write(w, r, e, sc, makePlan(sc, req))
}

// write sends p, applying the script's faults and gate.
func (s *Server) write(w http.ResponseWriter, r *http.Request, e *entry, sc Script, p plan) {
	if sc.Fault == FaultResetBeforeHeaders {
		resetConn(w)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	for k, v := range p.header {
		h[k] = v
	}
	if !p.stream {
		n := 0
		for _, ev := range p.events {
			n += len(ev)
		}
		h.Set("Content-Length", strconv.Itoa(n))
	}
	w.WriteHeader(p.status)
	if rc.Flush() != nil {
		return
	}
	ctx := r.Context()
	send := func(i int, b []byte) bool {
		if sc.Gate != nil && !sc.Gate.wait(ctx, s.done, i) {
			return false
		}
		s.rec.appendSent(e, b)
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for i := 0; i <= len(p.events); i++ {
		if i == sc.After && sc.Fault != FaultNone {
			// With a gate, the fault waits for its turn like an event.
			if sc.Gate != nil && !sc.Gate.wait(ctx, s.done, i) {
				return
			}
			switch sc.Fault {
			case FaultResetAfter:
				resetConn(w)
				return
			case FaultStreamError:
				if p.errEvent != nil {
					s.rec.appendSent(e, p.errEvent)
					_, _ = w.Write(p.errEvent)
					_ = rc.Flush()
					return
				}
			case FaultStall:
				if !s.stall(ctx, sc.Release) {
					return
				}
			}
		}
		if i == len(p.events) || !send(i, p.events[i]) {
			return
		}
	}
}

// stall waits until release is closed (true) or the client or the server
// goes away (false).
func (s *Server) stall(ctx context.Context, release <-chan struct{}) bool {
	select {
	case <-release:
		return true
	case <-ctx.Done():
	case <-s.done:
	}
	return false
}

// resetConn takes the connection from net/http and closes it with an RST.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}
