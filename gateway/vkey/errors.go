package vkey

import "errors"

// Parse errors. Messages built on them describe what is wrong, never the
// token: tokens end up in error logs.
var (
	ErrMalformed = errors.New("malformed key")
	ErrChecksum  = errors.New("key checksum mismatch (mistyped or truncated key?)")
	ErrUser      = errors.New("invalid user ID")
)
