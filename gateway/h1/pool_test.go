package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStaleIdleConn: the upstream closes an idle connection; the probe
// notices and the next request (a POST, which is never retried after a
// write) goes out on a new connection.
func TestStaleIdleConn(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		_ = c.Close() // keep-alive was promised, but the server drops it
	})
	tr := newTransport(t, nil)
	get(t, tr, srv.url("/"))
	if tr.idleCount(srv.addr) != 1 {
		t.Fatal("connection not pooled")
	}
	tr.mu.Lock()
	pc := tr.idle[srv.addr][0]
	tr.mu.Unlock()
	if pc.raw == nil {
		t.Skip("no socket probe on this platform")
	}
	waitFor(t, "the FIN to reach the pooled connection", func() bool { return !pc.alive() })

	resp, err := tr.RoundTrip(mustReq(t, context.Background(), "POST", srv.url("/"), io.NopCloser(strings.NewReader("body"))))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "ok" || srv.accepted.Load() != 2 {
		t.Fatalf("body %q, accepted %d", b, srv.accepted.Load())
	}
}

func TestProbeAliveConn(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	tr := newTransport(t, nil)
	get(t, tr, srv.URL)
	addr := strings.TrimPrefix(srv.URL, "http://")
	tr.mu.Lock()
	pc := tr.idle[addr][0]
	tr.mu.Unlock()
	if pc.raw == nil {
		t.Skip("no socket probe on this platform")
	}
	for range 3 {
		if !pc.alive() {
			t.Fatal("probe says a live idle connection is dead")
		}
	}
}

// flakyConn lets a test break one connection's reads or writes.
type flakyConn struct {
	net.Conn
	failWrite, failRead *atomic.Bool
}

var errBroken = errors.New("broken pipe (test)")

func (c *flakyConn) Write(p []byte) (int, error) {
	if c.failWrite.Load() {
		return 0, errBroken
	}
	return c.Conn.Write(p)
}

func (c *flakyConn) Read(p []byte) (int, error) {
	if c.failRead.Load() {
		return 0, io.EOF
	}
	return c.Conn.Read(p)
}

// flakyDialer wraps every dialed conn; only the first one can be broken.
type flakyDialer struct {
	failWrite, failRead atomic.Bool
	dials               atomic.Int64
}

func (d *flakyDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if d.dials.Add(1) > 1 {
		return c, nil
	}
	return &flakyConn{Conn: c, failWrite: &d.failWrite, failRead: &d.failRead}, nil
}

type sumServer struct {
	*countingServer
	mu   sync.Mutex
	sums [][32]byte
}

func newSumServer(t *testing.T) *sumServer {
	s := &sumServer{}
	s.countingServer = newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.sums = append(s.sums, sha256.Sum256(b))
		s.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	})
	return s
}

func TestRetryWriteOnReusedConn(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
	for _, tc := range []struct {
		name      string
		body      func() io.Reader
		wantRetry bool
	}{
		{"10MB with GetBody", func() io.Reader { return bytes.NewReader(big) }, true},
		{"no body", func() io.Reader { return nil }, true},
		{"not replayable", func() io.Reader { return io.MultiReader(bytes.NewReader(big)) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newSumServer(t)
			d := &flakyDialer{}
			tr := newTransport(t, func(c *Config) { c.Dial = d.dial })
			get(t, tr, srv.URL) // pool the flaky connection
			d.failWrite.Store(true)
			req := mustReq(t, context.Background(), "POST", srv.URL, tc.body())
			resp, err := tr.RoundTrip(req)
			if !tc.wantRetry {
				if !errors.Is(err, errBroken) || stageOf(err) != OpWrite {
					t.Fatalf("got %v, want the write error", err)
				}
				if d.dials.Load() != 1 {
					t.Fatal("retried a non-replayable body")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if d.dials.Load() != 2 || srv.accepted.Load() != 2 {
				t.Fatalf("dials %d accepted %d, want 2", d.dials.Load(), srv.accepted.Load())
			}
			want := sha256.Sum256(nil)
			if tc.body() != nil {
				want = sha256.Sum256(big)
			}
			srv.mu.Lock()
			defer srv.mu.Unlock()
			if len(srv.sums) != 2 || srv.sums[1] != want {
				t.Fatal("replayed body differs from the original")
			}
		})
	}
}

func TestRetryReadOnlyIdempotent(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			srv := newSumServer(t)
			d := &flakyDialer{}
			tr := newTransport(t, func(c *Config) { c.Dial = d.dial })
			get(t, tr, srv.URL)
			d.failRead.Store(true)
			resp, err := tr.RoundTrip(mustReq(t, context.Background(), method, srv.URL, nil))
			if method == "POST" {
				if !errors.Is(err, io.ErrUnexpectedEOF) || stageOf(err) != OpReadHeaders || d.dials.Load() != 1 {
					t.Fatalf("got %v after %d dials, want a header read error and no retry", err, d.dials.Load())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			if string(b) != "ok" || d.dials.Load() != 2 {
				t.Fatalf("body %q after %d dials", b, d.dials.Load())
			}
		})
	}
}

func TestNoRetryOnFreshConn(t *testing.T) {
	d := &flakyDialer{}
	d.failWrite.Store(true)
	srv := newSumServer(t)
	tr := newTransport(t, func(c *Config) { c.Dial = d.dial })
	_, err := tr.RoundTrip(mustReq(t, context.Background(), "GET", srv.URL, nil))
	if !errors.Is(err, errBroken) || d.dials.Load() != 1 {
		t.Fatalf("got %v after %d dials", err, d.dials.Load())
	}
}

func TestHeaderLimit(t *testing.T) {
	const limit = 4096
	respFor := func(headerBytes int) string {
		head := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Pad: "
		pad := headerBytes - len(head) - len("\r\n\r\n")
		return head + strings.Repeat("a", pad) + "\r\n\r\nok"
	}
	for _, tc := range []struct {
		name string
		resp string
		ok   bool
	}{
		{"at limit", respFor(limit), true},
		{"one over", respFor(limit + 1), false},
		{"far over", respFor(10 * limit), false},
		{"1xx count too", "HTTP/1.1 103 Early Hints\r\nLink: " + strings.Repeat("b", limit) + "\r\n\r\n" + respFor(100), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				if _, _, err := readRequest(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, tc.resp)
			})
			tr := newTransport(t, func(c *Config) { c.MaxResponseHeaderBytes = limit; c.ReadBufferSize = 1024 })
			resp, err := tr.RoundTrip(mustReq(t, context.Background(), "GET", srv.url("/"), nil))
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
					t.Fatalf("body %q", b)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || le.Limit != "max_response_header_bytes" || le.Max != limit || stageOf(err) != OpReadHeaders {
				t.Fatalf("got %v, want a LimitError", err)
			}
		})
	}
}

func TestIdleTimeoutTimer(t *testing.T) {
	leakCheck(t)
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	tr := newTransport(t, func(c *Config) { c.IdleConnTimeout = 10 * time.Millisecond })
	for range 2 {
		get(t, tr, srv.URL)
		addr := strings.TrimPrefix(srv.URL, "http://")
		waitFor(t, "the idle timer to close the connection", func() bool { return tr.idleCount(addr) == 0 })
	}
	waitFor(t, "the server to see both connections closed", func() bool { return srv.closed.Load() == 2 })
	if srv.accepted.Load() != 2 {
		t.Fatalf("accepted %d", srv.accepted.Load())
	}
	_ = tr.Close()
	srv.Close()
}

func TestIdleTimeoutLazy(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {})
	tr := newTransport(t, nil)
	get(t, tr, srv.URL)
	addr := strings.TrimPrefix(srv.URL, "http://")
	tr.mu.Lock()
	tr.idle[addr][0].idleAt = time.Now().Add(-2 * tr.cfg.IdleConnTimeout)
	tr.mu.Unlock()
	get(t, tr, srv.URL)
	if srv.accepted.Load() != 2 {
		t.Fatalf("an expired idle connection was reused")
	}
	waitFor(t, "the expired connection to be closed", func() bool { return srv.closed.Load() == 1 })
}

func TestMaxIdleConnsPerHost(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "x") })
	tr := newTransport(t, func(c *Config) { c.MaxIdleConnsPerHost = 2 })
	var resps []*http.Response
	for range 5 {
		resp, err := tr.RoundTrip(mustReq(t, context.Background(), "GET", srv.URL, nil))
		if err != nil {
			t.Fatal(err)
		}
		resps = append(resps, resp)
	}
	for _, r := range resps {
		_, _ = io.ReadAll(r.Body)
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	if n := tr.idleCount(addr); n != 2 {
		t.Fatalf("idle %d, want 2", n)
	}
	waitFor(t, "3 surplus connections closed", func() bool { return srv.closed.Load() == 3 })
}

func TestCloseTransport(t *testing.T) {
	leakCheck(t)
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "x") })
	tr := newTransport(t, nil)
	inflight, err := tr.RoundTrip(mustReq(t, context.Background(), "GET", srv.URL, nil))
	if err != nil {
		t.Fatal(err)
	}
	get(t, tr, srv.URL) // a second connection, left idle
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	body := &closeRecorder{Reader: *strings.NewReader("x")}
	if _, err := tr.RoundTrip(mustReq(t, context.Background(), "POST", srv.URL, body)); !errors.Is(err, ErrClosed) || !body.closed {
		t.Fatalf("after Close: %v (body closed %v)", err, body.closed)
	}
	waitFor(t, "the idle connection closed", func() bool { return srv.closed.Load() >= 1 })
	if b, _ := io.ReadAll(inflight.Body); string(b) != "x" {
		t.Fatalf("in-flight body %q", b)
	}
	waitFor(t, "the in-flight connection closed, not pooled", func() bool { return srv.closed.Load() == 2 })
	if srv.accepted.Load() != 2 {
		t.Fatalf("accepted %d", srv.accepted.Load())
	}
	srv.Close()
}
