package actor

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"
)

// turnLock is an actor's turn lock: a mutex whose waits end with a context
// or a deadline (sync.Mutex's cannot).
//
// A free lock is taken with one CAS. A caller that finds it held spins a
// little (tryLockSpin), then parks until an unlock wakes it, and competes
// again with callers arriving meanwhile ("barging", as sync.Mutex in its
// normal mode). Handing the lock to a parked caller on every unlock instead
// (first come, first served, as a channel semaphore does) makes a convoy as
// soon as one caller parks: every turn then waits for a goroutine wake-up,
// microseconds, while the caller that just ran could run the next turn at
// once.
//
// A parked caller that waited longer than starveAfter sets starving: until
// it holds the lock, arriving callers do not barge but park too, and a
// parked caller gets the lock at each unlock in the order they parked (the
// wake channel's), so it is served within the turns queued before it
// (sync.Mutex's starvation mode).
type turnLock struct {
	// state is lockHeld | lockStarving × (callers in lockSlow that waited
	// longer than starveAfter): 0 is free with nobody starving, the only
	// state tryLock takes.
	state  atomic.Int32
	parked atomic.Int32  // callers in lockSlow
	wake   chan struct{} // cap 1: a token telling one parked caller to try again
}

const (
	lockHeld     = 1
	lockStarving = 2
)

const (
	starveAfter = time.Millisecond
	// A spinning caller checks the lock every spinPause, for up to
	// spinBudget, then parks. See tryLockSpin.
	spinPause  = 5 * time.Microsecond
	spinBudget = 50 * time.Microsecond
)

func newTurnLock() turnLock { return turnLock{wake: make(chan struct{}, 1)} }

// tryLock takes the lock if it is free and no parked caller is starving.
func (l *turnLock) tryLock() bool {
	return l.state.Load() == 0 && l.state.CompareAndSwap(0, lockHeld)
}

// tryLockSpin takes the lock if it is free or frees within spinBudget.
//
// It checks the lock every spinPause, not as often as it can: a turn run
// on the core that ran the actor's last turn finds the actor's state in
// that core's cache, while a turn on another core first moves every cache
// line the last turn wrote (the cell, the actor's data, its locks). A
// caller that just ended a turn usually starts its next call within a few
// hundred nanoseconds, so with a pause it often takes the lock again and
// runs a series of turns on one core. Checking every few nanoseconds
// instead made the turns alternate between cores: on this project's 2-core
// VM a hot actor ran 1.2 to 3 million turns/s depending on how slow the
// cores' shared cache lines were at the time; with the pause, 2.4 to 2.7
// million either way. Between checks it yields the processor to the
// goroutines waiting for it.
func (l *turnLock) tryLockSpin() bool {
	if l.tryLock() {
		return true
	}
	start := time.Now()
	for next := spinPause; ; next += spinPause {
		for time.Since(start) < next { // no memory traffic: a monotonic clock read
		}
		if l.tryLock() {
			return true
		}
		if next >= spinBudget {
			return false
		}
		runtime.Gosched()
	}
}

// unlock releases the lock and wakes a parked caller, if any. The order
// (release, then read parked) pairs with lockSlow's (count, then try): one
// of the two sees the other, so no parked caller sleeps on a free lock.
func (l *turnLock) unlock() {
	l.state.Add(-lockHeld)
	if l.parked.Load() > 0 {
		select {
		case l.wake <- struct{}{}:
		default: // a token is pending: some parked caller will try again
		}
	}
}

// lockSlow parks until it holds the lock (nil), ctx ends (ctx.Err()) or
// the deadline passes (context.DeadlineExceeded; zero: none).
func (l *turnLock) lockSlow(ctx context.Context, deadline time.Time) error {
	l.parked.Add(1)
	defer l.parked.Add(-1)
	starving := false
	defer func() {
		if starving {
			l.state.Add(-lockStarving)
		}
	}()
	start := time.Now()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	for {
		if s := l.state.Load(); s&lockHeld == 0 && l.state.CompareAndSwap(s, s|lockHeld) {
			return nil // parked callers take it even while one starves
		}
		select {
		case <-l.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return context.DeadlineExceeded
		}
		if !starving && time.Since(start) > starveAfter {
			starving = true
			l.state.Add(lockStarving)
		}
	}
}
