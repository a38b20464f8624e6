package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/trace"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/gateway/h1"
)

// TestAnalyzeTTFBFollowsEachRequest traces a proxy built of the parts the
// analysis keys on (net/http's server in front, gateway/h1 to the
// upstream) and requires every request to be reconstructed, with segments
// that add up to its total. If either side's function names change, the
// count drops to zero and this fails.
func TestAnalyzeTTFBFollowsEachRequest(t *testing.T) {
	if trace.IsEnabled() {
		t.Skip("a trace is already running (go test -trace)")
	}
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release // the proxy is reading the answer by now
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: ping\ndata: {}\n\n")
	}))
	defer up.Close()
	// reading says the proxy went to read the upstream's answer after
	// writing a request: only then is the upstream let answer, so the
	// proxy's goroutine blocks on the upstream as it does in gatewaybench.
	reading := make(chan struct{}, 1)
	cfg := h1.DefaultConfig()
	dial := cfg.Dial
	cfg.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &readSignal{Conn: c, reading: reading}, nil
	}
	tr, err := h1.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, up.URL+"/v1/messages", bytes.NewReader(body))
		reg := trace.StartRegion(r.Context(), "test.upstream_headers")
		resp, err := tr.RoundTrip(req)
		reg.End()
		if err != nil {
			http.Error(w, "upstream", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	defer proxy.Close()

	var buf bytes.Buffer
	if err := trace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	const n = 20
	client := proxy.Client()
	for range n {
		done := make(chan error, 1)
		go func() {
			resp, err := client.Post(proxy.URL, "application/json", strings.NewReader(`{"model":"m"}`))
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			done <- err
		}()
		<-reading
		release <- struct{}{}
		if err := <-done; err != nil {
			trace.Stop()
			t.Fatal(err)
		}
	}
	trace.Stop()

	p, err := analyzeTTFB(&buf)
	if err != nil {
		t.Fatal(err)
	}
	// A request is not counted when its bytes were already there when the
	// proxy's connection goroutine went to read it (the first on each
	// connection, and any the scheduler let the client send early).
	if len(p.total) < n/4 || len(p.total) > n {
		t.Fatalf("reconstructed %d of %d requests", len(p.total), n)
	}
	for i, total := range p.total {
		if sum := p.wait[i] + p.request[i] + p.upstream[i] + p.wait2[i] + p.answer[i]; sum != total {
			t.Fatalf("request %d: segments add to %v, total %v", i, sum, total)
		}
		if p.request[i] <= 0 || p.upstream[i] <= 0 || p.reqSys[i] > p.request[i] || p.answerSys[i] > p.answer[i] {
			t.Fatalf("request %d: implausible segments %v %v %v %v", i, p.request[i], p.upstream[i], p.reqSys[i], p.answerSys[i])
		}
	}
	// The handler's region (the upstream round trip to the answer's head)
	// is in every counted request, within its total.
	reg := p.regions["test.upstream_headers"]
	if len(reg) != len(p.total) {
		t.Fatalf("region seen in %d of %d requests", len(reg), len(p.total))
	}
	for i, d := range reg {
		if d <= 0 || d > p.total[i] {
			t.Fatalf("request %d: %v in the region, %v in all", i, d, p.total[i])
		}
	}
	var md bytes.Buffer
	p.markdown(&md)
	if !strings.Contains(md.String(), "request arrived → first write to the client") || !strings.Contains(md.String(), "| test.upstream_headers |") {
		t.Fatalf("table:\n%s", md.String())
	}
}

// readSignal reports on reading the first Read after each Write.
type readSignal struct {
	net.Conn
	reading chan struct{}
	wrote   bool
}

func (c *readSignal) Write(p []byte) (int, error) {
	c.wrote = true
	return c.Conn.Write(p)
}

func (c *readSignal) Read(p []byte) (int, error) {
	if c.wrote {
		c.wrote = false
		select {
		case c.reading <- struct{}{}:
		default:
		}
	}
	return c.Conn.Read(p)
}
