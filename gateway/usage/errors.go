package usage

import "fmt"

// DefaultMaxEventSize bounds one SSE event. Real events are at most a few
// kilobytes; the bound exists so a broken or hostile upstream cannot make the
// gateway buffer without limit.
const DefaultMaxEventSize = 16 << 20

// EventTooLargeError reports an SSE event longer than the Splitter's limit.
type EventTooLargeError struct {
	Limit int // the limit in bytes that was exceeded
}

func (e *EventTooLargeError) Error() string {
	return fmt.Sprintf("usage: SSE event exceeds the %d-byte limit", e.Limit)
}
