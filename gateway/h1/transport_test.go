package h1

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestRequestWireFormat checks the request bytes against what
// http.Transport (without transparent compression) writes.
func TestRequestWireFormat(t *testing.T) {
	got := make(chan []byte, 2)
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		var raw bytes.Buffer
		req, err := http.ReadRequest(bufio.NewReader(io.TeeReader(br, &raw)))
		if err != nil {
			return
		}
		_, _ = io.ReadAll(req.Body)
		got <- raw.Bytes()
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	})
	body := `{"model":"m","stream":true}`
	mk := func() *http.Request {
		req := mustReq(t, context.Background(), "POST", srv.url("/v1/chat/completions?a=b"), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer sk-test")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		return req
	}
	tr := newTransport(t, nil)
	if _, err := tr.RoundTrip(mk()); err != nil {
		t.Fatal(err)
	}
	mine := <-got
	std := &http.Transport{DisableCompression: true}
	defer std.CloseIdleConnections()
	if _, err := std.RoundTrip(mk()); err != nil {
		t.Fatal(err)
	}
	theirs := <-got
	// The TeeReader may have buffered past the body; both requests are
	// alone on their connections, so the bytes are exactly the request.
	if !bytes.Equal(mine, theirs) {
		t.Fatalf("wire bytes differ\nh1:\n%q\nnet/http:\n%q", mine, theirs)
	}
	for _, want := range []string{"POST /v1/chat/completions?a=b HTTP/1.1\r\n", "Host: " + srv.addr + "\r\n", "User-Agent: Go-http-client/1.1\r\n", "Content-Length: 27\r\n"} {
		if !bytes.Contains(mine, []byte(want)) {
			t.Errorf("request lacks %q:\n%s", want, mine)
		}
	}
	if bytes.Contains(bytes.ToLower(mine), []byte("accept-encoding")) {
		t.Errorf("request carries Accept-Encoding:\n%s", mine)
	}
}

func TestRequestBodyByteExact(t *testing.T) {
	type digest struct {
		sum [32]byte
		n   int
		te  string
	}
	got := make(chan digest, 1)
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("server read: %v", err)
		}
		got <- digest{sha256.Sum256(b), len(b), strings.Join(r.TransferEncoding, ",")}
	})
	tr := newTransport(t, nil)
	big := make([]byte, 10<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>11)
	}
	for _, tc := range []struct {
		name string
		body io.Reader
		te   string
	}{
		{"10MB content-length", bytes.NewReader(big), ""},
		{"10MB chunked", io.MultiReader(bytes.NewReader(big[:1<<20]), bytes.NewReader(big[1<<20:])), "chunked"},
		{"small", strings.NewReader("hello"), ""},
	} {
		req := mustReq(t, context.Background(), "POST", srv.URL, tc.body)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		d := <-got
		want := big
		if tc.name == "small" {
			want = []byte("hello")
		}
		if d.sum != sha256.Sum256(want) || d.n != len(want) || d.te != tc.te {
			t.Errorf("%s: server got %d bytes (te %q), want %d bytes (te %q) with matching digest", tc.name, d.n, d.te, len(want), tc.te)
		}
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Errorf("accepted %d connections, want 1 (keep-alive)", n)
	}
}

func TestKeepAliveReuse(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok "+r.URL.Path)
	})
	tr := newTransport(t, nil)
	for i := range 20 {
		_, b := get(t, tr, fmt.Sprintf("%s/%d", srv.URL, i))
		if b != fmt.Sprintf("ok /%d", i) {
			t.Fatalf("body %q", b)
		}
	}
	if n := srv.accepted.Load(); n != 1 {
		t.Fatalf("accepted %d connections, want 1", n)
	}
	addr := strings.TrimPrefix(srv.URL, "http://")
	if n := tr.idleCount(addr); n != 1 {
		t.Fatalf("idle %d, want 1", n)
	}
}

// TestResponseFramings covers every way a response body can end, and
// whether the connection is reused after it.
func TestResponseFramings(t *testing.T) {
	cases := []struct {
		name   string
		method string
		resp   string
		body   string
		reuse  bool
	}{
		{"content-length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", "hello", true},
		{"chunked", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world", true},
		{"chunked with trailer", "GET", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n", "hi", true},
		{"empty content-length", "GET", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "", true},
		{"204", "GET", "HTTP/1.1 204 No Content\r\n\r\n", "", true},
		{"HEAD", "HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", "", true},
		{"close-delimited", "GET", "HTTP/1.1 200 OK\r\n\r\nuntil close", "until close", false},
		{"http/1.0", "GET", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", false},
		{"connection close", "GET", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", "ok", false},
		{"1xx first", "GET", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine", "fine", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
				for {
					if _, _, err := readRequest(br); err != nil {
						return
					}
					_, _ = io.WriteString(c, tc.resp)
					if !tc.reuse {
						_ = c.Close()
						return
					}
				}
			})
			tr := newTransport(t, nil)
			for i := range 3 {
				req := mustReq(t, context.Background(), tc.method, srv.url("/"), nil)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				if resp.StatusCode/100 != 2 {
					t.Fatalf("status %d", resp.StatusCode)
				}
				b, err := io.ReadAll(resp.Body)
				if err != nil || string(b) != tc.body {
					t.Fatalf("request %d: body %q, %v; want %q", i, b, err, tc.body)
				}
				_ = resp.Body.Close()
				if resp.Request != req {
					t.Fatal("resp.Request is not the caller's request")
				}
			}
			want := int64(3)
			if tc.reuse {
				want = 1
			}
			if n := srv.accepted.Load(); n != want {
				t.Fatalf("accepted %d connections, want %d", n, want)
			}
		})
	}
}

func TestRequestConnectionClose(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "x")
	})
	tr := newTransport(t, nil)
	for _, mk := range []func(*http.Request){
		func(r *http.Request) { r.Close = true },
		func(r *http.Request) { r.Header.Set("Connection", "close") },
	} {
		for range 2 {
			req := mustReq(t, context.Background(), "GET", srv.URL, nil)
			mk(req)
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
		}
	}
	if n := srv.accepted.Load(); n != 4 {
		t.Fatalf("accepted %d, want 4", n)
	}
	waitFor(t, "server to see all connections closed", func() bool { return srv.closed.Load() == 4 })
}

func TestEarlyBodyCloseNotReused(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			return
		}
		for i := 0; i < 1000 && r.Context().Err() == nil; i++ {
			_, _ = fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
		}
	})
	tr := newTransport(t, nil)
	req := mustReq(t, context.Background(), "GET", srv.URL+"/stream", nil)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if _, err := resp.Body.Read(buf); !errors.Is(err, ErrBodyClosed) {
		t.Fatalf("read after close: %v", err)
	}
	waitFor(t, "server to see the stream's connection closed", func() bool { return srv.closed.Load() == 1 })
	get(t, tr, srv.URL+"/small")
	if n := srv.accepted.Load(); n != 2 {
		t.Fatalf("accepted %d, want 2", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	leakCheck(t)
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			_, _ = fmt.Fprintf(w, "data: %s-%d\n\n", b, i)
			w.(http.Flusher).Flush()
		}
	})
	tr := newTransport(t, func(c *Config) { c.MaxIdleConnsPerHost = 8 })
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 25 {
				id := fmt.Sprintf("g%d-%d", g, i)
				req := mustReq(t, context.Background(), "POST", srv.URL, strings.NewReader(id))
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				want := fmt.Sprintf("data: %s-0\n\ndata: %s-1\n\ndata: %s-2\n\n", id, id, id)
				if err != nil || string(b) != want {
					t.Errorf("%s: %q, %v", id, b, err)
					return
				}
			}
		})
	}
	wg.Wait()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if n := tr.idleCount(addr); n > 8 {
		t.Errorf("idle %d > MaxIdleConnsPerHost 8", n)
	}
	_ = tr.Close()
	srv.Close()
}

// TestEarlyResponseOnWriteFailure: an upstream that answers 413 and closes
// without reading a large body gets its answer through.
func TestEarlyResponseOnWriteFailure(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbig")
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.Close()
	})
	tr := newTransport(t, nil)
	req := mustReq(t, context.Background(), "POST", srv.url("/"), bytes.NewReader(make([]byte, 64<<20)))
	resp, err := tr.RoundTrip(req)
	if err != nil {
		if stageOf(err) != OpWrite {
			t.Fatalf("got %v, want the 413 or a write error", err)
		}
		t.Skipf("kernel dropped the early answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || string(b) != "big" {
		t.Fatalf("got %d %q", resp.StatusCode, b)
	}
}

func TestUpgradeRefused(t *testing.T) {
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if _, _, err := readRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	})
	tr := newTransport(t, nil)
	_, err := tr.RoundTrip(mustReq(t, context.Background(), "GET", srv.url("/"), nil))
	if !errors.Is(err, ErrUnsupportedUpgrade) || stageOf(err) != OpReadHeaders {
		t.Fatalf("got %v", err)
	}
	if tr.idleCount(srv.addr) != 0 {
		t.Fatal("upgraded connection pooled")
	}
}
