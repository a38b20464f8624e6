package pricing

import (
	"errors"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestRetiredDefaults(t *testing.T) {
	tests := []struct {
		model, now  string
		ok          bool
		replacement string
		at          string
	}{
		{"claude-3-opus-20240229", "2026-01-04T23:59:59Z", false, "", ""},
		{"claude-3-opus-20240229", "2026-01-05T00:00:00Z", true, "claude-opus-4-7", "2026-01-05T00:00:00Z"},
		{"claude-3-opus-20240229", "2030-01-01T00:00:00Z", true, "claude-opus-4-7", "2026-01-05T00:00:00Z"},
		// Same instant expressed in another zone: still before.
		{"claude-3-opus-20240229", "2026-01-05T00:59:59+01:00", false, "", ""},
		{"claude-3-5-sonnet-20241022", "2025-10-22T00:00:00Z", true, "claude-sonnet-4-6", "2025-10-22T00:00:00Z"},
		{"claude-3-7-sonnet-20250219", "2026-02-18T12:00:00Z", false, "", ""},
		{"claude-3-7-sonnet-20250219", "2026-02-19T12:00:00Z", true, "claude-sonnet-4-6", "2026-02-19T00:00:00Z"},
		{"claude-3-opus-20240229-v2", "2030-01-01T00:00:00Z", false, "", ""}, // exact ID only
		{"claude-opus-4-7", "2030-01-01T00:00:00Z", false, "", ""},
	}
	for _, tc := range tests {
		rep, at, ok := DefaultRetirements().Retired(tc.model, date(tc.now))
		var wantAt time.Time
		if tc.at != "" {
			wantAt = date(tc.at)
		}
		if ok != tc.ok || rep != tc.replacement || !at.Equal(wantAt) {
			t.Errorf("Retired(%q, %s) = %q, %v, %v; want %q, %v, %v", tc.model, tc.now, rep, at, ok, tc.replacement, wantAt, tc.ok)
		}
	}
}

func TestRetiredConfig(t *testing.T) {
	var c nodeConfig
	src := `
models:
  - {id: claude-3-opus-20240229, retired: "2027-01-01", replacement: claude-opus-4-6}
  - {id: my-old-model, retired: "2026-03-01T12:00:00Z", replacement: my-model}
  - {id: no-successor, retired: "2026-01-01"}
`
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	r, err := NewRetirements(c.Models)
	if err != nil {
		t.Fatal(err)
	}
	now := date("2026-06-01T00:00:00Z")
	if _, _, ok := r.Retired("claude-3-opus-20240229", now); ok {
		t.Error("config did not move the default date")
	}
	if rep, _, ok := r.Retired("claude-3-opus-20240229", date("2027-01-01T00:00:00Z")); !ok || rep != "claude-opus-4-6" {
		t.Errorf("override: %q %v", rep, ok)
	}
	if rep, _, ok := r.Retired("claude-3-5-sonnet-20241022", now); !ok || rep != "claude-sonnet-4-6" {
		t.Errorf("default lost in merge: %q %v", rep, ok)
	}
	if _, _, ok := r.Retired("my-old-model", date("2026-03-01T11:59:59Z")); ok {
		t.Error("RFC 3339 time answered early")
	}
	if rep, at, ok := r.Retired("my-old-model", now); !ok || rep != "my-model" || !at.Equal(date("2026-03-01T12:00:00Z")) {
		t.Errorf("my-old-model: %q %v %v", rep, at, ok)
	}
	if rep, _, ok := r.Retired("no-successor", now); !ok || rep != "" {
		t.Errorf("no-successor: %q %v", rep, ok)
	}
}

func TestRetiredConfigErrors(t *testing.T) {
	for _, cfg := range [][]Retirement{
		{{ID: "", Retired: "2026-01-01"}},
		{{ID: "m", Retired: ""}},
		{{ID: "m", Retired: "01/05/2026"}},
		{{ID: "m", Retired: "2026-13-01"}},
		{{ID: "m", Retired: "2026-01-01"}, {ID: "m", Retired: "2026-02-01"}},
	} {
		if _, err := NewRetirements(cfg); !errors.Is(err, ErrInvalidModel) {
			t.Errorf("%+v: err = %v", cfg, err)
		}
	}
}
