package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// recorder keeps every Write it gets, so the flush pattern (headers
// before a body that may block, one flush per chunk) is compared too.
type recorder struct{ writes [][]byte }

func (r *recorder) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}

// closeCounter records Close on a request body.
type closeCounter struct {
	io.Reader
	closed int
}

func (c *closeCounter) Close() error { c.closed++; return nil }

// sizedReads returns its data in reads of the given sizes, in turn: a
// body that is neither in memory nor a WriterTo.
type sizedReads struct {
	data  []byte
	sizes []int
	i     int
}

func (s *sizedReads) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(s.data), s.sizes[s.i%len(s.sizes)])
	s.i++
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

var errBodyRead = errors.New("body read failed")

// TestWriteRequestMatchesWrite: for each request, writeRequest produces
// the same bytes, in the same writes, as (*http.Request).Write, fails
// when it fails, and closes the body as it does.
func TestWriteRequestMatchesWrite(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80 KB: several 32 KB chunks
	ctx := context.Background()
	mk := func(method, u string, body io.Reader) *http.Request {
		req, err := http.NewRequestWithContext(ctx, method, u, body)
		if err != nil {
			t.Fatal(err)
		}
		return req
	}
	cases := []struct {
		name string
		req  func() *http.Request
	}{
		{"GET no body", func() *http.Request { return mk("GET", "http://h:8080/v1/models", nil) }},
		{"empty method", func() *http.Request { r := mk("GET", "http://h/", nil); r.Method = ""; return r }},
		{"query", func() *http.Request { return mk("GET", "http://h/p/a%20b?x=1&y=%2F&key=k", nil) }},
		{"force query", func() *http.Request { return mk("GET", "http://h/p?", nil) }},
		{"no path", func() *http.Request { return mk("GET", "http://h", nil) }},
		{"raw path", func() *http.Request { return mk("GET", "http://h/a%2Fb/c", nil) }},
		{"opaque", func() *http.Request {
			return &http.Request{Method: "GET", URL: &url.URL{Scheme: "http", Host: "h", Opaque: "//h/op"}, Header: http.Header{}}
		}},
		{"POST bytes", func() *http.Request {
			r := mk("POST", "http://h/v1/chat/completions", bytes.NewReader([]byte(`{"stream":true}`)))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer sk-x")
			return r
		}},
		{"POST nopcloser bytes", func() *http.Request {
			r := mk("POST", "http://h/", nil)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(big)), int64(len(big))
			return r
		}},
		{"POST streamed known length", func() *http.Request {
			r := mk("POST", "http://h/", &sizedReads{data: big, sizes: []int{7, 40000}})
			r.ContentLength = int64(len(big))
			return r
		}},
		{"POST chunked", func() *http.Request {
			r := mk("POST", "http://h/", &sizedReads{data: big, sizes: []int{1, 100, 50000, 3}})
			r.ContentLength = -1
			return r
		}},
		{"POST chunked WriterTo", func() *http.Request {
			r := mk("POST", "http://h/", io.NopCloser(bytes.NewReader(big)))
			r.ContentLength = -1
			return r
		}},
		{"POST body with ContentLength 0", func() *http.Request {
			return mk("POST", "http://h/", io.MultiReader(strings.NewReader("abc")))
		}},
		{"POST nil body", func() *http.Request { return mk("POST", "http://h/", nil) }},
		{"PUT NoBody", func() *http.Request { return mk("PUT", "http://h/", http.NoBody) }},
		{"PATCH empty reader", func() *http.Request { return mk("PATCH", "http://h/", strings.NewReader("")) }},
		{"DELETE", func() *http.Request { return mk("DELETE", "http://h/x", nil) }},
		{"GET unknown-length empty body", func() *http.Request {
			r := mk("GET", "http://h/", nil)
			r.Body = io.NopCloser(io.MultiReader())
			return r
		}},
		{"GET unknown-length body", func() *http.Request {
			r := mk("GET", "http://h/", nil)
			r.Body = io.NopCloser(io.MultiReader(strings.NewReader("abc"), strings.NewReader("de")))
			return r
		}},
		{"GET unknown-length one byte with EOF", func() *http.Request {
			r := mk("OPTIONS", "http://h/", nil)
			r.Body = io.NopCloser(iotest.DataErrReader(strings.NewReader("z")))
			return r
		}},
		{"GET unknown-length failing body", func() *http.Request {
			r := mk("DELETE", "http://h/", nil)
			r.Body = io.NopCloser(iotest.ErrReader(errBodyRead))
			return r
		}},
		{"Host override", func() *http.Request { r := mk("GET", "http://h/", nil); r.Host = "api.example.com:8443"; return r }},
		{"invalid Host", func() *http.Request { r := mk("GET", "http://h/", nil); r.Host = "bad host/x"; return r }},
		{"IPv6 zone", func() *http.Request { return mk("GET", "http://[fe80::1%25en0]:8080/", nil) }},
		{"IDN host", func() *http.Request { r := mk("GET", "http://h/", nil); r.Host = "bücher.example:80"; return r }},
		{"headers multi-valued", func() *http.Request {
			r := mk("POST", "http://h/", strings.NewReader("x"))
			r.Header["X-Multi"] = []string{"a", " b\t", ""}
			r.Header["x-lower"] = []string{"l"}
			r.Header["Accept"] = []string{"text/event-stream"}
			r.Header["Anthropic-Version"] = []string{"2023-06-01"}
			r.Header["Host"] = []string{"ignored"}
			r.Header["Content-Length"] = []string{"999"}
			r.Header["Transfer-Encoding"] = []string{"gzip"}
			r.Header["Trailer"] = []string{"X"}
			r.Header["X-Empty"] = nil
			return r
		}},
		{"many headers", func() *http.Request {
			r := mk("GET", "http://h/", nil)
			for i := range 40 {
				r.Header.Set("X-H-"+string(rune('a'+i%26))+string(rune('a'+i/26)), "v")
			}
			return r
		}},
		{"User-Agent set", func() *http.Request {
			r := mk("GET", "http://h/", nil)
			r.Header.Set("User-Agent", " holdfast/1 ")
			return r
		}},
		{"User-Agent spaces", func() *http.Request { r := mk("GET", "http://h/", nil); r.Header.Set("User-Agent", " \t "); return r }},
		{"User-Agent blank", func() *http.Request { r := mk("GET", "http://h/", nil); r.Header.Set("User-Agent", ""); return r }},
		{"User-Agent empty list", func() *http.Request { r := mk("GET", "http://h/", nil); r.Header["User-Agent"] = nil; return r }},
		{"Close", func() *http.Request { r := mk("GET", "http://h/", nil); r.Close = true; return r }},
		{"Close with header", func() *http.Request {
			r := mk("GET", "http://h/", nil)
			r.Close = true
			r.Header.Set("Connection", "keep-alive, CLOSE")
			return r
		}},
		{"explicit chunked", func() *http.Request {
			r := mk("PUT", "http://h/", strings.NewReader("abc"))
			r.TransferEncoding = []string{"chunked"}
			return r
		}},
		{"explicit chunked NoBody", func() *http.Request {
			r := mk("PUT", "http://h/", http.NoBody)
			r.TransferEncoding = []string{"chunked"}
			return r
		}},
		{"identity DELETE", func() *http.Request {
			r := mk("DELETE", "http://h/", http.NoBody)
			r.TransferEncoding = []string{"identity"}
			return r
		}},
		{"identity HEAD", func() *http.Request {
			r := mk("HEAD", "http://h/", http.NoBody)
			r.TransferEncoding = []string{"identity"}
			return r
		}},
		{"identity GET", func() *http.Request {
			r := mk("GET", "http://h/", http.NoBody)
			r.TransferEncoding = []string{"identity"}
			return r
		}},
		{"identity unknown length", func() *http.Request {
			r := mk("POST", "http://h/", &sizedReads{data: []byte("until close"), sizes: []int{4}})
			r.ContentLength = -1
			r.TransferEncoding = []string{"identity"}
			return r
		}},
		{"trailer", func() *http.Request {
			r := mk("POST", "http://h/", &sizedReads{data: []byte("abc"), sizes: []int{2}})
			r.ContentLength = -1
			r.Trailer = http.Header{"x-b": {"1"}, "X-A": {" 2 "}}
			return r
		}},
		{"trailer not chunked", func() *http.Request {
			r := mk("POST", "http://h/", strings.NewReader("abc"))
			r.Trailer = http.Header{"X-A": {"1"}}
			return r
		}},
		{"bad trailer key", func() *http.Request {
			r := mk("POST", "http://h/", &sizedReads{data: []byte("abc"), sizes: []int{2}})
			r.ContentLength = -1
			r.Trailer = http.Header{"content-length": nil}
			return r
		}},
		{"body shorter than ContentLength", func() *http.Request {
			r := mk("POST", "http://h/", strings.NewReader("abc"))
			r.ContentLength = 5
			return r
		}},
		{"body longer than ContentLength", func() *http.Request {
			r := mk("POST", "http://h/", strings.NewReader("abcdef"))
			r.ContentLength = 2
			return r
		}},
		{"failing body", func() *http.Request {
			r := mk("POST", "http://h/", nil)
			r.Body, r.ContentLength = io.NopCloser(iotest.ErrReader(errBodyRead)), 3
			return r
		}},
		{"ContentLength with nil body", func() *http.Request {
			r := mk("POST", "http://h/", nil)
			r.ContentLength = 3
			return r
		}},
		{"control byte in URL", func() *http.Request {
			r := mk("GET", "http://h/", nil)
			r.URL.RawQuery = "a=\x01"
			return r
		}},
		{"CONNECT", func() *http.Request {
			return &http.Request{Method: "CONNECT", URL: &url.URL{Host: "h:443"}, Host: "h:443", Header: http.Header{}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			std, mine := tc.req(), tc.req()
			if err := validateRequest(mine); err != nil {
				t.Fatalf("case is not a valid request: %v", err)
			}
			// In-memory bodies (io.NopCloser'd or not) stay as they are:
			// their type decides the flush pattern. The others are
			// watched for Close.
			var stdBody, mineBody *closeCounter
			if std.Body != nil && std.Body != http.NoBody {
				inner := reflect.ValueOf(std.Body)
				if n := inner.Type().String(); n == "io.nopCloser" || n == "io.nopCloserWriterTo" {
					inner = inner.Field(0).Elem()
				}
				switch inner.Type().String() {
				case "*bytes.Reader", "*strings.Reader", "*bytes.Buffer":
				default:
					stdBody, mineBody = &closeCounter{Reader: std.Body}, &closeCounter{Reader: mine.Body}
					std.Body, mine.Body = stdBody, mineBody
				}
			}
			var want, got recorder
			bw := bufio.NewWriterSize(&want, 4096)
			stdErr := std.Write(bw)
			if stdErr == nil {
				stdErr = bw.Flush()
			}
			pc := &pconn{bw: bufio.NewWriterSize(&got, 4096)}
			mineErr := pc.writeRequest(mine)
			if mineErr == nil {
				mineErr = pc.bw.Flush()
			}
			if (stdErr == nil) != (mineErr == nil) {
				t.Fatalf("net/http error %v, h1 error %v", stdErr, mineErr)
			}
			if stdErr == nil && !slices.EqualFunc(want.writes, got.writes, bytes.Equal) {
				t.Fatalf("writes differ\nnet/http: %q\nh1:       %q", want.writes, got.writes)
			}
			if stdErr != nil && stdErr.Error() != mineErr.Error() {
				t.Fatalf("net/http error %q, h1 error %q", stdErr, mineErr)
			}
			if stdBody != nil && (stdBody.closed != 1 || mineBody.closed != 1) {
				t.Fatalf("body closed %d times by net/http, %d by h1", stdBody.closed, mineBody.closed)
			}
		})
	}
}

// TestWriteRequestAllocs: an ordinary forwarded request (known-length
// in-memory body, a handful of headers) costs no allocation to write.
func TestWriteRequestAllocs(t *testing.T) {
	body := bytes.NewReader([]byte(`{"model":"m","stream":true}`))
	req, err := http.NewRequest("POST", "http://127.0.0.1:8080/v1/chat/completions?a=b", body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sk-x")
	req.Header.Set("Accept", "text/event-stream")
	req.Header["X-Multi"] = []string{"1", "2"}
	rc := io.NopCloser(body)
	pc := &pconn{bw: bufio.NewWriterSize(io.Discard, 32<<10)}
	allocs := testing.AllocsPerRun(100, func() {
		body.Seek(0, io.SeekStart)
		req.Body = rc
		if err := pc.writeRequest(req); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per request, want 0", allocs)
	}
}

// BenchmarkWriteRequest writes a forwarded chat request (1 KB in-memory
// body, six headers) with writeRequest and with (*http.Request).Write.
func BenchmarkWriteRequest(b *testing.B) {
	payload := bytes.Repeat([]byte("x"), 1024)
	body := bytes.NewReader(payload)
	req, err := http.NewRequest("POST", "http://127.0.0.1:8080/v1/chat/completions", body)
	if err != nil {
		b.Fatal(err)
	}
	for k, v := range map[string]string{"Content-Type": "application/json", "Authorization": "Bearer sk-x",
		"Accept": "text/event-stream", "Anthropic-Version": "2023-06-01", "X-Request-Id": "r1", "Traceparent": "00-1-2-01"} {
		req.Header.Set(k, v)
	}
	rc := io.NopCloser(body)
	pc := &pconn{bw: bufio.NewWriterSize(io.Discard, 32<<10)}
	b.Run("h1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			body.Seek(0, io.SeekStart)
			req.Body = rc
			if err := pc.writeRequest(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nethttp", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			body.Seek(0, io.SeekStart)
			req.Body = rc
			if err := req.Write(pc.bw); err != nil {
				b.Fatal(err)
			}
		}
	})
}
