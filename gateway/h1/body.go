package h1

import (
	"context"
	"io"
	"sync"
)

const (
	bodyOpen   = iota
	bodyDone   // EOF or error seen; the connection is released or closed
	bodyClosed // Close called
)

// body reads the response straight off the connection on the caller's
// goroutine. Close may run concurrently with a blocked Read: it closes the
// socket, which unblocks the Read.
type body struct {
	pc   *pconn
	f    framing // Content-Length, chunked or close-delimited, over pc.br
	stop func() bool
	ctx  context.Context
	keep bool // the connection may be pooled after EOF

	mu    sync.Mutex
	state int
	err   error // returned again by Read after bodyDone
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	switch b.state {
	case bodyClosed:
		b.mu.Unlock()
		return 0, ErrBodyClosed
	case bodyDone:
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	b.mu.Unlock()

	n, err := b.f.Read(p)
	if err == nil {
		return n, nil
	}

	b.mu.Lock()
	if b.state == bodyClosed { // Close raced with this Read and closed the socket
		b.mu.Unlock()
		return n, ErrBodyClosed
	}
	b.state = bodyDone
	if err == io.EOF {
		b.err = io.EOF
		b.mu.Unlock()
		b.pc.t.release(b.pc, b.stop, b.keep)
		return n, io.EOF
	}
	b.err = b.readError(err)
	b.mu.Unlock()
	b.stop()
	b.pc.close()
	return n, b.err
}

// readError names the stage and drops parser text (a bad chunk header or
// trailer line would be quoted by net/http's readers).
func (b *body) readError(err error) error {
	pc := b.pc
	switch {
	case b.ctx.Err() != nil:
		err = b.ctx.Err()
	case err == errMalformed:
		err = ErrMalformedResponse
	case pc.rerr != nil:
		err = ioError(err, pc.rerr)
	default:
		err = ErrMalformedResponse
	}
	return &Error{Op: OpReadBody, Addr: pc.addr, Reused: pc.reused, Err: err}
}

// Close before EOF closes the connection rather than draining it: streams
// can be long.
func (b *body) Close() error {
	b.mu.Lock()
	prev := b.state
	b.state = bodyClosed
	b.mu.Unlock()
	if prev == bodyOpen {
		b.stop()
		b.pc.close()
	}
	return nil
}
