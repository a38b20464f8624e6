package h1

import "time"

// The idle pool: per host:port a stack ordered by idleAt (oldest first), so
// LIFO reuse takes the warmest connection and expiry trims from the bottom.
// Connections are closed outside t.mu.

// popIdle returns the newest unexpired idle connection for addr, or nil.
func (t *Transport) popIdle(addr string) *pconn {
	now := time.Now()
	var expired []*pconn
	t.mu.Lock()
	stack := t.idle[addr]
	if n := len(stack); n > 0 && now.Sub(stack[n-1].idleAt) >= t.cfg.IdleConnTimeout {
		// The newest is expired, so all are.
		expired = stack
		stack = nil
	}
	var pc *pconn
	if n := len(stack); n > 0 {
		pc = stack[n-1]
		stack[n-1] = nil
		stack = stack[:n-1]
	}
	t.setStack(addr, stack)
	t.mu.Unlock()
	closeAll(expired)
	return pc
}

// putIdle parks pc for reuse, or closes it if the transport is closed.
func (t *Transport) putIdle(pc *pconn) {
	var drop []*pconn
	t.mu.Lock()
	now := time.Now() // under the lock: each stack stays in idleAt order
	pc.idleAt = now
	if t.closed || t.cfg.MaxIdleConnsPerHost == 0 {
		t.mu.Unlock()
		pc.close()
		return
	}
	stack, drop := t.trim(t.idle[pc.addr], now, drop)
	if len(stack) >= t.cfg.MaxIdleConnsPerHost {
		drop = append(drop, stack[0])
		stack[0] = nil
		stack = stack[1:]
	}
	t.setStack(pc.addr, append(stack, pc))
	if !t.timerArmed {
		t.timerArmed = true
		if t.timer == nil {
			t.timer = time.AfterFunc(t.cfg.IdleConnTimeout, t.sweep)
		} else {
			t.timer.Reset(t.cfg.IdleConnTimeout)
		}
	}
	t.mu.Unlock()
	closeAll(drop)
}

// trim removes expired connections from the bottom of stack into drop.
// t.mu must be held.
func (t *Transport) trim(stack []*pconn, now time.Time, drop []*pconn) ([]*pconn, []*pconn) {
	i := 0
	for i < len(stack) && now.Sub(stack[i].idleAt) >= t.cfg.IdleConnTimeout {
		drop = append(drop, stack[i])
		stack[i] = nil
		i++
	}
	return stack[i:], drop
}

// setStack stores stack, deleting empty entries so the map does not grow
// with every host ever seen. t.mu must be held.
func (t *Transport) setStack(addr string, stack []*pconn) {
	if len(stack) == 0 {
		delete(t.idle, addr)
		return
	}
	t.idle[addr] = stack
}

// sweep is the Transport's one idle timer: it closes expired connections and
// re-arms for the next expiry while anything is idle.
func (t *Transport) sweep() {
	now := time.Now()
	var drop []*pconn
	t.mu.Lock()
	var oldest time.Time
	for addr, stack := range t.idle {
		stack, drop = t.trim(stack, now, drop)
		t.setStack(addr, stack)
		if len(stack) > 0 && (oldest.IsZero() || stack[0].idleAt.Before(oldest)) {
			oldest = stack[0].idleAt
		}
	}
	if t.closed || oldest.IsZero() {
		t.timerArmed = false
	} else {
		t.timer.Reset(oldest.Add(t.cfg.IdleConnTimeout).Sub(now))
	}
	t.mu.Unlock()
	closeAll(drop)
}

// CloseIdleConnections closes every idle connection. Connections in use are
// unaffected and may return to the pool later.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	var drop []*pconn
	for addr, stack := range t.idle {
		drop = append(drop, stack...)
		delete(t.idle, addr)
	}
	t.mu.Unlock()
	closeAll(drop)
}

// idleCount is for tests and metrics.
func (t *Transport) idleCount(addr string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.idle[addr])
}

func closeAll(pcs []*pconn) {
	for _, pc := range pcs {
		pc.close()
	}
}
