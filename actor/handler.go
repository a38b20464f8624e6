package actor

import "google.golang.org/protobuf/proto"

// Handler is the code of one activated actor (one instance per activation).
//
// Receive is called for one message at a time: turns of an actor never
// overlap, so a Handler needs no locks of its own. It must not block except
// on its Turn's storage, and must not keep the Turn after returning. Its
// writes are committed when it returns a nil error and rolled back when it
// returns an error or panics (a panic also discards the Handler: the actor is
// reset). Any state a Handler caches in its fields must be derivable from
// storage, because an actor may be evicted or reset at any turn boundary.
type Handler interface {
	Receive(t *Turn, msg proto.Message) (proto.Message, error)
}

// AlarmHandler is implemented by handlers that act when their alarm fires.
// The alarm is already cleared in the turn's write set when Alarm runs (it
// may set a new one). A returned error or panic rolls the turn back and the
// alarm is retried with exponential backoff.
type AlarmHandler interface {
	Alarm(t *Turn) error
}

// requestIDer is implemented by every mutating request message: their proto
// definitions have a request_id field.
type requestIDer interface {
	GetRequestId() string
}
