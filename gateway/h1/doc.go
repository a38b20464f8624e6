// Package h1 is an HTTP/1.1 client transport for plain http:// upstreams
// (local vLLM, ollama and llama.cpp servers, sidecars, LAN providers, the
// benchmark's fake upstream) that does all of a round trip on the caller's
// goroutine. net/http.Transport hands every request to a per-connection
// writeLoop and every response back from a readLoop; on a small machine each
// of those wake-ups costs tens to hundreds of microseconds of
// time-to-first-byte. This transport has no goroutine per request or per
// connection.
//
// Contract:
//
//   - Only req.URL.Scheme "http" is served; anything else fails with
//     ErrUnsupportedScheme before any I/O. No proxies, no TLS, no HTTP/2, no
//     protocol upgrades (a 101 answer is an error). The caller picks this
//     transport only where that fits.
//   - The request is serialised by writeRequest (write.go) straight into
//     the connection's bufio.Writer, byte for byte and flush for flush as
//     (*http.Request).Write writes it, which TestWriteRequestMatchesWrite
//     checks: Host (Request.Host, else the URL's; punycoded, zone removed,
//     empty if invalid), the User-Agent default, Connection: close for
//     Request.Close, Content-Length from req.ContentLength or chunked
//     framing (32 KB reads, a flush per chunk), Trailer, the other headers
//     sorted by name. Unlike http.Transport, no Accept-Encoding is added and
//     bodies are never decompressed; both directions are relayed byte for
//     byte. Header names, values and the method are validated as
//     http.Transport does before any I/O. Writing an ordinary request
//     allocates nothing. Two departures from Write: the one-byte probe of
//     an unknown-length body on GET, HEAD, DELETE, OPTIONS, PROPFIND and
//     SEARCH reads synchronously (Write sends chunked framing if that byte
//     takes over 200 ms), and httptrace client hooks are not called. The
//     body is written whole before the response is read (an Expect:
//     100-continue header does not make the writer wait); if the upstream
//     answers early and breaks the connection mid-body, that early answer
//     is returned.
//   - The response head is parsed by readResponse (read.go) from the
//     connection's bufio.Reader, in place in its buffer (a head larger than
//     the buffer is copied as it arrives), into the *http.Response that
//     http.ReadResponse would give: the same Status, Proto, Header keys
//     and value order, ContentLength, TransferEncoding, Close, Trailer and
//     body framing, and the same refusals (status line, header names and
//     values, obs-fold, Transfer-Encoding other than one "chunked",
//     differing Content-Lengths, Trailer naming framing headers);
//     TestReadResponseDifferential and FuzzReadResponse hold it to that.
//     The head becomes one string of which the status, header values and
//     unusual header names are substrings (holding any of them holds the
//     head); common response header names are interned constants, so
//     nothing is allocated per header. Bodies: Content-Length (a short
//     body is io.ErrUnexpectedEOF, the last bytes come with io.EOF),
//     chunked (net/http/httputil's decoder, then trailers into
//     resp.Trailer) or close-delimited; http.NoBody for HEAD, 1xx, 204,
//     304 and Content-Length: 0.
//   - Informational answers (100, 103, ...) are skipped. The status line and
//     header block of all of them together with the final one are bounded by
//     Config.MaxResponseHeaderBytes (a *LimitError); the body is unbounded.
//   - Refusals before any I/O are the sentinels ErrUnsupportedScheme,
//     ErrInvalidRequest and ErrClosed. Every later failure is an *Error
//     naming the stage (dial, write request, read response headers, read
//     response body) and the host:port, wrapping the cause with %w. They
//     never contain header values, URLs (a query may carry an API key) or
//     body bytes; a malformed answer (head, chunk framing or trailer) is
//     reported as ErrMalformedResponse without quoting it.
//
// Thread model: RoundTrip takes an idle connection or dials one, writes and
// flushes the request and reads the response headers on the calling
// goroutine; resp.Body.Read reads the socket directly on the goroutine that
// calls it. Cancellation uses context.AfterFunc, which costs no goroutine
// unless the request context actually ends: then it sets a past deadline on
// the connection so a blocked dial, write, header read or body read returns
// at once, with an error satisfying errors.Is(err, ctx.Err()). Body.Close may
// be called from another goroutine to abort a blocked Read. Idle
// connections are expired lazily when the pool is touched and by one timer
// per Transport.
//
// Connection reuse: a connection goes back to the idle pool (LIFO per
// host:port, at most MaxIdleConnsPerHost, the oldest dropped first) only
// when the response body was read to EOF without error, neither the request
// nor the response asked for Connection: close, the body was not
// close-delimited, the request context had not ended, no socket read
// failed (not even with the upstream's EOF arriving with the last bytes),
// and no unread bytes follow the response. Closing a body before EOF
// closes the connection: a stream is never drained. Before an idle
// connection is reused it is probed with one non-blocking MSG_PEEK recvfrom
// (Linux, macOS and the BSDs, when the connection exposes its socket;
// elsewhere only the retry helps): a connection the upstream has closed,
// reset or written to is discarded and the next one, or a new dial, is
// tried.
//
// Retries: at most one, always on a freshly dialed connection, and only when
// the failed attempt ran on a reused connection and the request body can be
// replayed (no body, http.NoBody, or req.GetBody set), in two cases: writing
// the request failed before the socket accepted any byte, or the request is
// idempotent (GET, HEAD, OPTIONS, TRACE) and reading the response failed
// before any response byte arrived. A POST is never retried once the socket
// accepted a byte of it, and nothing is retried after a response byte was
// read: the gateway owns the retry policy above this layer.
package h1
