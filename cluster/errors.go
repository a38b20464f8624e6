package cluster

import (
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/grpc/codes"
)

// Reasons of the cluster's errors on the wire (ErrorInfo.reason).
const (
	ReasonNotOwner    = "NOT_OWNER"
	ReasonUnavailable = "PARTITION_UNAVAILABLE"
)

// ErrUnavailable is wrapped by every "no node can serve this partition now"
// error: the partition is moving, orphaned (its owner is down and the
// namespace waits for it), or unowned. The caller may retry.
var ErrUnavailable = errors.New("partition unavailable, retry")

// ErrClosed is returned by calls made after Shutdown began.
var ErrClosed = errors.New("cluster: node is shutting down")

// NotOwnerError is the answer of a node asked for a partition it does not
// serve at the epoch the caller believes. Hint names the owner when known.
type NotOwnerError struct {
	Partition int
	Hint      string
	Epoch     uint64
}

func (e *NotOwnerError) Error() string {
	if e.Hint == "" {
		return fmt.Sprintf("not the owner of partition %d", e.Partition)
	}
	return fmt.Sprintf("not the owner of partition %d (owner: %s)", e.Partition, e.Hint)
}

// GRPCCode, Reason and Metadata let the API layer render the error.
func (e *NotOwnerError) GRPCCode() codes.Code { return codes.Unavailable }

// Reason implements the API layer's metadata error.
func (e *NotOwnerError) Reason() string { return ReasonNotOwner }

// Metadata implements the API layer's metadata error.
func (e *NotOwnerError) Metadata() map[string]string {
	return map[string]string{"partition": strconv.Itoa(e.Partition), "owner": e.Hint, "retryable": "true"}
}

// UnavailableError says why a partition cannot be served now.
type UnavailableError struct {
	Partition int
	Why       string // "orphaned", "moving", "unowned", "no route"
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("partition %d %s: %v", e.Partition, e.Why, ErrUnavailable)
}

func (e *UnavailableError) Unwrap() error { return ErrUnavailable }

// GRPCCode implements the API layer's metadata error.
func (e *UnavailableError) GRPCCode() codes.Code { return codes.Unavailable }

// Reason implements the API layer's metadata error.
func (e *UnavailableError) Reason() string { return ReasonUnavailable }

// Metadata implements the API layer's metadata error.
func (e *UnavailableError) Metadata() map[string]string {
	return map[string]string{"partition": strconv.Itoa(e.Partition), "state": e.Why, "retryable": "true"}
}
