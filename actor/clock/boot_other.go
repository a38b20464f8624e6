//go:build !linux

package clock

import "time"

var processStart = time.Now()

// BootElapsed falls back to the monotonic clock where CLOCK_BOOTTIME does not
// exist.
func BootElapsed() time.Duration { return time.Since(processStart) }
