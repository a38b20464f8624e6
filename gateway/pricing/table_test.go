package pricing

import (
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestDefaultRatesExact(t *testing.T) {
	opus := Rates{Input: 5000, Output: 25000, CacheRead: 500, CacheWrite5m: 6250, CacheWrite1h: 10000}
	sonnet := Rates{Input: 3000, Output: 15000, CacheRead: 300, CacheWrite5m: 3750, CacheWrite1h: 6000}
	tests := []struct {
		model string
		want  Rates
	}{
		{"claude-opus-4-7", opus},
		{"claude-opus-4-6", opus},
		{"claude-opus-4-5", opus},
		{"claude-sonnet-4-6", sonnet},
		{"claude-sonnet-4-5", sonnet},
		{"claude-haiku-4-5", Rates{1000, 5000, 100, 1250, 2000}},
		{"gpt-4o", Rates{2500, 10000, 1250, 2500, 2500}},
		{"gpt-4o-mini", Rates{150, 600, 75, 150, 150}},
		{"gpt-4.1", Rates{2000, 8000, 500, 2000, 2000}},
		{"gpt-4.1-mini", Rates{400, 1600, 100, 400, 400}},
		{"gemini-2.5-pro", Rates{1250, 10000, 310, 1250, 1250}},
		{"gemini-2.5-flash", Rates{300, 2500, 75, 300, 300}},
		{"mock-1", Rates{1000, 2000, 100, 1250, 2000}},
	}
	if len(tests) != len(defaultPrices) {
		t.Errorf("test covers %d models, defaults have %d", len(tests), len(defaultPrices))
	}
	for _, tc := range tests {
		got, err := DefaultTable().Rates(tc.model)
		if err != nil || got != tc.want {
			t.Errorf("Rates(%q) = %+v, %v; want %+v", tc.model, got, err, tc.want)
		}
	}
}

func TestLookup(t *testing.T) {
	tests := []struct {
		model string
		as    string // "" = unknown
	}{
		{"claude-sonnet-4-6-20260101", "claude-sonnet-4-6"},
		{"claude-sonnet-4-6@20260101", "claude-sonnet-4-6"},
		{"claude-haiku-4-5-20251001", "claude-haiku-4-5"},
		{"gpt-4o-2024-08-06", "gpt-4o"},
		{"gpt-4o-mini-2024-07-18", "gpt-4o-mini"}, // longest prefix wins
		{"gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"},
		{"gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"},
		{"claude-opus-4-60", ""}, // prefix without a boundary is another model
		{"gpt-4", ""},
		{"claude-opus-4", ""},
		{"", ""},
		{"CLAUDE-OPUS-4-7", ""}, // IDs are case-sensitive
	}
	tab := DefaultTable()
	for _, tc := range tests {
		got, err := tab.Rates(tc.model)
		if tc.as == "" {
			var ue *UnknownModelError
			if !errors.As(err, &ue) || ue.Model != tc.model || !errors.Is(err, ErrUnknownModel) {
				t.Errorf("Rates(%q) = %+v, %v; want UnknownModelError", tc.model, got, err)
			}
			if tc.model != "" && !strings.Contains(err.Error(), tc.model) {
				t.Errorf("error %q does not name the model", err)
			}
			continue
		}
		want, _ := tab.Rates(tc.as)
		if err != nil || got != want {
			t.Errorf("Rates(%q) = %+v, %v; want %s's %+v", tc.model, got, err, tc.as, want)
		}
	}
}

// nodeConfig mirrors how the node config embeds the tables.
type nodeConfig struct {
	Pricing map[string]ModelPrice `yaml:"pricing"`
	Models  []Retirement          `yaml:"models"`
}

func loadTable(t *testing.T, src string) (*Table, error) {
	t.Helper()
	var c nodeConfig
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return NewTable(c.Pricing)
}

func TestConfigMergesOverDefaults(t *testing.T) {
	tab, err := loadTable(t, `
pricing:
  claude-opus-4-7: {input: 6}          # cache rates follow the new input
  gpt-4o: {output: "12"}               # other fields keep the defaults
  my-model: {input: "0.4", output: "1.6", cache_read: "0.04"}
  my-model-large: {input: 1, output: 2}
  explicit: {input: 0.075, output: $0.3, cache_read: 0.007, cache_write_5m: 0.1, cache_write_1h: "0"}
`)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		model string
		want  Rates
	}{
		{"claude-opus-4-7", Rates{6000, 25000, 600, 7500, 12000}},
		{"claude-opus-4-6", Rates{5000, 25000, 500, 6250, 10000}}, // untouched default
		{"gpt-4o", Rates{2500, 12000, 1250, 2500, 2500}},
		{"gpt-4o-mini", Rates{150, 600, 75, 150, 150}},
		{"my-model", Rates{400, 1600, 40, 500, 800}},
		{"my-model-2025", Rates{400, 1600, 40, 500, 800}},
		{"my-model-large-2", Rates{1000, 2000, 100, 1250, 2000}}, // longest prefix, not my-model
		{"explicit", Rates{75, 300, 7, 100, 0}},
	}
	for _, tc := range tests {
		got, err := tab.Rates(tc.model)
		if err != nil || got != tc.want {
			t.Errorf("Rates(%q) = %+v, %v; want %+v", tc.model, got, err, tc.want)
		}
	}
	// The defaults themselves are not mutated by a merge.
	if r, _ := DefaultTable().Rates("claude-opus-4-7"); r.Input != 5000 {
		t.Errorf("default table changed: %+v", r)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, src    string
		model, field string // expected *PriceError location
	}{
		{"too precise", `{m: {input: 1, output: 2, cache_read: 0.0075}}`, "m", "cache_read"},
		{"too precise input", `{m: {input: "0.0001", output: 2}}`, "m", "input"},
		{"negative", `{m: {input: -1, output: 2}}`, "m", "input"},
		{"exponent", `{m: {input: 1e-3, output: 2}}`, "m", "input"},
		{"missing output", `{m: {input: 1}}`, "m", "output"},
		{"missing input", `{m: {output: 1}}`, "m", "input"},
		{"inexact derived 5m", `{m: {input: 0.15, output: 1}}`, "m", "cache_write_5m"},
		{"inexact derived read", `{m: {input: 0.001, output: 1, cache_write_5m: 0}}`, "m", "cache_read"},
		{"bad default override", `{claude-opus-4-7: {output: "25.0001"}}`, "claude-opus-4-7", "output"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadTable(t, "pricing: "+tc.src)
			var pe *PriceError
			if !errors.As(err, &pe) || pe.Model != tc.model || pe.Field != tc.field || !errors.Is(err, ErrInvalidPrice) {
				t.Fatalf("got %v; want PriceError for %s.%s", err, tc.model, tc.field)
			}
			if !strings.Contains(err.Error(), tc.model) || !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name model and field", err)
			}
		})
	}
}

func TestConfigYAMLShape(t *testing.T) {
	for _, src := range []string{
		"pricing: {m: {input: 1, output: 2, cached_input: 1}}", // typo must not be ignored
		"pricing: {m: [1, 2]}",
		"pricing: {m: {input: [1], output: 2}}",
		"pricing: {m: {input: {a: 1}, output: 2}}",
		"pricing: {m: {input: true, output: 2}}",
	} {
		var c nodeConfig
		if err := yaml.Unmarshal([]byte(src), &c); err == nil {
			t.Errorf("%s: accepted: %+v", src, c.Pricing)
		}
	}
	if _, err := NewTable(map[string]ModelPrice{"": {Input: d("1"), Output: d("1")}}); !errors.Is(err, ErrInvalidModel) {
		t.Errorf("empty model ID: %v", err)
	}
}
