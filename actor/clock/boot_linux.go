//go:build linux

package clock

import (
	"time"

	"golang.org/x/sys/unix"
)

// BootElapsed returns the time since boot including time spent suspended
// (CLOCK_BOOTTIME). Lease arithmetic uses it: a lease must run out while the
// machine sleeps, which CLOCK_MONOTONIC does not count.
func BootElapsed() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Duration(time.Now().UnixNano())
	}
	return time.Duration(ts.Nano())
}
