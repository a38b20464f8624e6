package pricing

import (
	"fmt"
	"math"
)

// Usage is one call's token counts, already split so no token is counted
// twice: InputTokens is uncached input only (Anthropic's input_tokens;
// for OpenAI prompt_tokens − cached_tokens), cache figures are separate.
type Usage struct {
	InputTokens                int64
	OutputTokens               int64
	CacheCreation5mInputTokens int64
	CacheCreation1hInputTokens int64
	CacheReadInputTokens       int64
}

// Cost prices u for model in nano-dollars. Negative token counts are
// refused (ErrInvalidUsage) rather than producing a credit; a product or
// sum beyond int64 is an *OverflowError.
func (t *Table) Cost(model string, u Usage) (int64, error) {
	r, err := t.Rates(model)
	if err != nil {
		return 0, err
	}
	terms := [...]struct {
		field  string
		tokens int64
		rate   int64
	}{
		{"input_tokens", u.InputTokens, r.Input},
		{"output_tokens", u.OutputTokens, r.Output},
		{"cache_creation_5m_input_tokens", u.CacheCreation5mInputTokens, r.CacheWrite5m},
		{"cache_creation_1h_input_tokens", u.CacheCreation1hInputTokens, r.CacheWrite1h},
		{"cache_read_input_tokens", u.CacheReadInputTokens, r.CacheRead},
	}
	var total int64
	for _, term := range terms {
		if term.tokens < 0 {
			return 0, fmt.Errorf("pricing: model %q, %s = %d: %w: negative token count", model, term.field, term.tokens, ErrInvalidUsage)
		}
		// rates are never negative (the parser accepts no sign).
		if term.rate != 0 && term.tokens > math.MaxInt64/term.rate {
			return 0, &OverflowError{Model: model, Field: term.field}
		}
		part := term.tokens * term.rate
		if total > math.MaxInt64-part {
			return 0, &OverflowError{Model: model, Field: "total"}
		}
		total += part
	}
	return total, nil
}
