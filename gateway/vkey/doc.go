// Package vkey issues and checks the gateway's virtual API keys.
//
// A key is shown to its owner once and stored only as Hash(token). Format:
//
//	hf_1<base32 payload>
//
// "hf_" marks a holdfast key, "1" is the format version, and the payload
// is RFC 4648 base32, lowercase, unpadded (letters and 2-7 only: safe in
// URLs, headers and shell arguments, and double-click selects it whole):
//
//	[1]  n = len(user), 1..128
//	[n]  user ID, UTF-8 — the routing part: the gateway routes to the
//	     user's actor from the key alone, with no lookup
//	[8]  key ID (shown as 16 lowercase hex digits by `keys list`, the
//	     handle for `keys revoke`)
//	[32] secret, from the caller's random source
//	[4]  CRC-32C, big-endian, over "hf_1" and all payload bytes before it
//
// Why CRC-32C rather than truncated SHA-256: the checksum only catches
// typos and truncation locally, before any actor is touched; forgery is
// stopped by the hash check in the user's actor, not here. A 32-bit CRC
// detects every error burst of up to 32 bits with certainty, so every
// single-character change (at most 5 bits) and every swap of two adjacent
// characters (at most 10 bits) is refused, not merely refused with
// probability 1-2⁻³²; and it is in the standard library and hardware
// accelerated.
//
// Parse accepts exactly one spelling per key (lowercase, no padding, zero
// unused trailing bits), so whatever it accepts re-encodes identically.
// Errors are ErrMalformed or ErrChecksum and never quote the token.
package vkey
