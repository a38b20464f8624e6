package pricing

// d is shorthand for a literal price in the default table.
func d(s string) *Decimal { v := Decimal(s); return &v }

// defaultPrices are list prices in USD per million tokens. They go through
// the same parser as the config so one code path is tested.
//
// OpenAI and Gemini bill no cache-write surcharge (their caching is
// implicit), so their cache-write rates are set equal to input: if a
// cache-creation figure ever reaches them it is priced as plain input.
// Anthropic models set only input/output; cache rates derive from input.
var defaultPrices = map[string]ModelPrice{
	"claude-opus-4-7":   {Input: d("5"), Output: d("25")},
	"claude-opus-4-6":   {Input: d("5"), Output: d("25")},
	"claude-opus-4-5":   {Input: d("5"), Output: d("25")},
	"claude-sonnet-4-6": {Input: d("3"), Output: d("15")},
	"claude-sonnet-4-5": {Input: d("3"), Output: d("15")},
	"claude-haiku-4-5":  {Input: d("1"), Output: d("5")},

	"gpt-4o":       implicitCache("2.50", "10", "1.25"),
	"gpt-4o-mini":  implicitCache("0.15", "0.60", "0.075"),
	"gpt-4.1":      implicitCache("2", "8", "0.50"),
	"gpt-4.1-mini": implicitCache("0.40", "1.60", "0.10"),

	"gemini-2.5-pro":   implicitCache("1.25", "10", "0.31"),
	"gemini-2.5-flash": implicitCache("0.30", "2.50", "0.075"),

	// The fake upstream's model, so tests price calls like real ones.
	"mock-1": {Input: d("1"), Output: d("2")},
}

func implicitCache(input, output, cached string) ModelPrice {
	return ModelPrice{
		Input: d(input), Output: d(output), CacheRead: d(cached),
		CacheWrite5m: d(input), CacheWrite1h: d(input),
	}
}
