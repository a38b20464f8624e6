package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/holdfast/holdfast/actor"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A call forwarded to another node comes back as a google.rpc.Status. The
// two functions below carry an error across that hop so that the caller
// gets the error the local call would have returned: errors.Is/As match the
// same sentinels and types, and Classify renders the same wire form (code,
// HTTP status, reason, message, metadata).
//
//	st := api.StatusFromError(err)      // on the owner
//	err := api.ErrorFromStatus(st)      // on the forwarding node

// StatusFromError is the status GRPCError sends for err: its code and
// message with a google.rpc.ErrorInfo detail (reason, domain, metadata).
// A gRPC status error is kept as it is. nil gives nil.
func StatusFromError(err error) *spb.Status {
	if err == nil {
		return nil
	}
	return status.Convert(GRPCError(err)).Proto()
}

// ErrorFromStatus rebuilds the error StatusFromError was given:
//
//   - the runtime's sentinels (actor.ErrNotFound, ErrOverloaded,
//     ErrUnknownNamespace, ErrUnknownOperation, ErrInvalidArgument,
//     ErrTurnDeadline, ErrShuttingDown, ErrStorage, ErrInternal) and
//     context.Canceled: an error matching the sentinel with errors.Is,
//     whose message is the original message;
//   - *actor.LimitError (Limit, Max, Got; What lives on in the message only);
//   - *actor.UnknownOutcomeError with its RequestID;
//   - anything else (a kind's error with Reason and Metadata, a cluster
//     error with its own code): a *RemoteError carrying the wire form, which
//     Classify renders as it came. When its code is INVALID_ARGUMENT it
//     matches actor.ErrInvalidArgument, as every such error of the runtime
//     and the kinds does.
//
// A status without holdfast's ErrorInfo (one that was already a gRPC status
// when it was sent, e.g. UNAUTHENTICATED) comes back as that gRPC status
// error. A nil or OK status gives nil.
//
// The rebuilt error is guaranteed to classify as the status says: when the
// sentinel rebuilt from the reason would classify otherwise (other metadata,
// another code), the result is a *RemoteError that still unwraps to the
// sentinel. ErrorFromStatus never fails.
func ErrorFromStatus(st *spb.Status) error {
	if st == nil || codes.Code(st.GetCode()) == codes.OK {
		return nil
	}
	s := status.FromProto(st)
	var info *errdetails.ErrorInfo
	for _, d := range s.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok && ei.GetDomain() == ErrorDomain {
			info = ei
			break
		}
	}
	if info == nil {
		return s.Err()
	}
	code, msg, reason := s.Code(), s.Message(), info.GetReason()
	meta := info.GetMetadata()
	if meta == nil {
		meta = map[string]string{}
	}
	inner := cause(code, reason, msg, meta)
	if inner != nil {
		rebuilt := &remoteCause{msg: msg, err: inner}
		c := Classify(rebuilt)
		if c.Code == code && c.Reason == reason && maps.Equal(c.Metadata, meta) {
			return rebuilt
		}
	}
	if inner == nil && code == codes.InvalidArgument {
		inner = actor.ErrInvalidArgument
	}
	return &RemoteError{code: code, reason: reason, message: msg, meta: maps.Clone(meta), err: inner}
}

// sentinels maps a reason to the error the runtime returns with it, and
// the code Classify gives it.
var sentinels = map[string]struct {
	code codes.Code
	err  error
}{
	ReasonUnknownNamespace: {codes.NotFound, actor.ErrUnknownNamespace},
	ReasonUnknownOperation: {codes.Unimplemented, actor.ErrUnknownOperation},
	ReasonInvalidArgument:  {codes.InvalidArgument, actor.ErrInvalidArgument},
	ReasonNotFound:         {codes.NotFound, actor.ErrNotFound},
	ReasonOverloaded:       {codes.ResourceExhausted, actor.ErrOverloaded},
	ReasonTurnDeadline:     {codes.DeadlineExceeded, actor.ErrTurnDeadline},
	ReasonShuttingDown:     {codes.Unavailable, actor.ErrShuttingDown},
	ReasonOwnershipLost:    {codes.Unavailable, actor.ErrOwnershipLost},
	ReasonStorage:          {codes.Unavailable, actor.ErrStorage},
	ReasonCanceled:         {codes.Canceled, context.Canceled},
	ReasonInternal:         {codes.Internal, actor.ErrInternal},
}

// cause is the runtime's error for (code, reason), or nil.
func cause(code codes.Code, reason, msg string, meta map[string]string) error {
	switch reason {
	case ReasonLimitExceeded:
		max, err1 := strconv.ParseInt(meta["max"], 10, 64)
		got, err2 := strconv.ParseInt(meta["got"], 10, 64)
		if code != codes.InvalidArgument || err1 != nil || err2 != nil {
			return nil
		}
		return &actor.LimitError{Limit: meta["limit"], Max: max, Got: got}
	case ReasonUnknownOutcome:
		id, ok := meta["request_id"]
		if code != codes.Unknown || !ok {
			return nil
		}
		inner, found := strings.CutPrefix(msg, fmt.Sprintf("unknown outcome of request %q: ", id))
		if !found {
			inner = msg
		}
		return &actor.UnknownOutcomeError{RequestID: id, Err: errors.New(inner)}
	}
	if s, ok := sentinels[reason]; ok && s.code == code {
		return s.err
	}
	return nil
}

// remoteCause is a rebuilt runtime error: the remote message, the local
// sentinel or type.
type remoteCause struct {
	msg string
	err error
}

func (e *remoteCause) Error() string { return e.msg }
func (e *remoteCause) Unwrap() error { return e.err }

// RemoteError is an error returned by another node that has no local
// counterpart (a kind's reason such as ratelimit's UNKNOWN_BUCKET, a
// cluster error): it carries the wire form as the remote node classified
// it, and Classify renders it unchanged. Immutable; safe to share.
type RemoteError struct {
	code    codes.Code
	reason  string
	message string
	meta    map[string]string
	err     error
}

// NewRemoteError builds a RemoteError (meta is copied; nil is empty).
func NewRemoteError(code codes.Code, reason, message string, meta map[string]string) *RemoteError {
	m := maps.Clone(meta)
	if m == nil {
		m = map[string]string{}
	}
	var inner error
	if code == codes.InvalidArgument {
		inner = actor.ErrInvalidArgument
	}
	return &RemoteError{code: code, reason: reason, message: message, meta: m, err: inner}
}

// Error is the remote error's message.
func (e *RemoteError) Error() string { return e.message }

// GRPCCode is the code the remote node gave.
func (e *RemoteError) GRPCCode() codes.Code { return e.code }

// Reason is the remote ErrorInfo's reason.
func (e *RemoteError) Reason() string { return e.reason }

// Metadata is the remote ErrorInfo's metadata (a copy).
func (e *RemoteError) Metadata() map[string]string { return maps.Clone(e.meta) }

// Unwrap gives the local sentinel the error matches, if any
// (actor.ErrInvalidArgument for an INVALID_ARGUMENT error).
func (e *RemoteError) Unwrap() error { return e.err }

// HTTPStatus is the HTTP status of an error with gRPC code c that Classify
// has no more specific mapping for (a *RemoteError, or an error naming its
// own code such as the cluster's NOT_OWNER).
func HTTPStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.Canceled:
		return 499
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.ResourceExhausted:
		// As OVERLOADED: the node sheds load; not a client's rate limit.
		return http.StatusServiceUnavailable
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	default: // Unknown, Internal, DataLoss
		return http.StatusInternalServerError
	}
}
