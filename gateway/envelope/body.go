package envelope

import "encoding/json"

// Refusal is one error answer.
type Refusal struct {
	Kind    Kind
	Message string // shown to the client; empty → a default per kind. Never put secrets here.
	// RequestID goes into Anthropic's body ("request_id") and the
	// request-id / x-request-id header; empty omits both.
	RequestID string
}

// The body structs fix field order, so bytes are stable for golden tests.
type anthropicBody struct {
	Type      string         `json:"type"`
	Error     anthropicError `json:"error"`
	RequestID string         `json:"request_id,omitempty"`
}

type anthropicError struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

type openAIBody struct {
	Error openAIError `json:"error"`
}

type openAIError struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"` // always null: refusals are not about one parameter
	Code    *string `json:"code"`
}

type geminiBody struct {
	Error geminiError `json:"error"`
}

type geminiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// Body returns f's HTTP status and JSON body for r.
func Body(f Family, r Refusal) (int, []byte) {
	f, k, w := lookup(f, r.Kind)
	msg := r.Message
	if msg == "" {
		msg = defaultMessages[k]
	}
	var v any
	switch f {
	case Anthropic:
		v = anthropicBody{Type: "error", Error: anthropicError{Type: w.typ, Message: msg}, RequestID: r.RequestID}
	case Gemini:
		v = geminiBody{Error: geminiError{Code: w.status, Message: msg, Status: w.typ}}
	default:
		var code *string
		if w.code != "" {
			code = &w.code
		}
		v = openAIBody{Error: openAIError{Message: msg, Type: w.typ, Code: code}}
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Unreachable: plain structs of strings and ints always encode
		// (invalid UTF-8 is replaced, not refused).
		panic("envelope: " + err.Error())
	}
	return w.status, b
}
