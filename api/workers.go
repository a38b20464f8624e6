package api

import "sync"

// maxIdleWorkers bounds the goroutines a workers pool keeps parked for
// reuse; a burst beyond it starts goroutines that end with their job.
const maxIdleWorkers = 256

// workers runs the calls a stream or batch overlaps on goroutines it keeps
// for reuse. A take's call chain needs several KiB of stack: a fresh
// goroutine starts smaller and copies its stack as it grows, which cost a
// sixth of the server's CPU per check when every take had a goroutine of
// its own. A job never waits for a worker: with none idle it gets a new
// goroutine, so the concurrency is what it was. The zero value is ready to
// use; safe for concurrent use.
type workers struct {
	mu      sync.Mutex
	idle    []chan func() // parked workers, most recently parked last
	started int           // goroutines started, for tests
}

// run runs f on an idle worker, or on a new one.
func (w *workers) run(f func()) {
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		ch := w.idle[n-1]
		w.idle = w.idle[:n-1]
		w.mu.Unlock()
		ch <- f // buffered: never blocks
		return
	}
	w.started++
	w.mu.Unlock()
	go w.loop(f)
}

// loop runs f, then the jobs handed to it while parked, until a job finds
// maxIdleWorkers already parked.
func (w *workers) loop(f func()) {
	ch := make(chan func(), 1)
	for {
		f()
		w.mu.Lock()
		if len(w.idle) >= maxIdleWorkers {
			w.mu.Unlock()
			return
		}
		w.idle = append(w.idle, ch)
		w.mu.Unlock()
		f = <-ch
	}
}

// parked returns how many workers are parked and how many goroutines the
// pool started (tests).
func (w *workers) parked() (idle, started int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.idle), w.started
}
