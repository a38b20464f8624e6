package usage

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Gemini accumulates usage from a Gemini streamGenerateContent?alt=sse
// stream. The zero value is ready to use.
//
// Mapping: InputTokens is promptTokenCount minus cachedContentTokenCount
// (Gemini counts cached tokens inside promptTokenCount) plus
// toolUsePromptTokenCount (tool results the model read, billed as input
// but not part of promptTokenCount); CacheReadInputTokens is
// cachedContentTokenCount; OutputTokens is candidatesTokenCount plus
// thoughtsTokenCount (thinking is billed as output). Gemini reports no
// cache writes in a response.
//
// usageMetadata figures are running totals: the last one wins. The stream
// has no end sentinel, so Complete is set once both a usageMetadata and a
// finishReason have been seen (the final chunk usually has both; some
// streams put usage alone in a chunk after it).
type Gemini struct {
	u         Usage
	sawUsage  bool
	sawFinish bool
}

type geminiUsage struct {
	PromptTokenCount        int64 `json:"promptTokenCount"`
	CachedContentTokenCount int64 `json:"cachedContentTokenCount"`
	CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
	ToolUsePromptTokenCount int64 `json:"toolUsePromptTokenCount"`
}

type geminiResponse struct {
	Candidates []struct {
		FinishReason string `json:"finishReason"`
	} `json:"candidates"`
	UsageMetadata *geminiUsage `json:"usageMetadata"`
	ModelVersion  string       `json:"modelVersion"`
	ResponseID    string       `json:"responseId"`
	Error         *struct {
		Status string `json:"status"`
	} `json:"error"`
}

// Observe implements Accumulator.
func (g *Gemini) Observe(raw []byte) EventInfo {
	data := ParseEvent(raw).Data
	if !anyKey(data, geminiKeys) {
		return EventInfo{}
	}
	var r geminiFields
	if !r.decode(data) {
		return EventInfo{}
	}
	return g.addFields(&r)
}

func (g *Gemini) add(r *geminiResponse) EventInfo {
	if r.Error != nil {
		g.u.ErrorType = orDefault(r.Error.Status, "error")
		return EventInfo{Terminal: true}
	}
	g.u.Model = orDefault(r.ModelVersion, g.u.Model)
	g.u.ID = orDefault(r.ResponseID, g.u.ID)
	for _, c := range r.Candidates {
		if c.FinishReason != "" {
			g.u.StopReason = c.FinishReason
			g.sawFinish = true
		}
	}
	if r.UsageMetadata != nil {
		g.setUsage(r.UsageMetadata)
	}
	g.u.Complete = g.sawUsage && g.sawFinish
	return EventInfo{}
}

func (g *Gemini) setUsage(m *geminiUsage) {
	cached := nonNegative(m.CachedContentTokenCount)
	g.u.InputTokens = nonNegative(m.PromptTokenCount-cached) + nonNegative(m.ToolUsePromptTokenCount)
	g.u.CacheReadInputTokens = cached
	g.u.OutputTokens = nonNegative(m.CandidatesTokenCount) + nonNegative(m.ThoughtsTokenCount)
	g.sawUsage = true
}

// Usage implements Accumulator.
func (g *Gemini) Usage() Usage { return g.u }

// GeminiBody extracts usage from a generateContent response, a
// streamGenerateContent response read whole without alt=sse (a JSON array
// of responses; the last usageMetadata wins), or a Gemini error envelope.
func GeminiBody(body []byte) (Usage, error) {
	var rs []geminiResponse
	switch b := bytes.TrimLeft(body, " \t\r\n"); {
	case len(b) > 0 && b[0] == '[':
		if err := json.Unmarshal(b, &rs); err != nil {
			return Usage{}, err
		}
	case len(b) > 0 && b[0] == '{':
		rs = make([]geminiResponse, 1)
		if err := json.Unmarshal(b, &rs[0]); err != nil {
			return Usage{}, err
		}
	default:
		return Usage{}, errors.New("usage: Gemini body is neither an object nor an array")
	}
	var g Gemini
	for i := range rs {
		g.add(&rs[i])
	}
	// A whole body is final by construction: usage present means complete.
	g.u.Complete = g.sawUsage
	return g.u, nil
}
