package fakeupstream

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Gemini generateContent / streamGenerateContent: GenerateContentResponse
// objects with running usageMetadata, as SSE (alt=sse, CRLF-terminated
// events, no end sentinel) or as a streamed JSON array, and the
// google.rpc error envelope.

type geminiPart struct {
	Text string `json:"text"`
}

type geminiContent struct {
	Parts []geminiPart `json:"parts"`
	Role  string       `json:"role"`
}

type geminiCandidate struct {
	Content      geminiContent `json:"content"`
	FinishReason string        `json:"finishReason,omitempty"`
	Index        int           `json:"index"`
}

type geminiModality struct {
	Modality   string `json:"modality"`
	TokenCount int    `json:"tokenCount"`
}

type geminiUsage struct {
	PromptTokenCount        int              `json:"promptTokenCount"`
	CandidatesTokenCount    int              `json:"candidatesTokenCount,omitempty"`
	TotalTokenCount         int              `json:"totalTokenCount"`
	CachedContentTokenCount int              `json:"cachedContentTokenCount,omitempty"`
	PromptTokensDetails     []geminiModality `json:"promptTokensDetails"`
}

type geminiResponse struct {
	Candidates    []geminiCandidate `json:"candidates"`
	UsageMetadata geminiUsage       `json:"usageMetadata"`
	ModelVersion  string            `json:"modelVersion"`
	ResponseID    string            `json:"responseId"`
}

func geminiFinishReason(stop string) string {
	switch stop {
	case "max_tokens":
		return "MAX_TOKENS"
	case "refusal":
		return "SAFETY"
	}
	return "STOP"
}

// geminiModel is the {model} of /v1beta/models/{model}:method.
func geminiModel(path string) string {
	_, rest, _ := strings.Cut(path, "/models/")
	m, _, _ := strings.Cut(rest, ":")
	return m
}

func (a answer) geminiChunk(text string, candidates int, last bool) []byte {
	c := geminiCandidate{Content: geminiContent{Parts: []geminiPart{{text}}, Role: "model"}}
	if last {
		c.FinishReason = geminiFinishReason(a.stop)
	}
	prompt := a.usage.TotalInput()
	return compactJSON(geminiResponse{
		Candidates: []geminiCandidate{c},
		UsageMetadata: geminiUsage{
			PromptTokenCount:        prompt,
			CandidatesTokenCount:    candidates,
			TotalTokenCount:         prompt + candidates,
			CachedContentTokenCount: a.usage.CacheRead,
			PromptTokensDetails:     []geminiModality{{"TEXT", prompt}},
		},
		ModelVersion: a.model,
		ResponseID:   a.id,
	})
}

func geminiPlan(sc Script, req Recorded) plan {
	a := resolve(sc, req, geminiModel(req.Path), fmt.Sprintf("fakeResp%016d", req.Seq))
	h := http.Header{}
	if sc.isError() {
		return geminiErrorPlan(sc, h)
	}
	if !strings.HasSuffix(req.Path, ":streamGenerateContent") {
		h.Set("Content-Type", "application/json; charset=UTF-8")
		return plan{status: http.StatusOK, header: h,
			events: [][]byte{a.geminiChunk(a.text, a.usage.OutputTokens, true)}}
	}
	q, _ := url.ParseQuery(req.RawQuery)
	sse := q.Get("alt") == "sse"
	var chunks [][]byte
	prefix := ""
	for i, c := range a.chunks {
		prefix += c
		last := i == len(a.chunks)-1
		n := min(Tokens(prefix), a.usage.OutputTokens)
		if last {
			n = a.usage.OutputTokens
		}
		chunks = append(chunks, a.geminiChunk(c, n, last))
	}
	p := plan{status: http.StatusOK, header: h, stream: true}
	errObj := geminiStreamError(sc)
	if sse {
		h.Set("Content-Type", "text/event-stream")
		for _, c := range chunks {
			p.events = append(p.events, geminiSSE(c))
		}
		p.errEvent = geminiSSE(errObj)
		return p
	}
	h.Set("Content-Type", "application/json; charset=UTF-8")
	for i, c := range chunks {
		sep := "\r\n,\r\n"
		if i == 0 {
			sep = "["
		}
		p.events = append(p.events, append([]byte(sep), c...))
	}
	p.events = append(p.events, []byte("]"))
	sep := "\r\n,\r\n"
	if sc.After <= 0 {
		sep = "["
	}
	p.errEvent = append(append([]byte(sep), errObj...), ']')
	return p
}

func geminiSSE(data []byte) []byte {
	b := make([]byte, 0, len(data)+10)
	b = append(b, "data: "...)
	b = append(b, data...)
	return append(b, "\r\n\r\n"...)
}

// geminiStatuses maps HTTP statuses to google.rpc codes and default messages.
var geminiStatuses = map[int][2]string{
	400: {"INVALID_ARGUMENT", "Request contains an invalid argument."},
	401: {"UNAUTHENTICATED", "Request had invalid authentication credentials."},
	403: {"PERMISSION_DENIED", "The caller does not have permission"},
	404: {"NOT_FOUND", "Requested entity was not found."},
	429: {"RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."},
	500: {"INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"},
	503: {"UNAVAILABLE", "The model is overloaded. Please try again later."},
	504: {"DEADLINE_EXCEEDED", "Deadline expired before operation could complete."},
}

type geminiErrorDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

func geminiErrorFor(sc Script, status int) geminiErrorDetail {
	def, ok := geminiStatuses[status]
	if !ok {
		def = geminiStatuses[503]
	}
	d := geminiErrorDetail{Code: status, Status: sc.ErrorType, Message: sc.ErrorMessage}
	if d.Status == "" {
		d.Status = def[0]
	}
	if d.Message == "" {
		d.Message = def[1]
	}
	return d
}

func geminiErrorPlan(sc Script, h http.Header) plan {
	h.Set("Content-Type", "application/json; charset=UTF-8")
	body := sc.ErrorBody
	if body == nil {
		body = indentJSON(struct {
			Error geminiErrorDetail `json:"error"`
		}{geminiErrorFor(sc, sc.Status)}, "  ")
	}
	return plan{status: sc.Status, header: h, events: [][]byte{body}}
}

// geminiStreamError is the error object sent inside a stream (503
// UNAVAILABLE by default).
func geminiStreamError(sc Script) []byte {
	if sc.ErrorBody != nil {
		return sc.ErrorBody
	}
	return compactJSON(struct {
		Error geminiErrorDetail `json:"error"`
	}{geminiErrorFor(sc, 503)})
}
