package pricing

import (
	"errors"
	"math"
	"testing"
)

func TestCost(t *testing.T) {
	tests := []struct {
		name  string
		model string
		u     Usage
		want  int64
	}{
		{"zero", "claude-opus-4-7", Usage{}, 0},
		{"opus all fields", "claude-opus-4-7", Usage{
			InputTokens: 1000, OutputTokens: 500,
			CacheCreation5mInputTokens: 2000, CacheCreation1hInputTokens: 3000,
			CacheReadInputTokens: 10000,
		}, 1000*5000 + 500*25000 + 2000*6250 + 3000*10000 + 10000*500},
		// 1h writes cost 2×, not the 5m 1.25× (bifrost #2322).
		{"1h write", "claude-sonnet-4-6", Usage{CacheCreation1hInputTokens: 1_000_000}, 6_000_000_000},
		{"5m write", "claude-sonnet-4-6", Usage{CacheCreation5mInputTokens: 1_000_000}, 3_750_000_000},
		{"one MTok opus in", "claude-opus-4-7-20260101", Usage{InputTokens: 1_000_000}, 5_000_000_000},
		{"gemini cached", "gemini-2.5-pro", Usage{CacheReadInputTokens: 1_000_000}, 310_000_000},
		{"gpt-4o-mini one token", "gpt-4o-mini", Usage{InputTokens: 1, OutputTokens: 1, CacheReadInputTokens: 1}, 150 + 600 + 75},
		{"mock", "mock-1", Usage{InputTokens: 7, OutputTokens: 11}, 7*1000 + 11*2000},
	}
	for _, tc := range tests {
		got, err := DefaultTable().Cost(tc.model, tc.u)
		if err != nil || got != tc.want {
			t.Errorf("%s: Cost = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

func TestCostErrors(t *testing.T) {
	tests := []struct {
		name  string
		model string
		u     Usage
		is    error
	}{
		{"unknown", "no-such-model", Usage{InputTokens: 1}, ErrUnknownModel},
		{"negative", "mock-1", Usage{OutputTokens: -1}, ErrInvalidUsage},
		{"negative cache", "mock-1", Usage{CacheReadInputTokens: -5}, ErrInvalidUsage},
		{"product", "claude-opus-4-7", Usage{OutputTokens: math.MaxInt64/25000 + 1}, ErrOverflow},
		{"sum", "mock-1", Usage{InputTokens: math.MaxInt64 / 1000, OutputTokens: math.MaxInt64 / 2000}, ErrOverflow},
	}
	for _, tc := range tests {
		got, err := DefaultTable().Cost(tc.model, tc.u)
		if !errors.Is(err, tc.is) || got != 0 {
			t.Errorf("%s: Cost = %d, %v; want %v", tc.name, got, err, tc.is)
		}
	}
	var oe *OverflowError
	_, err := DefaultTable().Cost("mock-1", Usage{InputTokens: math.MaxInt64})
	if !errors.As(err, &oe) || oe.Model != "mock-1" || oe.Field != "input_tokens" {
		t.Errorf("overflow error = %#v", err)
	}
	// The largest product that fits is accepted, exactly.
	n := int64(math.MaxInt64 / 25000)
	if got, err := DefaultTable().Cost("claude-opus-4-7", Usage{OutputTokens: n}); err != nil || got != n*25000 {
		t.Errorf("max product: %d, %v", got, err)
	}
}

func TestNanosToUSD(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0.000000000"},
		{1, "0.000000001"},
		{123456, "0.000123456"},
		{5_000_000_000, "5.000000000"},
		{65_000_000, "0.065000000"},
		{1_234_567_890_123, "1234.567890123"},
		{-1, "-0.000000001"},
		{-1_500_000_000, "-1.500000000"},
		{math.MaxInt64, "9223372036.854775807"},
		{math.MinInt64, "-9223372036.854775808"},
	}
	for _, tc := range tests {
		if got := NanosToUSD(tc.n); got != tc.want {
			t.Errorf("NanosToUSD(%d) = %q; want %q", tc.n, got, tc.want)
		}
	}
}
