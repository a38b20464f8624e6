package pricing

import (
	"fmt"
	"strings"
)

// NanosToUSD renders n nano-dollars as an exact decimal USD amount with
// all nine fractional digits, e.g. 123456 → "0.000123456", 5e9 →
// "5.000000000", -1 → "-0.000000001". Fixed width keeps columns aligned
// and makes the value unambiguous; no float is involved.
func NanosToUSD(n int64) string {
	var b strings.Builder
	u := uint64(n)
	if n < 0 {
		b.WriteByte('-')
		u = -u // two's complement magnitude; correct for math.MinInt64 too
	}
	fmt.Fprintf(&b, "%d.%09d", u/1e9, u%1e9)
	return b.String()
}
