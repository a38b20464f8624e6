package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unsafe"
)

// respCases are responses (or garbage) for the differential tests; they
// seed FuzzReadResponse too.
var respCases = []string{
	// Ordinary answers.
	"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: application/json\r\n\r\nhello",
	"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-request-id: abc\r\nanthropic-ratelimit-requests-remaining: 9\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nX-Should-Retry: true\r\nContent-Length: 2\r\n\r\n{}",
	"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nVia: 1.1 x\r\nset-cookie: b=2\r\nVIA: 1.1 y\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nclose-delimited body",
	"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nraw",
	"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nCache-Control: max-age=1\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length:  3 \r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: X-A, x-b\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-A: 1\r\nx-b: 2\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: X-A\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 Fine\r\nContent-Length: 10\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n0123456789012345678901234567890123456789",
	"HTTP/1.1 200 OK\r\nContent-Length: 41\r\n\r\n0123456789012345678901234567890123456789",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
	// Odd but accepted by net/http.
	"HTTP/1.1   200   spaced  reason \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 +99 plus\r\n\r\n",
	"HTTP/1.1 -00 minus zero\r\nContent-Length: 0\r\n\r\n",
	"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/0.9 200 OK\r\nContent-Length: 1\r\n\r\nx",
	"HTTP/1.1 200 OK\nContent-Length: 2\n\nok",
	"HTTP/1.1 200 O\rK\r\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\t\r\n\tc\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Empty-Fold:\r\n \r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Sp ace: v\r\nx_under: v\r\nX-Trail: v \t \r\nX-Lead:\t  v\r\nX-Empty:\r\nX-Obs: \x80\xff\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nfoo : bar\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nx-a-very-long-header-name-that-goes-past-the-sixty-four-byte-stack-copy: 1\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nx-a-very-long-header-name that-goes-past-the-sixty-four-byte-stack-copy: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nx-a-very-long-header-name-that-goes-past-the-sixty-four-byte-stack-copy(: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Dup: 1\r\nx-dup: 2\r\nX-Other: 3\r\nX-DUP: 4\r\nfoo : a\r\nfoo : b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Long-Tab: a\tb\tc\td\te\tf\tg\th\ti\r\nX-Long-Obs: \x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\xfe\xff\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nCONTENT-TYPE: a\r\ncOnTeNt-TyPe: b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n",
	// Refused by net/http.
	"",
	"HTTP/1.1 200 OK\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n",
	"HTTP/1.1 200 OK\r\n\r",
	"HTTP/1.1\r\n\r\n",
	"HTTP/1.1 20 OK\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 2x0 OK\r\n\r\n",
	"HTTP/1.1 -01 OK\r\n\r\n",
	"HTTP/1.2.3 200 OK\r\n\r\n",
	"HTTP/a.1 200 OK\r\n\r\n",
	"FTP/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 200 OK\r\n folded-first: x\r\n\r\n",
	"HTTP/1.1 200 OK\r\nNo-Colon\r\n\r\n",
	"HTTP/1.1 200 OK\r\n: empty-name\r\n\r\n",
	"HTTP/1.1 200 OK\r\nBad(Name): x\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Ctl: a\x01b\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Del: a\x7fb\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Cr: a\rb\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Long-Ctl: abcdefghijklmnop\x00qrst\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Long-Ctl: ab\x00cdefghijklmnopqrstuvwxyz\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Long-Del: abcdefghij\x7fklmnopqrstuvwxyz\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Ctl-At-7: abcdef\x01ghijklmnop\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Fold: a\r\n b\x02\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
	"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chun\xe2\x84\xaaed\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nbad trailer\r\n\r\n",
}

// respResult is everything a caller can see of a parsed response.
type respResult struct {
	Status, Proto                  string
	StatusCode, Major, Minor       int
	Header, TrailerBefore, Trailer http.Header
	ContentLength                  int64
	TransferEncoding               []string
	Close, Uncompressed, NoBody    bool
	Body                           string
	BodyErr                        string // "EOF", "unexpected EOF" or "error"
	EOFWithData                    bool   // Content-Length framing: EOF came with the last bytes
	Rest                           string // what follows on the connection
}

func bodyErrClass(err error) string {
	switch {
	case err == nil:
		return ""
	case err == io.EOF:
		return "EOF"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	}
	return "error"
}

// readSizes are the body read sizes the differential tests use: small
// reads come from bufio's buffer; a read at least as large as the buffer
// (the fuzz's largest is 4096) goes straight to the source when the buffer
// is empty, and may get the last bytes together with io.EOF.
var readSizes = []int{7, 8192}

func summarise(resp *http.Response, br *bufio.Reader, readSize int) respResult {
	r := respResult{
		Status: resp.Status, Proto: resp.Proto, StatusCode: resp.StatusCode,
		Major: resp.ProtoMajor, Minor: resp.ProtoMinor, Header: resp.Header,
		TrailerBefore: resp.Trailer.Clone(), ContentLength: resp.ContentLength,
		TransferEncoding: resp.TransferEncoding, Close: resp.Close,
		Uncompressed: resp.Uncompressed, NoBody: resp.Body == http.NoBody,
	}
	// Read sizes follow what happens to be buffered, but with
	// Content-Length framing EOF always comes with the last bytes, as
	// net/http's body returns it: the transport then releases the
	// connection without one more call.
	buf := make([]byte, readSize)
	var body []byte
	for {
		n, err := resp.Body.Read(buf)
		body = append(body, buf[:n]...)
		if err != nil {
			r.BodyErr = bodyErrClass(err)
			r.EOFWithData = err == io.EOF && n > 0 && resp.ContentLength > 0
			if err == io.EOF {
				rest, _ := io.ReadAll(br)
				r.Rest = string(rest)
			}
			break
		}
	}
	r.Body, r.Trailer = string(body), resp.Trailer
	return r
}

// parseBoth runs http.ReadResponse and readResponse over the same bytes;
// dataEOF has the source return its last bytes together with io.EOF, as a
// socket may.
func parseBoth(data []byte, method string, bufSize, readSize int, dataEOF bool) (std, mine respResult, stdErr, mineErr error) {
	src := func() io.Reader {
		if dataEOF {
			return iotest.DataErrReader(bytes.NewReader(data))
		}
		return bytes.NewReader(data)
	}
	req := &http.Request{Method: method}
	br := bufio.NewReaderSize(src(), bufSize)
	if resp, err := http.ReadResponse(br, req); err != nil {
		stdErr = err
	} else {
		std = summarise(resp, br, readSize)
	}
	br = bufio.NewReaderSize(src(), bufSize)
	resp, f, err := readResponse(br, method)
	if err != nil {
		return std, mine, stdErr, err
	}
	if resp.Body == nil {
		resp.Body = io.NopCloser(&f)
	}
	return std, summarise(resp, br, readSize), stdErr, nil
}

func checkSame(t *testing.T, data []byte, method string, bufSize int, dataEOF bool) {
	t.Helper()
	for _, rs := range readSizes {
		std, mine, stdErr, mineErr := parseBoth(data, method, bufSize, rs, dataEOF)
		if (stdErr == nil) != (mineErr == nil) {
			t.Fatalf("%s, buffer %d, data+EOF %v, %q:\nnet/http error: %v\nh1 error: %v", method, bufSize, dataEOF, data, stdErr, mineErr)
		}
		if stdErr == nil && !reflect.DeepEqual(std, mine) {
			t.Fatalf("%s, buffer %d, reads of %d, data+EOF %v, %q:\nnet/http: %+v\nh1:       %+v", method, bufSize, rs, dataEOF, data, std, mine)
		}
	}
}

// TestReadResponseDifferential holds readResponse to http.ReadResponse on
// every case, for GET and HEAD, with heads that fit the read buffer and
// heads that outgrow it (the copying path).
func TestReadResponseDifferential(t *testing.T) {
	big := "HTTP/1.1 200 OK\r\n" + strings.Repeat("x-pad: "+strings.Repeat("p", 50)+"\r\n", 40) + "X-Fold: a\r\n b\r\nContent-Length: 2\r\n\r\nok"
	for _, c := range append(respCases, big) {
		for _, method := range []string{"GET", "HEAD", "POST", ""} {
			for _, size := range []int{16, 64, 4096} {
				checkSame(t, []byte(c), method, size, false)
				checkSame(t, []byte(c), method, size, true)
			}
		}
	}
}

// FuzzReadResponse: whatever the bytes, readResponse errs exactly when
// http.ReadResponse does and otherwise yields the same response, body,
// trailers and leftover bytes.
func FuzzReadResponse(f *testing.F) {
	for _, c := range respCases {
		f.Add([]byte(c), false, uint8(255), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool, size uint8, dataEOF bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		checkSame(t, data, method, 16+int(size)*16, dataEOF)
	})
}

// TestReadResponseInterns: common names, however they are cased on the
// wire, come back as the interned constants (no bytes of the head), and
// the list holds canonical names only.
func TestReadResponseInterns(t *testing.T) {
	var head strings.Builder
	head.WriteString("HTTP/1.1 200 OK\r\n")
	for _, k := range commonKeys {
		if k != http.CanonicalHeaderKey(k) {
			t.Errorf("%q is not canonical", k)
		}
		v := map[string]string{"Transfer-Encoding": "chunked", "Content-Length": "0", "Connection": "keep-alive"}[k]
		if v == "" {
			v = "v"
		}
		fmt.Fprintf(&head, "%s: %s\r\n", strings.ToLower(k), v)
	}
	head.WriteString("X-Uncommon: v\r\n\r\n")
	resp, _, err := readResponse(bufio.NewReader(strings.NewReader(head.String())), "HEAD")
	if err != nil {
		t.Fatal(err)
	}
	if len(commonKeys) != len(commonNames) {
		t.Fatalf("%d names interned, want %d", len(commonNames), len(commonKeys))
	}
	interned := map[string]bool{}
	for _, k := range commonKeys {
		if ci := commonKey([]byte(k)); ci < 0 || commonNames[ci] != k {
			t.Fatalf("commonKey(%q) = %d", k, ci)
		}
		interned[k] = true
	}
	for k := range resp.Header {
		isConst := false
		for _, c := range commonNames {
			if unsafe.StringData(k) == unsafe.StringData(c) {
				isConst = true
			}
		}
		if isConst != interned[k] {
			t.Errorf("%q: interned %v, want %v", k, isConst, interned[k])
		}
	}
	// Framing takes Transfer-Encoding and Trailer out.
	if want := len(commonKeys) - 2 + 1; len(resp.Header) != want {
		t.Fatalf("%d headers parsed, want %d", len(resp.Header), want)
	}
}

// TestReadResponseAllocs bounds the allocations of an ordinary streamed
// answer's head with 14 fields: the Response, one string for the head, the
// header map (four for a map of this size), one array for its value
// slices, the chunk decoder; none per header (http.ReadResponse makes 30
// here).
func TestReadResponseAllocs(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\ndate: Sat, 28 Nov 2026 09:00:00 GMT\r\ncontent-type: text/event-stream\r\n" +
		"transfer-encoding: chunked\r\nconnection: keep-alive\r\ncache-control: no-cache\r\n" +
		"x-request-id: req_0123456789\r\nanthropic-ratelimit-requests-limit: 50\r\n" +
		"anthropic-ratelimit-requests-remaining: 49\r\nanthropic-ratelimit-requests-reset: 2026-11-28T09:00:01Z\r\n" +
		"request-id: req_0123456789\r\ncf-ray: 8f0e1d2c3b4a5968-AMS\r\nserver: cloudflare\r\nvia: 1.1 google\r\n\r\n"
	src := strings.NewReader(head)
	br := bufio.NewReaderSize(src, 4096)
	allocs := testing.AllocsPerRun(100, func() {
		src.Reset(head)
		br.Reset(src)
		if _, _, err := readResponse(br, "POST"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 8 {
		t.Fatalf("%v allocations per head, want at most 8", allocs)
	}
}

// scriptConn is an upstream connection that answers any request with its
// script and io.EOF in one Read, as a socket may when the peer wrote and
// closed at once.
type scriptConn struct {
	net.Conn // nil: only the methods below are used
	script   []byte
	done     bool
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	c.done = true
	return copy(p, c.script), io.EOF
}
func (c *scriptConn) Write(p []byte) (int, error)   { return len(p), nil }
func (c *scriptConn) Close() error                  { return nil }
func (c *scriptConn) SetDeadline(t time.Time) error { return nil }

// TestMalformedReportedWithEOF: a malformed head or trailer is
// ErrMalformedResponse even when the connection's EOF came with it.
func TestMalformedReportedWithEOF(t *testing.T) {
	for _, tc := range []struct{ name, script string }{
		{"head", "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n"},
		{"framing", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nbad trailer\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTransport(t, func(c *Config) {
				c.Dial = func(context.Context, string, string) (net.Conn, error) {
					return &scriptConn{script: []byte(tc.script)}, nil
				}
			})
			resp, err := tr.RoundTrip(mustReq(t, context.Background(), "GET", "http://up/", nil))
			if err == nil {
				_, err = io.ReadAll(resp.Body)
			}
			if !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("got %v, want ErrMalformedResponse", err)
			}
		})
	}
}

// TestNotPooledAfterEOF: a connection whose last response bytes came with
// the upstream's EOF is closed, not pooled, although its body ended cleanly.
func TestNotPooledAfterEOF(t *testing.T) {
	tr := newTransport(t, func(c *Config) {
		c.Dial = func(context.Context, string, string) (net.Conn, error) {
			return &scriptConn{script: []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")}, nil
		}
	})
	resp, err := tr.RoundTrip(mustReq(t, context.Background(), "GET", "http://up/", nil))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" {
		t.Fatalf("body %q, %v", b, err)
	}
	if n := tr.idleCount("up:80"); n != 0 {
		t.Fatalf("%d idle connections after the upstream's EOF, want 0", n)
	}
}

// BenchmarkReadResponse parses a provider's streamed answer head (14
// fields, lower-case names as proxies send them) with readResponse and
// with http.ReadResponse.
func BenchmarkReadResponse(b *testing.B) {
	head := "HTTP/1.1 200 OK\r\ndate: Sat, 28 Nov 2026 09:00:00 GMT\r\ncontent-type: text/event-stream\r\n" +
		"transfer-encoding: chunked\r\nconnection: keep-alive\r\ncache-control: no-cache\r\n" +
		"x-request-id: req_0123456789\r\nanthropic-ratelimit-requests-limit: 50\r\n" +
		"anthropic-ratelimit-requests-remaining: 49\r\nanthropic-ratelimit-requests-reset: 2026-11-28T09:00:01Z\r\n" +
		"request-id: req_0123456789\r\ncf-ray: 8f0e1d2c3b4a5968-AMS\r\nserver: cloudflare\r\nvia: 1.1 google\r\n\r\n"
	src := strings.NewReader(head)
	br := bufio.NewReaderSize(src, 32<<10)
	req := &http.Request{Method: "POST"}
	b.Run("h1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(head)
			br.Reset(src)
			if _, _, err := readResponse(br, "POST"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nethttp", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			src.Reset(head)
			br.Reset(src)
			if _, err := http.ReadResponse(br, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
