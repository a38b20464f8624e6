package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// runFake is the child process that plays the upstream: a tiny HTTP/1.1
// server replaying one Anthropic stream captured from fakeupstream.
// POST /v1/messages           the stream: message_start flushed alone (the
//
//	first byte), then the other events in one write.
//
// POST /hold/v1/messages      message_start, then the stream stalls until
//
//	POST /release (or the client goes away).
func runFake(bodyFile string, ttft time.Duration) error {
	raise()
	b, err := os.ReadFile(bodyFile)
	if err != nil {
		return err
	}
	s := string(b)
	i := strings.Index(s, "\n\n")
	if i < 0 {
		return fmt.Errorf("captured stream has no event")
	}
	first, rest := []byte(s[:i+2]), []byte(s[i+2:])
	var mu sync.Mutex
	release := make(chan struct{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/release", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		close(release)
		release = make(chan struct{})
		mu.Unlock()
	})
	serve := func(w http.ResponseWriter, r *http.Request, hold bool) {
		io.Copy(io.Discard, r.Body)
		if ttft > 0 {
			time.Sleep(ttft) // the provider thinking: time to first token
		}
		h := w.Header()
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("request-id", "req_bench")
		h.Set("anthropic-ratelimit-requests-limit", "100000")
		w.WriteHeader(200)
		w.Write(first)
		w.(http.Flusher).Flush()
		if hold {
			mu.Lock()
			ch := release
			mu.Unlock()
			select {
			case <-ch:
			case <-r.Context().Done():
				return
			}
		}
		w.Write(rest)
	}
	mux.HandleFunc("/v1/messages", func(w http.ResponseWriter, r *http.Request) { serve(w, r, false) })
	mux.HandleFunc("/hold/v1/messages", func(w http.ResponseWriter, r *http.Request) { serve(w, r, true) })
	fmt.Println(ln.Addr().String())
	go func() { // exit when the parent closes stdin
		io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		os.Exit(0)
	}()
	return http.Serve(ln, mux)
}
