package pricing

import (
	"fmt"
	"sort"
)

// Table maps model IDs to Rates. It is immutable after construction and
// safe for concurrent use.
type Table struct {
	rates    map[string]Rates
	prefixes []string // IDs, longest first, for prefix lookup
}

var defaultTable = mustTable(nil)

// DefaultTable is the built-in price list.
func DefaultTable() *Table { return defaultTable }

// NewTable builds the table from the defaults with the config's `pricing`
// map merged over them:
//   - a model not in the defaults is added;
//   - for a model in the defaults, each field given in the config replaces
//     the default's field; omitted fields keep the default's value, and a
//     cache rate neither sets is derived again from the merged input (so
//     overriding an Anthropic model's input moves its cache rates too).
//
// There is no way to delete a default; an override can only reprice it.
// Every entry is validated; the first error (in model ID order) is
// returned.
func NewTable(config map[string]ModelPrice) (*Table, error) {
	merged := make(map[string]ModelPrice, len(defaultPrices)+len(config))
	for id, p := range defaultPrices {
		merged[id] = p
	}
	for id, p := range config {
		if id == "" {
			return nil, fmt.Errorf("pricing: %w: empty model ID", ErrInvalidModel)
		}
		merged[id] = merged[id].merge(p)
	}
	t := &Table{rates: make(map[string]Rates, len(merged))}
	for _, id := range sortedKeys(merged) {
		r, err := merged[id].resolve(id)
		if err != nil {
			return nil, err
		}
		t.rates[id] = r
		t.prefixes = append(t.prefixes, id)
	}
	sort.SliceStable(t.prefixes, func(i, j int) bool { return len(t.prefixes[i]) > len(t.prefixes[j]) })
	return t, nil
}

func mustTable(config map[string]ModelPrice) *Table {
	t, err := NewTable(config)
	if err != nil {
		panic(err) // only reachable through a bad built-in default
	}
	return t
}

// Rates returns the rates for model: the exact ID, else the longest
// configured ID that prefixes it at a boundary ('-', '@' or ':'), so
// "claude-sonnet-4-6-20260101" and "claude-sonnet-4-6@20260101" price as
// claude-sonnet-4-6 but "claude-opus-4-60" does not price as
// claude-opus-4-6.
func (t *Table) Rates(model string) (Rates, error) {
	if r, ok := t.rates[model]; ok {
		return r, nil
	}
	for _, p := range t.prefixes {
		if len(model) > len(p) && model[:len(p)] == p && isBoundary(model[len(p)]) {
			return t.rates[p], nil
		}
	}
	return Rates{}, &UnknownModelError{Model: model}
}

func isBoundary(c byte) bool { return c == '-' || c == '@' || c == ':' }
