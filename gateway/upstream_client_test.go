package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast/gateway/h1"
)

// gateway.upstream_client auto sends plain http:// providers through
// gateway/h1 and the rest (https://, the mock) as before; net_http sends
// every provider through Go's net/http.
func TestUpstreamClientChoice(t *testing.T) {
	providers := map[string]ProviderConfig{
		"local": {Type: TypeOpenAI, BaseURL: "http://127.0.0.1:11434/v1", APIKeyEnv: "OPENAI_KEY"},
		"cloud": {Type: TypeAnthropic, BaseURL: "https://api.anthropic.com", APIKeyEnv: "ANTHROPIC_KEY"},
		"mock":  {Type: TypeMock},
	}
	lookup := func(string) (string, bool) { return "sk-test-0123456789", true }
	for _, tc := range []struct {
		client string
		want   map[string]string // provider → its round tripper ("" = the gateway's net/http client)
	}{
		{UpstreamClientAuto, map[string]string{"local": "*h1.Transport", "cloud": "", "mock": "gateway.mockTransport"}},
		{UpstreamClientNetHTTP, map[string]string{"local": "", "cloud": "", "mock": "gateway.mockTransport"}},
	} {
		cfg := DefaultConfig()
		cfg.UpstreamClient = tc.client
		g, err := New(cfg, providers, nil, nil, nil, Options{LookupEnv: lookup, BindAddr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range g.all {
			got := ""
			if p.rt != nil {
				got = typeName(p.rt)
			}
			if p.h1 != nil {
				got = typeName(p.h1)
			}
			if got != tc.want[p.name] {
				t.Errorf("upstream_client %s: provider %s uses %q, want %q", tc.client, p.name, got, tc.want[p.name])
			}
		}
		if (g.h1 != nil) != (tc.client == UpstreamClientAuto) {
			t.Errorf("upstream_client %s: h1 transport %v", tc.client, g.h1)
		}
	}
	cfg := DefaultConfig()
	cfg.UpstreamClient = "h2"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "upstream_client") {
		t.Fatalf("upstream_client h2: %v", err)
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *h1.Transport:
		return "*h1.Transport"
	case mockTransport:
		return "gateway.mockTransport"
	}
	return "other"
}

// An upstream that answers a large request at once (413) without reading
// its body, and keeps the connection open: the client gets the 413, not a
// call stuck writing (gateway/h1 writes whole bodies before reading, so
// bodies above h1MaxBody go through net/http, which reads while writing).
func TestEarlyAnswerToLargeBody(t *testing.T) {
	e := rawUpstreamEnv(t, 0, func(c net.Conn) {
		br := bufio.NewReader(c)
		for { // the request headers, then nothing more is read
			line, err := br.ReadString('\n')
			if err != nil || line == "\r\n" {
				break
			}
		}
		body := `{"type":"error","error":{"type":"request_too_large","message":"too large"}}`
		fmt.Fprintf(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		<-t.Context().Done() // holds the connection open, unread
		c.Close()
	})
	big := bytes.Repeat([]byte("x"), 16<<20)
	body := append(append([]byte(`{"model":"claude-sonnet-4-5","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"`), big...), `"}]}`...)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second) // a hang guard, not a timing assertion
	defer cancel()
	resp := e.postCtx(ctx, "/v1/messages", body, nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want the upstream's 413", resp.StatusCode)
	}
}

// An upstream whose status line parses but carries a code no answer may
// have (below 100): the gateway must not pass it to WriteHeader (which
// panics) but treat it as a broken upstream, retried, then given up in the
// envelope.
func TestUpstreamStatusBelow100(t *testing.T) {
	var answered atomic.Int32
	e := rawUpstreamEnv(t, 1, func(c net.Conn) {
		defer c.Close()
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		answered.Add(1)
		io.WriteString(c, "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n")
	})
	resp := e.post("/v1/messages", streamBody, nil)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 500 || !strings.Contains(string(b), `"type":"error"`) {
		t.Fatalf("status %d, body %s: want a 5xx in the Anthropic envelope", resp.StatusCode, b)
	}
	if n := answered.Load(); n != 2 {
		t.Fatalf("the upstream was asked %d times, want 2 (one retry)", n)
	}
}

// rawUpstreamEnv is a gateway with gateway.max_retries retries whose one
// provider (anthropic) is a plain TCP listener: handle gets each
// connection, on a goroutine of its own, and closes it.
func rawUpstreamEnv(t *testing.T, retries int, handle func(net.Conn)) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return newEnv(t, withConfig(func(c *Config) { c.MaxRetries = retries }), func(o *envOpts) {
		o.providers = func(string) map[string]ProviderConfig {
			return map[string]ProviderConfig{"anthropic": {Type: TypeAnthropic, BaseURL: "http://" + ln.Addr().String(), APIKeyEnv: "ANTHROPIC_KEY"}}
		}
	})
}
