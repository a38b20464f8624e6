package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/holdfast/holdfast/actor"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the domain of every ErrorInfo holdfast sends.
const ErrorDomain = "holdfast.dev"

// Reasons, stable strings clients switch on (ErrorInfo.reason and the
// "code" of a JSON error).
const (
	ReasonLimitExceeded    = "LIMIT_EXCEEDED"
	ReasonInvalidArgument  = "INVALID_ARGUMENT"
	ReasonUnknownNamespace = "UNKNOWN_NAMESPACE"
	ReasonUnknownOperation = "UNKNOWN_OPERATION"
	ReasonOverloaded       = "OVERLOADED"
	ReasonTurnDeadline     = "TURN_DEADLINE"
	ReasonUnknownOutcome   = "UNKNOWN_OUTCOME"
	ReasonShuttingDown     = "SHUTTING_DOWN"
	ReasonOwnershipLost    = "OWNERSHIP_LOST"
	ReasonStorage          = "STORAGE_FAILURE"
	ReasonInternal         = "INTERNAL"
	ReasonNotFound         = "NOT_FOUND"
	ReasonUnauthenticated  = "UNAUTHENTICATED"
	ReasonCanceled         = "CANCELED"
)

// Classified is an error with its wire form.
type Classified struct {
	Code     codes.Code
	HTTP     int
	Reason   string
	Message  string
	Metadata map[string]string
}

// metadataError lets other packages (kinds) attach a reason and metadata.
type metadataError interface {
	error
	Reason() string
	Metadata() map[string]string
}

// codedError is an error that names its own gRPC code (the cluster's
// NotOwner and Unavailable errors, for example): Classify keeps the code,
// the reason and the metadata, and maps the HTTP status with HTTPStatus.
type codedError interface {
	error
	GRPCCode() codes.Code
	Reason() string
	Metadata() map[string]string
}

// Classify maps an error of the runtime, a kind, the cluster or a remote
// node (*RemoteError) to its wire form.
func Classify(err error) Classified {
	c := Classified{Message: err.Error(), Metadata: map[string]string{}}
	var le *actor.LimitError
	var uo *actor.UnknownOutcomeError
	var me metadataError
	var re *RemoteError
	var ce codedError
	switch {
	case errors.As(err, &re):
		// An error of a remote node, rebuilt from its status: its wire
		// form is the one the remote node sent.
		c.Code, c.HTTP, c.Reason = re.GRPCCode(), HTTPStatus(re.GRPCCode()), re.Reason()
		for k, v := range re.Metadata() {
			c.Metadata[k] = v
		}
	case errors.As(err, &le):
		c.Code, c.HTTP, c.Reason = codes.InvalidArgument, http.StatusBadRequest, ReasonLimitExceeded
		c.Metadata["limit"] = le.Limit
		c.Metadata["max"] = strconv.FormatInt(le.Max, 10)
		c.Metadata["got"] = strconv.FormatInt(le.Got, 10)
	case errors.As(err, &uo):
		c.Code, c.HTTP, c.Reason = codes.Unknown, http.StatusServiceUnavailable, ReasonUnknownOutcome
		c.Metadata["request_id"] = uo.RequestID
		c.Metadata["retryable"] = "true"
	case errors.As(err, &ce):
		c.Code, c.HTTP, c.Reason = ce.GRPCCode(), HTTPStatus(ce.GRPCCode()), ce.Reason()
		for k, v := range ce.Metadata() {
			c.Metadata[k] = v
		}
	case errors.As(err, &me):
		c.Code, c.HTTP, c.Reason = codes.InvalidArgument, http.StatusBadRequest, me.Reason()
		for k, v := range me.Metadata() {
			c.Metadata[k] = v
		}
	case errors.Is(err, actor.ErrUnknownNamespace):
		c.Code, c.HTTP, c.Reason = codes.NotFound, http.StatusNotFound, ReasonUnknownNamespace
	case errors.Is(err, actor.ErrUnknownOperation):
		c.Code, c.HTTP, c.Reason = codes.Unimplemented, http.StatusNotFound, ReasonUnknownOperation
	case errors.Is(err, actor.ErrInvalidArgument):
		c.Code, c.HTTP, c.Reason = codes.InvalidArgument, http.StatusBadRequest, ReasonInvalidArgument
	case errors.Is(err, actor.ErrNotFound):
		c.Code, c.HTTP, c.Reason = codes.NotFound, http.StatusNotFound, ReasonNotFound
	case errors.Is(err, actor.ErrOverloaded):
		c.Code, c.HTTP, c.Reason = codes.ResourceExhausted, http.StatusServiceUnavailable, ReasonOverloaded
		c.Metadata["retryable"] = "false"
	case errors.Is(err, actor.ErrTurnDeadline), errors.Is(err, context.DeadlineExceeded):
		c.Code, c.HTTP, c.Reason = codes.DeadlineExceeded, http.StatusGatewayTimeout, ReasonTurnDeadline
	case errors.Is(err, actor.ErrOwnershipLost):
		c.Code, c.HTTP, c.Reason = codes.Unavailable, http.StatusServiceUnavailable, ReasonOwnershipLost
		c.Metadata["retryable"] = "true"
	case errors.Is(err, actor.ErrShuttingDown):
		c.Code, c.HTTP, c.Reason = codes.Unavailable, http.StatusServiceUnavailable, ReasonShuttingDown
		c.Metadata["retryable"] = "true"
	case errors.Is(err, actor.ErrStorage):
		c.Code, c.HTTP, c.Reason = codes.Unavailable, http.StatusServiceUnavailable, ReasonStorage
	case errors.Is(err, context.Canceled):
		c.Code, c.HTTP, c.Reason = codes.Canceled, 499, ReasonCanceled
	default:
		c.Code, c.HTTP, c.Reason = codes.Internal, http.StatusInternalServerError, ReasonInternal
	}
	return c
}

// GRPCError converts err to a gRPC status error with an ErrorInfo detail.
func GRPCError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	c := Classify(err)
	st := status.New(c.Code, c.Message)
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: c.Reason, Domain: ErrorDomain, Metadata: c.Metadata}); derr == nil {
		st = d
	}
	return st.Err()
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", actor.ErrInvalidArgument, fmt.Sprintf(format, args...))
}
