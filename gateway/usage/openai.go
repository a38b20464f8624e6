package usage

import (
	"bytes"
	"encoding/json"
)

// OpenAI accumulates usage from an OpenAI Chat Completions stream (and
// compatible APIs). The zero value is ready to use.
//
// Mapping: InputTokens is prompt_tokens minus
// prompt_tokens_details.cached_tokens (OpenAI counts cached tokens inside
// prompt_tokens); CacheReadInputTokens is cached_tokens; OutputTokens is
// completion_tokens (reasoning tokens included). OpenAI reports no cache
// writes. Usage arrives only in the chunk with "choices":[] that
// stream_options.include_usage requests; Complete is set by it. A later
// usage chunk replaces an earlier one.
type OpenAI struct {
	u Usage
}

var done = []byte("[DONE]")

type openaiUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	PromptTokensDetails *struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

type openaiChunk struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *openaiUsage    `json:"usage"`
	Error json.RawMessage `json:"error"`
}

// Observe implements Accumulator.
func (o *OpenAI) Observe(raw []byte) EventInfo {
	data := bytes.TrimSpace(ParseEvent(raw).Data)
	if len(data) == 0 {
		return EventInfo{}
	}
	if bytes.Equal(data, done) {
		return EventInfo{Terminal: true}
	}
	// Content chunks carry "usage":null and "finish_reason":null: skip
	// them without decoding.
	if !anyKey(data, openaiKeys) {
		return EventInfo{}
	}
	var c openaiFields
	if !c.decode(data) {
		return EventInfo{}
	}
	if name, isErr := openaiErrorName(c.errRaw); isErr {
		o.u.ErrorType = orDefault(decodeString(name.raw, o.u.ErrorType), "error")
		return EventInfo{Terminal: true}
	}
	if len(c.id.raw) > 0 {
		o.u.ID = decodeString(c.id.raw, o.u.ID)
	}
	if len(c.model.raw) > 0 {
		o.u.Model = decodeString(c.model.raw, o.u.Model)
	}
	if r := c.choices.lastReason(); len(r.raw) > 0 {
		o.u.StopReason = decodeString(r.raw, o.u.StopReason)
	}
	if !c.usage.present {
		return EventInfo{}
	}
	var cached int64
	if c.usage.details {
		cached = c.usage.cached
	}
	o.setUsage(c.usage.prompt, c.usage.completion, cached)
	return EventInfo{UsageOnly: c.choices.n == 0}
}

func (o *OpenAI) apply(u *openaiUsage) {
	var cached int64
	if u.PromptTokensDetails != nil {
		cached = u.PromptTokensDetails.CachedTokens
	}
	o.setUsage(u.PromptTokens, u.CompletionTokens, cached)
}

func (o *OpenAI) setUsage(prompt, completion, cached int64) {
	cached = nonNegative(cached)
	o.u.InputTokens = nonNegative(prompt - cached)
	o.u.CacheReadInputTokens = cached
	o.u.OutputTokens = nonNegative(completion)
	o.u.Complete = true
}

// Usage implements Accumulator.
func (o *OpenAI) Usage() Usage { return o.u }

// openaiErrorType names an "error" member: its type, else its code, else
// "error". Compatible providers also send a bare string. Absent or null
// yields "".
func openaiErrorType(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var e struct {
		Type string          `json:"type"`
		Code json.RawMessage `json:"code"`
	}
	if json.Unmarshal(raw, &e) != nil {
		return "error"
	}
	if e.Type != "" {
		return e.Type
	}
	var code string
	if json.Unmarshal(e.Code, &code) == nil && code != "" {
		return code
	}
	return "error"
}

// OpenAIBody extracts usage from a non-streaming ChatCompletion or an
// OpenAI error envelope.
func OpenAIBody(body []byte) (Usage, error) {
	var c openaiChunk
	if err := json.Unmarshal(body, &c); err != nil {
		return Usage{}, err
	}
	var o OpenAI
	o.u.ID, o.u.Model = c.ID, c.Model
	for _, ch := range c.Choices {
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			o.u.StopReason = *ch.FinishReason
		}
	}
	if c.Usage != nil {
		o.apply(c.Usage)
	}
	o.u.ErrorType = openaiErrorType(c.Error)
	return o.u, nil
}
