//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package h1

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sseEvents is a small streamed answer: 15 events, about 2 KB, one chunk
// per event as a provider flushes them.
var sseEvents = func() [][]byte {
	var ev [][]byte
	for i := range 15 {
		ev = append(ev, fmt.Appendf(nil, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token %02d %s\"}}]}\n\n", i, strings.Repeat("x", 20)))
	}
	return ev
}()

// upstreamHandler is the fake provider. /flush sends each event in its own
// write, as a streaming provider does; /burst sends the same 15 chunks in
// one write.
func upstreamHandler(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Transfer-Encoding", "chunked")
	f := w.(http.Flusher)
	for _, e := range sseEvents {
		_, _ = w.Write(e)
		if r.URL.Path == "/flush" {
			f.Flush()
		}
	}
}

const upstreamEnv = "H1_BENCH_UPSTREAM"

// TestMain doubles as the benchmark's upstream process: a provider is
// another process, and keeping its goroutines out of ours makes the
// scheduler behave, and cpu-ns/op count, as in the gateway.
func TestMain(m *testing.M) {
	if os.Getenv(upstreamEnv) == "" {
		os.Exit(m.Run())
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.Exit(1)
	}
	fmt.Println(ln.Addr().String())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); os.Exit(0) }() // parent gone
	_ = http.Serve(ln, http.HandlerFunc(upstreamHandler))
	os.Exit(1)
}

// benchUpstream starts the upstream process and returns its base URL.
func benchUpstream(b *testing.B) string {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), upstreamEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	return "http://" + strings.TrimSpace(addr)
}

func BenchmarkRoundTrip(b *testing.B) {
	url := benchUpstream(b)
	reqBody := []byte(`{"model":"llama","stream":true,"messages":[{"role":"user","content":"` + strings.Repeat("hello ", 150) + `"}]}`)
	want := 0
	for _, e := range sseEvents {
		want += len(e)
	}

	h1t, err := New(DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer h1t.Close()
	// Compression off so both send the same request and relay the same
	// bytes; the gateway's own http.Transport otherwise asks for gzip.
	std := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
	defer std.CloseIdleConnections()

	one := func(b *testing.B, rt http.RoundTripper, url string, buf []byte) {
		req, _ := http.NewRequestWithContext(context.Background(), "POST", url, bytes.NewReader(reqBody))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer sk-bench")
		resp, err := rt.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			m, err := resp.Body.Read(buf)
			n += m
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		_ = resp.Body.Close()
		if n != want {
			b.Fatalf("read %d bytes, want %d", n, want)
		}
	}
	for _, tc := range []struct {
		name string
		rt   http.RoundTripper
	}{{"h1", h1t}, {"nethttp", std}} {
		b.Run(tc.name, func(b *testing.B) {
			for _, shape := range []string{"flush", "burst"} {
				url := url + "/" + shape
				b.Run("serial/"+shape, func(b *testing.B) {
					b.ReportAllocs()
					buf := make([]byte, 4096)
					cpu := cpuTime()
					for b.Loop() {
						one(b, tc.rt, url, buf)
					}
					reportCPU(b, cpu)
				})
				b.Run("parallel/"+shape, func(b *testing.B) {
					b.ReportAllocs()
					cpu := cpuTime()
					b.RunParallel(func(pb *testing.PB) {
						buf := make([]byte, 4096)
						for pb.Next() {
							one(b, tc.rt, url, buf)
						}
					})
					reportCPU(b, cpu)
				})
			}
		})
	}
}

// cpuTime is this process's user+system CPU time: the client's, the
// upstream runs in another process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	if b.N > 0 {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}
