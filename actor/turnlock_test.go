package actor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lockFor takes l as a turn does: the spin, then the parked wait.
func lockFor(l *turnLock, d time.Duration) error {
	if l.tryLockSpin() {
		return nil
	}
	return l.lockSlow(context.Background(), time.Now().Add(d))
}

func TestTurnLockExcludes(t *testing.T) {
	l := newTurnLock()
	var wg sync.WaitGroup
	n := 0 // guarded by l: the race detector checks it
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				var err error
				if (g+i)%3 == 0 { // some go straight to the parked wait
					err = l.lockSlow(context.Background(), time.Time{})
				} else {
					err = lockFor(&l, 10*time.Second)
				}
				if err != nil {
					t.Error(err)
					return
				}
				n++
				l.unlock()
			}
		}()
	}
	wg.Wait()
	if n != 8*2000 {
		t.Fatalf("n = %d, want %d", n, 8*2000)
	}
	if p, s := l.parked.Load(), l.state.Load(); p != 0 || s != 0 {
		t.Fatalf("parked %d, state %d after the waits", p, s)
	}
}

func TestTurnLockWaitEnds(t *testing.T) {
	l := newTurnLock()
	if !l.tryLock() {
		t.Fatal("a free lock was not taken")
	}
	if l.tryLock() || l.tryLockSpin() {
		t.Fatal("a held lock was taken")
	}
	if err := l.lockSlow(context.Background(), time.Now().Add(20*time.Millisecond)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	if err := l.lockSlow(ctx, time.Time{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	// A parked caller gets the lock when it is released.
	got := make(chan error, 1)
	go func() { got <- l.lockSlow(context.Background(), time.Now().Add(10*time.Second)) }()
	for l.parked.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	l.unlock()
	if err := <-got; err != nil {
		t.Fatalf("parked caller after unlock: %v", err)
	}
	l.unlock()
	if p, s := l.parked.Load(), l.state.Load(); p != 0 || s != 0 {
		t.Fatalf("parked %d, state %d after the waits", p, s)
	}
}

// A caller that runs turns back to back, taking the lock again right
// after each unlock, cannot keep a parked caller out: once the parked one
// waited starveAfter (1 ms), it is served within the turns queued before
// it. Counted in the other caller's turns (each at least 20 µs), not in
// time: a parked caller waits for about 50 of them, and without the
// starvation mode for thousands.
func TestTurnLockParkedCallerIsServed(t *testing.T) {
	l := newTurnLock()
	var stop atomic.Bool
	var turns atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			if err := lockFor(&l, 10*time.Second); err != nil {
				t.Error(err)
				return
			}
			for start := time.Now(); time.Since(start) < 20*time.Microsecond; { // a turn
			}
			turns.Add(1)
			l.unlock()
		}
	}()
	defer func() { stop.Store(true); <-done }()
	most := int64(0)
	for i := range 20 {
		for l.state.Load()&lockHeld == 0 { // park while the other runs a turn
		}
		before := turns.Load()
		if err := l.lockSlow(context.Background(), time.Now().Add(10*time.Second)); err != nil {
			t.Fatalf("parked caller %d: %v", i, err)
		}
		most = max(most, turns.Load()-before)
		l.unlock()
	}
	if most > 1000 {
		t.Fatalf("a parked caller waited for %d turns of a caller barging back in", most)
	}
	t.Logf("a parked caller waited for at most %d turns", most)
}
