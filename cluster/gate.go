package cluster

import (
	"context"
	"sync"
)

// gate is the per-partition admission table of this node: the runtime asks
// it before every turn (actor.Gate). It mirrors the outputs the driver has
// executed (Serve, Stop, Hold, Resume, ReleaseHeld); the ownership Node's
// CanServe (lease validity, epoch, highest epoch) is asked as well, so a
// decision the Node took but the driver has not executed yet already
// refuses turns.
//
// Lock order: a partGate's mu, then nothing (canServe takes the driver's
// mutex only after partGate.mu is released).
type gate struct {
	parts     []partGate
	canServe  func(p int, epoch uint64) bool
	onDrained func(p int) // a held partition has no turn running; called without locks
}

type partGate struct {
	mu      sync.Mutex
	serving bool
	epoch   uint64
	held    bool
	wake    chan struct{} // closed when the hold ends
	running int           // turns admitted and not done
	drain   bool          // onDrained is due when running reaches 0
	hint    string        // owner hint once released to another node
	// arriving: a handoff to this node has completed its staging; calls
	// wait (as on a hold) for the Serve that follows, instead of bouncing
	// between the old owner and this one.
	arriving bool
}

func newGate(partitions int, canServe func(int, uint64) bool, onDrained func(int)) *gate {
	return &gate{parts: make([]partGate, partitions), canServe: canServe, onDrained: onDrained}
}

// Enter implements actor.Gate: admits a turn on p, or waits while p is held
// for a handoff (bounded by ctx), or refuses with NotOwnerError.
func (g *gate) Enter(ctx context.Context, p int) (uint64, func(), error) {
	if p < 0 || p >= len(g.parts) {
		return 0, nil, &NotOwnerError{Partition: p}
	}
	pg := &g.parts[p]
	for {
		pg.mu.Lock()
		if pg.held || (pg.arriving && !pg.serving) {
			w := pg.wake
			pg.mu.Unlock()
			select {
			case <-w:
				continue
			case <-ctx.Done():
				return 0, nil, &UnavailableError{Partition: p, Why: "moving"}
			}
		}
		if !pg.serving {
			hint := pg.hint
			pg.mu.Unlock()
			return 0, nil, &NotOwnerError{Partition: p, Hint: hint}
		}
		epoch := pg.epoch
		pg.running++
		pg.mu.Unlock()
		done := func() { g.exit(p) }
		if !g.canServe(p, epoch) {
			done()
			return 0, nil, &NotOwnerError{Partition: p}
		}
		return epoch, done, nil
	}
}

// Valid implements actor.Gate.
func (g *gate) Valid(p int, epoch uint64) bool { return g.canServe(p, epoch) }

func (g *gate) exit(p int) {
	pg := &g.parts[p]
	pg.mu.Lock()
	pg.running--
	fire := pg.held && pg.drain && pg.running == 0
	if fire {
		pg.drain = false
	}
	pg.mu.Unlock()
	if fire {
		g.onDrained(p)
	}
}

func (g *gate) serve(p int, epoch uint64) {
	pg := &g.parts[p]
	pg.mu.Lock()
	pg.serving, pg.epoch, pg.hint = true, epoch, ""
	if pg.arriving {
		pg.arriving = false
		if !pg.held {
			close(pg.wake)
		}
	}
	pg.mu.Unlock()
}

// arrive marks p as arriving by a handoff whose staging is complete.
func (g *gate) arrive(p int) {
	pg := &g.parts[p]
	pg.mu.Lock()
	if !pg.arriving && !pg.serving && !pg.held {
		pg.arriving, pg.wake = true, make(chan struct{})
	}
	pg.mu.Unlock()
}

// unarrive ends an arrival that will not be served (staging dropped).
func (g *gate) unarrive(p int) {
	pg := &g.parts[p]
	pg.mu.Lock()
	if pg.arriving {
		pg.arriving = false
		if !pg.held {
			close(pg.wake)
		}
	}
	pg.mu.Unlock()
}

// stop ends serving p; turns held are answered NOT_OWNER with hint.
func (g *gate) stop(p int, hint string) {
	pg := &g.parts[p]
	pg.mu.Lock()
	pg.serving, pg.hint = false, hint
	if pg.held || pg.arriving {
		pg.held, pg.drain, pg.arriving = false, false, false
		close(pg.wake)
	}
	pg.mu.Unlock()
}

func (g *gate) hold(p int) {
	pg := &g.parts[p]
	pg.mu.Lock()
	if !pg.held {
		if !pg.arriving {
			pg.wake = make(chan struct{})
		}
		pg.held = true
	}
	pg.drain = true
	fire := pg.running == 0
	if fire {
		pg.drain = false
	}
	pg.mu.Unlock()
	if fire {
		g.onDrained(p)
	}
}

func (g *gate) resume(p int) {
	pg := &g.parts[p]
	pg.mu.Lock()
	if pg.held {
		pg.held, pg.drain = false, false
		if !pg.arriving {
			close(pg.wake)
		}
	}
	pg.mu.Unlock()
}

// served returns the partitions served and their epochs.
func (g *gate) served() map[int]uint64 {
	out := map[int]uint64{}
	for p := range g.parts {
		pg := &g.parts[p]
		pg.mu.Lock()
		if pg.serving {
			out[p] = pg.epoch
		}
		pg.mu.Unlock()
	}
	return out
}
