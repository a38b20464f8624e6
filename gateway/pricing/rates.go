package pricing

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Rates are one model's prices in nano-dollars per token.
type Rates struct {
	Input        int64 // uncached input
	Output       int64
	CacheRead    int64
	CacheWrite5m int64 // 5-minute cache write
	CacheWrite1h int64 // 1-hour cache write
}

// ModelPrice is one entry of the `pricing` config map, in USD per million
// tokens. Input and output are required once merged with the defaults;
// an omitted cache rate is derived from input with the Anthropic
// multipliers (read 0.1×, 5-minute write 1.25×, 1-hour write 2×).
type ModelPrice struct {
	Input        *Decimal `yaml:"input"`
	Output       *Decimal `yaml:"output"`
	CacheRead    *Decimal `yaml:"cache_read"`
	CacheWrite5m *Decimal `yaml:"cache_write_5m"`
	CacheWrite1h *Decimal `yaml:"cache_write_1h"`
}

var modelPriceFields = []string{"input", "output", "cache_read", "cache_write_5m", "cache_write_1h"}

// UnmarshalYAML refuses unknown keys: a misspelt "cached_input" would
// otherwise leave the default rate in force without a word.
func (m *ModelPrice) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a model price must be a mapping like {input: 5, output: 25}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if !contains(modelPriceFields, k) {
			return fmt.Errorf("line %d: unknown price field %q (want one of %s)", n.Content[i].Line, k, strings.Join(modelPriceFields, ", "))
		}
	}
	type plain ModelPrice // no UnmarshalYAML: avoids recursion
	return n.Decode((*plain)(m))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// merge returns base with every field set in over replacing base's.
func (base ModelPrice) merge(over ModelPrice) ModelPrice {
	pick := func(b, o *Decimal) *Decimal {
		if o != nil {
			return o
		}
		return b
	}
	return ModelPrice{
		Input:        pick(base.Input, over.Input),
		Output:       pick(base.Output, over.Output),
		CacheRead:    pick(base.CacheRead, over.CacheRead),
		CacheWrite5m: pick(base.CacheWrite5m, over.CacheWrite5m),
		CacheWrite1h: pick(base.CacheWrite1h, over.CacheWrite1h),
	}
}

// cache multipliers of base input, as exact fractions num/den.
type multiplier struct{ num, den int64 }

var (
	readMult    = multiplier{1, 10}
	write5mMult = multiplier{5, 4}
	write1hMult = multiplier{2, 1}
)

// resolve turns a merged entry into Rates, naming model and field in every
// error.
func (m ModelPrice) resolve(model string) (Rates, error) {
	var r Rates
	var err error
	if r.Input, err = required(model, "input", m.Input); err != nil {
		return Rates{}, err
	}
	if r.Output, err = required(model, "output", m.Output); err != nil {
		return Rates{}, err
	}
	if r.CacheRead, err = derived(model, "cache_read", m.CacheRead, r.Input, readMult); err != nil {
		return Rates{}, err
	}
	if r.CacheWrite5m, err = derived(model, "cache_write_5m", m.CacheWrite5m, r.Input, write5mMult); err != nil {
		return Rates{}, err
	}
	if r.CacheWrite1h, err = derived(model, "cache_write_1h", m.CacheWrite1h, r.Input, write1hMult); err != nil {
		return Rates{}, err
	}
	return r, nil
}

func required(model, field string, d *Decimal) (int64, error) {
	if d == nil {
		return 0, &PriceError{Model: model, Field: field, Err: errMissing}
	}
	return parseField(model, field, d)
}

func parseField(model, field string, d *Decimal) (int64, error) {
	v, err := parsePerMTok(string(*d))
	if err != nil {
		return 0, &PriceError{Model: model, Field: field, Text: string(*d), Err: err}
	}
	return v, nil
}

// derived parses d, or computes input×mult when d is absent. A derived
// rate that is not a whole nano-dollar per token (e.g. 1.25 × 150) is an
// error rather than a rounding, consistent with explicit prices.
func derived(model, field string, d *Decimal, input int64, mult multiplier) (int64, error) {
	if d != nil {
		return parseField(model, field, d)
	}
	if input > math.MaxInt64/mult.num {
		return 0, &OverflowError{Model: model, Field: field}
	}
	p := input * mult.num
	if p%mult.den != 0 {
		return 0, &PriceError{Model: model, Field: field, Err: errNotDerivable}
	}
	return p / mult.den, nil
}

// sortedKeys returns the map's keys in a stable order, for deterministic
// error reporting.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
