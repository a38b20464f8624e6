package usage

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// The encoding/json observers as they were before the walker replaced
// them, kept verbatim (with their own copies of ParseEvent and the
// pre-filter) as the reference that FuzzObserveDifferential holds the
// production observers to.

type refAnthropic struct {
	u         Usage
	split5m   int64
	split1h   int64
	haveSplit bool
}

type refOptInt struct {
	v   int64
	set bool
}

func (o *refOptInt) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*o = refOptInt{}
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return errNotInt64
	}
	*o = refOptInt{v: v, set: true}
	return nil
}

type refAnthropicUsage struct {
	InputTokens              refOptInt `json:"input_tokens"`
	CacheCreationInputTokens refOptInt `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     refOptInt `json:"cache_read_input_tokens"`
	OutputTokens             refOptInt `json:"output_tokens"`
	CacheCreation            *struct {
		Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
}

func (a *refAnthropic) Observe(raw []byte) EventInfo {
	ev := refParseEvent(raw)
	name := ev.Name
	if len(name) == 0 && refHasKey(ev.Data, keyType) {
		var t struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(ev.Data, &t) == nil {
			name = []byte(t.Type)
		}
	}
	switch string(name) {
	case "message_start":
		var m struct {
			Message struct {
				ID    string             `json:"id"`
				Model string             `json:"model"`
				Usage *refAnthropicUsage `json:"usage"`
			} `json:"message"`
		}
		if json.Unmarshal(ev.Data, &m) != nil {
			return EventInfo{}
		}
		a.u.ID, a.u.Model = m.Message.ID, m.Message.Model
		if m.Message.Usage != nil {
			a.apply(m.Message.Usage)
		}
	case "message_delta":
		var m struct {
			Delta struct {
				StopReason *string `json:"stop_reason"`
			} `json:"delta"`
			Usage *refAnthropicUsage `json:"usage"`
		}
		if json.Unmarshal(ev.Data, &m) != nil {
			return EventInfo{}
		}
		if m.Delta.StopReason != nil {
			a.u.StopReason = *m.Delta.StopReason
		}
		if m.Usage != nil {
			a.apply(m.Usage)
			a.u.Complete = true
		}
	case "message_stop":
		return EventInfo{Terminal: true}
	case "error":
		var m struct {
			Error struct {
				Type string `json:"type"`
			} `json:"error"`
		}
		_ = json.Unmarshal(ev.Data, &m)
		a.u.ErrorType = orDefault(m.Error.Type, "error")
		return EventInfo{Terminal: true}
	}
	return EventInfo{}
}

func (a *refAnthropic) apply(u *refAnthropicUsage) {
	set := func(dst *int64, src refOptInt) {
		if src.set {
			*dst = nonNegative(src.v)
		}
	}
	set(&a.u.InputTokens, u.InputTokens)
	set(&a.u.CacheCreationInputTokens, u.CacheCreationInputTokens)
	set(&a.u.CacheReadInputTokens, u.CacheReadInputTokens)
	set(&a.u.OutputTokens, u.OutputTokens)
	if u.CacheCreation != nil {
		a.split5m = nonNegative(u.CacheCreation.Ephemeral5m)
		a.split1h = nonNegative(u.CacheCreation.Ephemeral1h)
		a.haveSplit = true
	}
}

func (a *refAnthropic) Usage() Usage {
	u := a.u
	total := u.CacheCreationInputTokens
	switch {
	case !a.haveSplit:
		u.CacheCreation5mInputTokens, u.CacheCreation1hInputTokens = total, 0
	case a.split5m+a.split1h > total:
		u.CacheCreationInputTokens = a.split5m + a.split1h
		u.CacheCreation5mInputTokens, u.CacheCreation1hInputTokens = a.split5m, a.split1h
	default:
		u.CacheCreation5mInputTokens, u.CacheCreation1hInputTokens = total-a.split1h, a.split1h
	}
	return u
}

type refOpenAI struct{ u Usage }

type refOpenAIChunk struct {
	ID      string `json:"id"`
	Model   string `json:"model"`
	Choices []struct {
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens        int64 `json:"prompt_tokens"`
		CompletionTokens    int64 `json:"completion_tokens"`
		PromptTokensDetails *struct {
			CachedTokens int64 `json:"cached_tokens"`
		} `json:"prompt_tokens_details"`
	} `json:"usage"`
	Error json.RawMessage `json:"error"`
}

func (o *refOpenAI) Observe(raw []byte) EventInfo {
	data := bytes.TrimSpace(refParseEvent(raw).Data)
	if len(data) == 0 {
		return EventInfo{}
	}
	if bytes.Equal(data, []byte("[DONE]")) {
		return EventInfo{Terminal: true}
	}
	if !refHasNonNullKey(data, keyUsage) && !refHasNonNullKey(data, keyFinishReason) && !refHasKey(data, keyError) {
		return EventInfo{}
	}
	var c refOpenAIChunk
	if json.Unmarshal(data, &c) != nil {
		return EventInfo{}
	}
	if t := refOpenAIErrorType(c.Error); t != "" {
		o.u.ErrorType = t
		return EventInfo{Terminal: true}
	}
	o.u.ID = orDefault(c.ID, o.u.ID)
	o.u.Model = orDefault(c.Model, o.u.Model)
	for _, ch := range c.Choices {
		if ch.FinishReason != nil && *ch.FinishReason != "" {
			o.u.StopReason = *ch.FinishReason
		}
	}
	if c.Usage == nil {
		return EventInfo{}
	}
	var cached int64
	if c.Usage.PromptTokensDetails != nil {
		cached = nonNegative(c.Usage.PromptTokensDetails.CachedTokens)
	}
	o.u.InputTokens = nonNegative(c.Usage.PromptTokens - cached)
	o.u.CacheReadInputTokens = cached
	o.u.OutputTokens = nonNegative(c.Usage.CompletionTokens)
	o.u.Complete = true
	return EventInfo{UsageOnly: len(c.Choices) == 0}
}

func (o *refOpenAI) Usage() Usage { return o.u }

func refOpenAIErrorType(raw json.RawMessage) string {
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

type refGemini struct {
	u         Usage
	sawUsage  bool
	sawFinish bool
}

type refGeminiResponse struct {
	Candidates []struct {
		FinishReason string `json:"finishReason"`
	} `json:"candidates"`
	UsageMetadata *struct {
		PromptTokenCount        int64 `json:"promptTokenCount"`
		CachedContentTokenCount int64 `json:"cachedContentTokenCount"`
		CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
		ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
		ToolUsePromptTokenCount int64 `json:"toolUsePromptTokenCount"`
	} `json:"usageMetadata"`
	ModelVersion string `json:"modelVersion"`
	ResponseID   string `json:"responseId"`
	Error        *struct {
		Status string `json:"status"`
	} `json:"error"`
}

func (g *refGemini) Observe(raw []byte) EventInfo {
	data := refParseEvent(raw).Data
	if !refHasKey(data, keyUsageMetadata) && !refHasKey(data, keyFinishReasonG) && !refHasKey(data, keyError) {
		return EventInfo{}
	}
	var r refGeminiResponse
	if json.Unmarshal(data, &r) != nil {
		return EventInfo{}
	}
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
	if m := r.UsageMetadata; m != nil {
		cached := nonNegative(m.CachedContentTokenCount)
		g.u.InputTokens = nonNegative(m.PromptTokenCount-cached) + nonNegative(m.ToolUsePromptTokenCount)
		g.u.CacheReadInputTokens = cached
		g.u.OutputTokens = nonNegative(m.CandidatesTokenCount) + nonNegative(m.ThoughtsTokenCount)
		g.sawUsage = true
	}
	g.u.Complete = g.sawUsage && g.sawFinish
	return EventInfo{}
}

func (g *refGemini) Usage() Usage { return g.u }

func refParseEvent(raw []byte) Event {
	var ev Event
	raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))
	dataLines := 0
	for len(raw) > 0 {
		line, rest := refCutLine(raw)
		raw = rest
		if len(line) == 0 {
			break
		}
		if line[0] == ':' {
			continue
		}
		name, value := line, []byte(nil)
		if k := bytes.IndexByte(line, ':'); k >= 0 {
			name, value = line[:k], line[k+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(name) {
		case "event":
			ev.Name = value
		case "data":
			dataLines++
			if dataLines == 1 {
				ev.Data = value
			} else {
				if dataLines == 2 {
					ev.Data = append([]byte(nil), ev.Data...)
				}
				ev.Data = append(append(ev.Data, '\n'), value...)
			}
		}
	}
	return ev
}

func refCutLine(b []byte) (line, rest []byte) {
	end := bytes.IndexByte(b, '\n')
	if end < 0 {
		end = len(b)
	}
	if cr := bytes.IndexByte(b[:end], '\r'); cr >= 0 {
		if cr+1 < len(b) && b[cr+1] == '\n' {
			return b[:cr], b[cr+2:]
		}
		return b[:cr], b[cr+1:]
	}
	if end == len(b) {
		return b, nil
	}
	return b[:end], b[end+1:]
}

func refHasKey(data, quoted []byte) bool        { return refFindKey(data, quoted, false) }
func refHasNonNullKey(data, quoted []byte) bool { return refFindKey(data, quoted, true) }

func refFindKey(data, quoted []byte, nonNull bool) bool {
	for off := 0; ; {
		k := bytes.Index(data[off:], quoted)
		if k < 0 {
			return false
		}
		i := refSkipSpace(data, off+k+len(quoted))
		off += k + len(quoted)
		if i >= len(data) || data[i] != ':' {
			continue
		}
		i = refSkipSpace(data, i+1)
		if i >= len(data) {
			return false
		}
		if !nonNull || data[i] != 'n' {
			return true
		}
	}
}

func refSkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}
