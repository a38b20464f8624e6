package vkey

import "encoding/hex"

// Redact returns a loggable stand-in for token: "hf_1…" and the key ID,
// e.g. "hf_1…3f2a9c0d11b2e4f5", which identifies the key in `keys list`
// without any of the secret. A token that does not parse is replaced
// whole: a mistyped key is often a real key with one error.
func Redact(token string) string {
	f, err := decode(token)
	if err != nil {
		return "hf_?…(malformed)"
	}
	return head + "…" + hex.EncodeToString(f.id[:])
}
