package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// mockTransport is the `mock` provider: it answers Anthropic Messages
// (and count_tokens), OpenAI Chat Completions and Gemini generateContent
// requests in-process, with no socket, in each provider's own wire format:
// a short generated answer, streamed as the real APIs stream it, with
// realistic usage (input ceil(body bytes/4), output one token per word).
// OpenAI streams carry the usage chunk only when include_usage asks for
// it, as OpenAI's do, so the gateway's edit is exercised too.
type mockTransport struct{}

var mockSeq atomic.Int64

const mockText = "Hello from holdfast's mock provider! Configure a real provider under providers: in the config to reach a model."

type mockRequest struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func (mockTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	var mr mockRequest
	_ = json.Unmarshal(body, &mr)
	seq := mockSeq.Add(1)
	in := int64((len(body) + 3) / 4)
	words := strings.SplitAfter(mockText, " ")
	out := int64(len(words))
	h := http.Header{}
	var status = http.StatusOK
	var events [][]byte
	path := req.URL.Path
	switch {
	case path == "/v1/messages/count_tokens":
		h.Set("Content-Type", "application/json")
		h.Set("Request-Id", fmt.Sprintf("req_mock%012d", seq))
		events = [][]byte{[]byte(`{"input_tokens":` + strconv.FormatInt(in, 10) + `}`)}
	case path == "/v1/messages":
		h.Set("Request-Id", fmt.Sprintf("req_mock%012d", seq))
		events = mockAnthropic(mr, seq, words, in, out, h)
	case path == "/v1/chat/completions":
		h.Set("X-Request-Id", fmt.Sprintf("req_mock%012d", seq))
		events = mockOpenAI(mr, seq, words, in, out, h)
	case strings.HasPrefix(path, geminiPrefix) && (strings.HasSuffix(path, ":generateContent") || strings.HasSuffix(path, ":streamGenerateContent")):
		model := strings.TrimPrefix(path, geminiPrefix)
		model = model[:strings.LastIndexByte(model, ':')]
		stream := strings.HasSuffix(path, ":streamGenerateContent")
		events = mockGemini(model, stream, req.URL.Query().Get("alt") == "sse", seq, words, in, out, h)
	default:
		status = http.StatusNotFound
		h.Set("Content-Type", "application/json")
		events = [][]byte{[]byte(`{"error":{"message":"mock provider: no such route","type":"not_found_error"}}`)}
	}
	all := bytes.Join(events, nil)
	length := int64(-1)
	if !isSSE(h.Get("Content-Type")) {
		length = int64(len(all))
		h.Set("Content-Length", strconv.Itoa(len(all)))
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), StatusCode: status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(all)), ContentLength: length,
		Request: req,
	}, nil
}

func mockJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func sse(name string, data []byte) []byte {
	var b bytes.Buffer
	if name != "" {
		b.WriteString("event: " + name + "\n")
	}
	b.WriteString("data: ")
	b.Write(data)
	b.WriteString("\n\n")
	return b.Bytes()
}

func mockAnthropic(mr mockRequest, seq int64, words []string, in, out int64, h http.Header) [][]byte {
	model := mr.Model
	id := fmt.Sprintf("msg_mock%016d", seq)
	usage := map[string]any{
		"input_tokens": in, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
		"cache_creation": map[string]int{"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
		"output_tokens":  out, "service_tier": "standard",
	}
	if !mr.Stream {
		h.Set("Content-Type", "application/json")
		return [][]byte{mockJSON(map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": model,
			"content":     []map[string]string{{"type": "text", "text": mockText}},
			"stop_reason": "end_turn", "stop_sequence": nil, "usage": usage,
		})}
	}
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	startUsage := map[string]any{}
	for k, v := range usage {
		startUsage[k] = v
	}
	startUsage["output_tokens"] = 1
	ev := [][]byte{
		sse("message_start", mockJSON(map[string]any{"type": "message_start", "message": map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": model, "content": []any{},
			"stop_reason": nil, "stop_sequence": nil, "usage": startUsage}})),
		sse("content_block_start", []byte(`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`)),
		sse("ping", []byte(`{"type": "ping"}`)),
	}
	for _, w := range words {
		ev = append(ev, sse("content_block_delta", mockJSON(map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]string{"type": "text_delta", "text": w}})))
	}
	ev = append(ev,
		sse("content_block_stop", []byte(`{"type":"content_block_stop","index":0}`)),
		sse("message_delta", mockJSON(map[string]any{"type": "message_delta",
			"delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil},
			"usage": map[string]any{"input_tokens": in, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": out}})),
		sse("message_stop", []byte(`{"type":"message_stop"}`)),
	)
	return ev
}

func mockOpenAI(mr mockRequest, seq int64, words []string, in, out int64, h http.Header) [][]byte {
	id := fmt.Sprintf("chatcmpl-mock%016d", seq)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + seq
	usage := map[string]any{"prompt_tokens": in, "completion_tokens": out, "total_tokens": in + out,
		"prompt_tokens_details": map[string]int{"cached_tokens": 0}}
	if !mr.Stream {
		h.Set("Content-Type", "application/json")
		return [][]byte{mockJSON(map[string]any{"id": id, "object": "chat.completion", "created": created, "model": mr.Model,
			"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": mockText, "refusal": nil}}},
			"usage": usage})}
	}
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	withUsage := mr.StreamOptions != nil && mr.StreamOptions.IncludeUsage
	chunk := func(delta any, finish any) []byte {
		c := map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": mr.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
		if withUsage {
			c["usage"] = nil
		}
		return sse("", mockJSON(c))
	}
	ev := [][]byte{chunk(map[string]any{"role": "assistant", "content": ""}, nil)}
	for _, w := range words {
		ev = append(ev, chunk(map[string]any{"content": w}, nil))
	}
	ev = append(ev, chunk(map[string]any{}, "stop"))
	if withUsage {
		ev = append(ev, sse("", mockJSON(map[string]any{"id": id, "object": "chat.completion.chunk", "created": created,
			"model": mr.Model, "choices": []any{}, "usage": usage})))
	}
	return append(ev, []byte("data: [DONE]\n\n"))
}

func mockGemini(model string, stream, alt bool, seq int64, words []string, in, out int64, h http.Header) [][]byte {
	resp := func(text string, candidates int64, last bool) []byte {
		cand := map[string]any{"content": map[string]any{"parts": []any{map[string]string{"text": text}}, "role": "model"}, "index": 0}
		if last {
			cand["finishReason"] = "STOP"
		}
		return mockJSON(map[string]any{"candidates": []any{cand},
			"usageMetadata": map[string]any{"promptTokenCount": in, "candidatesTokenCount": candidates, "totalTokenCount": in + candidates},
			"modelVersion":  model, "responseId": fmt.Sprintf("mock%016d", seq)})
	}
	if !stream {
		h.Set("Content-Type", "application/json; charset=UTF-8")
		return [][]byte{resp(mockText, out, true)}
	}
	var ev [][]byte
	if alt {
		h.Set("Content-Type", "text/event-stream")
	} else {
		h.Set("Content-Type", "application/json; charset=UTF-8")
	}
	for i, w := range words {
		last := i == len(words)-1
		r := resp(w, int64(i+1), last)
		switch {
		case alt:
			ev = append(ev, append(append([]byte("data: "), r...), "\r\n\r\n"...))
		case i == 0:
			ev = append(ev, append([]byte("["), r...))
		default:
			ev = append(ev, append([]byte("\r\n,\r\n"), r...))
		}
	}
	if !alt {
		ev = append(ev, []byte("]"))
	}
	return ev
}
