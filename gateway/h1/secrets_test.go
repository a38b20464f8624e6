package h1

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

const secret = "SECRET-9f8e7d"

// TestErrorsCarryNoSecrets drives every failure stage with credentials in
// the headers and the query, and an upstream that echoes them back in the
// bytes it breaks the protocol with.
func TestErrorsCarryNoSecrets(t *testing.T) {
	scripts := map[string]func(c net.Conn, auth string){
		"/bad-status": func(c net.Conn, a string) { _, _ = io.WriteString(c, "HTTP/1.1 2x0 "+a+"\r\n\r\n") },
		"/bad-header": func(c net.Conn, a string) { _, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n"+a+"\r\n\r\n") },
		"/bad-chunk": func(c net.Conn, a string) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+a+"\r\n")
		},
		"/bad-trailer": func(c net.Conn, a string) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n"+a+"\r\n\r\n")
		},
		"/big-header": func(c net.Conn, a string) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Echo: "+strings.Repeat(a, 1000)+"\r\n\r\n")
		},
		"/cut-body": func(c net.Conn, a string) {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"+a)
		},
		"/hang-up": func(c net.Conn, a string) {},
		"/stall":   func(c net.Conn, a string) { _, _ = io.Copy(io.Discard, c) },
	}
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		req, _, err := readRequest(br)
		if err != nil {
			return
		}
		scripts[req.URL.Path](c, req.Header.Get("Authorization"))
		_ = c.Close()
	})
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	_ = dead.Close() // connection refused from now on

	tr := newTransport(t, func(c *Config) { c.MaxResponseHeaderBytes = 4096 })
	withSecrets := func(ctx context.Context, url string, extra ...string) *http.Request {
		req := mustReq(t, ctx, "POST", url+"?key="+secret, strings.NewReader(`{"api_key":"`+secret+`"}`))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("X-Api-Key", secret)
		req.Header.Set("X-Goog-Api-Key", secret)
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header[extra[i]] = []string{extra[i+1]}
		}
		return req
	}
	var errs []error
	try := func(req *http.Request) {
		resp, err := tr.RoundTrip(req)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			_ = resp.Body.Close()
		}
		if err == nil {
			t.Errorf("%s: no error", req.URL.Path)
			return
		}
		errs = append(errs, err)
	}
	for path := range scripts {
		if path == "/stall" {
			continue
		}
		try(withSecrets(context.Background(), srv.url(path)))
	}
	try(withSecrets(context.Background(), "http://"+deadAddr+"/"))
	try(withSecrets(context.Background(), "https://"+srv.addr+"/"))
	try(withSecrets(context.Background(), srv.url("/"), "X-Bad", secret+"\r\nX-Injected: 1"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	try(withSecrets(ctx, srv.url("/stall")))

	seen := map[error]bool{}
	for _, err := range errs {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("error leaks a secret: %v", err)
		}
		for _, sentinel := range []error{ErrMalformedResponse, ErrUnsupportedScheme, ErrInvalidRequest, context.Canceled} {
			if errors.Is(err, sentinel) {
				seen[sentinel] = true
			}
		}
	}
	if len(seen) != 4 || len(errs) != 11 {
		t.Errorf("stages not all exercised: %d errors, sentinels %v", len(errs), seen)
	}
}
