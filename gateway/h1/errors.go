package h1

import (
	"errors"
	"strconv"
)

var (
	// ErrClosed is returned by RoundTrip after Close.
	ErrClosed = errors.New("h1: transport closed")
	// ErrUnsupportedScheme is returned for any URL scheme but "http".
	ErrUnsupportedScheme = errors.New("h1: unsupported URL scheme")
	// ErrInvalidRequest is returned for a request http.Transport would also
	// refuse (no URL or host, bad method, bad header name or value).
	ErrInvalidRequest = errors.New("h1: invalid request")
	// ErrMalformedResponse stands for an unparsable status line, header or
	// chunk framing; the offending bytes are not quoted.
	ErrMalformedResponse = errors.New("h1: malformed response")
	// ErrUnsupportedUpgrade is returned for a 101 Switching Protocols answer.
	ErrUnsupportedUpgrade = errors.New("h1: protocol upgrade not supported")
	// ErrDialTimeout is returned when Config.DialTimeout elapsed before the
	// request context ended.
	ErrDialTimeout = errors.New("h1: dial timeout")
	// ErrBodyClosed is returned by Read on a response body after Close.
	ErrBodyClosed = errors.New("h1: read on closed response body")
)

// Stages reported in Error.Op.
const (
	OpDial        = "dial"
	OpWrite       = "write request"
	OpReadHeaders = "read response headers"
	OpReadBody    = "read response body"
)

// Error is a failed round trip: which stage, against which host:port.
type Error struct {
	Op   string // one of the Op constants
	Addr string // host:port dialed
	// Reused is true when the connection came from the idle pool.
	Reused bool
	Err    error
}

func (e *Error) Error() string { return "h1: " + e.Op + " " + e.Addr + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// LimitError is returned when a response exceeds a configured bound.
type LimitError struct {
	Limit string // the config knob, e.g. "max_response_header_bytes"
	Max   int64
}

func (e *LimitError) Error() string {
	return "h1: response exceeds " + e.Limit + " (" + strconv.FormatInt(e.Max, 10) + " bytes)"
}
