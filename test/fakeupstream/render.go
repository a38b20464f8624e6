package fakeupstream

import (
	"bytes"
	"net/http"
	"strings"
)

// route is the API a path belongs to.
type route int

const (
	routeNone route = iota
	routeAnthropic
	routeAnthropicCount
	routeOpenAI
	routeGemini
)

func routeOf(path string) route {
	switch {
	case path == "/v1/messages":
		return routeAnthropic
	case path == "/v1/messages/count_tokens":
		return routeAnthropicCount
	case strings.HasSuffix(path, "/chat/completions"):
		return routeOpenAI
	case strings.Contains(path, "/models/") &&
		(strings.HasSuffix(path, ":generateContent") || strings.HasSuffix(path, ":streamGenerateContent")):
		return routeGemini
	}
	return routeNone
}

// plan is a response before faults: status, headers, and the body cut into
// events, plus the in-stream error event for FaultStreamError.
type plan struct {
	status   int
	header   http.Header
	events   [][]byte
	errEvent []byte // nil when the response is not a stream
	stream   bool   // chunked and flushed per event; else Content-Length
}

// answer is a script with its defaults filled in for one request.
type answer struct {
	seq    int
	id     string
	model  string
	text   string
	chunks []string
	usage  Usage
	stop   string
}

func resolve(sc Script, req Recorded, model, id string) answer {
	a := answer{seq: req.Seq, id: sc.ID, model: sc.Model, stop: sc.StopReason}
	if a.id == "" {
		a.id = id
	}
	if a.model == "" {
		a.model = model
	}
	if a.stop == "" {
		a.stop = "end_turn"
	}
	a.text, a.chunks = sc.text()
	if sc.Usage != nil {
		a.usage = *sc.Usage
	} else {
		a.usage = Usage{InputTokens: EstimateInputTokens(req.Body), OutputTokens: Tokens(a.text)}
	}
	return a
}

func makePlan(sc Script, req Recorded) plan {
	var p plan
	rt := routeOf(req.Path)
	if req.Method != "" && req.Method != http.MethodPost {
		rt = routeNone
	}
	switch rt {
	case routeAnthropic:
		p = anthropicPlan(sc, req)
	case routeAnthropicCount:
		p = anthropicCountPlan(sc, req)
	case routeOpenAI:
		p = openaiPlan(sc, req)
	case routeGemini:
		p = geminiPlan(sc, req)
	default:
		p = notFoundPlan(req)
	}
	for k, v := range sc.Header {
		p.header[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
	}
	return p
}

func notFoundPlan(req Recorded) plan {
	h := http.Header{"Content-Type": {"application/json"}}
	if req.Method != http.MethodPost && routeOf(req.Path) != routeNone {
		h.Set("Allow", http.MethodPost)
		return plan{status: http.StatusMethodNotAllowed, header: h,
			events: [][]byte{[]byte(`{"type":"error","error":{"type":"invalid_request_error","message":"Method Not Allowed"}}`)}}
	}
	return plan{status: http.StatusNotFound, header: h,
		events: [][]byte{[]byte(`{"type":"error","error":{"type":"not_found_error","message":"Not Found"}}`)}}
}

// RenderEvents returns the response body events the server sends for sc
// in answer to req (Method, Path, RawQuery, Body and Seq are used; an empty
// Method means POST; for a recorded
// request, RenderEvents(rec.Script, rec) matches rec.Sent). Faults apply:
// FaultResetBeforeHeaders gives nil, FaultResetAfter the first After events,
// FaultStreamError those followed by the error event, FaultStall the whole
// response (as if released). Headers and the Gate do not change the bytes.
func RenderEvents(sc Script, req Recorded) [][]byte {
	p := makePlan(sc, req)
	n := min(max(sc.After, 0), len(p.events))
	switch sc.Fault {
	case FaultResetBeforeHeaders:
		return nil
	case FaultResetAfter:
		return p.events[:n]
	case FaultStreamError:
		if p.errEvent != nil {
			return append(p.events[:n:n], p.errEvent)
		}
	}
	return p.events
}

// Render is RenderEvents joined: the exact body bytes.
func Render(sc Script, req Recorded) []byte {
	return bytes.Join(RenderEvents(sc, req), nil)
}
