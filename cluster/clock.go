package cluster

import (
	"time"

	"github.com/holdfast/holdfast/actor/clock"
)

// bootClock reads CLOCK_BOOTTIME (it runs while the machine is suspended)
// as a time.Time; it never goes backwards. Leases are measured on it.
type bootClock struct{ clock.Real }

var bootEpoch = time.Unix(0, 0)

func (bootClock) Now() time.Time { return bootEpoch.Add(clock.BootElapsed()) }
