package envelope

import (
	"net/http"
	"strconv"
	"time"
)

// Options are the retry hints sent with a refusal.
type Options struct {
	// RetryAfter > 0 sets retry-after (seconds, rounded up so a client
	// never comes back early) and retry-after-ms (rounded up likewise);
	// the SDKs prefer the latter.
	RetryAfter time.Duration
	// NoRetry sets x-should-retry: false, which the official SDKs obey
	// over their status rule. Use it when the gateway already retried
	// upstream, or when retrying soon cannot help (exhausted budget).
	NoRetry bool
}

// Write answers the request with r in f's envelope. It must be called
// before anything else is written to w; the returned error is w's write
// error, if any (the client went away).
func Write(w http.ResponseWriter, f Family, r Refusal, o Options) error {
	status, body := Body(f, r)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if o.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(ceilDiv(o.RetryAfter, time.Second), 10))
		h.Set("Retry-After-Ms", strconv.FormatInt(ceilDiv(o.RetryAfter, time.Millisecond), 10))
	}
	if o.NoRetry {
		h.Set("X-Should-Retry", "false")
	}
	if r.RequestID != "" {
		switch f {
		case Anthropic:
			h.Set("Request-Id", r.RequestID)
		case OpenAI:
			h.Set("X-Request-Id", r.RequestID)
		}
	}
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// ceilDiv is d/unit rounded up, for positive d (written without d+unit-1
// so a huge d cannot overflow).
func ceilDiv(d, unit time.Duration) int64 {
	q := int64(d / unit)
	if d%unit != 0 {
		q++
	}
	return q
}
