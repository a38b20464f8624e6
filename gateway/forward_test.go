package gateway

import (
	"maps"
	"net/http"
	"testing"
)

// TestNotForwardedMatchesMaps: the switch copyResponseHeader uses holds
// exactly the keys of hopByHop and dropResponse.
func TestNotForwardedMatchesMaps(t *testing.T) {
	for k := range maps.Keys(hopByHop) {
		if !notForwarded(k) {
			t.Errorf("hop-by-hop %s forwarded", k)
		}
	}
	for k := range maps.Keys(dropResponse) {
		if !notForwarded(k) {
			t.Errorf("%s forwarded", k)
		}
	}
	for _, k := range []string{"Content-Type", "Content-Length", "Request-Id", "Retry-After", "Anthropic-Ratelimit-Tokens-Remaining",
		"X-Ratelimit-Remaining-Requests", "Cache-Control", "Date", "X-Request-Id", "connection", "Set-Cookie2", "Te2", ""} {
		if notForwarded(k) != (hopByHop[k] || dropResponse[k]) {
			t.Errorf("notForwarded(%q) = %v", k, notForwarded(k))
		}
	}
}

// TestCopyResponseHeader: what reaches the client of the upstream's
// response header, for a stream and for a whole body; the stream's added
// values are the client's own (appending to them changes nothing shared),
// and the copy allocates nothing.
func TestCopyResponseHeader(t *testing.T) {
	up := http.Header{
		"Content-Type":                         {"text/event-stream; charset=utf-8"},
		"Content-Length":                       {"12"},
		"Request-Id":                           {"req_1"},
		"Anthropic-Ratelimit-Tokens-Remaining": {"100"},
		"Connection":                           {"keep-alive, X-Hop"},
		"X-Hop":                                {"1"},
		"Keep-Alive":                           {"timeout=5"},
		"Transfer-Encoding":                    {"chunked"},
		"Set-Cookie":                           {"a=b"},
		"Alt-Svc":                              {"h3=\":443\""},
		"X-Holdfast-Request-Id":                {"spoofed"},
		"Cache-Control":                        {"private"},
	}
	kept := []string{"Content-Type", "Request-Id", "Anthropic-Ratelimit-Tokens-Remaining"}
	for _, sse := range []bool{false, true} {
		dst := http.Header{}
		copyResponseHeader(dst, up, sse)
		want := http.Header{}
		for _, k := range kept {
			want[k] = up[k]
		}
		if sse {
			want["Cache-Control"] = []string{"no-cache"}
			want["X-Accel-Buffering"] = []string{"no"}
		} else {
			want["Content-Length"] = up["Content-Length"]
			want["Cache-Control"] = up["Cache-Control"]
		}
		if !maps.EqualFunc(dst, want, func(a, b []string) bool { return len(a) == len(b) && (len(a) == 0 || a[0] == b[0]) }) {
			t.Fatalf("sse %v: client header %v, want %v", sse, dst, want)
		}
		if sse {
			dst.Add("Cache-Control", "no-store")
			dst["X-Accel-Buffering"] = append(dst["X-Accel-Buffering"], "yes")
			again := http.Header{}
			copyResponseHeader(again, up, true)
			if len(again["Cache-Control"]) != 1 || again.Get("Cache-Control") != "no-cache" || len(again["X-Accel-Buffering"]) != 1 {
				t.Fatalf("a change to one response's header reached the next: %v", again)
			}
		}
	}
	delete(up, "Connection") // its tokens are the one case that allocates
	dst := http.Header{}
	if n := testing.AllocsPerRun(100, func() {
		clear(dst)
		copyResponseHeader(dst, up, true)
	}); n != 0 {
		t.Fatalf("copyResponseHeader allocates %v times", n)
	}
}
