package api

import (
	"runtime"
	"sync"
	"testing"
)

// waitParked waits until n workers are parked (each parks right after its
// job returns).
func waitParked(w *workers, n int) {
	for {
		if idle, _ := w.parked(); idle == n {
			return
		}
		runtime.Gosched()
	}
}

func TestWorkersReuseParkedGoroutines(t *testing.T) {
	var w workers
	const n = 8
	release := make(chan struct{})
	var running, done sync.WaitGroup
	batch := func() {
		running.Add(n)
		done.Add(n)
		for range n {
			w.run(func() {
				running.Done()
				<-release
				done.Done()
			})
		}
		running.Wait() // all n at once: none waited for another
	}
	batch()
	if _, started := w.parked(); started != n {
		t.Fatalf("started %d goroutines for %d concurrent jobs", started, n)
	}
	close(release)
	done.Wait()
	waitParked(&w, n)
	release = make(chan struct{})
	batch()
	if idle, started := w.parked(); started != n || idle != 0 {
		t.Fatalf("second round: %d goroutines started in all, %d parked; want %d, 0", started, idle, n)
	}
	close(release)
	done.Wait()
	waitParked(&w, n)
}

func TestWorkersParkAtMostMaxIdle(t *testing.T) {
	var w workers
	const n = maxIdleWorkers + 10
	release := make(chan struct{})
	var running, done sync.WaitGroup
	running.Add(n)
	done.Add(n)
	for range n {
		w.run(func() {
			running.Done()
			<-release
			done.Done()
		})
	}
	running.Wait()
	close(release)
	done.Wait()
	waitParked(&w, maxIdleWorkers)
	// The 10 beyond the bound end instead of parking: the count stays.
	var more sync.WaitGroup
	more.Add(maxIdleWorkers)
	for range maxIdleWorkers {
		w.run(more.Done)
	}
	more.Wait()
	waitParked(&w, maxIdleWorkers)
	if _, started := w.parked(); started != n {
		t.Fatalf("started %d goroutines, want %d (the parked ones reused)", started, n)
	}
}
