//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package h1

import "syscall"

func (pc *pconn) initProbe() {
	sc, ok := pc.conn.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	pc.raw = raw
	var buf [1]byte
	// Built once per connection so a probe allocates nothing.
	pc.probeFn = func(fd uintptr) bool {
		_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: nothing to read, the peer has not closed: alive. EOF
		// (n == 0, err == nil), an error, or unsolicited bytes: dead.
		pc.probeOK = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // never wait for readiness
	}
}

// alive reports whether an idle connection still looks usable. It costs one
// non-blocking recvfrom and no allocation. A deadline-based 1-byte Read
// would not do: Go's poller fails a read whose deadline has passed without
// ever asking the kernel.
func (pc *pconn) alive() bool {
	if pc.raw == nil {
		return true // not a socket (a test fake): rely on the write retry
	}
	pc.probeOK = false
	if err := pc.raw.Read(pc.probeFn); err != nil {
		return false
	}
	return pc.probeOK
}
