package fakeupstream

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// OpenAI Chat Completions (and compatibles): chat.completion.chunk data
// lines ending with [DONE], the usage chunk only on request, the error
// envelope and headers.

const openaiDefaultModel = "gpt-4o-mini"

var openaiDone = []byte("data: [DONE]\n\n")

type openaiUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int `json:"cached_tokens"`
		AudioTokens  int `json:"audio_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails struct {
		ReasoningTokens          int `json:"reasoning_tokens"`
		AudioTokens              int `json:"audio_tokens"`
		AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
		RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
	} `json:"completion_tokens_details"`
}

func (a answer) openaiUsage() openaiUsage {
	var u openaiUsage
	u.PromptTokens = a.usage.TotalInput()
	u.CompletionTokens = a.usage.OutputTokens
	u.TotalTokens = u.PromptTokens + u.CompletionTokens
	u.PromptTokensDetails.CachedTokens = a.usage.CacheRead
	return u
}

type openaiChunkChoice struct {
	Index        int             `json:"index"`
	Delta        json.RawMessage `json:"delta"`
	Logprobs     *struct{}       `json:"logprobs"`
	FinishReason *string         `json:"finish_reason"`
}

type openaiChunk struct {
	ID                string              `json:"id"`
	Object            string              `json:"object"`
	Created           int64               `json:"created"`
	Model             string              `json:"model"`
	ServiceTier       string              `json:"service_tier"`
	SystemFingerprint string              `json:"system_fingerprint"`
	Choices           []openaiChunkChoice `json:"choices"`
	Usage             json.RawMessage     `json:"usage,omitempty"` // "null", the usage, or absent
}

type openaiMessage struct {
	Role        string   `json:"role"`
	Content     string   `json:"content"`
	Refusal     *string  `json:"refusal"`
	Annotations []string `json:"annotations"`
}

type openaiChoice struct {
	Index        int           `json:"index"`
	Message      openaiMessage `json:"message"`
	Logprobs     *struct{}     `json:"logprobs"`
	FinishReason string        `json:"finish_reason"`
}

type openaiCompletion struct {
	ID                string         `json:"id"`
	Object            string         `json:"object"`
	Created           int64          `json:"created"`
	Model             string         `json:"model"`
	Choices           []openaiChoice `json:"choices"`
	Usage             openaiUsage    `json:"usage"`
	ServiceTier       string         `json:"service_tier"`
	SystemFingerprint string         `json:"system_fingerprint"`
}

func openaiFinishReason(stop string) string {
	switch stop {
	case "end_turn", "stop_sequence", "":
		return "stop"
	case "max_tokens":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return stop
}

// openaiCreated is the deterministic "created" time of answer seq.
func openaiCreated(seq int) int64 { return 1750000000 + int64(seq) }

func openaiPlan(sc Script, req Recorded) plan {
	ri := parseRequest(req.Body)
	model := ri.Model
	if model == "" {
		model = openaiDefaultModel
	}
	a := resolve(sc, req, model, fmt.Sprintf("chatcmpl-Fake%019d", req.Seq))
	h := openaiHeaders(req.Seq)
	if sc.isError() {
		return openaiErrorPlan(sc, h)
	}
	if !ri.Stream {
		h.Set("Content-Type", "application/json")
		c := openaiCompletion{ID: a.id, Object: "chat.completion", Created: openaiCreated(a.seq), Model: a.model,
			Usage: a.openaiUsage(), ServiceTier: "default", SystemFingerprint: "fp_fake0001"}
		c.Choices = []openaiChoice{{
			Message:      openaiMessage{Role: "assistant", Content: a.text, Annotations: []string{}},
			FinishReason: openaiFinishReason(a.stop),
		}}
		return plan{status: http.StatusOK, header: h, events: [][]byte{indentJSON(c, "  ")}}
	}
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	return plan{
		status:   http.StatusOK,
		header:   h,
		events:   openaiEvents(a, ri.includeUsage()),
		errEvent: openaiStreamError(sc),
		stream:   true,
	}
}

func openaiEvents(a answer, includeUsage bool) [][]byte {
	chunk := func(delta string, finish *string) []byte {
		c := openaiChunk{ID: a.id, Object: "chat.completion.chunk", Created: openaiCreated(a.seq), Model: a.model,
			ServiceTier: "default", SystemFingerprint: "fp_fake0001",
			Choices: []openaiChunkChoice{{Delta: json.RawMessage(delta), FinishReason: finish}}}
		if includeUsage {
			c.Usage = json.RawMessage("null")
		}
		return dataEvent(compactJSON(c))
	}
	ev := [][]byte{chunk(`{"role":"assistant","content":"","refusal":null}`, nil)}
	for _, c := range a.chunks {
		ev = append(ev, chunk(string(compactJSON(struct {
			Content string `json:"content"`
		}{c})), nil))
	}
	finish := openaiFinishReason(a.stop)
	ev = append(ev, chunk(`{}`, &finish))
	if includeUsage {
		ev = append(ev, dataEvent(compactJSON(openaiChunk{ID: a.id, Object: "chat.completion.chunk",
			Created: openaiCreated(a.seq), Model: a.model, ServiceTier: "default", SystemFingerprint: "fp_fake0001",
			Choices: []openaiChunkChoice{}, Usage: compactJSON(a.openaiUsage())})))
	}
	return append(ev, openaiDone)
}

func dataEvent(data []byte) []byte {
	b := make([]byte, 0, len(data)+8)
	b = append(b, "data: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

type openaiErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// openaiErrorTypes maps statuses to type, code and default message.
var openaiErrorTypes = map[int][3]string{
	400: {"invalid_request_error", "", "Invalid request."},
	401: {"invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-fake***. You can find your API key at https://platform.openai.com/account/api-keys."},
	403: {"invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported"},
	404: {"invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."},
	429: {"requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."},
	500: {"server_error", "", "The server had an error while processing your request. Sorry about that!"},
	503: {"server_error", "", "The engine is currently overloaded, please try again later."},
}

func openaiErrorDetailFor(sc Script, status int) openaiErrorDetail {
	def, ok := openaiErrorTypes[status]
	if !ok {
		def = [3]string{"server_error", "", http.StatusText(status)}
	}
	d := openaiErrorDetail{Type: sc.ErrorType, Message: sc.ErrorMessage}
	if d.Type == "" {
		d.Type = def[0]
		if def[1] != "" {
			code := def[1]
			d.Code = &code
		}
	}
	if d.Message == "" {
		d.Message = def[2]
	}
	return d
}

func openaiErrorPlan(sc Script, h http.Header) plan {
	h.Set("Content-Type", "application/json; charset=utf-8")
	body := sc.ErrorBody
	if body == nil {
		body = indentJSON(struct {
			Error openaiErrorDetail `json:"error"`
		}{openaiErrorDetailFor(sc, sc.Status)}, "    ")
	}
	return plan{status: sc.Status, header: h, events: [][]byte{body}}
}

// openaiStreamError is the data chunk with an "error" key that ends a
// stream (a server_error by default).
func openaiStreamError(sc Script) []byte {
	if sc.ErrorBody != nil {
		return dataEvent(sc.ErrorBody)
	}
	return dataEvent(compactJSON(struct {
		Error openaiErrorDetail `json:"error"`
	}{openaiErrorDetailFor(sc, 500)}))
}

// openaiHeaders are the headers of every OpenAI response.
func openaiHeaders(seq int) http.Header {
	h := http.Header{}
	h.Set("X-Request-Id", fmt.Sprintf("req_fake%024d", seq))
	h.Set("Openai-Processing-Ms", "1")
	h.Set("Openai-Version", "2020-10-01")
	h.Set("X-Ratelimit-Limit-Requests", "10000")
	h.Set("X-Ratelimit-Remaining-Requests", "9999")
	h.Set("X-Ratelimit-Reset-Requests", "6ms")
	h.Set("X-Ratelimit-Limit-Tokens", strconv.Itoa(30000000))
	h.Set("X-Ratelimit-Remaining-Tokens", strconv.Itoa(30000000))
	h.Set("X-Ratelimit-Reset-Tokens", "0s")
	return h
}
