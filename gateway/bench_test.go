package gateway

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/gateway/account"
)

// BenchmarkProxyStream measures what the gateway adds to a streamed
// Anthropic call: the same request straight to the fake upstream and
// through the gateway (auth none, no accounting), and both alternately
// in one loop, reporting the difference as added-ns/op. Ratios against a
// baseline measured in the same run, never absolute times in a test.
func BenchmarkProxyStream(b *testing.B) {
	e := newEnv(b, func(o *envOpts) { o.noCaller, o.noLogs = true, true })
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	run := func(b *testing.B, url string) {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(streamBody))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n == 0 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
	}
	direct, gateway := e.fake.URL()+"/v1/messages", e.srv.URL+"/v1/messages"
	tidy := func(i int) {
		if i%1000 == 0 {
			e.fake.Reset() // the fake records every request
		}
	}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			run(b, direct)
			i++
			tidy(i)
		}
	})
	b.Run("gateway", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			run(b, gateway)
			i++
			tidy(i)
		}
	})
	b.Run("added", func(b *testing.B) {
		var d, g time.Duration
		i := 0
		for b.Loop() {
			t0 := time.Now()
			run(b, direct)
			t1 := time.Now()
			run(b, gateway)
			g += time.Since(t1)
			d += t1.Sub(t0)
			i++
			tidy(i)
		}
		b.ReportMetric(float64(g-d)/float64(i), "added-ns/op")
		b.ReportMetric(float64(g)/float64(d), "gateway/direct")
	})
}

// BenchmarkStreamedCall is one streamed Anthropic call end to end through
// Handler with auth none and a real account namespace (memory durability,
// so the fsync is not measured): the admit turn, the byte-exact relay, and
// the background settle and log line, waited for in the loop so that
// their cost counts in the call's ns/op, B/op and allocs/op.
func BenchmarkStreamedCall(b *testing.B) {
	b.Run("no_limits", func(b *testing.B) { benchStreamedCall(b, account.Defaults{}) })
	// Every limit set (none reached): the admit takes from three buckets
	// and checks the daily budget, and the settle corrects them.
	b.Run("limits", func(b *testing.B) {
		benchStreamedCall(b, account.Defaults{
			RequestsPerMinute: 1_000_000_000, InputTokensPerMinute: account.MaxPerMinute,
			OutputTokensPerMinute: account.MaxPerMinute, DailyBudgetNanos: 1_000_000 * 1_000_000_000,
		})
	})
}

func benchStreamedCall(b *testing.B, d account.Defaults) {
	cfg := actor.DefaultConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Partitions = 16
	cfg.IdleTimeout = time.Hour
	rt, err := actor.New(cfg, actor.NewMemStore(), []actor.NamespaceConfig{
		{Name: account.DefaultNamespace, Durability: actor.Memory, New: account.New(d)},
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Shutdown(context.Background()) })
	e := newEnv(b, func(o *envOpts) {
		o.caller, o.noLogs = rt, true
		o.wrapClock = func(*clock.Fake) clock.Clock { return clock.Real{} }
	})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	url := e.srv.URL + "/v1/messages"
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(streamBody))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n == 0 {
			b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
		}
		<-e.gw.inflight.idle()
		if i++; i%1000 == 0 {
			e.fake.Reset()
		}
	}
}
