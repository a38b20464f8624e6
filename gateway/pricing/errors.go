package pricing

import (
	"errors"
	"fmt"
)

// Sentinels for errors.Is; the typed errors below carry the details.
var (
	ErrUnknownModel = errors.New("unknown model")
	ErrInvalidPrice = errors.New("invalid price")
	ErrOverflow     = errors.New("cost overflows int64 nano-dollars")
	ErrInvalidUsage = errors.New("invalid usage")
	ErrInvalidModel = errors.New("invalid model entry")
)

// UnknownModelError says no configured price matches Model.
type UnknownModelError struct{ Model string }

func (e *UnknownModelError) Error() string {
	return fmt.Sprintf("pricing: no price configured for model %q", e.Model)
}
func (e *UnknownModelError) Unwrap() error { return ErrUnknownModel }

// PriceError is a price in the table that cannot be used: missing, not a
// plain non-negative decimal, or finer than one nano-dollar per token.
type PriceError struct {
	Model string // model ID the entry is for
	Field string // input, output, cache_read, cache_write_5m, cache_write_1h
	Text  string // the text as written ("" when missing or derived)
	Err   error  // the reason; always wraps ErrInvalidPrice
}

func (e *PriceError) Error() string {
	if e.Text == "" {
		return fmt.Sprintf("pricing: model %q, %s: %v", e.Model, e.Field, e.Err)
	}
	return fmt.Sprintf("pricing: model %q, %s %q: %v", e.Model, e.Field, e.Text, e.Err)
}
func (e *PriceError) Unwrap() error { return e.Err }

// OverflowError says a product or sum left the int64 range.
type OverflowError struct {
	Model string
	Field string // the usage figure or rate being computed
}

func (e *OverflowError) Error() string {
	return fmt.Sprintf("pricing: model %q, %s: %v", e.Model, e.Field, ErrOverflow)
}
func (e *OverflowError) Unwrap() error { return ErrOverflow }
