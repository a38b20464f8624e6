package account

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	"github.com/holdfast/holdfast/gateway/vkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Lister enumerates the actors of a namespace (api.Admin and
// *actor.Runtime have this method); Service uses it to list every user's
// keys.
type Lister interface {
	ListActors(ctx context.Context, namespace, prefix string, limit int) ([]actor.ActorInfo, bool, error)
}

// DefaultMaxListUsers bounds the users ListKeys with no user walks.
const DefaultMaxListUsers = 10000

// indexKey is the storage key of an index actor holding the key's user.
const indexKey = "user"

// Service implements holdfastv1.AccountServiceServer over a Caller: every
// operation is a turn of the user's account actor (and, for keys, of the
// key's index actor). Set Caller; the rest have defaults.
type Service struct {
	holdfastv1.UnimplementedAccountServiceServer

	// Caller reaches the actors (the local runtime or the cluster router).
	Caller api.Caller
	// Lister enumerates account actors for ListKeys with no user; nil
	// makes that call UNIMPLEMENTED.
	Lister Lister
	// Namespace of the account kind (default "account") and of the kv
	// index key_id → user (default "account_index").
	Namespace      string
	IndexNamespace string
	// Logger receives one line per key created or revoked (never a key);
	// slog.Default() when nil.
	Logger *slog.Logger
	// Rand is the source of key IDs and secrets; crypto/rand.Reader when
	// nil. Tests only.
	Rand io.Reader
	// MaxListUsers bounds ListKeys over every user (default
	// DefaultMaxListUsers); beyond it the call fails with TOO_MANY_USERS.
	MaxListUsers int
}

// NewService returns a Service with the default namespaces.
func NewService(c api.Caller, l Lister) *Service {
	return &Service{Caller: c, Lister: l}
}

func (s *Service) ns() string      { return cmp.Or(s.Namespace, DefaultNamespace) }
func (s *Service) indexNS() string { return cmp.Or(s.IndexNamespace, DefaultIndexNamespace) }

func (s *Service) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Service) rand() io.Reader {
	if s.Rand != nil {
		return s.Rand
	}
	return rand.Reader
}

// requestID returns id, checked, or a fresh one.
func requestID(id string) (string, error) {
	if id == "" {
		return api.NewRequestID(), nil
	}
	if len(id) > maxRequestIDBytes {
		return "", invalid(ErrInvalidArgument, fmt.Sprintf("request_id of %d bytes, at most %d", len(id), maxRequestIDBytes), "field", "request_id")
	}
	return id, nil
}

// callAs calls the actor id and checks the reply's type. Errors are the
// runtime's (not yet gRPC statuses).
func callAs[T proto.Message](ctx context.Context, c api.Caller, id actor.ID, msg proto.Message) (T, error) {
	var zero T
	resp, err := c.Call(ctx, id, msg)
	if err != nil {
		return zero, err
	}
	r, ok := resp.(T)
	if !ok {
		return zero, fmt.Errorf("%w: account: %s answered %T with %T (a request_id reused for another operation?)", actor.ErrInternal, id, msg, resp)
	}
	return r, nil
}

func (s *Service) user(user string) (actor.ID, *holdfastv1.ActorRef, error) {
	if err := ValidateUser(user); err != nil {
		return actor.ID{}, nil, err
	}
	return actor.ID{Namespace: s.ns(), Key: user}, &holdfastv1.ActorRef{Namespace: s.ns(), Key: user}, nil
}

// CreateKey issues a key for a user: an index entry key_id → user first
// (a conditional put, so a colliding key ID is detected and another drawn),
// then the key's hash in the user's actor. The key is in the reply and
// nowhere else.
//
// CreateKey is not idempotent: the key is never stored, so a retried call
// cannot return it again. Each attempt derives its internal request IDs
// from request_id and the new key ID; a retry after an unknown outcome
// creates another key, and the first, if it was created, shows in ListKeys
// and can be revoked. If the index write succeeds and the key write fails,
// the index entry is left behind; it names a key the user's actor does not
// have, so RevokeKey of it answers NOT_FOUND.
func (s *Service) CreateKey(ctx context.Context, r *holdfastv1.CreateKeyRequest) (*holdfastv1.CreateKeyResponse, error) {
	id, ref, err := s.user(r.GetUser())
	if err != nil {
		return nil, api.GRPCError(err)
	}
	if err := validateKeyInfo(r.GetName(), r.GetAllowedProviders(), r.GetAllowedModels(), r.GetLimits()); err != nil {
		return nil, api.GRPCError(err)
	}
	base, err := requestID(r.GetRequestId())
	if err != nil {
		return nil, api.GRPCError(err)
	}
	const attempts = 3
	for range attempts {
		k, err := vkey.New(r.GetUser(), s.rand())
		if err != nil {
			// Never wraps the key: there is none yet.
			return nil, api.GRPCError(fmt.Errorf("%w: account: issuing a key: %v", actor.ErrInternal, err))
		}
		hash, err := vkey.Hash(k.Token)
		if err != nil {
			return nil, api.GRPCError(fmt.Errorf("%w: account: hashing a new key failed", actor.ErrInternal))
		}
		idx := actor.ID{Namespace: s.indexNS(), Key: k.ID}
		tx, err := callAs[*holdfastv1.KvTransactionResponse](ctx, s.Caller, idx, &holdfastv1.KvTransactionRequest{
			Actor:     &holdfastv1.ActorRef{Namespace: idx.Namespace, Key: idx.Key},
			RequestId: base + "/" + k.ID + "/index",
			Ops: []*holdfastv1.KvOp{{
				IfKey: indexKey, IfAbsent: true,
				Op: &holdfastv1.KvOp_Put{Put: &holdfastv1.KvPutRequest{Entries: []*holdfastv1.Entry{{Key: indexKey, Value: []byte(r.GetUser())}}}},
			}},
		})
		if err != nil {
			return nil, api.GRPCError(err)
		}
		if !tx.GetCommitted() {
			s.log().Warn("account key ID collision; drawing another", "key_id", k.ID)
			continue
		}
		info, err := callAs[*holdfastv1.AccountKey](ctx, s.Caller, id, &holdfastv1.AccountKeyPutRequest{
			Actor:     ref,
			RequestId: base + "/" + k.ID + "/key",
			Key: &holdfastv1.AccountKey{
				KeyId: k.ID, User: r.GetUser(), Name: r.GetName(),
				AllowedProviders: r.GetAllowedProviders(), AllowedModels: r.GetAllowedModels(), Limits: r.GetLimits(),
			},
			KeyHash: hash[:],
		})
		if err != nil {
			return nil, api.GRPCError(err)
		}
		s.log().Info("account key created", "user", r.GetUser(), "key_id", k.ID, "name", r.GetName())
		return &holdfastv1.CreateKeyResponse{Key: k.Token, Info: info}, nil
	}
	return nil, api.GRPCError(fmt.Errorf("%w: account: no free key ID after %d attempts", actor.ErrInternal, attempts))
}

// ListKeys lists a user's keys or, with no user, every user's (by user,
// then key ID).
func (s *Service) ListKeys(ctx context.Context, r *holdfastv1.ListKeysRequest) (*holdfastv1.ListKeysResponse, error) {
	if r.GetUser() != "" {
		keys, err := s.userKeys(ctx, r.GetUser())
		if err != nil {
			return nil, api.GRPCError(err)
		}
		return &holdfastv1.ListKeysResponse{Keys: keys}, nil
	}
	if s.Lister == nil {
		return nil, status.Error(codes.Unimplemented, "listing every user's keys is not available on this node: name a user")
	}
	limit := cmp.Or(s.MaxListUsers, DefaultMaxListUsers)
	infos, truncated, err := s.Lister.ListActors(ctx, s.ns(), "", limit)
	if err != nil {
		return nil, api.GRPCError(err)
	}
	if truncated {
		return nil, api.GRPCError(invalid(ErrTooManyUsers, fmt.Sprintf("more than %d users: list one user's keys at a time", limit)))
	}
	var users []string
	for _, info := range infos {
		if info.ID.Namespace == s.ns() && info.ID.Shard == 0 && ValidateUser(info.ID.Key) == nil {
			users = append(users, info.ID.Key)
		}
	}
	slices.Sort(users)
	users = slices.Compact(users)
	resp := &holdfastv1.ListKeysResponse{}
	for _, u := range users {
		keys, err := s.userKeys(ctx, u)
		if err != nil {
			return nil, api.GRPCError(err)
		}
		resp.Keys = append(resp.Keys, keys...)
	}
	return resp, nil
}

func (s *Service) userKeys(ctx context.Context, user string) ([]*holdfastv1.AccountKey, error) {
	id, ref, err := s.user(user)
	if err != nil {
		return nil, err
	}
	resp, err := callAs[*holdfastv1.AccountKeyListResponse](ctx, s.Caller, id, &holdfastv1.AccountKeyListRequest{Actor: ref})
	if err != nil {
		return nil, err
	}
	return resp.GetKeys(), nil
}

// RevokeKey finds the key's user in the index and revokes the key in the
// user's actor: from the reply on, every admit with it is refused.
func (s *Service) RevokeKey(ctx context.Context, r *holdfastv1.RevokeKeyRequest) (*holdfastv1.RevokeKeyResponse, error) {
	keyID := r.GetKeyId()
	if !vkey.ValidID(keyID) {
		return nil, api.GRPCError(invalid(ErrInvalidKeyID, "key_id must be 16 lowercase hex digits (as keys list shows)", "field", "key_id"))
	}
	reqID, err := requestID(r.GetRequestId())
	if err != nil {
		return nil, api.GRPCError(err)
	}
	idx := actor.ID{Namespace: s.indexNS(), Key: keyID}
	got, err := callAs[*holdfastv1.KvGetResponse](ctx, s.Caller, idx, &holdfastv1.KvGetRequest{
		Actor: &holdfastv1.ActorRef{Namespace: idx.Namespace, Key: idx.Key}, Keys: []string{indexKey},
	})
	if err != nil {
		return nil, api.GRPCError(err)
	}
	if len(got.GetEntries()) == 0 {
		return nil, api.GRPCError(fmt.Errorf("%w: %s", ErrKeyNotFound, keyID))
	}
	user := string(got.GetEntries()[0].GetValue())
	id, ref, err := s.user(user)
	if err != nil {
		return nil, api.GRPCError(fmt.Errorf("%w: account: index entry of key %s names an invalid user", actor.ErrStorage, keyID))
	}
	k, err := callAs[*holdfastv1.AccountKey](ctx, s.Caller, id, &holdfastv1.AccountKeyRevokeRequest{Actor: ref, RequestId: reqID, KeyId: keyID})
	if err != nil {
		return nil, api.GRPCError(err)
	}
	s.log().Info("account key revoked", "user", user, "key_id", keyID)
	return &holdfastv1.RevokeKeyResponse{Key: k}, nil
}

// SetLimits sets the named fields of a user's own limits.
func (s *Service) SetLimits(ctx context.Context, r *holdfastv1.SetLimitsRequest) (*holdfastv1.AccountLimitsResponse, error) {
	id, ref, err := s.user(r.GetUser())
	if err != nil {
		return nil, api.GRPCError(err)
	}
	if len(r.GetFields()) == 0 {
		return nil, api.GRPCError(invalid(ErrInvalidArgument, "no fields named: nothing to set", "field", "fields"))
	}
	reqID, err := requestID(r.GetRequestId())
	if err != nil {
		return nil, api.GRPCError(err)
	}
	resp, err := callAs[*holdfastv1.AccountLimitsResponse](ctx, s.Caller, id, &holdfastv1.AccountLimitsSetRequest{
		Actor: ref, RequestId: reqID, Limits: r.GetLimits(), Fields: r.GetFields(),
	})
	return resp, api.GRPCError(err)
}

// GetLimits returns a user's own and effective limits.
func (s *Service) GetLimits(ctx context.Context, r *holdfastv1.GetLimitsRequest) (*holdfastv1.AccountLimitsResponse, error) {
	id, ref, err := s.user(r.GetUser())
	if err != nil {
		return nil, api.GRPCError(err)
	}
	resp, err := callAs[*holdfastv1.AccountLimitsResponse](ctx, s.Caller, id, &holdfastv1.AccountLimitsGetRequest{Actor: ref})
	return resp, api.GRPCError(err)
}

// GetUsage returns a user's totals of one day (default today, UTC) and of
// its hours.
func (s *Service) GetUsage(ctx context.Context, r *holdfastv1.GetUsageRequest) (*holdfastv1.AccountUsageResponse, error) {
	id, ref, err := s.user(r.GetUser())
	if err != nil {
		return nil, api.GRPCError(err)
	}
	if r.GetDay() != "" {
		if err := ValidateDay(r.GetDay()); err != nil {
			return nil, api.GRPCError(err)
		}
	}
	resp, err := callAs[*holdfastv1.AccountUsageResponse](ctx, s.Caller, id, &holdfastv1.AccountUsageRequest{Actor: ref, Day: r.GetDay()})
	return resp, api.GRPCError(err)
}
