package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"testing"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// clusterErr stands for the cluster's errors (NotOwner, Unavailable): an
// error naming its own gRPC code.
type clusterErr struct {
	code   codes.Code
	reason string
	meta   map[string]string
	err    error
}

func (e *clusterErr) Error() string               { return "cluster: " + e.reason }
func (e *clusterErr) GRPCCode() codes.Code        { return e.code }
func (e *clusterErr) Reason() string              { return e.reason }
func (e *clusterErr) Metadata() map[string]string { return e.meta }
func (e *clusterErr) Unwrap() error               { return e.err }

var errUnavailable = errors.New("partition unavailable, retry")

// sentinels are every sentinel a caller may test a forwarded error for.
var sentinels = []error{
	actor.ErrOverloaded, actor.ErrUnknownNamespace, actor.ErrUnknownOperation,
	actor.ErrTurnDeadline, actor.ErrShuttingDown, actor.ErrStorage, actor.ErrInternal,
	actor.ErrInvalidArgument, actor.ErrNotFound, context.Canceled,
}

// runtimeErrors are errors the real runtime and kinds return.
func runtimeErrors(t *testing.T) []error {
	rt := runtime(t)
	ctx := context.Background()
	call := func(ns, key string, msg proto.Message) error {
		_, err := rt.Call(ctx, actor.ID{Namespace: ns, Key: key}, msg)
		if err == nil {
			t.Fatalf("%s %T: no error", ns, msg)
		}
		return err
	}
	return []error{
		call("nope", "a", &holdfastv1.KvGetRequest{}),
		call("kv", "a", &holdfastv1.RateLimitGetRequest{}),
		call("kv", "a", &holdfastv1.KvPutRequest{Entries: []*holdfastv1.Entry{{Key: "k", Value: make([]byte, 65)}}}),
		call("ratelimit", "a", &holdfastv1.RateLimitTakeRequest{Amounts: map[string]int64{"nolimit": 1}}),
		call("ratelimit", "a", &holdfastv1.RateLimitTakeRequest{Amounts: map[string]int64{"x": -1}}),
	}
}

func TestErrorRoundTrip(t *testing.T) {
	errs := []error{
		actor.ErrOverloaded, actor.ErrUnknownNamespace, actor.ErrUnknownOperation,
		actor.ErrTurnDeadline, actor.ErrShuttingDown, actor.ErrStorage, actor.ErrInternal,
		actor.ErrInvalidArgument, actor.ErrNotFound,
		fmt.Errorf("%w: namespace %q", actor.ErrUnknownNamespace, "x"),
		fmt.Errorf("kv: %w: key", actor.ErrNotFound),
		fmt.Errorf("%w: bolt: disk full", actor.ErrStorage),
		&actor.LimitError{Limit: "max_value_bytes", Max: 64, Got: 65, What: `key "a/b"`},
		fmt.Errorf("put: %w", &actor.LimitError{Limit: "max_keys_per_call", Max: 128, Got: 129}),
		&actor.UnknownOutcomeError{RequestID: "r1", Err: context.DeadlineExceeded},
		fmt.Errorf("forward: %w", &actor.UnknownOutcomeError{RequestID: "r2", Err: actor.ErrStorage}),
		&actor.PanicError{Actor: actor.ID{Namespace: "kv", Key: "a"}},
		context.Canceled, context.DeadlineExceeded,
		fmt.Errorf("turn: %w", context.DeadlineExceeded),
		actor.NewReasonError("UNKNOWN_BUCKET", map[string]string{"bucket": "requests"}, errors.New("bucket has no limit")),
		actor.NewReasonError("INVALID_ARGUMENT", nil, errors.New("bad")),
		actor.NewReasonError("INVALID_USER", map[string]string{}, fmt.Errorf("account: %w", actor.ErrInvalidArgument)),
		// A kind reason that collides with a runtime one but not its code.
		actor.NewReasonError(api.ReasonNotFound, map[string]string{"what": "x"}, errors.New("kind not-found")),
		&clusterErr{codes.Unavailable, "NOT_OWNER", map[string]string{"owner": "n2", "partition": "3", "retryable": "true"}, nil},
		&clusterErr{codes.Unavailable, "PARTITION_UNAVAILABLE", map[string]string{"state": "moving"}, errUnavailable},
		// Runtime reasons with other metadata than the runtime's.
		&clusterErr{codes.Unavailable, api.ReasonShuttingDown, map[string]string{"node": "n1"}, actor.ErrShuttingDown},
		&clusterErr{codes.ResourceExhausted, api.ReasonOverloaded, map[string]string{"retryable": "false"}, nil},
		errors.New("boom"),
		status.Error(codes.Unauthenticated, "missing or invalid token"),
	}
	errs = append(errs, runtimeErrors(t)...)
	for _, err := range errs {
		st := api.StatusFromError(err)
		got := api.ErrorFromStatus(st)
		if got == nil {
			t.Fatalf("%v: nil after the round trip", err)
		}
		if want, have := api.Classify(err), api.Classify(got); !reflect.DeepEqual(want, have) {
			t.Errorf("%v (%T):\nclassified %+v\nround trip %+v (%T)", err, err, want, have, got)
		}
		if !sameStatus(api.StatusFromError(got), st) {
			t.Errorf("%v: status changed: %v, then %v", err, st, api.StatusFromError(got))
		}
		var uo *actor.UnknownOutcomeError
		for _, s := range sentinels {
			if errors.As(err, &uo) && errors.Is(uo.Err, s) {
				continue // the cause of an unknown outcome travels as text only
			}
			if errors.Is(err, s) && !errors.Is(got, s) {
				t.Errorf("%v: errors.Is(%v) lost (got %T)", err, s, got)
			}
		}
		if got.Error() != err.Error() && status.Code(err) == codes.Unknown {
			t.Errorf("message %q became %q", err, got)
		}
	}
}

// sameStatus compares code, message and ErrorInfo (the serialized Any of a
// map is not deterministic, so proto.Equal on the statuses would not do).
func sameStatus(a, b *spb.Status) bool {
	sa, sb := status.FromProto(a), status.FromProto(b)
	if sa.Code() != sb.Code() || sa.Message() != sb.Message() || len(sa.Details()) != len(sb.Details()) {
		return false
	}
	for i, d := range sa.Details() {
		if !proto.Equal(d.(proto.Message), sb.Details()[i].(proto.Message)) {
			return false
		}
	}
	return true
}

func TestErrorRoundTripTypes(t *testing.T) {
	rt := func(err error) error { return api.ErrorFromStatus(api.StatusFromError(err)) }

	var le *actor.LimitError
	if err := rt(fmt.Errorf("x: %w", &actor.LimitError{Limit: "max_key_bytes", Max: 5, Got: 9})); !errors.As(err, &le) ||
		le.Limit != "max_key_bytes" || le.Max != 5 || le.Got != 9 || !errors.Is(err, actor.ErrInvalidArgument) {
		t.Errorf("limit error: %#v", err)
	}
	var uo *actor.UnknownOutcomeError
	if err := rt(&actor.UnknownOutcomeError{RequestID: "req-7", Err: context.DeadlineExceeded}); !errors.As(err, &uo) ||
		uo.RequestID != "req-7" || uo.Err.Error() != context.DeadlineExceeded.Error() {
		t.Errorf("unknown outcome: %#v", err)
	}
	var re *api.RemoteError
	err := rt(actor.NewReasonError("UNKNOWN_BUCKET", map[string]string{"bucket": "b"}, errors.New("no limit")))
	if !errors.As(err, &re) || re.Reason() != "UNKNOWN_BUCKET" || re.Metadata()["bucket"] != "b" ||
		re.GRPCCode() != codes.InvalidArgument || !errors.Is(err, actor.ErrInvalidArgument) || errors.Is(err, actor.ErrNotFound) {
		t.Errorf("kind error: %#v", err)
	}
	c := api.Classify(rt(&clusterErr{codes.Unavailable, "NOT_OWNER", map[string]string{"owner": "n2"}, nil}))
	if c.Code != codes.Unavailable || c.HTTP != http.StatusServiceUnavailable || c.Reason != "NOT_OWNER" || c.Metadata["owner"] != "n2" {
		t.Errorf("cluster error: %+v", c)
	}
	if st := status.Convert(rt(status.Error(codes.Unauthenticated, "no"))); st.Code() != codes.Unauthenticated || st.Message() != "no" {
		t.Errorf("plain status: %v", st)
	}
	if api.StatusFromError(nil) != nil || api.ErrorFromStatus(nil) != nil || api.ErrorFromStatus(status.New(codes.OK, "").Proto()) != nil {
		t.Error("nil or OK must give nil")
	}
	// A status from elsewhere (another domain) is kept as a gRPC status.
	if err := api.ErrorFromStatus(status.New(codes.NotFound, "x").Proto()); errors.Is(err, actor.ErrNotFound) || status.Code(err) != codes.NotFound {
		t.Errorf("foreign status: %v", err)
	}
}

func TestClassifyCodedError(t *testing.T) {
	for code, http := range map[codes.Code]int{
		codes.Unavailable: 503, codes.FailedPrecondition: 400, codes.NotFound: 404, codes.Aborted: 409,
		codes.DeadlineExceeded: 504, codes.Internal: 500, codes.PermissionDenied: 403, codes.Canceled: 499,
	} {
		// Wrapped: Classify finds it with errors.As, and it wins over the
		// sentinel it wraps and over the plain Reason/Metadata case.
		err := fmt.Errorf("route: %w", &clusterErr{code, "R", map[string]string{"k": "v"}, actor.ErrStorage})
		c := api.Classify(err)
		if c.Code != code || c.HTTP != http || c.Reason != "R" || c.Metadata["k"] != "v" {
			t.Errorf("%v: %+v", code, c)
		}
		if api.HTTPStatus(code) != http {
			t.Errorf("HTTPStatus(%v) = %d, want %d", code, api.HTTPStatus(code), http)
		}
	}
}
