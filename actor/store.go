package actor

import "time"

// Store is all of a node's durable storage. Every disk access of the runtime
// goes through it, so crash and error injection is a wrapper (see
// FailingStore in testing.go), as pebble's vfs/errorfs.
//
// Layout: one bucket per partition holding the keys of its actors (each
// row keyed by the encoded actor ID and the key) and an alarm index whose
// keys are 8-byte big-endian unix nanoseconds followed by the encoded
// actor ID (see bolt_partition.go). The partition bucket also holds its
// epoch stamp (see PartitionStore); partition numbers are the grouped ones
// of Runtime.PartitionOf.
type Store interface {
	// Get returns a copy of one key's value. Safe for concurrent use with
	// Commit and with itself.
	Get(partition int, actor, key []byte) ([]byte, bool, error)
	// Scan calls fn for the keys of one actor in [start, end) (nil end: no
	// bound), ascending or, when reverse, descending, until fn returns
	// false. k and v are valid only during the call. fn must not call the
	// Store. Safe for concurrent use.
	Scan(partition int, actor, start, end []byte, reverse bool, fn func(k, v []byte) bool) error
	// Commit applies writes atomically and durably: when it returns nil,
	// all of them survive a crash; when it returns an error, none of them
	// was applied. Called by one goroutine at a time (the committer),
	// which reuses the slice once Commit returned.
	Commit(writes []*Write) error
	// ScanAlarms calls fn for every entry of every partition's alarm
	// index, in time order within a partition.
	ScanAlarms(fn func(partition int, atUnixNano int64, actor []byte) bool) error
	// ScanActors calls fn for each actor of one partition (-1: all
	// partitions) whose encoded ID starts with prefix.
	ScanActors(partition int, prefix []byte, fn func(partition int, actor []byte) bool) error
	// Close releases the store. Idempotent.
	Close() error
}

// OpKind is what an Op does.
type OpKind uint8

const (
	// OpPut sets Key to Value.
	OpPut OpKind = iota + 1
	// OpDelete removes Key.
	OpDelete
	// OpDeletePrefix removes every key starting with Key.
	OpDeletePrefix
	// OpDeleteActor removes the actor and all its keys.
	OpDeleteActor
)

// Op is one storage operation of a Write.
type Op struct {
	Kind  OpKind
	Key   []byte
	Value []byte
}

// Write is the storage effect of one turn on one actor.
type Write struct {
	Partition int
	Actor     []byte
	Ops       []Op
	// AlarmIndex holds puts and deletes on the partition's alarm index
	// (keys: 8-byte big-endian unix nanos + encoded actor ID).
	AlarmIndex []Op

	// urgentAt is when the committer queued this write, if it was urgent
	// (zero for a deferred write): for holdfast_commit_wait_seconds.
	urgentAt time.Time
}

// Internal key spaces inside one actor's bucket. User keys live under
// prefixData, so a kind can never collide with the runtime's records.
const (
	prefixData      = 'd' // d + user key -> value
	prefixRecord    = 'r' // r + request ID -> 8B unix nanos + recorded result
	prefixRecordAge = 't' // t + 8B unix nanos + request ID -> empty
	prefixSystem    = 's' // s + name -> runtime state (alarm)
)

var (
	keyAlarm     = []byte{prefixSystem, 'a'} // 8B unix nanos
	keyAlarmMeta = []byte{prefixSystem, 'm'} // alarm meta, see alarm.go
)

// prefixEnd returns the smallest key greater than every key with prefix p,
// or nil when there is none.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
