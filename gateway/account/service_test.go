package account_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/api"
	"github.com/holdfast/holdfast/gateway/account"
	"github.com/holdfast/holdfast/gateway/vkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// TestServiceKeyLifecycle: CreateKey → ListKeys → RevokeKey → admit
// refused; the key appears in CreateKeyResponse.key and nowhere else: not
// in any log line, any other reply, or stored state.
func TestServiceKeyLifecycle(t *testing.T) {
	e := newEnv(t, account.Defaults{RequestsPerMinute: 60})
	prev := slog.Default()
	slog.SetDefault(e.log) // whatever logs through the default logger too
	t.Cleanup(func() { slog.SetDefault(prev) })

	var replies []proto.Message
	created, err := e.svc.CreateKey(ctx(), &holdfastv1.CreateKeyRequest{
		User: "alice", Name: "laptop", AllowedProviders: []string{"anthropic"}, RequestId: "create-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	token := created.GetKey()
	info := created.GetInfo()
	replies = append(replies, info)
	p, err := vkey.Parse(token)
	if err != nil || p.User != "alice" || p.ID != info.GetKeyId() {
		t.Fatalf("key parses as %+v, %v; info %v", p, err, info)
	}
	if info.GetUser() != "alice" || info.GetName() != "laptop" || info.GetRevoked() || !info.GetCreated().AsTime().Equal(t0) {
		t.Fatalf("info %v", info)
	}
	hash, _ := vkey.Hash(token)
	if got := e.userDump("alice")["keyhash/"+info.GetKeyId()]; got != string(hash[:]) {
		t.Fatal("stored hash is not vkey.Hash of the key")
	}
	if got := e.dump(account.DefaultIndexNamespace, info.GetKeyId())["user"]; got != "alice" {
		t.Fatalf("index entry %q", got)
	}
	bob, err := e.svc.CreateKey(ctx(), &holdfastv1.CreateKeyRequest{User: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	e.settle("carol", &holdfastv1.AccountSettleRequest{}) // an account with no keys

	admit := &holdfastv1.AccountAdmitRequest{KeyId: info.GetKeyId(), KeyHash: hash[:], Provider: "anthropic"}
	wantAllowed(t, e.admit("alice", proto.Clone(admit).(*holdfastv1.AccountAdmitRequest)))

	list, err := e.svc.ListKeys(ctx(), &holdfastv1.ListKeysRequest{User: "alice"})
	if err != nil || len(list.GetKeys()) != 1 || !proto.Equal(list.GetKeys()[0], info) {
		t.Fatalf("alice's keys %v, %v", list, err)
	}
	replies = append(replies, list)
	all, err := e.svc.ListKeys(ctx(), &holdfastv1.ListKeysRequest{})
	if err != nil || len(all.GetKeys()) != 2 || all.GetKeys()[0].GetUser() != "alice" || all.GetKeys()[1].GetUser() != "bob" ||
		all.GetKeys()[1].GetKeyId() != bob.GetInfo().GetKeyId() {
		t.Fatalf("all keys %v, %v", all, err)
	}
	replies = append(replies, all)

	e.clk.Advance(time.Minute)
	rev, err := e.svc.RevokeKey(ctx(), &holdfastv1.RevokeKeyRequest{KeyId: info.GetKeyId()})
	if err != nil {
		t.Fatal(err)
	}
	revokedAt := t0.Add(time.Minute)
	if k := rev.GetKey(); !k.GetRevoked() || !k.GetRevokedAt().AsTime().Equal(revokedAt) || k.GetUser() != "alice" {
		t.Fatalf("revoked %v", k)
	}
	replies = append(replies, rev)
	wantRefused(t, e.admit("alice", proto.Clone(admit).(*holdfastv1.AccountAdmitRequest)), account.RefusedKeyRevoked, -1)
	// Revoking again keeps the first time.
	e.clk.Advance(time.Minute)
	again, err := e.svc.RevokeKey(ctx(), &holdfastv1.RevokeKeyRequest{KeyId: info.GetKeyId()})
	if err != nil || !again.GetKey().GetRevokedAt().AsTime().Equal(revokedAt) {
		t.Fatalf("second revoke %v, %v", again, err)
	}
	list, _ = e.svc.ListKeys(ctx(), &holdfastv1.ListKeysRequest{User: "alice"})
	if !list.GetKeys()[0].GetRevoked() {
		t.Fatal("list does not show the revocation")
	}
	replies = append(replies, list)
	lim, _ := e.svc.GetLimits(ctx(), &holdfastv1.GetLimitsRequest{User: "alice"})
	use, _ := e.svc.GetUsage(ctx(), &holdfastv1.GetUsageRequest{User: "alice"})
	replies = append(replies, lim, use)

	// The key itself appears nowhere else.
	secretPart := strings.TrimPrefix(token, "hf_1")
	for _, m := range replies {
		b, _ := proto.Marshal(m)
		j := protojson.Format(m)
		if bytes.Contains(b, []byte(secretPart)) || strings.Contains(j, secretPart) {
			t.Fatalf("a reply holds the key: %s", j)
		}
	}
	for _, d := range []map[string]string{e.userDump("alice"), e.dump(account.DefaultIndexNamespace, info.GetKeyId())} {
		for k, v := range d {
			if strings.Contains(k+v, secretPart) {
				t.Fatalf("stored state holds the key under %q", k)
			}
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "account key created") || !strings.Contains(logs, info.GetKeyId()) {
		t.Fatalf("log capture saw nothing:\n%s", logs)
	}
	if strings.Contains(logs, secretPart) {
		t.Fatalf("the key was logged:\n%s", logs)
	}
}

func TestServiceErrors(t *testing.T) {
	e := newEnv(t, account.Defaults{})
	for _, c := range []struct {
		name   string
		call   func() error
		code   codes.Code
		reason string
	}{
		{"empty user", func() error {
			_, err := e.svc.CreateKey(ctx(), &holdfastv1.CreateKeyRequest{})
			return err
		}, codes.InvalidArgument, "INVALID_USER"},
		{"long user", func() error {
			_, err := e.svc.CreateKey(ctx(), &holdfastv1.CreateKeyRequest{User: strings.Repeat("u", 129)})
			return err
		}, codes.InvalidArgument, "INVALID_USER"},
		{"bad UTF-8 user", func() error {
			_, err := e.svc.GetLimits(ctx(), &holdfastv1.GetLimitsRequest{User: "\xff"})
			return err
		}, codes.InvalidArgument, "INVALID_USER"},
		{"negative key limit", func() error {
			_, err := e.svc.CreateKey(ctx(), &holdfastv1.CreateKeyRequest{User: "a", Limits: &holdfastv1.AccountLimits{DailyBudgetNanos: -1}})
			return err
		}, codes.InvalidArgument, "INVALID_LIMIT"},
		{"empty allowed model", func() error {
			_, err := e.svc.CreateKey(ctx(), &holdfastv1.CreateKeyRequest{User: "a", AllowedModels: []string{""}})
			return err
		}, codes.InvalidArgument, "INVALID_KEY"},
		{"revoke malformed ID", func() error {
			_, err := e.svc.RevokeKey(ctx(), &holdfastv1.RevokeKeyRequest{KeyId: "hf_1abc"})
			return err
		}, codes.InvalidArgument, "INVALID_KEY_ID"},
		{"revoke unknown ID", func() error {
			_, err := e.svc.RevokeKey(ctx(), &holdfastv1.RevokeKeyRequest{KeyId: "0123456789abcdef"})
			return err
		}, codes.NotFound, api.ReasonNotFound},
		{"usage of a bad day", func() error {
			_, err := e.svc.GetUsage(ctx(), &holdfastv1.GetUsageRequest{User: "a", Day: "2030-02-30"})
			return err
		}, codes.InvalidArgument, "INVALID_DAY"},
		{"list users without a lister", func() error {
			_, err := (&account.Service{Caller: e.rt}).ListKeys(ctx(), &holdfastv1.ListKeysRequest{})
			return err
		}, codes.Unimplemented, ""},
	} {
		t.Run(c.name, func(t *testing.T) { wantStatus(t, c.call(), c.code, c.reason) })
	}

	// Too many users to list at once.
	for _, u := range []string{"a", "b", "c"} {
		e.settle(u, &holdfastv1.AccountSettleRequest{})
	}
	svc := &account.Service{Caller: e.rt, Lister: e.rt, MaxListUsers: 2}
	_, err := svc.ListKeys(ctx(), &holdfastv1.ListKeysRequest{})
	wantStatus(t, err, codes.InvalidArgument, "TOO_MANY_USERS")

	// A key put twice under one ID with another hash is refused; the same
	// key again is answered with the stored record.
	id := actor.ID{Namespace: account.DefaultNamespace, Key: "a"}
	put := func(hash byte) error {
		_, err := e.rt.Call(ctx(), id, &holdfastv1.AccountKeyPutRequest{
			Key: &holdfastv1.AccountKey{KeyId: "00000000000000aa"}, KeyHash: bytes.Repeat([]byte{hash}, 32),
		})
		return err
	}
	if err := put(1); err != nil {
		t.Fatal(err)
	}
	if err := put(1); err != nil {
		t.Fatalf("same key again: %v", err)
	}
	if err := put(2); !errors.Is(err, account.ErrKeyExists) {
		t.Fatalf("another hash under the same ID: %v", err)
	}
	if _, err := e.rt.Call(ctx(), id, &holdfastv1.AccountKeyPutRequest{
		Key: &holdfastv1.AccountKey{KeyId: "00000000000000ab", User: "b"}, KeyHash: make([]byte, 32),
	}); !errors.Is(err, account.ErrInvalidUser) {
		t.Fatalf("a key of another user: %v", err)
	}
	if _, err := e.rt.Call(ctx(), id, &holdfastv1.AccountKeyRevokeRequest{KeyId: "00000000000000ff"}); !errors.Is(err, actor.ErrNotFound) {
		t.Fatalf("revoke of a missing key: %v", err)
	}
}

// TestCreateKeyIDCollision: a key ID already in the index is never reused;
// the service draws another.
func TestCreateKeyIDCollision(t *testing.T) {
	e := newEnv(t, account.Defaults{})
	same := bytes.Repeat([]byte{7}, 40)
	other := bytes.Repeat([]byte{9}, 40)
	e.svc.Rand = io.MultiReader(bytes.NewReader(same), bytes.NewReader(same), bytes.NewReader(other))
	a, err := e.svc.CreateKey(ctx(), &holdfastv1.CreateKeyRequest{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.svc.CreateKey(ctx(), &holdfastv1.CreateKeyRequest{User: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if a.GetInfo().GetKeyId() != "0707070707070707" || b.GetInfo().GetKeyId() != "0909090909090909" {
		t.Fatalf("key IDs %s, %s", a.GetInfo().GetKeyId(), b.GetInfo().GetKeyId())
	}
	if got := e.dump(account.DefaultIndexNamespace, a.GetInfo().GetKeyId())["user"]; got != "alice" {
		t.Fatalf("the collision overwrote the index: %q", got)
	}
	if !strings.Contains(e.logs.String(), "collision") {
		t.Fatal("collision not logged")
	}
}

func TestClientFillsRequest(t *testing.T) {
	e := newEnv(t, account.Defaults{RequestsPerMinute: 6})
	req := &holdfastv1.AccountAdmitRequest{}
	wantAllowed(t, e.admit("alice", req))
	if req.GetRequestId() == "" || req.GetActor().GetNamespace() != account.DefaultNamespace || req.GetActor().GetKey() != "alice" {
		t.Fatalf("request not filled: %v", req)
	}
	s := &holdfastv1.AccountSettleRequest{CostNanos: 5}
	e.settle("alice", s)
	e.settle("alice", s) // the same (filled) request again counts once
	if got := e.usage("alice", "").GetDay(); got.GetRequests() != 1 || got.GetCostNanos() != 5 {
		t.Fatalf("totals %v", got)
	}
	// A settle whose request ID an admit already used gets a clear error.
	_, err := e.cl.Settle(ctx(), "alice", &holdfastv1.AccountSettleRequest{RequestId: req.GetRequestId()})
	if !errors.Is(err, actor.ErrInternal) || !strings.Contains(err.Error(), "request_id") {
		t.Fatalf("reused request ID: %v", err)
	}
	// Another namespace name.
	other := &account.Client{Caller: e.rt, Namespace: "nope"}
	if _, err := other.Admit(context.Background(), "alice", &holdfastv1.AccountAdmitRequest{}); !errors.Is(err, actor.ErrUnknownNamespace) {
		t.Fatalf("unknown namespace: %v", err)
	}
}
