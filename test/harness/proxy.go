package harness

import (
	"io"
	"net"
	"sync"
)

// proxy forwards TCP connections to one address and can cut them: the
// NATS route between two members runs through one, so Isolate can cut a
// member's NATS traffic both ways (the embedded server's own sockets
// cannot be wrapped).
type proxy struct {
	lis net.Listener

	tmu    sync.Mutex
	target string // "" until the member's server is up

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newProxy(target string) (*proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{lis: lis, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *proxy) addr() string { return p.lis.Addr().String() }

// retarget points the proxy at a member's (new) route address.
func (p *proxy) retarget(target string) {
	p.tmu.Lock()
	p.target = target
	p.tmu.Unlock()
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.relay(c)
		}()
	}
}

func (p *proxy) relay(in net.Conn) {
	if !p.track(in) {
		in.Close()
		return
	}
	p.tmu.Lock()
	target := p.target
	p.tmu.Unlock()
	if target == "" {
		in.Close()
		return
	}
	out, err := net.Dial("tcp", target)
	if err != nil || !p.track(out) {
		in.Close()
		if out != nil {
			out.Close()
		}
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(out, in); out.Close(); done <- struct{}{} }()
	go func() { io.Copy(in, out); in.Close(); done <- struct{}{} }()
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) setCut(cut bool) {
	p.mu.Lock()
	p.cut = cut
	var conns []net.Conn
	if cut {
		for c := range p.conns {
			conns = append(conns, c)
		}
		p.conns = map[net.Conn]struct{}{}
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (p *proxy) close() {
	p.lis.Close()
	p.setCut(true)
	p.wg.Wait()
}
