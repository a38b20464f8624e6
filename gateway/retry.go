package gateway

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/holdfast/holdfast/actor/clock"
)

const (
	retryBase = 500 * time.Millisecond
	retryCap  = 8 * time.Second
	// maxRetryWait: when the provider asks for a longer wait than this,
	// the gateway does not hold the client: it passes the error on at once
	// (without x-should-retry: false unless it already retried).
	maxRetryWait = 30 * time.Second
)

// retryWait is the wait before retry n+1 (n = retries done so far):
// max(retry-after, min(8s, 500ms·2^n + jitter)), jitter uniform in
// [0, 25%) of the exponential term.
func retryWait(n int, retryAfter time.Duration) time.Duration {
	exp := retryBase << min(n, 10)
	exp += time.Duration(rand.Int64N(int64(exp / 4)))
	return max(retryAfter, min(retryCap, exp))
}

// parseRetryAfter reads retry-after-ms (milliseconds), then retry-after
// (seconds, or an HTTP date), as the official SDKs do. Absent or
// unparsable: 0.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := h.Get("Retry-After-Ms"); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && f < 1e12 {
			return time.Duration(f * float64(time.Millisecond))
		}
	}
	if v := h.Get("Retry-After"); v != "" {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			if f > 0 && f < 1e9 {
				return time.Duration(f * float64(time.Second))
			}
			return 0
		}
		if t, err := http.ParseTime(v); err == nil && t.After(now) {
			return t.Sub(now)
		}
	}
	return 0
}

// clockSleep waits d on clk, or until ctx ends.
func clockSleep(clk clock.Clock) func(context.Context, time.Duration) error {
	return func(ctx context.Context, d time.Duration) error {
		if d <= 0 {
			return ctx.Err()
		}
		done := make(chan struct{})
		t := clk.AfterFunc(d, func() { close(done) })
		defer t.Stop()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
