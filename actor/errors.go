package actor

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// Sentinel errors. Every error the runtime returns wraps one of these, or is
// one of the typed errors below, so transports map them to status codes with
// errors.Is / errors.As.
var (
	// ErrOverloaded: the actor's mailbox is full. Not retryable, as in
	// Durable Objects: the caller is sending faster than one actor serves.
	ErrOverloaded = errors.New("overloaded")
	// ErrUnknownNamespace: no namespace of that name is configured.
	ErrUnknownNamespace = errors.New("unknown namespace")
	// ErrUnknownOperation: the actor's kind does not handle this message.
	ErrUnknownOperation = errors.New("unknown operation")
	// ErrTurnDeadline: the turn did not start or finish within its deadline;
	// its writes, if any, were rolled back.
	ErrTurnDeadline = errors.New("turn deadline exceeded")
	// ErrShuttingDown: the node is stopping and takes no new turns.
	ErrShuttingDown = errors.New("node shutting down")
	// ErrStorage: the durable store failed. After a failed commit the node
	// refuses every further turn (the page cache can no longer be trusted
	// after a failed fsync) until it is restarted.
	ErrStorage = errors.New("storage failure")
	// ErrInternal: the actor's code failed (for example it panicked); its
	// writes were rolled back and the actor was reset.
	ErrInternal = errors.New("internal error")
	// ErrInvalidArgument: the request is malformed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the requested thing does not exist.
	ErrNotFound = errors.New("not found")
	// ErrOwnershipLost: this node stopped being allowed to serve the
	// actor's partition while the turn ran (Gate.Valid said no). A turn
	// that wrote reports it inside an *UnknownOutcomeError; one that did
	// not write may simply be retried (the API maps it to UNAVAILABLE,
	// retryable).
	ErrOwnershipLost = errors.New("ownership lost during the turn")
)

// LimitError reports a request over one of the configured limits. Limit is
// the config key that sets it (for example "max_value_bytes").
type LimitError struct {
	Limit string
	Max   int64
	Got   int64
	// What names the offending item, e.g. `key "a/b"` (never a value).
	What string
}

func (e *LimitError) Error() string {
	if e.What != "" {
		return fmt.Sprintf("limit %s exceeded by %s: %d > %d", e.Limit, e.What, e.Got, e.Max)
	}
	return fmt.Sprintf("limit %s exceeded: %d > %d", e.Limit, e.Got, e.Max)
}

// Is makes errors.Is(err, ErrInvalidArgument) true for a LimitError.
func (e *LimitError) Is(target error) bool { return target == ErrInvalidArgument }

// UnknownOutcomeError is returned when a mutating call may or may not have
// been applied (for example the caller's deadline ran out while its commit
// was in flight). Retrying with the same RequestID is safe.
type UnknownOutcomeError struct {
	RequestID string
	Err       error
}

func (e *UnknownOutcomeError) Error() string {
	if e.RequestID == "" {
		return fmt.Sprintf("unknown outcome (the call carried no request id, so a retry may apply it twice): %v", e.Err)
	}
	return fmt.Sprintf("unknown outcome of request %q: %v", e.RequestID, e.Err)
}

func (e *UnknownOutcomeError) Unwrap() error { return e.Err }

// PanicError is returned when the actor's code panicked. The panic value and
// stack go to the log, not to the caller.
type PanicError struct {
	Actor ID
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("actor %s failed: internal error (actor reset, writes rolled back)", e.Actor)
}

// Is makes errors.Is(err, ErrInternal) true.
func (e *PanicError) Is(target error) bool { return target == ErrInternal }

// AbortError lets a handler roll its turn back and still answer normally:
// the runtime discards the turn's writes and returns Reply with a nil
// error (a kv transaction whose condition failed, for example).
type AbortError struct {
	Reply proto.Message
}

func (e *AbortError) Error() string { return "turn aborted by its handler" }

// ReasonError is an invalid request refused by a kind, with the stable
// reason clients switch on and metadata naming what was wrong (the API maps
// it to INVALID_ARGUMENT with a google.rpc.ErrorInfo of that reason).
type ReasonError struct {
	reason string
	meta   map[string]string
	err    error
}

// NewReasonError wraps err with a wire reason and metadata (meta may be nil).
func NewReasonError(reason string, meta map[string]string, err error) *ReasonError {
	if meta == nil {
		meta = map[string]string{}
	}
	return &ReasonError{reason: reason, meta: meta, err: err}
}

func (e *ReasonError) Error() string { return e.err.Error() }

// Unwrap returns the wrapped error.
func (e *ReasonError) Unwrap() error { return e.err }

// Is makes errors.Is(err, ErrInvalidArgument) true.
func (e *ReasonError) Is(t error) bool { return t == ErrInvalidArgument }

// Reason is the stable wire reason (UNKNOWN_BUCKET, INVALID_USER, ...).
func (e *ReasonError) Reason() string { return e.reason }

// Metadata names what was wrong (for example bucket=requests).
func (e *ReasonError) Metadata() map[string]string { return e.meta }
