package usage

import "fmt"

// Usage is what one response consumed, in provider-neutral terms. Token
// figures are the provider's own counts; the mapping per provider is
// documented on Anthropic, OpenAI and Gemini.
type Usage struct {
	// InputTokens are input tokens billed at the base rate: neither written
	// to nor read from a prompt cache.
	InputTokens int64
	// OutputTokens are generated tokens, reasoning/thinking included.
	OutputTokens int64
	// CacheCreationInputTokens were written to the prompt cache; the two
	// fields after it split them by lifetime (priced 1.25× and 2×) and
	// always sum to it.
	CacheCreationInputTokens   int64
	CacheCreation5mInputTokens int64
	CacheCreation1hInputTokens int64
	// CacheReadInputTokens were served from the prompt cache.
	CacheReadInputTokens int64

	// Complete says the provider's final usage report was seen, so the
	// figures are not a partial count from a cut-off stream.
	Complete bool
	// ErrorType names an error the provider reported in the stream or body
	// (Anthropic error.type such as "overloaded_error", OpenAI error.type or
	// code, Gemini error.status); empty when none.
	ErrorType string

	Model      string // model as reported by the provider
	ID         string // provider message/response id
	StopReason string // stop_reason / finish_reason / finishReason
}

// TotalInputTokens is every input token, whatever its cache status.
func (u Usage) TotalInputTokens() int64 {
	return u.InputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

// EventInfo is what an accumulator learned about one event that matters to
// the proxy loop.
type EventInfo struct {
	// UsageOnly marks the OpenAI chunk with empty choices and non-null usage.
	// When the gateway inserted include_usage itself, the client did not ask
	// for this chunk and the proxy drops it.
	UsageOnly bool
	// Terminal marks an event after which the provider sends nothing more of
	// value: Anthropic message_stop, OpenAI [DONE], any error event.
	Terminal bool
}

// Accumulator consumes the complete raw events of one stream, in order.
type Accumulator interface {
	Observe(event []byte) EventInfo
	Usage() Usage
}

// Provider selects a wire format.
type Provider uint8

const (
	ProviderAnthropic Provider = iota + 1
	ProviderOpenAI             // OpenAI Chat Completions and compatible APIs
	ProviderGemini
)

func (p Provider) String() string {
	switch p {
	case ProviderAnthropic:
		return "anthropic"
	case ProviderOpenAI:
		return "openai"
	case ProviderGemini:
		return "gemini"
	}
	return fmt.Sprintf("Provider(%d)", uint8(p))
}

// NewAccumulator returns an empty accumulator for p's stream format.
func NewAccumulator(p Provider) (Accumulator, error) {
	switch p {
	case ProviderAnthropic:
		return new(Anthropic), nil
	case ProviderOpenAI:
		return new(OpenAI), nil
	case ProviderGemini:
		return new(Gemini), nil
	}
	return nil, fmt.Errorf("usage: unknown provider %v", p)
}

// FromBody extracts usage from a whole non-streaming response body of p,
// success or error envelope. It fails only when body is not JSON of the
// expected shape.
func FromBody(p Provider, body []byte) (Usage, error) {
	switch p {
	case ProviderAnthropic:
		return AnthropicBody(body)
	case ProviderOpenAI:
		return OpenAIBody(body)
	case ProviderGemini:
		return GeminiBody(body)
	}
	return Usage{}, fmt.Errorf("usage: unknown provider %v", p)
}

func nonNegative(n int64) int64 { return max(n, 0) }
