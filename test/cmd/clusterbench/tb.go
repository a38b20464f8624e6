package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// benchTB is the testing.TB the harness needs, for a program: Fatalf
// panics with a tbFatal that runSection recovers (the section is reported
// as failed, its cleanups run), TempDir makes directories under one root,
// Cleanup collects functions that finish runs in reverse order. The
// embedded interface is nil: a harness method this type does not implement
// would panic, which is the point (it would be a new dependency to add
// here, not something to ignore).
type benchTB struct {
	testing.TB
	name string
	root string

	mu       sync.Mutex
	cleanups []func()
	dirs     int
	failed   bool
}

type tbFatal struct{ msg string }

func (f tbFatal) Error() string { return f.msg }

func newTB(name, root string) *benchTB { return &benchTB{name: name, root: root} }

func (t *benchTB) Helper()      {}
func (t *benchTB) Name() string { return t.name }
func (t *benchTB) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failed
}

func (t *benchTB) Logf(format string, args ...any) {
	logf("%s: %s", t.name, fmt.Sprintf(format, args...))
}
func (t *benchTB) Log(args ...any) { logf("%s: %s", t.name, fmt.Sprint(args...)) }

func (t *benchTB) Errorf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	t.Logf(format, args...)
}
func (t *benchTB) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }

func (t *benchTB) Fatalf(format string, args ...any) {
	t.mu.Lock()
	t.failed = true
	t.mu.Unlock()
	panic(tbFatal{fmt.Sprintf(format, args...)})
}
func (t *benchTB) Fatal(args ...any) { t.Fatalf("%s", fmt.Sprint(args...)) }
func (t *benchTB) FailNow()          { t.Fatalf("FailNow") }

func (t *benchTB) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *benchTB) TempDir() string {
	t.mu.Lock()
	t.dirs++
	n := t.dirs
	t.mu.Unlock()
	dir := filepath.Join(t.root, fmt.Sprintf("%s-%d", t.name, n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("TempDir: %v", err)
	}
	return dir
}

// finish runs the cleanups, last registered first.
func (t *benchTB) finish() {
	for {
		t.mu.Lock()
		if len(t.cleanups) == 0 {
			t.mu.Unlock()
			return
		}
		f := t.cleanups[len(t.cleanups)-1]
		t.cleanups = t.cleanups[:len(t.cleanups)-1]
		t.mu.Unlock()
		f()
	}
}

// runSection runs f with a fresh benchTB, turns a Fatalf (or any panic)
// into an error, and always runs the cleanups.
func runSection(name, root string, f func(t *benchTB) error) (err error) {
	t := newTB(name, root)
	defer t.finish()
	defer func() {
		if r := recover(); r != nil {
			if tf, ok := r.(tbFatal); ok {
				err = fmt.Errorf("%s: %s", name, tf.msg)
				return
			}
			err = fmt.Errorf("%s: panic: %v", name, r)
		}
	}()
	return f(t)
}
