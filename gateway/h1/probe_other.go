//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package h1

func (pc *pconn) initProbe() {}

// alive cannot peek without a portable non-blocking read; stale connections
// are then caught by the write retry only.
func (pc *pconn) alive() bool { return true }
