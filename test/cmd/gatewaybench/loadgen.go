package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// cmd is one instruction from the parent to the load-generator child.
type cmd struct {
	Op     string            `json:"op"` // open, closed, hold, release
	URL    string            `json:"url"`
	Header map[string]string `json:"header,omitempty"`
	Rate   float64           `json:"rate,omitempty"`
	Conc   int               `json:"conc,omitempty"`
	N      int               `json:"n,omitempty"`
	Warm   time.Duration     `json:"warm,omitempty"`
	Dur    time.Duration     `json:"dur,omitempty"`
}

// result is the child's answer to one cmd.
type result struct {
	Done     int     `json:"done"`    // complete streams (message_stop seen) in the window
	Errors   int     `json:"errors"`  // failed or incomplete
	Dropped  int     `json:"dropped"` // open loop: not sent, too many in flight
	Rate     float64 `json:"rate"`    // complete streams/s in the window
	P50      float64 `json:"p50"`     // TTFB seconds, from the scheduled start
	P99      float64 `json:"p99"`
	P50b     float64 `json:"p50b"`   // closed loop: whole-stream latency p50
	LagP99   float64 `json:"lagp99"` // open loop: p99 of send time minus scheduled time
	CPU      float64 `json:"cpu"`    // CPU seconds this child used
	Wall     float64 `json:"wall"`   // seconds
	FirstErr string  `json:"firsterr,omitempty"`
	P99x     float64 `json:"p99x"`
}

var reqBody = []byte(`{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Say hello in ten words."}]}`)

func cpuSelf() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return tv(ru.Utime) + tv(ru.Stime)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

func newClient() *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConns:        20000,
		MaxIdleConnsPerHost: 20000,
		DisableCompression:  true,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: 120 * time.Second}
}

// stream sends one streaming request; it returns the time of the first
// body byte, whether the stream completed, and an error.
func stream(ctx context.Context, c *http.Client, url string, hdr map[string]string, firstByte func()) (time.Time, time.Time, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(reqBody))
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("x-api-key", "sk-ant-bench")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	defer resp.Body.Close()
	var buf [4096]byte
	var first time.Time
	var all []byte
	for {
		n, err := resp.Body.Read(buf[:])
		if n > 0 {
			if first.IsZero() {
				first = time.Now()
				if firstByte != nil {
					firstByte()
				}
			}
			all = append(all, buf[:n]...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return first, time.Time{}, err
		}
	}
	if resp.StatusCode != 200 {
		return first, time.Time{}, errors.New(resp.Status + ": " + string(all[:min(len(all), 200)]))
	}
	if !bytes.Contains(all, []byte("message_stop")) {
		return first, time.Time{}, errors.New("stream ended without message_stop")
	}
	return first, time.Now(), nil
}

func pct(d []float64, p float64) float64 {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(p * float64(len(d)-1))
	return d[i]
}

func runLoadgen() error {
	raise()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	enc := json.NewEncoder(os.Stdout)
	c := newClient()
	var held struct {
		wg   sync.WaitGroup
		done atomic.Int64
		errs atomic.Int64
	}
	for in.Scan() {
		var m cmd
		if err := json.Unmarshal(in.Bytes(), &m); err != nil {
			return err
		}
		cpu0, t0 := cpuSelf(), time.Now()
		var r result
		switch m.Op {
		case "open":
			r = openLoop(c, m)
		case "closed":
			r = closedLoop(c, m)
		case "hold":
			// Open m.N streams that the upstream holds after their first
			// event; answer once every one has its first byte (or failed).
			fb := make(chan struct{}, m.N)
			sem := make(chan struct{}, 256) // bounded connection setup
			var firstErr atomic.Value
			for i := 0; i < m.N; i++ {
				sem <- struct{}{}
				held.wg.Add(1)
				go func() {
					defer held.wg.Done()
					var once sync.Once
					sig := func() { once.Do(func() { <-sem; fb <- struct{}{} }) }
					_, _, err := stream(context.Background(), c, m.URL, m.Header, sig)
					if err != nil {
						held.errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						sig()
						return
					}
					held.done.Add(1)
				}()
			}
			deadline := time.After(m.Dur)
		wait:
			for i := 0; i < m.N; i++ {
				select {
				case <-fb:
				case <-deadline:
					break wait
				}
			}
			r.Done = m.N - int(held.errs.Load())
			r.Errors = int(held.errs.Load())
			if e, ok := firstErr.Load().(string); ok {
				r.FirstErr = e
			}
		case "release":
			held.wg.Wait()
			r.Done, r.Errors = int(held.done.Load()), int(held.errs.Load())
			held.done.Store(0)
			held.errs.Store(0)
			c.CloseIdleConnections()
		}
		r.CPU, r.Wall = cpuSelf()-cpu0, time.Since(t0).Seconds()
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return in.Err()
}

// openLoop offers m.Rate streams/s on a fixed schedule for m.Warm+m.Dur,
// whatever the answers; TTFB counts from each stream's scheduled time, so a
// stalled target is not hidden (no coordinated omission).
func openLoop(c *http.Client, m cmd) result {
	const maxInFlight = 8000
	var mu sync.Mutex
	var ttfb, lag []float64
	var done, errs, dropped int
	var firstErr string
	var inflight atomic.Int64
	var wg sync.WaitGroup
	start := time.Now().Add(10 * time.Millisecond)
	total := int((m.Warm + m.Dur).Seconds() * m.Rate)
	warmN := int(m.Warm.Seconds() * m.Rate)
	interval := time.Duration(float64(time.Second) / m.Rate)
	ctx, cancel := context.WithTimeout(context.Background(), m.Warm+m.Dur+30*time.Second)
	defer cancel()
	for i := 0; i < total; i++ {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		if inflight.Load() >= maxInFlight {
			if i >= warmN {
				dropped++
			}
			continue
		}
		inflight.Add(1)
		wg.Add(1)
		go func(i int, at time.Time) {
			defer wg.Done()
			defer inflight.Add(-1)
			sent := time.Now()
			first, _, err := stream(ctx, c, m.URL, m.Header, nil)
			if i < warmN {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				if firstErr == "" {
					firstErr = err.Error()
				}
				return
			}
			done++
			ttfb = append(ttfb, first.Sub(at).Seconds())
			lag = append(lag, sent.Sub(at).Seconds())
		}(i, at)
	}
	wg.Wait()
	return result{Done: done, Errors: errs, Dropped: dropped, Rate: float64(done) / m.Dur.Seconds(),
		P50: pct(ttfb, 0.50), P99: pct(ttfb, 0.99), LagP99: pct(lag, 0.99), FirstErr: firstErr, P99x: pct(ttfb, 0.999)}
}

// closedLoop runs m.Conc clients, each sending its next stream when the
// previous one ends, for m.Warm+m.Dur; it counts streams completed in Dur.
func closedLoop(c *http.Client, m cmd) result {
	var mu sync.Mutex
	var lat []float64
	var done, errs int
	var firstErr string
	var wg sync.WaitGroup
	t0 := time.Now()
	measureFrom, end := t0.Add(m.Warm), t0.Add(m.Warm+m.Dur)
	ctx, cancel := context.WithTimeout(context.Background(), m.Warm+m.Dur+30*time.Second)
	defer cancel()
	for w := 0; w < m.Conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				s := time.Now()
				if !s.Before(end) {
					return
				}
				_, fin, err := stream(ctx, c, m.URL, m.Header, nil)
				if s.Before(measureFrom) {
					continue
				}
				if err == nil && fin.After(end) {
					return
				}
				mu.Lock()
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
				} else {
					done++
					lat = append(lat, fin.Sub(s).Seconds())
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return result{Done: done, Errors: errs, Rate: float64(done) / m.Dur.Seconds(), P50b: pct(lat, 0.5), P99: pct(lat, 0.99), FirstErr: firstErr}
}
