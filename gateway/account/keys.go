package account

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/gateway/vkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// validateKeyInfo checks the operator-supplied parts of a key: name,
// allow-lists and per-key limits.
func validateKeyInfo(name string, providers, models []string, limits *holdfastv1.AccountLimits) error {
	if len(name) > maxNameBytes {
		return invalid(ErrInvalidKey, fmt.Sprintf("key name of %d bytes, at most %d", len(name), maxNameBytes), "field", "name")
	}
	for _, l := range []struct {
		field string
		list  []string
	}{{"allowed_providers", providers}, {"allowed_models", models}} {
		if len(l.list) > maxAllowEntries {
			return invalid(ErrInvalidKey, fmt.Sprintf("%s has %d entries, at most %d", l.field, len(l.list), maxAllowEntries), "field", l.field)
		}
		for _, e := range l.list {
			if e == "" || len(e) > maxAllowEntryBytes || strings.ContainsAny(e, "\x00\n") {
				return invalid(ErrInvalidKey, fmt.Sprintf("%s entry %q: want 1-%d bytes", l.field, e, maxAllowEntryBytes), "field", l.field)
			}
		}
	}
	return validateLimits(limits, "key limit")
}

// putKey stores a key's record and hash. The same key put again (same ID,
// same hash) answers the stored record; another hash under a used ID is
// ErrKeyExists.
func (h *handler) putKey(t *actor.Turn, m *holdfastv1.AccountKeyPutRequest) (*holdfastv1.AccountKey, error) {
	k := m.GetKey()
	if k == nil {
		return nil, invalid(ErrInvalidKey, "key is required", "field", "key")
	}
	id := k.GetKeyId()
	if !vkey.ValidID(id) {
		return nil, invalid(ErrInvalidKeyID, "key_id must be 16 lowercase hex digits", "field", "key.key_id")
	}
	if len(m.GetKeyHash()) != 32 {
		return nil, invalid(ErrInvalidKey, fmt.Sprintf("key_hash of %d bytes, want 32 (vkey.Hash)", len(m.GetKeyHash())), "field", "key_hash")
	}
	user := t.ID().Key
	if k.GetUser() != "" && k.GetUser() != user {
		return nil, invalid(ErrInvalidUser, "key.user differs from the account the key is put in", "field", "key.user")
	}
	if err := validateKeyInfo(k.GetName(), k.GetAllowedProviders(), k.GetAllowedModels(), k.GetLimits()); err != nil {
		return nil, err
	}
	stored, ok, err := t.Get(keyHashPrefix + id)
	if err != nil {
		return nil, err
	}
	if ok {
		if !bytes.Equal(stored, m.GetKeyHash()) {
			return nil, invalid(ErrKeyExists, fmt.Sprintf("key ID %s is already in use", id), "key_id", id)
		}
		cur := &holdfastv1.AccountKey{}
		if err := getProto(t, keyKeyPrefix+id, cur); err != nil {
			return nil, err
		}
		return cur, nil
	}
	rec := &holdfastv1.AccountKey{
		KeyId: id, User: user, Created: k.GetCreated(), Name: k.GetName(),
		AllowedProviders: k.GetAllowedProviders(), AllowedModels: k.GetAllowedModels(),
	}
	if k.GetLimits() != nil && !proto.Equal(k.GetLimits(), &holdfastv1.AccountLimits{}) {
		rec.Limits = k.GetLimits()
	}
	if rec.Created == nil {
		rec.Created = timestamppb.New(t.Now())
	}
	if err := putProto(t, keyKeyPrefix+id, rec); err != nil {
		return nil, err
	}
	if err := t.Put(keyHashPrefix+id, bytes.Clone(m.GetKeyHash())); err != nil {
		return nil, err
	}
	return rec, nil
}

// revokeKey marks a key revoked. Revoking a revoked key keeps its first
// revoked_at.
func (h *handler) revokeKey(t *actor.Turn, m *holdfastv1.AccountKeyRevokeRequest) (*holdfastv1.AccountKey, error) {
	id := m.GetKeyId()
	if !vkey.ValidID(id) {
		return nil, invalid(ErrInvalidKeyID, "key_id must be 16 lowercase hex digits", "field", "key_id")
	}
	k := &holdfastv1.AccountKey{}
	found, err := getProtoOK(t, keyKeyPrefix+id, k)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("account %q: %w: %s", t.ID().Key, ErrKeyNotFound, id)
	}
	if k.GetRevoked() {
		return k, nil
	}
	k.Revoked, k.RevokedAt = true, timestamppb.New(t.Now())
	if err := putProto(t, keyKeyPrefix+id, k); err != nil {
		return nil, err
	}
	return k, nil
}

// listKeys returns every key of the user, by key ID.
func (h *handler) listKeys(t *actor.Turn) (*holdfastv1.AccountKeyListResponse, error) {
	kvs, err := listAll(t, keyKeyPrefix)
	if err != nil {
		return nil, err
	}
	resp := &holdfastv1.AccountKeyListResponse{Keys: make([]*holdfastv1.AccountKey, 0, len(kvs))}
	for _, e := range kvs {
		k := &holdfastv1.AccountKey{}
		if err := proto.Unmarshal(e.Value, k); err != nil {
			return nil, storageErr(e.Key, err)
		}
		resp.Keys = append(resp.Keys, k)
	}
	return resp, nil
}
