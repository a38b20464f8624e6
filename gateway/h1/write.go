package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/net/http/httpguts"
)

const defaultUserAgent = "Go-http-client/1.1"

// writeRequest writes r onto bw byte for byte as (*http.Request).Write
// does (request.go write and transfer.go transferWriter): request line,
// Host, User-Agent, Connection: close for r.Close, Content-Length or
// chunked framing, Trailer, the other headers sorted by name, the body.
// It appends straight into bw: no fmt, no sorted copy of the header map
// beyond a stack array for ordinary requests.
//
// r must have passed validateRequest: header values then hold no CR or LF,
// which Write would replace by spaces, and no name Write would skip. Two
// differences, neither on the wire for a body that reads without blocking:
// the one-byte probe of an unknown-length body on GET, HEAD, DELETE,
// OPTIONS, PROPFIND and SEARCH reads synchronously (Write gives up after
// 200 ms and sends chunked), and httptrace client hooks are not called.
// It always closes r.Body.
func (pc *pconn) writeRequest(r *http.Request) (err error) {
	bw := pc.bw
	if r.Body != nil {
		defer func() {
			if cerr := r.Body.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
	}

	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if host, err = httpguts.PunycodeHostPort(host); err != nil {
		return err
	}
	if !httpguts.ValidHostHeader(host) {
		host = "" // Write sends an empty Host rather than an altered one
	}
	host = removeZone(host)

	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	// The request-target, as URL.RequestURI builds it, in pieces.
	u := r.URL
	var scheme, target, query string
	hasQuery := u.ForceQuery || u.RawQuery != ""
	if u.Opaque == "" {
		if target = u.EscapedPath(); target == "" {
			target = "/"
		}
	} else {
		target = u.Opaque
		if strings.HasPrefix(target, "//") {
			scheme = u.Scheme
		}
	}
	query = u.RawQuery
	if method == http.MethodConnect && u.Path == "" {
		scheme, target, hasQuery = "", host, false
		if u.Opaque != "" {
			target = u.Opaque
		}
	}
	if hasCTL(scheme) || hasCTL(target) || hasQuery && hasCTL(query) {
		return errors.New("net/http: can't write control character in Request.URL")
	}

	bw.WriteString(method)
	bw.WriteByte(' ')
	if scheme != "" {
		bw.WriteString(scheme)
		bw.WriteByte(':')
	}
	bw.WriteString(target)
	if hasQuery {
		bw.WriteByte('?')
		bw.WriteString(query)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")

	ua := defaultUserAgent
	if vv, ok := r.Header["User-Agent"]; ok {
		ua = ""
		if len(vv) > 0 {
			ua = vv[0]
		}
	}
	if ua != "" { // trimmed after the test: all blanks still send the field, as Write does
		bw.WriteString("User-Agent: ")
		bw.WriteString(trimSpace(ua))
		bw.WriteString("\r\n")
	}

	// transferWriter: sanitise Body, ContentLength, TransferEncoding.
	if r.ContentLength != 0 && r.Body == nil {
		return fmt.Errorf("http: Request.ContentLength=%d with nil Body", r.ContentLength)
	}
	body := io.Reader(nil)
	if r.Body != nil {
		body = r.Body
	}
	length := int64(0) // Request.outgoingLength
	if r.Body != nil && r.Body != http.NoBody {
		length = r.ContentLength
		if length == 0 {
			length = -1
		}
	}
	te := r.TransferEncoding
	if length < 0 && len(te) == 0 && sendChunked(method, &body, &length) {
		te = chunkedTE
	}
	flushHeaders := length != 0 && !inMemory(body)
	if body == nil {
		te = nil
	}
	chunked := len(te) > 0 && te[0] == "chunked"
	if chunked {
		length = -1
	} else if body == nil {
		length = 0
	}
	trailer := r.Trailer
	if !chunked {
		trailer = nil
	}

	if r.Close && !hasToken(headerGet(r.Header, "Connection"), "close") {
		bw.WriteString("Connection: close\r\n")
	}
	switch {
	case sendContentLength(method, te, length):
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), length, 10))
		bw.WriteString("\r\n")
	case chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if trailer != nil {
		if err := writeTrailerNames(bw, trailer); err != nil {
			return err
		}
	}
	writeHeaders(bw, r.Header)
	if _, err := bw.WriteString("\r\n"); err != nil {
		return err
	}
	if flushHeaders {
		if err := bw.Flush(); err != nil {
			return err
		}
	}

	// transferWriter.writeBody.
	var n int64
	if body != nil {
		src := unwrapNopCloser(body)
		switch {
		case chunked:
			bufp := copyBufPool.Get().(*[32 << 10]byte)
			_, err = io.CopyBuffer(chunkWriter{bw}, src, bufp[:])
			copyBufPool.Put(bufp)
			if err == nil {
				_, err = bw.WriteString("0\r\n")
			}
		case length == -1:
			n, err = io.Copy(bw, src)
		default:
			pc.lr = io.LimitedReader{R: src, N: length}
			n, err = io.Copy(bw, &pc.lr)
			pc.lr.R = nil
			if err == nil {
				var extra int64
				extra, err = io.Copy(io.Discard, src)
				n += extra
			}
		}
		if err != nil {
			return err
		}
	}
	if length != -1 && length != n {
		return fmt.Errorf("http: ContentLength=%d with Body length %d", length, n)
	}
	if chunked {
		if trailer != nil {
			if err := trailer.Write(bw); err != nil {
				return err
			}
		}
		_, err = bw.WriteString("\r\n")
	}
	return err
}

var chunkedTE = []string{"chunked"}

// copyBufPool holds the 32 KB copy buffers Write uses: a chunked body is
// cut into chunks at the body's reads into one, so the size is part of the
// wire format.
var copyBufPool = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// sendChunked is transferWriter.shouldSendChunkedRequestBody, with the
// probe read done synchronously.
func sendChunked(method string, body *io.Reader, length *int64) bool {
	if method == http.MethodConnect {
		return false
	}
	switch method {
	case "GET", "HEAD", "DELETE", "OPTIONS", "PROPFIND", "SEARCH":
	default:
		return true
	}
	var b [1]byte
	n, err := (*body).Read(b[:])
	switch {
	case n == 0 && err == io.EOF:
		*body, *length = nil, 0
	case n == 1 && err != nil:
		*body = io.MultiReader(bytes.NewReader(b[:]), errReader{err})
	case n == 1:
		*body = io.MultiReader(bytes.NewReader(b[:]), *body)
	case err != nil:
		*body = errReader{err}
	}
	return *body != nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// sendContentLength is transferWriter.shouldSendContentLength.
func sendContentLength(method string, te []string, length int64) bool {
	if len(te) > 0 && te[0] == "chunked" {
		return false
	}
	switch {
	case length > 0:
		return true
	case length < 0:
		return false
	}
	switch method {
	case "POST", "PUT", "PATCH":
		return true
	}
	if len(te) == 1 && te[0] == "identity" {
		return method != "GET" && method != "HEAD"
	}
	return false
}

// writeTrailerNames writes the Trailer header as transferWriter.writeHeader
// does: canonical names, sorted, comma-joined.
func writeTrailerNames(bw *bufio.Writer, trailer http.Header) error {
	keys := make([]string, 0, len(trailer))
	for k := range trailer {
		k = http.CanonicalHeaderKey(k)
		switch k {
		case "Transfer-Encoding", "Trailer", "Content-Length":
			return fmt.Errorf("invalid Trailer key %q", k)
		}
		keys = append(keys, k)
	}
	if len(keys) > 0 {
		slices.Sort(keys)
		bw.WriteString("Trailer: ")
		bw.WriteString(strings.Join(keys, ","))
		bw.WriteString("\r\n")
	}
	return nil
}

// writeHeaders is Header.writeSubset with the request exclusions: names in
// byte order, values trimmed of ASCII space.
func writeHeaders(bw *bufio.Writer, h http.Header) {
	var arr [32]string
	keys := arr[:0]
	for k := range h {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) <= len(arr) {
		// Insertion sort: few keys, and slices.Sort would move the array
		// to the heap through the generic call.
		for i := 1; i < len(keys); i++ {
			for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
				keys[j], keys[j-1] = keys[j-1], keys[j]
			}
		}
	} else {
		slices.Sort(keys)
	}
	for _, k := range keys {
		for _, v := range h[k] {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(trimSpace(v))
			bw.WriteString("\r\n")
		}
	}
}

// chunkWriter is net/http's chunked writer behind a FlushAfterChunkWriter:
// each write is one chunk, flushed at once.
type chunkWriter struct{ bw *bufio.Writer }

func (cw chunkWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil // a zero-length chunk would end the body
	}
	bw := cw.bw
	if bw.Available() < 18 {
		if err := bw.Flush(); err != nil {
			return 0, err
		}
	}
	bw.Write(strconv.AppendUint(bw.AvailableBuffer(), uint64(len(p)), 16))
	bw.WriteString("\r\n")
	n, err := bw.Write(p)
	if err != nil {
		return n, err
	}
	if _, err := bw.WriteString("\r\n"); err != nil {
		return n, err
	}
	return n, bw.Flush()
}

var (
	nopCloserType         = reflect.TypeOf(io.NopCloser(nil))
	nopCloserWriterToType = reflect.TypeOf(io.NopCloser(struct {
		io.Reader
		io.WriterTo
	}{}))
)

// unwrapNopCloser returns the reader inside an io.NopCloser, as
// transferWriter.unwrapBody does, so its WriterTo is used.
func unwrapNopCloser(r io.Reader) io.Reader {
	switch reflect.TypeOf(r) {
	case nopCloserType, nopCloserWriterToType:
		return reflect.ValueOf(r).Field(0).Interface().(io.Reader)
	}
	return r
}

// inMemory is isKnownInMemoryReader: the headers of other bodies are
// flushed before the body is read, in case it blocks.
func inMemory(r io.Reader) bool {
	switch r.(type) {
	case *bytes.Reader, *bytes.Buffer, *strings.Reader:
		return true
	}
	if u := unwrapNopCloser(r); u != r {
		return inMemory(u)
	}
	return false
}

func headerGet(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// hasToken is net/http's: token appears in v delimited by anything but
// token bytes, case-insensitively.
func hasToken(v, token string) bool {
	if len(token) > len(v) || token == "" {
		return false
	}
	if v == token {
		return true
	}
	for sp := 0; sp <= len(v)-len(token); sp++ {
		if b := v[sp]; b != token[0] && b|0x20 != token[0] {
			continue
		}
		if sp > 0 && !isTokenBoundary(v[sp-1]) {
			continue
		}
		if end := sp + len(token); end != len(v) && !isTokenBoundary(v[end]) {
			continue
		}
		if asciiEqualFold(v[sp:sp+len(token)], token) {
			return true
		}
	}
	return false
}

func asciiEqualFold(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if lower(s[i]) != lower(t[i]) {
			return false
		}
	}
	return true
}

func lower(b byte) byte {
	if 'A' <= b && b <= 'Z' {
		return b + ('a' - 'A')
	}
	return b
}

func isTokenBoundary(b byte) bool { return b == ' ' || b == ',' || b == '\t' }

// removeZone drops an IPv6 zone from a bracketed host (RFC 6874).
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}

// trimSpace is textproto.TrimString.
func trimSpace(s string) string {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }
