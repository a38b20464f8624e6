// Package faultnet cuts one node off the network, for tests: while a
// Switch is cut, every connection the node dialed or accepted through it
// fails, new ones are refused, and gossip packets in and out are dropped;
// Heal lets traffic through again (new connections only: the cut ones stay
// closed, as after a real partition).
//
// Production code passes a nil *Switch, and every method of a nil Switch
// passes traffic through unchanged. All methods are safe for concurrent
// use.
package faultnet

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// ErrCut is the error of I/O on a cut node.
var ErrCut = errors.New("faultnet: node cut off the network")

// Switch is one node's connection to the network.
type Switch struct {
	mu    sync.Mutex
	cut   bool
	conns map[*conn]struct{}
}

// New returns a Switch that lets traffic through.
func New() *Switch { return &Switch{conns: map[*conn]struct{}{}} }

// Cut isolates the node: open connections are closed, new ones refused.
func (s *Switch) Cut() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.cut = true
	conns := s.conns
	s.conns = map[*conn]struct{}{}
	s.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

// Heal lets traffic through again.
func (s *Switch) Heal() {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.cut = false
	s.mu.Unlock()
}

// IsCut reports whether the node is cut off.
func (s *Switch) IsCut() bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cut
}

// track wraps c, or closes it and returns ErrCut while cut.
func (s *Switch) track(c net.Conn) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cut {
		c.Close()
		return nil, ErrCut
	}
	w := &conn{Conn: c, s: s}
	s.conns[w] = struct{}{}
	return w, nil
}

type conn struct {
	net.Conn
	s    *Switch
	once sync.Once
}

func (c *conn) Read(b []byte) (int, error) {
	if c.s.IsCut() {
		return 0, ErrCut
	}
	return c.Conn.Read(b)
}

func (c *conn) Write(b []byte) (int, error) {
	if c.s.IsCut() {
		return 0, ErrCut
	}
	return c.Conn.Write(b)
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}

// Listener wraps l: connections accepted while cut are closed at once.
func (s *Switch) Listener(l net.Listener) net.Listener {
	if s == nil {
		return l
	}
	return &listener{Listener: l, s: s}
}

type listener struct {
	net.Listener
	s *Switch
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if w, err := l.s.track(c); err == nil {
			return w, nil
		}
	}
}

// DialContext dials TCP through the switch.
func (s *Switch) DialContext(ctx context.Context, addr string) (net.Conn, error) {
	if s.IsCut() {
		return nil, ErrCut
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil || s == nil {
		return c, err
	}
	return s.track(c)
}

// Transport wraps a memberlist transport: packets in and out are dropped
// and streams refused while cut.
func (s *Switch) Transport(t memberlist.NodeAwareTransport) memberlist.NodeAwareTransport {
	if s == nil {
		return t
	}
	w := &transport{inner: t, s: s, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn), done: make(chan struct{})}
	go w.pump()
	return w
}

type transport struct {
	inner    memberlist.NodeAwareTransport
	s        *Switch
	packets  chan *memberlist.Packet
	streams  chan net.Conn
	done     chan struct{}
	doneOnce sync.Once
}

func (t *transport) pump() {
	in, sin := t.inner.PacketCh(), t.inner.StreamCh()
	for {
		select {
		case p := <-in:
			if t.s.IsCut() {
				continue
			}
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		case c := <-sin:
			w, err := t.s.track(c)
			if err != nil {
				continue
			}
			select {
			case t.streams <- w:
			case <-t.done:
				w.Close()
				return
			}
		case <-t.done:
			return
		}
	}
}

func (t *transport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	return t.inner.FinalAdvertiseAddr(ip, port)
}

func (t *transport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.s.IsCut() {
		return time.Now(), nil // lost on the wire
	}
	return t.inner.WriteTo(b, addr)
}

func (t *transport) WriteToAddress(b []byte, addr memberlist.Address) (time.Time, error) {
	if t.s.IsCut() {
		return time.Now(), nil
	}
	return t.inner.WriteToAddress(b, addr)
}

func (t *transport) PacketCh() <-chan *memberlist.Packet { return t.packets }
func (t *transport) StreamCh() <-chan net.Conn           { return t.streams }

func (t *transport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.s.IsCut() {
		return nil, ErrCut
	}
	c, err := t.inner.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return t.s.track(c)
}

func (t *transport) DialAddressTimeout(addr memberlist.Address, timeout time.Duration) (net.Conn, error) {
	if t.s.IsCut() {
		return nil, ErrCut
	}
	c, err := t.inner.DialAddressTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return t.s.track(c)
}

func (t *transport) Shutdown() error {
	t.doneOnce.Do(func() { close(t.done) })
	// Keep draining the inner transport until it has shut down: its
	// listeners block sending a packet nobody reads, and then its Shutdown
	// waits for them forever.
	stop := make(chan struct{})
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for {
			select {
			case <-t.inner.PacketCh():
			case c := <-t.inner.StreamCh():
				if c != nil {
					c.Close()
				}
			case <-stop:
				return
			}
		}
	}()
	err := t.inner.Shutdown()
	close(stop)
	<-drained
	return err
}
