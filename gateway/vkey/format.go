package vkey

import (
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"unicode/utf8"
)

const (
	prefix      = "hf_"
	version     = '1'
	head        = prefix + string(version)
	maxUser     = 128
	idLen       = 8
	secretLen   = 32
	sumLen      = 4
	fixedLen    = 1 + idLen + secretLen + sumLen
	maxPayload  = fixedLen + maxUser
	alphabet    = "abcdefghijklmnopqrstuvwxyz234567"
	maxTokenLen = len(head) + (maxPayload*8+4)/5
)

var (
	b32        = base32.NewEncoding(alphabet).WithPadding(base32.NoPadding)
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// fields is a decoded key, secret included; it never leaves the package.
type fields struct {
	user   string
	id     [idLen]byte
	secret [secretLen]byte
}

func checkUser(user string) error {
	switch {
	case len(user) == 0:
		return fmt.Errorf("vkey: %w: empty", ErrUser)
	case len(user) > maxUser:
		return fmt.Errorf("vkey: %w: %d bytes, at most %d", ErrUser, len(user), maxUser)
	case !utf8.ValidString(user):
		return fmt.Errorf("vkey: %w: not valid UTF-8", ErrUser)
	}
	return nil
}

// encode renders f; f.user must have passed checkUser.
func encode(f fields) string {
	p := make([]byte, 0, fixedLen+len(f.user))
	p = append(p, byte(len(f.user)))
	p = append(p, f.user...)
	p = append(p, f.id[:]...)
	p = append(p, f.secret[:]...)
	p = binary.BigEndian.AppendUint32(p, checksum(p))
	return head + b32.EncodeToString(p)
}

// checksum covers the version prefix too, so a key of one version can
// never pass as another's.
func checksum(payload []byte) uint32 {
	c := crc32.Update(0, castagnoli, []byte(head))
	return crc32.Update(c, castagnoli, payload)
}

func malformed(why string) error { return fmt.Errorf("vkey: %w: %s", ErrMalformed, why) }

// decode is Parse with the secret. Checks run cheapest first; the
// checksum is checked before the length prefix is trusted, so a typo
// anywhere reads as ErrChecksum.
func decode(token string) (fields, error) {
	var f fields
	if len(token) < len(prefix) || token[:len(prefix)] != prefix {
		return f, malformed("not an hf_ key")
	}
	if len(token) == len(prefix) || token[len(prefix)] != version {
		return f, malformed("unknown key version")
	}
	body := token[len(head):]
	if len(token) > maxTokenLen {
		return f, malformed("too long")
	}
	for i := 0; i < len(body); i++ {
		if !isAlphabet(body[i]) {
			// Also rejects what the base32 decoder would skip ('\n', '\r').
			return f, malformed("character outside the key alphabet")
		}
	}
	p, err := b32.DecodeString(body)
	if err != nil {
		return f, malformed("bad length")
	}
	if b32.EncodeToString(p) != body {
		return f, malformed("non-canonical encoding")
	}
	if len(p) < fixedLen+1 {
		return f, malformed("too short")
	}
	n := len(p) - sumLen
	if binary.BigEndian.Uint32(p[n:]) != checksum(p[:n]) {
		return f, fmt.Errorf("vkey: %w", ErrChecksum)
	}
	userLen := int(p[0])
	if userLen != len(p)-fixedLen {
		return f, malformed("user length does not match key length")
	}
	f.user = string(p[1 : 1+userLen])
	if checkUser(f.user) != nil {
		return fields{}, malformed("bad user ID")
	}
	copy(f.id[:], p[1+userLen:])
	copy(f.secret[:], p[1+userLen+idLen:])
	return f, nil
}

func isAlphabet(c byte) bool { return c >= 'a' && c <= 'z' || c >= '2' && c <= '7' }
