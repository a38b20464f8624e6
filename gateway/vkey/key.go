package vkey

import (
	"encoding/hex"
	"fmt"
	"io"
)

// Key is a newly issued key. Token is the only copy of the secret: show
// it once, store Hash(Token). String redacts it, so logging a Key by
// accident does not leak it.
type Key struct {
	ID    string // 16 lowercase hex digits
	User  string
	Token string
}

func (k Key) String() string {
	return fmt.Sprintf("vkey.Key{ID:%s User:%q Token:%s}", k.ID, k.User, Redact(k.Token))
}
func (k Key) GoString() string { return k.String() }

// Parsed is what a token says about itself, secret excluded.
type Parsed struct {
	ID   string // 16 lowercase hex digits
	User string
}

// New issues a key for user (1..128 bytes of UTF-8), reading the key ID
// and the secret from rand (crypto/rand.Reader in production; a fixed
// stream in tests).
func New(user string, rand io.Reader) (Key, error) {
	if err := checkUser(user); err != nil {
		return Key{}, err
	}
	var buf [idLen + secretLen]byte
	if _, err := io.ReadFull(rand, buf[:]); err != nil {
		return Key{}, fmt.Errorf("vkey: reading random bytes: %w", err)
	}
	var f fields
	f.user = user
	copy(f.id[:], buf[:idLen])
	copy(f.secret[:], buf[idLen:])
	return Key{ID: hex.EncodeToString(f.id[:]), User: user, Token: encode(f)}, nil
}

// Parse checks token's form and checksum locally and returns its routing
// part and key ID. It says nothing about whether the key is valid: that
// takes Verify against the stored hash. Errors wrap ErrMalformed or
// ErrChecksum and never contain the token.
func Parse(token string) (Parsed, error) {
	f, err := decode(token)
	if err != nil {
		return Parsed{}, err
	}
	return Parsed{ID: hex.EncodeToString(f.id[:]), User: f.user}, nil
}

// ValidID reports whether id is a key ID as shown by `keys list`
// (16 lowercase hex digits), for checking `keys revoke KEY_ID` arguments.
func ValidID(id string) bool {
	if len(id) != 2*idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !(id[i] >= '0' && id[i] <= '9' || id[i] >= 'a' && id[i] <= 'f') {
			return false
		}
	}
	return true
}
