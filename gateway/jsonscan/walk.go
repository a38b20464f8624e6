package jsonscan

import (
	"unicode"
	"unicode/utf8"
)

// The exported walking primitives below let another package read a few
// nested fields of a JSON document in one validating pass, without decoding
// anything it does not ask for and without allocating. Depths follow
// MaxDepth: the enclosing container of a top-level value is depth 0.

// SkipSpace returns the offset of the first non-whitespace byte of b at or
// after i (len(b) when there is none), with encoding/json's whitespace set.
func SkipSpace(b []byte, i int) int { return skipSpace(b, i) }

// SkipValue validates the value starting at b[i] (no leading whitespace)
// and returns the offset just past it; depth is the nesting of its
// enclosing container. A malformed value is a *SyntaxError.
func SkipValue(b []byte, i, depth int) (int, error) { return skipValue(b, i, depth) }

// SkipString validates the string starting at b[i] == '"' and returns the
// offset past its closing quote and whether it contains an escape.
func SkipString(b []byte, i int) (end int, escaped bool, err error) { return skipString(b, i) }

// CheckEnd reports a *SyntaxError unless only whitespace follows offset end,
// the end of a top-level value.
func CheckEnd(b []byte, end int) error {
	if j := skipSpace(b, end); j < len(b) {
		return syntaxErr(j, ErrTrailingData)
	}
	return nil
}

// Iter iterates over the members of one object, validating as it goes:
//
//	it := jsonscan.Members(b, i, depth)
//	for it.Next() {
//		if it.Key().Fold("usage") {
//			it.Consumed(decodeUsage(b, it.Value(), it.Depth()+1))
//		}
//	}
//	end, err := it.End()
//
// A value the caller does not consume is validated and skipped by the
// next call to Next.
type Iter struct {
	b        []byte
	i        int // offset of the next member, or of the value after Next
	depth    int
	key      Key
	val      int
	started  bool
	pending  bool // the current value has been neither consumed nor skipped
	finished bool
	err      error
}

// Members returns an iterator over the members of the object whose '{' is
// at b[i] (the caller has checked); depth is the object's own nesting depth
// (a top-level object is 1).
func Members(b []byte, i, depth int) Iter {
	it := Iter{b: b, i: i, depth: depth}
	if depth > MaxDepth {
		it.err = syntaxErr(i, ErrTooDeep)
	}
	return it
}

// Next advances to the next member and reports whether there is one. It
// returns false at the closing '}' and on malformed input (see End).
func (it *Iter) Next() bool {
	if it.err != nil || it.finished {
		return false
	}
	b := it.b
	if it.pending {
		end, err := skipValue(b, it.val, it.depth)
		if err != nil {
			return it.fail(err)
		}
		it.i, it.pending = end, false
	}
	i := it.i
	if !it.started {
		it.started = true
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			it.i, it.finished = i+1, true
			return false
		}
	} else {
		i = skipSpace(b, i)
		if i >= len(b) {
			return it.fail(syntaxErr(len(b), ErrUnexpectedEnd))
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			it.i, it.finished = i+1, true
			return false
		default:
			return it.fail(syntaxErr(i, ErrInvalidCharacter))
		}
	}
	if i >= len(b) {
		return it.fail(syntaxErr(len(b), ErrUnexpectedEnd))
	}
	if b[i] != '"' {
		return it.fail(syntaxErr(i, ErrInvalidCharacter))
	}
	keyEnd, escaped, err := skipString(b, i)
	if err != nil {
		return it.fail(err)
	}
	it.key = Key{raw: b[i+1 : keyEnd-1], escaped: escaped}
	i = skipSpace(b, keyEnd)
	if i >= len(b) {
		return it.fail(syntaxErr(len(b), ErrUnexpectedEnd))
	}
	if b[i] != ':' {
		return it.fail(syntaxErr(i, ErrInvalidCharacter))
	}
	it.val = skipSpace(b, i+1)
	it.i, it.pending = it.val, true
	return true
}

func (it *Iter) fail(err error) bool {
	it.err = err
	return false
}

// Key is the current member's key.
func (it *Iter) Key() Key { return it.key }

// Value is the offset of the current member's value (possibly len(b) on
// truncated input: the value's own scanner reports that).
func (it *Iter) Value() int { return it.val }

// Depth is the object's nesting depth: pass it to SkipValue for a member's
// value, or Depth()+1 to Members for a member that is itself an object.
func (it *Iter) Depth() int { return it.depth }

// Consumed tells the iterator that the caller has read the current value up
// to end, or failed to with err.
func (it *Iter) Consumed(end int, err error) {
	if !it.pending {
		return
	}
	it.pending = false
	if err != nil {
		it.err = err
		return
	}
	it.i = end
}

// End finishes the iteration (skipping any remaining members) and returns
// the offset past the closing '}', or the first syntax error.
func (it *Iter) End() (int, error) {
	for it.Next() {
	}
	if it.err != nil {
		return 0, it.err
	}
	return it.i, nil
}

// Key is an object key as it appears in the body, between its quotes.
type Key struct {
	raw     []byte
	escaped bool
}

// Raw returns the key's bytes between the quotes, escapes not decoded.
func (k Key) Raw() []byte { return k.raw }

// Is reports whether the key equals name after unescaping.
func (k Key) Is(name string) bool { return keyIs(k.raw, k.escaped, name) }

// Fold reports whether encoding/json would decode this key into a struct
// field named name: after unescaping (invalid UTF-8 becoming U+FFFD), the
// two are equal under Unicode simple case folding, so "Usage", "USAGE" and
// "u\u0053age" all match "usage", as does a Kelvin sign for "k". name must
// be ASCII.
func (k Key) Fold(name string) bool {
	raw := k.raw
	if !k.escaped {
		// The usual case: compare ASCII bytes directly.
		i := 0
		for ; i < len(raw) && i < len(name); i++ {
			c, n := raw[i], name[i]
			if c >= utf8.RuneSelf {
				break
			}
			if c != n && lowerASCII(c) != lowerASCII(n) {
				return false
			}
		}
		if i == len(raw) || i == len(name) {
			return len(raw) == len(name)
		}
		return foldEqual(raw[i:], name[i:])
	}
	var buf [64]byte
	return foldEqual(appendDecoded(buf[:0], raw), name)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// foldEqual is bytes.EqualFold for decoded s against ASCII name, which is
// how encoding/json's foldName compares (both fold a rune to the smallest
// of its simple-fold orbit).
func foldEqual(s []byte, name string) bool {
	j := 0
	for i := 0; i < len(s); {
		if j >= len(name) {
			return false
		}
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRune(s[i:])
		}
		i += size
		if !runeFoldEqual(r, rune(name[j])) {
			return false
		}
		j++
	}
	return j == len(name)
}

func runeFoldEqual(r, n rune) bool {
	if r == n {
		return true
	}
	return foldRune(r) == foldRune(n)
}

// foldRune returns the smallest rune of r's simple-fold orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// DecodeString returns the value of a JSON string given its raw content
// between the quotes, as validated by SkipString, exactly as encoding/json
// decodes it (invalid UTF-8 and unpaired surrogates become U+FFFD).
func DecodeString(raw []byte) string { return decodeString(raw) }

// StringIs reports whether the JSON string with raw content raw decodes to
// s, without allocating when raw has no escapes.
func StringIs(raw []byte, s string) bool {
	if plain(raw) {
		return string(raw) == s
	}
	if len(s) > 4*len(raw) {
		return false
	}
	var buf [64]byte
	return string(appendDecoded(buf[:0], raw)) == s
}

// ParseInt reads a validated JSON number as strconv.ParseInt(v, 10, 64)
// does: an integer literal (optionally negative, "-0" included) that fits
// an int64; a fraction, an exponent or overflow is not one.
func ParseInt(v []byte) (int64, bool) {
	neg := len(v) > 0 && v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0') // 19 digits cannot overflow a uint64
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return int64(-n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}
