package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
)

// heldStreams opens n streams against a server that runs on one goroutine
// (no goroutine per connection on either side of the test) and holds them
// mid-body. It returns the goroutine count growth once all are open.
func heldStreams(t *testing.T, rt http.RoundTripper, n int) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	served := make(chan struct{})
	go func() {
		defer close(served)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				_ = c.Close()
			}
		}()
		for range n {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			if _, _, err := readRequest(bufio.NewReader(c)); err != nil {
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n6\r\ndata:1\r\n")
		}
		<-release
	}()
	defer func() { close(release); <-served; _ = ln.Close() }()

	ctx, cancel := context.WithCancel(context.Background()) // cancellable: AfterFunc is armed
	defer cancel()
	base := runtime.NumGoroutine()
	var bodies []io.ReadCloser
	for range n {
		req := mustReq(t, ctx, "POST", "http://"+ln.Addr().String()+"/v1/chat/completions", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		if _, err := io.ReadFull(resp.Body, buf); err != nil || string(buf) != "data:1" {
			t.Fatalf("first event %q, %v", buf, err)
		}
		bodies = append(bodies, resp.Body)
	}
	grown := runtime.NumGoroutine() - base
	for _, b := range bodies {
		_ = b.Close()
	}
	return grown
}

func TestNoGoroutinePerStream(t *testing.T) {
	leakCheck(t)
	const n = 100
	tr := newTransport(t, nil)
	if grown := heldStreams(t, tr, n); grown > 2 {
		t.Fatalf("%d goroutines for %d open streams, want none", grown, n)
	}
	// The same measurement must see net/http's two per connection, or it
	// proves nothing.
	std := &http.Transport{}
	defer std.CloseIdleConnections()
	if grown := heldStreams(t, std, n); grown < n {
		t.Fatalf("measurement is blind: net/http grew by %d for %d streams", grown, n)
	}
}
