package pricing

import (
	"fmt"
	"math"
	"strings"

	"gopkg.in/yaml.v3"
)

// nanosPerTokenPerUSDPerMTok is the exact conversion factor: 1 USD per
// million tokens = 1e9 n$ / 1e6 tokens = 1000 n$ per token. So a per-MTok
// price has at most three meaningful decimals.
const (
	scale       = 1000
	scaleDigits = 3
)

// Decimal is a price in USD per million tokens as written in the config:
// the literal text of the YAML scalar. It stays text until NewTable parses
// it with the model and field at hand, so a YAML float never rounds it and
// every error can name where it came from.
type Decimal string

// UnmarshalYAML keeps the scalar's source text. Both `5` / `0.075`
// (YAML numbers) and `"5"` / `"0.075"` (strings) are accepted.
func (d *Decimal) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a price must be a number or a decimal string", n.Line)
	}
	switch n.ShortTag() {
	case "!!int", "!!float", "!!str":
	default:
		return fmt.Errorf("line %d: a price must be a number or a decimal string, not %s", n.Line, n.ShortTag())
	}
	*d = Decimal(n.Value)
	return nil
}

var (
	errNotDecimal   = fmt.Errorf("%w: want a plain non-negative decimal like 5, 0.4 or \"$0.075\" (USD per million tokens)", ErrInvalidPrice)
	errTooPrecise   = fmt.Errorf("%w: more precise than one nano-dollar per token (at most %d decimals per million tokens)", ErrInvalidPrice, scaleDigits)
	errTooLarge     = fmt.Errorf("%w: too large", ErrInvalidPrice)
	errMissing      = fmt.Errorf("%w: missing", ErrInvalidPrice)
	errNotDerivable = fmt.Errorf("%w: not a whole number of nano-dollars per token when derived from input; set it explicitly", ErrInvalidPrice)
)

// parsePerMTok converts "5", "0.075", "$0.31", ".5" into n$ per token by
// reading the digits: integer part × 1000 + the first three decimals; any
// further decimal must be zero. A leading "$" is tolerated because people
// copy prices from provider pages.
func parsePerMTok(text string) (int64, error) {
	s := strings.TrimSpace(text)
	s = strings.TrimPrefix(s, "$")
	// "5." is accepted (YAML itself reads it as the number 5); "." is not.
	intPart, frac, _ := strings.Cut(s, ".")
	if intPart == "" && frac == "" {
		return 0, errNotDecimal // "", "$", "."
	}
	if !allDigits(intPart) || !allDigits(frac) {
		return 0, errNotDecimal
	}
	// limit keeps whole*scale + (scale-1) within int64.
	const limit = (math.MaxInt64 - (scale - 1)) / scale
	var whole int64
	for _, c := range intPart {
		d := int64(c - '0')
		if whole > (limit-d)/10 {
			return 0, errTooLarge
		}
		whole = whole*10 + d
	}
	var part int64
	for i := 0; i < len(frac); i++ {
		d := int64(frac[i] - '0')
		if i >= scaleDigits {
			if d != 0 {
				return 0, errTooPrecise
			}
			continue
		}
		part = part*10 + d
	}
	for i := len(frac); i < scaleDigits; i++ {
		part *= 10
	}
	return whole*scale + part, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
