package jsonscan

import (
	"bytes"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeString returns the value of a JSON string whose raw content (between
// the quotes) has already been validated by skipString. It reproduces
// encoding/json's decoding exactly, including its repairs: an invalid UTF-8
// byte or an unpaired surrogate escape becomes U+FFFD. Matching the standard
// library matters because the gateway prices and routes by this value while
// the provider decodes the same bytes.
func decodeString(raw []byte) string {
	// Fast path: no escapes and valid UTF-8, the common case for model names.
	if plain(raw) {
		return string(raw)
	}
	return string(appendDecoded(make([]byte, 0, len(raw)+utf8.UTFMax), raw))
}

// appendDecoded appends the decoded value of validated raw string content
// to out.
func appendDecoded(out, raw []byte) []byte {
	for r := 0; r < len(raw); {
		c := raw[r]
		switch {
		case c == '\\':
			switch raw[r+1] {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				rr := hex4(raw[r+2 : r+6])
				r += 6
				if utf16.IsSurrogate(rr) {
					if r+6 <= len(raw) && raw[r] == '\\' && raw[r+1] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(raw[r+2:r+6])); dec != unicode.ReplacementChar {
							out = utf8.AppendRune(out, dec)
							r += 6
							continue
						}
					}
					rr = unicode.ReplacementChar
				}
				out = utf8.AppendRune(out, rr)
				continue
			default: // '"', '\\', '/'
				out = append(out, raw[r+1])
			}
			r += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			r++
		default:
			rr, size := utf8.DecodeRune(raw[r:])
			if rr == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, unicode.ReplacementChar)
			} else {
				out = append(out, raw[r:r+size]...)
			}
			r += size
		}
	}
	return out
}

// plain reports whether raw needs no decoding at all.
func plain(raw []byte) bool {
	return bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw)
}

// hex4 decodes four validated hex digits.
func hex4(h []byte) rune {
	var r rune
	for _, c := range h {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// keyIs reports whether a raw key equals want after unescaping. Unescaped
// keys, the usual case, are compared without allocating.
func keyIs(raw []byte, escaped bool, want string) bool {
	if !escaped {
		return string(raw) == want
	}
	return decodeString(raw) == want
}
