package envelope

import (
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

func TestWriteHeaders(t *testing.T) {
	tests := []struct {
		name        string
		f           Family
		r           Refusal
		o           Options
		status      int
		retryAfter  string // "" = header absent
		retryAfterM string
		shouldRetry string
		reqHeader   string // header carrying the request ID
	}{
		{"no hints", Anthropic, Refusal{Kind: BadRequest}, Options{}, 400, "", "", "", ""},
		{"sub-second rounds up", Anthropic, Refusal{Kind: RateLimited, RequestID: "r1"}, Options{RetryAfter: 1500 * time.Millisecond}, 429, "2", "1500", "", "Request-Id"},
		{"exact seconds", OpenAI, Refusal{Kind: RateLimited, RequestID: "r2"}, Options{RetryAfter: 3 * time.Second}, 429, "3", "3000", "", "X-Request-Id"},
		{"tiny delay", Gemini, Refusal{Kind: RateLimited, RequestID: "r3"}, Options{RetryAfter: time.Nanosecond}, 429, "1", "1", "", ""},
		{"ms rounds up", Gemini, Refusal{Kind: Unavailable}, Options{RetryAfter: 2*time.Second + 100*time.Microsecond}, 503, "3", "2001", "", ""},
		{"negative ignored", OpenAI, Refusal{Kind: Internal}, Options{RetryAfter: -time.Second}, 500, "", "", "", ""},
		{"no retry 529", Anthropic, Refusal{Kind: Overloaded}, Options{RetryAfter: 10 * time.Second, NoRetry: true}, 529, "10", "10000", "false", ""},
		{"budget", OpenAI, Refusal{Kind: BudgetExhausted}, Options{RetryAfter: time.Hour, NoRetry: true}, 429, "3600", "3600000", "false", ""},
		{"huge delay no overflow", Anthropic, Refusal{Kind: RateLimited}, Options{RetryAfter: time.Duration(1<<63 - 1)}, 429, "9223372037", "9223372036855", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if err := Write(rec, tc.f, tc.r, tc.o); err != nil {
				t.Fatal(err)
			}
			res := rec.Result()
			status, body := Body(tc.f, tc.r)
			if res.StatusCode != tc.status || status != tc.status {
				t.Errorf("status %d (Body %d), want %d", res.StatusCode, status, tc.status)
			}
			if rec.Body.String() != string(body) {
				t.Errorf("body %q, want %q", rec.Body.String(), body)
			}
			h := res.Header
			checks := map[string]string{
				"Content-Type":   "application/json",
				"Content-Length": strconv.Itoa(len(body)),
				"Retry-After":    tc.retryAfter,
				"Retry-After-Ms": tc.retryAfterM,
				"X-Should-Retry": tc.shouldRetry,
			}
			for name, want := range checks {
				if got := h.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			for _, name := range []string{"Request-Id", "X-Request-Id"} {
				want := ""
				if name == tc.reqHeader {
					want = tc.r.RequestID
				}
				if got := h.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
		})
	}
}
