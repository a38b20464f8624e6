package fakeupstream

import (
	"net/http"
	"strconv"
	"sync"
)

// DefaultText is the answer when a script gives no text.
const DefaultText = "Hello! This is a canned answer from the fake upstream."

// Usage gives the token figures of an answer, in Anthropic's terms; the
// other providers get them mapped: OpenAI prompt_tokens and Gemini
// promptTokenCount are TotalInput(), OpenAI cached_tokens and Gemini
// cachedContentTokenCount are CacheRead.
type Usage struct {
	InputTokens     int // uncached input (Anthropic input_tokens)
	OutputTokens    int // generated tokens
	CacheCreation5m int // cache_creation.ephemeral_5m_input_tokens
	CacheCreation1h int // cache_creation.ephemeral_1h_input_tokens
	CacheRead       int // cache_read_input_tokens
}

// CacheCreation is cache_creation_input_tokens: the 5m and 1h writes.
func (u Usage) CacheCreation() int { return u.CacheCreation5m + u.CacheCreation1h }

// TotalInput is every input token: uncached, cache writes and cache reads.
func (u Usage) TotalInput() int { return u.InputTokens + u.CacheCreation() + u.CacheRead }

// Fault is a failure injected into a response.
type Fault int

const (
	// FaultNone answers normally.
	FaultNone Fault = iota
	// FaultResetBeforeHeaders closes the TCP connection with an RST before any
	// response byte.
	FaultResetBeforeHeaders
	// FaultResetAfter sends the headers and Script.After events, then resets the
	// connection.
	FaultResetAfter
	// FaultStreamError sends the headers and Script.After events, then the
	// provider's in-stream error event, and ends the response. Streams only.
	FaultStreamError
	// FaultStall sends the headers and Script.After events, then sends nothing
	// until the client goes away, the server closes, or Script.Release is
	// closed (the rest of the response follows then).
	FaultStall
)

// Script decides how one request is answered. The zero Script is a
// realistic success. Events are counted as written: every SSE event
// (pings, OpenAI's [DONE] included), every Gemini array element, or the
// whole body of a non-streaming answer (event 0).
type Script struct {
	Text       string   // answer text; DefaultText when empty and Chunks is nil
	Chunks     []string // stream deltas; when set, the text is their concatenation
	Model      string   // default: the request's model
	Usage      *Usage   // default: estimated from the request and the text (see Tokens)
	StopReason string   // Anthropic stop_reason, default "end_turn"; mapped for OpenAI and Gemini
	ID         string   // message / completion / response ID; default derived from Recorded.Seq
	Pings      bool     // Anthropic streams: ping after content_block_start and between deltas
	Header     http.Header
	// Header values replace the defaults (request-id, rate-limit headers,
	// content-type, ...) on any response, errors included.
	Gate *Gate // when set, event i waits for the gate; a fault at After waits as event After (one Gate per request)

	// Status, when neither 0 nor 200, answers with an HTTP error in the
	// provider's envelope instead of a message.
	Status       int
	ErrorType    string // error type (Gemini: status); default by Status, or the stream-error default
	ErrorMessage string // default by type
	ErrorBody    []byte // when set, the error body verbatim instead of the envelope

	Fault   Fault
	After   int             // events sent before the fault
	Release <-chan struct{} // FaultStall: closing it resumes the response
}

// Reply answers with text.
func Reply(text string) Script { return Script{Text: text} }

// HTTPError answers with status in the provider's error envelope.
func HTTPError(status int) Script { return Script{Status: status} }

// RateLimited answers 429 with a retry-after header of the given seconds.
func RateLimited(retryAfterSeconds int) Script {
	return Script{Status: http.StatusTooManyRequests, Header: http.Header{
		"Retry-After": {strconv.Itoa(retryAfterSeconds)},
	}}
}

// Overloaded answers 529 overloaded_error (Anthropic's status; the other
// providers get their envelope with that status).
func Overloaded() Script { return Script{Status: 529} }

// ResetBeforeHeaders resets the connection without answering.
func ResetBeforeHeaders() Script { return Script{Fault: FaultResetBeforeHeaders} }

// ResetAfter resets the connection after the headers and n events.
func ResetAfter(n int) Script { return Script{Fault: FaultResetAfter, After: n} }

// StreamErrorAfter sends n events then the in-stream error event
// (Anthropic overloaded_error by default).
func StreamErrorAfter(n int) Script { return Script{Fault: FaultStreamError, After: n} }

// StallAfter sends the headers and n events then goes silent until the
// client disconnects or release (which may be nil) is closed.
func StallAfter(n int, release <-chan struct{}) Script {
	return Script{Fault: FaultStall, After: n, Release: release}
}

func (sc Script) isError() bool { return sc.Status != 0 && sc.Status != http.StatusOK }

// text returns the answer text and its stream deltas.
func (sc Script) text() (string, []string) {
	if sc.Chunks != nil {
		t := ""
		for _, c := range sc.Chunks {
			t += c
		}
		return t, sc.Chunks
	}
	t := sc.Text
	if t == "" {
		t = DefaultText
	}
	return t, splitWords(t)
}

// splitWords cuts text before each space, like a tokenizer would roughly.
func splitWords(t string) []string {
	var out []string
	start := 0
	for i := 1; i < len(t); i++ {
		if t[i] == ' ' {
			out = append(out, t[start:i])
			start = i
		}
	}
	return append(out, t[start:])
}

// queue holds the scripts: per-path FIFOs first, then the global FIFO.
type queue struct {
	mu     sync.Mutex
	global []Script
	byPath map[string][]Script
}

func (q *queue) push(path string, scs []Script) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if path == "" {
		q.global = append(q.global, scs...)
		return
	}
	if q.byPath == nil {
		q.byPath = map[string][]Script{}
	}
	q.byPath[path] = append(q.byPath[path], scs...)
}

func (q *queue) pop(path string) (Script, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if l := q.byPath[path]; len(l) > 0 {
		q.byPath[path] = l[1:]
		return l[0], true
	}
	if len(q.global) > 0 {
		sc := q.global[0]
		q.global = q.global[1:]
		return sc, true
	}
	return Script{}, false
}

func (q *queue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.global)
	for _, l := range q.byPath {
		n += len(l)
	}
	return n
}

func (q *queue) reset() {
	q.mu.Lock()
	q.global, q.byPath = nil, nil
	q.mu.Unlock()
}

// Push queues scripts for the next provider requests, whatever their path.
func (s *Server) Push(scripts ...Script) { s.queue.push("", scripts) }

// PushFor queues scripts for requests to exactly this URL path (for example
// "/v1/messages" or "/v1beta/models/gemini-2.5-flash:generateContent"); they
// are served before the scripts queued with Push.
func (s *Server) PushFor(path string, scripts ...Script) { s.queue.push(path, scripts) }

// Pending returns how many queued scripts have not been consumed yet.
func (s *Server) Pending() int { return s.queue.pending() }
