package fakeupstream

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Anthropic Messages API: SSE events as the real API sends them, the
// Message object, the error envelope and headers.

const anthropicDefaultModel = "claude-sonnet-4-5"

type anthropicCacheCreation struct {
	Ephemeral5m int `json:"ephemeral_5m_input_tokens"`
	Ephemeral1h int `json:"ephemeral_1h_input_tokens"`
}

type anthropicUsage struct {
	InputTokens              int                    `json:"input_tokens"`
	CacheCreationInputTokens int                    `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int                    `json:"cache_read_input_tokens"`
	CacheCreation            anthropicCacheCreation `json:"cache_creation"`
	OutputTokens             int                    `json:"output_tokens"`
	ServiceTier              string                 `json:"service_tier"`
}

// anthropicDeltaUsage is message_delta's usage: cumulative, with the input
// and cache figures repeated.
type anthropicDeltaUsage struct {
	InputTokens              int `json:"input_tokens"`
	CacheCreationInputTokens int `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int `json:"cache_read_input_tokens"`
	OutputTokens             int `json:"output_tokens"`
}

type anthropicText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// anthropicStartMessage is message_start's message (the stream puts the
// model first).
type anthropicStartMessage struct {
	Model        string          `json:"model"`
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Role         string          `json:"role"`
	Content      []anthropicText `json:"content"`
	StopReason   *string         `json:"stop_reason"`
	StopSequence *string         `json:"stop_sequence"`
	Usage        anthropicUsage  `json:"usage"`
}

type anthropicMessage struct {
	ID           string          `json:"id"`
	Type         string          `json:"type"`
	Role         string          `json:"role"`
	Model        string          `json:"model"`
	Content      []anthropicText `json:"content"`
	StopReason   *string         `json:"stop_reason"`
	StopSequence *string         `json:"stop_sequence"`
	Usage        anthropicUsage  `json:"usage"`
}

func (a answer) anthropicUsage(output int) anthropicUsage {
	return anthropicUsage{
		InputTokens:              a.usage.InputTokens,
		CacheCreationInputTokens: a.usage.CacheCreation(),
		CacheReadInputTokens:     a.usage.CacheRead,
		CacheCreation:            anthropicCacheCreation{a.usage.CacheCreation5m, a.usage.CacheCreation1h},
		OutputTokens:             output,
		ServiceTier:              "standard",
	}
}

func sseEvent(name string, data []byte) []byte {
	b := make([]byte, 0, len(name)+len(data)+16)
	b = append(b, "event: "...)
	b = append(b, name...)
	b = append(b, "\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

var anthropicPing = sseEvent("ping", []byte(`{"type": "ping"}`))

func anthropicPlan(sc Script, req Recorded) plan {
	ri := parseRequest(req.Body)
	model := ri.Model
	if model == "" {
		model = anthropicDefaultModel
	}
	a := resolve(sc, req, model, fmt.Sprintf("msg_01Fake%014d", req.Seq))
	h := anthropicHeaders(req.Seq)
	if sc.isError() {
		return anthropicErrorPlan(sc, h)
	}
	if !ri.Stream {
		h.Set("Content-Type", "application/json")
		stop := a.stop
		msg := anthropicMessage{
			ID: a.id, Type: "message", Role: "assistant", Model: a.model,
			Content:    []anthropicText{{"text", a.text}},
			StopReason: &stop, Usage: a.anthropicUsage(a.usage.OutputTokens),
		}
		return plan{status: http.StatusOK, header: h, events: [][]byte{compactJSON(msg)}}
	}
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	return plan{
		status:   http.StatusOK,
		header:   h,
		events:   anthropicEvents(a, sc.Pings),
		errEvent: anthropicStreamError(sc),
		stream:   true,
	}
}

func anthropicEvents(a answer, pings bool) [][]byte {
	ev := [][]byte{sseEvent("message_start", compactJSON(struct {
		Type    string                `json:"type"`
		Message anthropicStartMessage `json:"message"`
	}{"message_start", anthropicStartMessage{
		Model: a.model, ID: a.id, Type: "message", Role: "assistant",
		Content: []anthropicText{}, Usage: a.anthropicUsage(1),
	}}))}
	ev = append(ev, sseEvent("content_block_start",
		[]byte(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)))
	if pings {
		ev = append(ev, anthropicPing)
	}
	for i, c := range a.chunks {
		if pings && i > 0 {
			ev = append(ev, anthropicPing)
		}
		ev = append(ev, sseEvent("content_block_delta", compactJSON(struct {
			Type  string `json:"type"`
			Index int    `json:"index"`
			Delta struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"delta"`
		}{Type: "content_block_delta", Delta: struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{"text_delta", c}})))
	}
	ev = append(ev, sseEvent("content_block_stop", []byte(`{"type":"content_block_stop","index":0}`)))
	stop := a.stop
	ev = append(ev, sseEvent("message_delta", compactJSON(struct {
		Type  string `json:"type"`
		Delta struct {
			StopReason   *string `json:"stop_reason"`
			StopSequence *string `json:"stop_sequence"`
		} `json:"delta"`
		Usage anthropicDeltaUsage `json:"usage"`
	}{Type: "message_delta", Delta: struct {
		StopReason   *string `json:"stop_reason"`
		StopSequence *string `json:"stop_sequence"`
	}{StopReason: &stop}, Usage: anthropicDeltaUsage{
		InputTokens:              a.usage.InputTokens,
		CacheCreationInputTokens: a.usage.CacheCreation(),
		CacheReadInputTokens:     a.usage.CacheRead,
		OutputTokens:             a.usage.OutputTokens,
	}})))
	return append(ev, sseEvent("message_stop", []byte(`{"type":"message_stop"}`)))
}

// anthropicErrorTypes maps statuses to error types and default messages.
var anthropicErrorTypes = map[int][2]string{
	400: {"invalid_request_error", "Invalid request."},
	401: {"authentication_error", "invalid x-api-key"},
	402: {"billing_error", "Your credit balance is too low to access the Anthropic API."},
	403: {"permission_error", "Your API key does not have permission to use the specified resource."},
	404: {"not_found_error", "The requested resource could not be found."},
	413: {"request_too_large", "Request exceeds the maximum allowed number of bytes."},
	429: {"rate_limit_error", "This request would exceed your organization's rate limit. Please try again later."},
	500: {"api_error", "Internal server error"},
	504: {"timeout_error", "Request timed out"},
	529: {"overloaded_error", "Overloaded"},
}

func anthropicErrorFields(sc Script, status int, fallbackType string) (string, string) {
	typ, msg := sc.ErrorType, sc.ErrorMessage
	def, ok := anthropicErrorTypes[status]
	if !ok {
		def = [2]string{fallbackType, http.StatusText(status)}
	}
	if typ == "" {
		typ = def[0]
	}
	if msg == "" {
		if typ == def[0] {
			msg = def[1]
		} else {
			msg = typ
		}
	}
	return typ, msg
}

type anthropicErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

func anthropicErrorPlan(sc Script, h http.Header) plan {
	h.Set("Content-Type", "application/json")
	body := sc.ErrorBody
	if body == nil {
		typ, msg := anthropicErrorFields(sc, sc.Status, "api_error")
		body = compactJSON(struct {
			Type      string               `json:"type"`
			Error     anthropicErrorDetail `json:"error"`
			RequestID string               `json:"request_id"`
		}{"error", anthropicErrorDetail{typ, msg}, h.Get("Request-Id")})
	}
	return plan{status: sc.Status, header: h, events: [][]byte{body}}
}

// anthropicStreamError is the in-stream error event, overloaded_error by
// default, in exactly the bytes the API sends.
func anthropicStreamError(sc Script) []byte {
	if sc.ErrorBody != nil {
		return sseEvent("error", sc.ErrorBody)
	}
	typ, msg := anthropicErrorFields(sc, 529, "api_error")
	return sseEvent("error", compactJSON(struct {
		Type  string               `json:"type"`
		Error anthropicErrorDetail `json:"error"`
	}{"error", anthropicErrorDetail{typ, msg}}))
}

func anthropicCountPlan(sc Script, req Recorded) plan {
	h := anthropicHeaders(req.Seq)
	if sc.isError() {
		return anthropicErrorPlan(sc, h)
	}
	h.Set("Content-Type", "application/json")
	n := EstimateInputTokens(req.Body)
	if sc.Usage != nil {
		n = sc.Usage.TotalInput()
	}
	return plan{status: http.StatusOK, header: h,
		events: [][]byte{[]byte(`{"input_tokens":` + strconv.Itoa(n) + `}`)}}
}

// anthropicHeaders are the headers of every Anthropic response.
func anthropicHeaders(seq int) http.Header {
	h := http.Header{}
	h.Set("Request-Id", fmt.Sprintf("req_01Fake%014d", seq))
	h.Set("Anthropic-Organization-Id", "00000000-0000-4000-8000-00000000fa6e")
	reset := time.Now().Add(time.Second).UTC().Format(time.RFC3339)
	for _, l := range []struct {
		name  string
		limit int
		used  int
	}{
		{"requests", 4000, 1},
		{"input-tokens", 2000000, 0},
		{"output-tokens", 400000, 0},
		{"tokens", 2400000, 0},
	} {
		p := "Anthropic-Ratelimit-" + l.name
		h.Set(p+"-Limit", strconv.Itoa(l.limit))
		h.Set(p+"-Remaining", strconv.Itoa(l.limit-l.used))
		h.Set(p+"-Reset", reset)
	}
	return h
}
