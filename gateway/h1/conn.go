package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"time"
)

// errHeaderLimit is what the socket reader returns once the header budget is
// spent; roundTrip turns it into a *LimitError.
var errHeaderLimit = errors.New("h1: header budget exhausted")

// aLongTimeAgo is the deadline that makes blocked socket calls return.
var aLongTimeAgo = time.Unix(1, 0)

// pconn is one upstream connection. Its per-round-trip counters are only
// touched by the goroutine that owns the connection at the time (the caller
// of RoundTrip, then the reader of the body); the cancel hook only calls the
// thread-safe SetDeadline.
type pconn struct {
	t      *Transport
	addr   string
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	idleAt time.Time
	reused bool // came from the idle pool for the current round trip

	// Per round trip, reset by begin.
	limit    int64 // header bytes still allowed; -1 once headers are read
	limitHit bool
	nread    int64
	nwritten int64
	rerr     error // last socket read error
	werr     error // last socket write error

	// Liveness probe state, see probe_*.go.
	raw     syscall.RawConn
	probeFn func(fd uintptr) bool
	probeOK bool
	cancel  func() // the context.AfterFunc hook, allocated once

	lr io.LimitedReader // writeRequest's body limiter, kept off the heap per request
}

func newPconn(t *Transport, addr string, c net.Conn) *pconn {
	pc := &pconn{t: t, addr: addr, conn: c, limit: -1}
	pc.br = bufio.NewReaderSize(pc, t.cfg.ReadBufferSize)
	pc.bw = bufio.NewWriterSize(pc, t.cfg.WriteBufferSize)
	pc.cancel = func() { _ = c.SetDeadline(aLongTimeAgo) }
	pc.initProbe()
	return pc
}

func (pc *pconn) begin() {
	pc.limit = pc.t.cfg.MaxResponseHeaderBytes
	pc.limitHit = false
	pc.nread, pc.nwritten = 0, 0
	pc.rerr, pc.werr = nil, nil
}

// Read is the socket side of br: it counts bytes and enforces the header
// budget by never reading past it.
func (pc *pconn) Read(p []byte) (int, error) {
	if pc.limit >= 0 {
		if pc.limit == 0 {
			pc.limitHit = true
			return 0, errHeaderLimit
		}
		if int64(len(p)) > pc.limit {
			p = p[:pc.limit]
		}
	}
	n, err := pc.conn.Read(p)
	if pc.limit >= 0 {
		pc.limit -= int64(n)
	}
	pc.nread += int64(n)
	if err != nil {
		pc.rerr = err
	}
	return n, err
}

// Write is the socket side of bw: it counts accepted bytes so a failed write
// on a reused connection can be told apart from a partial one.
func (pc *pconn) Write(p []byte) (int, error) {
	n, err := pc.conn.Write(p)
	pc.nwritten += int64(n)
	if err != nil {
		pc.werr = err
	}
	return n, err
}

func (pc *pconn) close() { _ = pc.conn.Close() }
