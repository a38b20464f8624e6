// Package clock is the only way protocol code in holdfast reads time.
//
// Code under actor/ and cluster/ never calls time.Now, time.After or
// time.AfterFunc directly: it takes a Clock, so tests drive time with Fake and
// never sleep. Real uses the Go runtime clock, whose monotonic reading on
// Linux is CLOCK_MONOTONIC; lease arithmetic that must keep running across a
// suspend uses BootClock (CLOCK_BOOTTIME).
package clock

import "time"

// Clock tells the time and schedules callbacks.
//
// Implementations are safe for concurrent use. Callbacks passed to AfterFunc
// run on their own goroutine (Real) or on the goroutine that advances time
// (Fake); they must not assume either.
type Clock interface {
	// Now returns the current time. Never blocks.
	Now() time.Time
	// AfterFunc calls f once, d from now. Never blocks.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled callback.
type Timer interface {
	// Stop cancels the callback; it reports whether it was still pending.
	Stop() bool
}

// Real is the system clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
