package vkey

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

func TestHashDefinition(t *testing.T) {
	id := bytes.Repeat([]byte{0x11}, 8)
	secret := bytes.Repeat([]byte{0x22}, 32)
	k, err := New("alice", bytes.NewReader(append(append([]byte(nil), id...), secret...)))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(append(append([]byte("holdfast vkey v1 stored hash\x00"), id...), secret...))
	got, err := Hash(k.Token)
	if err != nil || got != want {
		t.Fatalf("Hash = %x, %v; want %x", got, err, want)
	}
	// The user is not hashed: same ID and secret under another user hash alike.
	k2, _ := New("bob", bytes.NewReader(append(append([]byte(nil), id...), secret...)))
	if h2, _ := Hash(k2.Token); h2 != want {
		t.Errorf("user changed the hash")
	}
}

func TestVerify(t *testing.T) {
	a := mustNew(t, "alice", 1)
	b := mustNew(t, "alice", 2)
	ha, _ := Hash(a.Token)
	hb, _ := Hash(b.Token)
	if ha == hb {
		t.Fatal("two keys hash alike")
	}
	// Same secret, different key ID: must not verify (ID is bound).
	fa, _ := decode(a.Token)
	fa.id[0] ^= 1
	swapped := encode(fa)

	tests := []struct {
		name   string
		stored [32]byte
		token  string
		want   bool
	}{
		{"own key", ha, a.Token, true},
		{"other key", ha, b.Token, false},
		{"other stored", hb, a.Token, false},
		{"zero stored", [32]byte{}, a.Token, false},
		{"same secret other id", ha, swapped, false},
		{"malformed", ha, a.Token + "x", false},
		{"empty", ha, "", false},
	}
	for _, tc := range tests {
		if got := Verify(tc.stored, tc.token); got != tc.want {
			t.Errorf("%s: Verify = %v", tc.name, got)
		}
	}
	if _, err := Hash("hf_1bad"); !errors.Is(err, ErrMalformed) {
		t.Errorf("Hash(malformed) err = %v", err)
	}
}
