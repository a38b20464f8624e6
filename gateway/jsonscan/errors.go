package jsonscan

import (
	"errors"
	"fmt"
)

// Sentinel causes carried by SyntaxError; test them with errors.Is.
var (
	ErrUnexpectedEnd      = errors.New("unexpected end of input")
	ErrUnterminatedString = errors.New("unterminated string")
	ErrInvalidCharacter   = errors.New("invalid character")
	ErrInvalidEscape      = errors.New("invalid escape in string")
	ErrControlCharacter   = errors.New("control character in string")
	ErrTrailingData       = errors.New("data after the top-level value")
	ErrNotObject          = errors.New("top-level value is not an object")
	ErrTooDeep            = errors.New("nesting exceeds the maximum depth")
)

// SyntaxError reports malformed input and where it was detected.
type SyntaxError struct {
	// Offset is the byte offset in the body: the offending byte, the start of
	// an unterminated string, or len(body) when the input ends early.
	Offset int
	// Err is one of the Err* sentinels above.
	Err error
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("jsonscan: %v at byte offset %d", e.Err, e.Offset)
}

func (e *SyntaxError) Unwrap() error { return e.Err }

func syntaxErr(off int, err error) error { return &SyntaxError{Offset: off, Err: err} }
