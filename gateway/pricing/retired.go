package pricing

import (
	"fmt"
	"time"
)

// Retirement is one entry of the `models` config list:
//
//	models:
//	  - {id: claude-3-opus-20240229, retired: "2026-01-05", replacement: claude-opus-4-7}
//
// Retired is a date (UTC midnight) or an RFC 3339 time. Replacement may be
// empty when there is none to suggest.
type Retirement struct {
	ID          string `yaml:"id"`
	Retired     string `yaml:"retired"`
	Replacement string `yaml:"replacement"`
}

// defaultRetirements are Anthropic's announced retirements.
var defaultRetirements = []Retirement{
	{ID: "claude-3-opus-20240229", Retired: "2026-01-05", Replacement: "claude-opus-4-7"},
	{ID: "claude-3-5-sonnet-20241022", Retired: "2025-10-22", Replacement: "claude-sonnet-4-6"},
	{ID: "claude-3-7-sonnet-20250219", Retired: "2026-02-19", Replacement: "claude-sonnet-4-6"},
}

type retirement struct {
	at          time.Time
	replacement string
}

// Retirements answers whether a model is retired. Immutable; safe for
// concurrent use.
type Retirements struct{ byID map[string]retirement }

var defaultRetirementsTable = mustRetirements(nil)

// DefaultRetirements is the built-in retirement list.
func DefaultRetirements() *Retirements { return defaultRetirementsTable }

// NewRetirements builds the table from the defaults with config merged
// over them by ID: a config entry for a default ID replaces it entirely
// (to move a date or a replacement). An ID listed twice in config is an
// error, since which one wins would be an accident of order.
func NewRetirements(config []Retirement) (*Retirements, error) {
	r := &Retirements{byID: make(map[string]retirement, len(defaultRetirements)+len(config))}
	for _, e := range defaultRetirements {
		if err := r.add(e); err != nil {
			return nil, err
		}
	}
	seen := make(map[string]bool, len(config))
	for _, e := range config {
		if seen[e.ID] {
			return nil, fmt.Errorf("pricing: models: %w: %q listed twice", ErrInvalidModel, e.ID)
		}
		seen[e.ID] = true
		if err := r.add(e); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func mustRetirements(config []Retirement) *Retirements {
	r, err := NewRetirements(config)
	if err != nil {
		panic(err) // only reachable through a bad built-in default
	}
	return r
}

func (r *Retirements) add(e Retirement) error {
	if e.ID == "" {
		return fmt.Errorf("pricing: models: %w: entry without id", ErrInvalidModel)
	}
	at, err := parseRetired(e.Retired)
	if err != nil {
		return fmt.Errorf("pricing: models: %q retired %q: %w: %v", e.ID, e.Retired, ErrInvalidModel, err)
	}
	r.byID[e.ID] = retirement{at: at, replacement: e.Replacement}
	return nil
}

func parseRetired(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("missing date")
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil // UTC midnight
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want YYYY-MM-DD or RFC 3339")
	}
	return t, nil
}

// Retired reports whether model is retired at now, with its replacement
// and retirement time. Before the date it answers ok=false, so a
// retirement can be configured ahead of time. Matching is by exact ID
// only: retirements name dated snapshots, and a rule that also caught
// other IDs would refuse traffic nobody meant to refuse.
func (r *Retirements) Retired(model string, now time.Time) (replacement string, retiredAt time.Time, ok bool) {
	e, found := r.byID[model]
	if !found || now.Before(e.at) {
		return "", time.Time{}, false
	}
	return e.replacement, e.at, true
}
