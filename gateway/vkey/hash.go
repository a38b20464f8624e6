package vkey

import (
	"crypto/sha256"
	"crypto/subtle"
)

// hashDomain separates this use of SHA-256 from any other hash of the
// same bytes. It ends in NUL and the fields after it have fixed lengths,
// so the input encoding is unambiguous.
const hashDomain = "holdfast vkey v1 stored hash\x00"

// Hash is what the user's actor stores for a key:
//
//	SHA-256(hashDomain || key ID (8 bytes) || secret (32 bytes))
//
// Binding the key ID means a stored hash answers only for its own ID
// (revoking one ID cannot leave its secret valid under another). A fast
// hash is enough: the secret is 256 random bits, so there is nothing to
// brute-force. The user is not included: the hash lives in that user's
// actor, which the routing part selected. Errors are Parse's.
func Hash(token string) ([32]byte, error) {
	f, err := decode(token)
	if err != nil {
		return [32]byte{}, err
	}
	return hashFields(f), nil
}

func hashFields(f fields) [32]byte {
	h := sha256.New()
	h.Write([]byte(hashDomain))
	h.Write(f.id[:])
	h.Write(f.secret[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Verify reports whether token is the key whose hash is stored. The
// comparison is constant-time, so response timing reveals nothing about
// how much of a guessed secret matched. A malformed token is false.
func Verify(stored [32]byte, token string) bool {
	f, err := decode(token)
	if err != nil {
		return false
	}
	got := hashFields(f)
	return subtle.ConstantTimeCompare(got[:], stored[:]) == 1
}
