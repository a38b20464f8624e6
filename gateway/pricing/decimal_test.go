package pricing

import (
	"errors"
	"testing"
)

func TestParsePerMTok(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  error // nil: success; else errors.Is target
	}{
		{"5", 5000, nil},
		{"25", 25000, nil},
		{"0.075", 75, nil},
		{"0.31", 310, nil}, // a float64 0.31 is 0.30999…; text parsing is exact
		{"$0.075", 75, nil},
		{"1.25", 1250, nil},
		{"0.0750", 75, nil}, // trailing zeros beyond 3 decimals are harmless
		{"2.500000", 2500, nil},
		{".5", 500, nil},
		{"5.", 5000, nil},
		{"0", 0, nil},
		{" 3 ", 3000, nil},
		{"0.001", 1, nil},
		{"9223372036854774", 9223372036854774000, nil},
		{"9223372036854774.999", 9223372036854774999, nil},
		// The integer-part limit leaves room for any three decimals, so it
		// is slightly conservative: absurd prices, refused not wrapped.
		{"9223372036854775", 0, errTooLarge},
		{"99999999999999999999", 0, errTooLarge},
		{"0.0001", 0, errTooPrecise},
		{"0.0755", 0, errTooPrecise},
		{"-1", 0, errNotDecimal},
		{"+1", 0, errNotDecimal},
		{"1e3", 0, errNotDecimal},
		{"1_000", 0, errNotDecimal},
		{"0x10", 0, errNotDecimal},
		{"", 0, errNotDecimal},
		{".", 0, errNotDecimal},
		{"$", 0, errNotDecimal},
		{"1.2.3", 0, errNotDecimal},
		{"five", 0, errNotDecimal},
		{"NaN", 0, errNotDecimal},
		{"١", 0, errNotDecimal}, // Arabic-Indic digit: not ASCII
	}
	for _, tc := range tests {
		got, err := parsePerMTok(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) || !errors.Is(err, ErrInvalidPrice) {
				t.Errorf("parsePerMTok(%q) = %d, %v; want error %v", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parsePerMTok(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}
