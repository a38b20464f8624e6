package h1

import (
	"context"
	"fmt"
	"net"
	"time"
)

// Config tunes a Transport. Start from DefaultConfig.
type Config struct {
	// MaxIdleConnsPerHost bounds the idle pool of each host:port; when it is
	// full the oldest idle connection is closed.
	MaxIdleConnsPerHost int
	// IdleConnTimeout closes a connection that stayed idle this long.
	IdleConnTimeout time.Duration
	// DialTimeout bounds one dial; the request context bounds it too.
	DialTimeout time.Duration
	// MaxResponseHeaderBytes bounds the status lines and header blocks of a
	// response, informational answers included; at most MaxHeaderLimit
	// (the parser keeps 32-bit offsets into the head).
	MaxResponseHeaderBytes int64
	// WriteBufferSize and ReadBufferSize size the per-connection buffers.
	WriteBufferSize int
	ReadBufferSize  int
	// Dial opens a connection; network is "tcp" and addr is host:port. It
	// must honour ctx. Tests inject fakes here.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DefaultConfig returns the production settings.
func DefaultConfig() Config {
	d := &net.Dialer{KeepAlive: 30 * time.Second}
	return Config{
		MaxIdleConnsPerHost:    256,
		IdleConnTimeout:        90 * time.Second,
		DialTimeout:            10 * time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		WriteBufferSize:        32 << 10,
		ReadBufferSize:         32 << 10,
		Dial:                   d.DialContext,
	}
}

// MaxHeaderLimit is the largest Config.MaxResponseHeaderBytes (1 GiB).
const MaxHeaderLimit = 1 << 30

// Validate reports the first field that is out of range, by name.
func (c Config) Validate() error {
	switch {
	case c.MaxIdleConnsPerHost < 0:
		return fmt.Errorf("h1: config: MaxIdleConnsPerHost must be >= 0, got %d", c.MaxIdleConnsPerHost)
	case c.IdleConnTimeout <= 0:
		return fmt.Errorf("h1: config: IdleConnTimeout must be > 0, got %v", c.IdleConnTimeout)
	case c.DialTimeout <= 0:
		return fmt.Errorf("h1: config: DialTimeout must be > 0, got %v", c.DialTimeout)
	case c.MaxResponseHeaderBytes <= 0 || c.MaxResponseHeaderBytes > MaxHeaderLimit:
		return fmt.Errorf("h1: config: MaxResponseHeaderBytes must be in [1, %d], got %d", int64(MaxHeaderLimit), c.MaxResponseHeaderBytes)
	case c.WriteBufferSize < 512:
		return fmt.Errorf("h1: config: WriteBufferSize must be >= 512, got %d", c.WriteBufferSize)
	case c.ReadBufferSize < 512:
		return fmt.Errorf("h1: config: ReadBufferSize must be >= 512, got %d", c.ReadBufferSize)
	case c.Dial == nil:
		return fmt.Errorf("h1: config: Dial must be set")
	}
	return nil
}
