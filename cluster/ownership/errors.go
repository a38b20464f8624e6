package ownership

import (
	"errors"
	"fmt"
	"time"
)

// ErrClockWentBackwards is returned by Step when now is earlier than the now
// of a previous Step: lease arithmetic is only sound on a monotonic clock.
var ErrClockWentBackwards = errors.New("ownership: clock went backwards")

// ClockError carries the two readings of a clock that went backwards.
type ClockError struct {
	Last, Now time.Time
}

func (e *ClockError) Error() string {
	return fmt.Sprintf("ownership: clock went backwards from %v to %v", e.Last, e.Now)
}

// Is makes errors.Is(err, ErrClockWentBackwards) hold.
func (e *ClockError) Is(target error) bool { return target == ErrClockWentBackwards }

// ConfigError reports an invalid Config field.
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("ownership: invalid config %s: %s", e.Field, e.Reason)
}

// UnknownInputError is returned by Step for an Input type it does not know.
type UnknownInputError struct {
	Input Input
}

func (e *UnknownInputError) Error() string {
	return fmt.Sprintf("ownership: unknown input %T", e.Input)
}

// EpochRegressedError (in an Alert) reports that the directory names this
// node at an epoch lower than one it has persisted: the directory lost
// writes. The node refuses to serve the partition; an operator must decide.
type EpochRegressedError struct {
	Partition Partition
	Directory uint64
	Highest   uint64
}

func (e *EpochRegressedError) Error() string {
	return fmt.Sprintf("ownership: partition %d: directory epoch %d is below persisted epoch %d",
		e.Partition, e.Directory, e.Highest)
}

// DataUnavailableError (in an Alert) reports that the directory names this
// node for a partition whose data the node does not hold (a lost disk or
// staging bucket) under on_owner_loss=wait: nobody can serve it.
type DataUnavailableError struct {
	Partition Partition
	Entry     Entry
}

func (e *DataUnavailableError) Error() string {
	return fmt.Sprintf("ownership: partition %d: entry %+v names this node but its data is not here",
		e.Partition, e.Entry)
}

// NoDrainTargetError (in an Alert) reports a partition that a draining node
// cannot hand off because no other member is eligible.
type NoDrainTargetError struct {
	Partition Partition
}

func (e *NoDrainTargetError) Error() string {
	return fmt.Sprintf("ownership: partition %d: no node to drain to", e.Partition)
}
