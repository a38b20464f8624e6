package h1

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// errMalformed marks a response head or body framing that net/http would
// also reject; readHeaders reports it as ErrMalformedResponse.
var errMalformed = errors.New("h1: malformed response")

// field is one header line of a parsed head. Offsets are into the head, so
// they survive bufio sliding the buffered bytes to the front on a fill.
type field struct {
	key    string // interned canonical name; "" means head[k0:k1]
	dup    bool   // the name may have come before: append to its values
	k0, k1 int32
	v0, v1 int32 // the value, trimmed, when not folded
	l0     int32 // first line of the field
	l1     int32 // end of its last line (past '\n'), set when folded
	folded bool  // obs-fold continuation lines follow
}

// headParser parses a response head (status line, header lines, blank
// line) incrementally as bytes arrive, with the line rules of
// net/textproto: a line ends at '\n', one '\r' before it is dropped; a line
// starting with SP or HT continues the previous field (obs-fold).
type headParser struct {
	buf []byte // the head so far: a view of the bufio buffer, or a copy
	pos int    // start of the first line not yet parsed
	end int    // past the blank line once done

	status bool // the status line has been parsed
	// Status line: buf[:protoEnd] is the version, buf[statusAt:statusEnd]
	// the status text.
	protoEnd, statusAt, statusEnd int
	code, major, minor            int

	// The fields: the first len(arr) in arr, the rest in more. No slice
	// of arr is kept in p, which would move p to the heap.
	arr  [32]field
	more []field
	nf   int

	seen     [2]uint64 // bit i: commonNames[i] came
	uncommon int       // fields with names not in commonNames
}

// maxDupScan bounds the names an unusual name is compared with to find
// repeats; past it the map is asked instead, so a head of many short
// fields costs linear time.
const maxDupScan = 16

func (p *headParser) field(i int) *field {
	if i < len(p.arr) {
		return &p.arr[i]
	}
	return &p.more[i-len(p.arr)]
}

// readResponse reads one response head from br and works out its framing as
// http.ReadResponse does for a request with the given method. resp.Body is
// http.NoBody when there is no body; otherwise it is nil and f frames it.
//
// The fast path parses the head in place in br's buffer and makes one
// string of it, of which the status, unusual header names and all
// unfolded values are substrings (so holding any of them holds the head);
// common header names are interned constants. A head larger than the
// buffer is copied as it is read.
func readResponse(br *bufio.Reader, method string) (resp *http.Response, f framing, err error) {
	var p headParser
	head, view, err := p.read(br)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, f, err
	}
	resp = p.response(head)
	if view {
		_, _ = br.Discard(len(head)) // now that the strings are copied out
	}
	f, err = p.frame(resp, br, method)
	if err != nil {
		return nil, f, err
	}
	if f.mode == frameNone {
		resp.Body = http.NoBody
	}
	return resp, f, nil
}

// read returns the complete head: a view of br's buffer still to be
// discarded, or (view false) a copy of bytes already consumed.
func (p *headParser) read(br *bufio.Reader) (head []byte, view bool, err error) {
	for {
		p.buf, _ = br.Peek(br.Buffered())
		if done, perr := p.advance(); perr != nil || done {
			return p.buf[:p.end], true, perr
		}
		if len(p.buf) == br.Size() {
			break // the head outgrows the buffer
		}
		// Peek reports an error only when no byte came: bytes that came
		// with one are returned first and parsed on the next turn.
		if _, err = br.Peek(len(p.buf) + 1); err != nil {
			return nil, false, err
		}
	}
	owned := append(make([]byte, 0, 2*len(p.buf)), p.buf...)
	_, _ = br.Discard(len(p.buf))
	for {
		line, rerr := br.ReadSlice('\n')
		owned = append(owned, line...)
		p.buf = owned
		if done, perr := p.advance(); perr != nil || done {
			return p.buf[:p.end], false, perr
		}
		if rerr != nil && rerr != bufio.ErrBufferFull {
			return nil, false, rerr
		}
	}
}

// advance parses the complete lines from p.pos on; done reports the blank
// line that ends the head.
func (p *headParser) advance() (done bool, err error) {
	for {
		i := bytes.IndexByte(p.buf[p.pos:], '\n')
		if i < 0 {
			return false, nil
		}
		start, next := p.pos, p.pos+i+1
		end := p.pos + i
		if end > start && p.buf[end-1] == '\r' {
			end--
		}
		p.pos = next
		line := p.buf[start:end]
		switch {
		case !p.status:
			if err := p.statusLine(line); err != nil {
				return false, err
			}
			p.status = true
		case len(line) == 0:
			p.end = next
			return true, nil
		case line[0] == ' ' || line[0] == '\t':
			// obs-fold: textproto refuses it before the first field and
			// joins it to the previous one otherwise.
			if p.nf == 0 || !validValue(line) {
				return false, errMalformed
			}
			fl := p.field(p.nf - 1)
			fl.folded = true
			fl.l1 = int32(next)
		default:
			if err := p.fieldLine(line, start); err != nil {
				return false, err
			}
		}
	}
}

// statusLine checks "HTTP/x.y NNN text" as http.ReadResponse does,
// strconv.Atoi quirks included.
func (p *headParser) statusLine(line []byte) error {
	sp := bytes.IndexByte(line, ' ')
	if sp < 0 {
		return errMalformed
	}
	at := sp + 1
	for at < len(line) && line[at] == ' ' {
		at++
	}
	codeEnd := bytes.IndexByte(line[at:], ' ')
	if codeEnd < 0 {
		codeEnd = len(line)
	} else {
		codeEnd += at
	}
	code, ok := statusCode(line[at:codeEnd])
	if !ok {
		return errMalformed
	}
	major, minor, ok := httpVersion(line[:sp])
	if !ok {
		return errMalformed
	}
	p.protoEnd, p.statusAt, p.statusEnd = sp, at, len(line)
	p.code, p.major, p.minor = code, major, minor
	return nil
}

// statusCode is len(s) == 3 and strconv.Atoi(s) >= 0, which admits a sign.
func statusCode(s []byte) (int, bool) {
	if len(s) != 3 {
		return 0, false
	}
	digits, neg := s, false
	switch s[0] {
	case '+':
		digits = s[1:]
	case '-':
		digits, neg = s[1:], true
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg && n != 0 {
		return 0, false
	}
	return n, true
}

// httpVersion is http.ParseHTTPVersion.
func httpVersion(v []byte) (major, minor int, ok bool) {
	if len(v) != len("HTTP/X.Y") || string(v[:5]) != "HTTP/" || v[6] != '.' ||
		v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return 0, 0, false
	}
	return int(v[5] - '0'), int(v[7] - '0'), true
}

// fieldLine records "Name: value": the name is checked and canonicalised
// in place as net/textproto does (a name with a space is kept as sent), the
// value bytes are checked, and the value is trimmed of SP and HT.
func (p *headParser) fieldLine(line []byte, start int) error {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 || !validValue(line[colon+1:]) {
		return errMalformed
	}
	key := line[:colon]
	canon, ok := canonicalise(key)
	if !ok {
		return errMalformed
	}
	fl := field{k0: int32(start), k1: int32(start + colon), l0: int32(start)}
	if ci := -1; canon {
		if ci = commonKey(key); ci >= 0 {
			fl.key = commonNames[ci]
			bit := uint64(1) << (ci % 64)
			fl.dup = p.seen[ci/64]&bit != 0
			p.seen[ci/64] |= bit
		}
	}
	if fl.key == "" {
		if p.uncommon < maxDupScan {
			for i := 0; i < p.nf && !fl.dup; i++ {
				o := p.field(i)
				fl.dup = o.key == "" && bytes.Equal(p.buf[o.k0:o.k1], key)
			}
		} else {
			fl.dup = true // may repeat a name: the map will tell
		}
		p.uncommon++
	}
	v0, v1 := start+colon+1, start+len(line)
	for v0 < v1 && (p.buf[v0] == ' ' || p.buf[v0] == '\t') {
		v0++
	}
	for v1 > v0 && (p.buf[v1-1] == ' ' || p.buf[v1-1] == '\t') {
		v1--
	}
	fl.v0, fl.v1 = int32(v0), int32(v1)
	if p.nf < len(p.arr) {
		p.arr[p.nf] = fl
	} else {
		p.more = append(p.more, fl)
	}
	p.nf++
	return nil
}

// response builds the Response from a complete head.
func (p *headParser) response(head []byte) *http.Response {
	block := string(head)
	resp := &http.Response{
		Status:     block[p.statusAt:p.statusEnd],
		StatusCode: p.code,
		ProtoMajor: p.major,
		ProtoMinor: p.minor,
	}
	switch proto := head[:p.protoEnd]; string(proto) {
	case "HTTP/1.1":
		resp.Proto = "HTTP/1.1"
	case "HTTP/1.0":
		resp.Proto = "HTTP/1.0"
	default:
		resp.Proto = block[:p.protoEnd]
	}
	n := p.nf
	h := make(http.Header, n)
	// One backing array for the single-valued fields (most of them) plus
	// one slot for TransferEncoding.
	strs := make([]string, n+1)
	for i := range n {
		fl := p.field(i)
		key := fl.key
		if key == "" {
			key = block[fl.k0:fl.k1]
		}
		var v string
		if fl.folded {
			v = foldedValue(head[fl.l0:fl.l1])
		} else {
			v = block[fl.v0:fl.v1]
		}
		if fl.dup {
			if vv, ok := h[key]; ok {
				h[key] = append(vv, v)
				continue
			}
		}
		strs[i] = v
		h[key] = strs[i : i+1 : i+1]
	}
	resp.Header = h
	resp.TransferEncoding = strs[n : n : n+1] // filled by frame if chunked
	return resp
}

// foldedValue joins a field's lines as net/textproto does: each line
// trimmed of SP and HT, continuations joined with one space, and the value
// after the colon trimmed on the left only.
func foldedValue(lines []byte) string {
	var b []byte
	for i, ln := range bytes.SplitAfter(lines, []byte("\n")) {
		if len(ln) == 0 {
			continue
		}
		ln = bytes.TrimSuffix(ln, []byte("\n"))
		ln = bytes.TrimSuffix(ln, []byte("\r"))
		ln = bytes.Trim(ln, " \t")
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, ln...)
	}
	_, v, _ := bytes.Cut(b, []byte(":"))
	return string(bytes.TrimLeft(v, " \t"))
}

// Body framing, as readTransfer in net/http/transfer.go decides it.
const (
	frameNone    = iota // no body: http.NoBody
	frameLength         // Content-Length bytes
	frameChunked        // chunked, then trailers
	frameClose          // until the connection closes
)

// framing reads one response body off br. It is embedded in body by value
// so a response costs no separate framing allocation.
type framing struct {
	br   *bufio.Reader
	mode int
	n    int64     // bytes left, frameLength
	cr   io.Reader // the chunk decoder, frameChunked
	resp *http.Response
}

// frame applies fixPragmaCacheControl and readTransfer's rules to resp:
// Transfer-Encoding (one "chunked" only, ignored before HTTP/1.1),
// Content-Length (equal duplicates merged, anything else refused), HEAD,
// 1xx, 204 and 304 without a body, Connection: close, Trailer.
func (p *headParser) frame(resp *http.Response, br *bufio.Reader, method string) (framing, error) {
	h := resp.Header
	f := framing{br: br, resp: resp}
	if hp, ok := p.lookup(h, keyPragma); ok && len(hp) > 0 && hp[0] == "no-cache" {
		if _, ok := p.lookup(h, keyCacheControl); !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	major, minor := resp.ProtoMajor, resp.ProtoMinor
	conn, _ := p.lookup(h, keyConnection)
	resp.Close = shouldClose(major, minor, h, conn)
	if major == 0 && minor == 0 {
		major, minor = 1, 1
	}
	chunked := false
	if te, ok := p.lookup(h, keyTransferEncoding); ok {
		delete(h, "Transfer-Encoding")
		if major > 1 || major == 1 && minor >= 1 {
			if len(te) != 1 || !asciiEqualFold(te[0], "chunked") {
				return f, errMalformed
			}
			chunked = true
		}
	}
	status := resp.StatusCode
	bodyAllowed := !(status/100 == 1 || status == 204 || status == 304)

	// fixLength.
	cls, _ := p.lookup(h, keyContentLength)
	if len(cls) > 1 {
		first := textproto.TrimString(cls[0])
		for _, cl := range cls[1:] {
			if textproto.TrimString(cl) != first {
				return f, errMalformed
			}
		}
		cls = []string{first}
		h["Content-Length"] = cls
	}
	var n int64 = -1
	if len(cls) > 0 {
		var ok bool
		if n, ok = contentLength(cls[0]); !ok {
			return f, errMalformed
		}
	}
	realLength := n
	switch {
	case method == http.MethodHead || !bodyAllowed:
		realLength = 0
	case chunked:
		delete(h, "Content-Length")
		realLength = -1
	}
	resp.ContentLength = realLength
	if method == http.MethodHead {
		resp.ContentLength = n
	}

	// fixTrailer.
	if vv, ok := p.lookup(h, keyTrailer); ok && chunked {
		delete(h, "Trailer")
		var trailer http.Header
		for _, v := range vv {
			for k := range strings.SplitSeq(v, ",") {
				if k = textproto.TrimString(k); k == "" {
					continue
				}
				switch k = http.CanonicalHeaderKey(k); k {
				case "Transfer-Encoding", "Trailer", "Content-Length":
					return f, errMalformed
				}
				if trailer == nil {
					trailer = make(http.Header)
				}
				trailer[k] = nil
			}
		}
		resp.Trailer = trailer
	}

	if realLength == -1 && !chunked && bodyAllowed {
		resp.Close = true // the body ends when the connection does
	}
	if chunked {
		resp.TransferEncoding = append(resp.TransferEncoding, "chunked")
	} else {
		resp.TransferEncoding = nil
	}
	switch {
	case chunked:
		if method != http.MethodHead && bodyAllowed {
			f.mode, f.cr = frameChunked, httputil.NewChunkedReader(br)
		}
	case realLength > 0:
		f.mode, f.n = frameLength, realLength
	case realLength < 0 && resp.Close:
		f.mode = frameClose
	}
	return f, nil
}

// lookup is h[commonNames[ci]], without hashing for a name the head lacks.
func (p *headParser) lookup(h http.Header, ci int) ([]string, bool) {
	if p.seen[ci/64]&(1<<(ci%64)) == 0 {
		return nil, false
	}
	vv, ok := h[commonNames[ci]]
	return vv, ok
}

// canonicalise checks a header name as net/textproto does (tchar, or a
// space, which keeps the name as sent) and puts it in canonical case in
// place: one pass into a stack copy for ordinary names.
func canonicalise(key []byte) (canon, ok bool) {
	var buf [64]byte
	if len(key) > len(buf) {
		return canonicaliseLong(key)
	}
	upper, space := true, false
	for i, c := range key {
		switch nameByte[c] {
		case nameBad:
			return false, false
		case nameLower:
			if upper {
				c -= 'a' - 'A'
			}
		case nameUpper:
			if !upper {
				c += 'a' - 'A'
			}
		case nameSpace:
			space = true
		}
		buf[i] = c
		upper = c == '-'
	}
	if space {
		return false, true
	}
	copy(key, buf[:len(key)])
	return true, true
}

func canonicaliseLong(key []byte) (canon, ok bool) {
	for _, c := range key {
		if nameByte[c] == nameBad {
			return false, false
		}
	}
	if bytes.IndexByte(key, ' ') >= 0 {
		return false, true
	}
	upper := true
	for i, c := range key {
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		} else if !upper && 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		key[i] = c
		upper = c == '-'
	}
	return true, true
}

// shouldClose is net/http's for a response: HTTP/1.0 closes unless
// keep-alive is asked for; from HTTP/1.1 on a close token closes and is
// removed from the header.
func shouldClose(major, minor int, h http.Header, conv []string) bool {
	if major < 1 {
		return true
	}
	hasClose := httpguts.HeaderValuesContainsToken(conv, "close")
	if major == 1 && minor == 0 {
		return hasClose || !httpguts.HeaderValuesContainsToken(conv, "keep-alive")
	}
	if hasClose {
		delete(h, "Connection")
	}
	return hasClose
}

// contentLength is net/http's parseContentLength without the
// httplaxcontentlength escape hatch.
func contentLength(s string) (int64, bool) {
	s = textproto.TrimString(s)
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 63)
	return int64(n), err == nil
}

var errTrailerEOF = errors.New("h1: unexpected EOF reading trailer")

// Read returns io.EOF with the last bytes where it can, as net/http's body
// does, so the connection is released without one more call.
func (f *framing) Read(p []byte) (int, error) {
	switch f.mode {
	case frameLength:
		if f.n <= 0 {
			return 0, io.EOF
		}
		if int64(len(p)) > f.n {
			p = p[:f.n]
		}
		// bufio reads a large p straight from the socket, which may
		// return the last bytes together with io.EOF: only an EOF
		// before f.n bytes is a short body.
		n, err := f.br.Read(p)
		f.n -= int64(n)
		switch {
		case err == io.EOF && f.n > 0:
			err = io.ErrUnexpectedEOF
		case err == nil && n > 0 && f.n == 0:
			err = io.EOF
		}
		return n, err
	case frameChunked:
		n, err := f.cr.Read(p)
		if err == io.EOF {
			if terr := f.readTrailer(); terr != nil {
				err = terr
			}
		}
		return n, err
	case frameClose:
		return f.br.Read(p)
	}
	return 0, io.EOF
}

// readTrailer is net/http's: the usual empty trailer is a bare CRLF; a
// trailer must end within the read buffer and is parsed by net/textproto
// (trailers are rare, so speed does not matter here).
func (f *framing) readTrailer() error {
	buf, err := f.br.Peek(2)
	if bytes.Equal(buf, []byte("\r\n")) {
		_, _ = f.br.Discard(2)
		return nil
	}
	if len(buf) < 2 {
		return errTrailerEOF
	}
	if err != nil {
		return err
	}
	if !upcomingDoubleCRLF(f.br) {
		return errMalformed
	}
	hdr, err := textproto.NewReader(f.br).ReadMIMEHeader()
	if err != nil {
		if err == io.EOF {
			return errTrailerEOF
		}
		var perr textproto.ProtocolError
		if errors.As(err, &perr) {
			return errMalformed
		}
		return err
	}
	if f.resp.Trailer == nil {
		f.resp.Trailer = http.Header(hdr)
	} else {
		for k, vv := range hdr {
			f.resp.Trailer[k] = vv
		}
	}
	return nil
}

func upcomingDoubleCRLF(r *bufio.Reader) bool {
	for n := 4; ; n++ {
		buf, err := r.Peek(n)
		if bytes.HasSuffix(buf, []byte("\r\n\r\n")) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// Classes of header name bytes: tchar (net/textproto's
// validHeaderFieldByte) split by case, the space textproto tolerates, and
// the rest.
const (
	nameBad = iota
	nameOther
	nameLower
	nameUpper
	nameSpace
)

var nameByte = func() (t [256]uint8) {
	for c := 0; c < 0x80; c++ {
		switch {
		case 'a' <= c && c <= 'z':
			t[c] = nameLower
		case 'A' <= c && c <= 'Z':
			t[c] = nameUpper
		case httpguts.IsTokenRune(rune(c)):
			t[c] = nameOther
		case c == ' ':
			t[c] = nameSpace
		}
	}
	return t
}()

// validValue is net/textproto's validHeaderValueByte over b: no control
// byte but HT, no DEL; obs-text (0x80 and up) passes. It tests eight bytes
// at a time and looks closer only at a word that may hold a bad byte.
func validValue(b []byte) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		w := binary.LittleEndian.Uint64(b)
		ctl := (w - lo*0x20) &^ w & hi                    // some byte < 0x20
		del := ((w ^ lo*0x7f) - lo) &^ (w ^ lo*0x7f) & hi // some byte == 0x7f
		if ctl|del != 0 && !validValueBytes(b[:8]) {
			return false
		}
		b = b[8:]
	}
	return validValueBytes(b)
}

func validValueBytes(b []byte) bool {
	for _, c := range b {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
