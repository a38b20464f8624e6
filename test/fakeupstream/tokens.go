package fakeupstream

import (
	"bytes"
	"encoding/json"
)

// Tokens is the fake's tokenizer: ceil(len(bytes)/4).
func Tokens(s string) int { return (len(s) + 3) / 4 }

// promptKeys are the top-level request fields whose text counts as input.
var promptKeys = []string{"system", "messages", "tools", "contents", "systemInstruction", "system_instruction"}

// EstimateInputTokens is the input token count the fake reports when a
// script gives no usage, and what count_tokens answers: Tokens of the
// concatenated JSON string values under the prompt fields (system,
// messages, tools, contents, systemInstruction), or of the whole body when
// it is not a JSON object with such fields.
func EstimateInputTokens(body []byte) int {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return Tokens(string(body))
	}
	n, found := 0, false
	for _, k := range promptKeys {
		raw, ok := top[k]
		if !ok {
			continue
		}
		found = true
		var v any
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		if d.Decode(&v) == nil {
			n += stringBytes(v)
		}
	}
	if !found {
		return Tokens(string(body))
	}
	return (n + 3) / 4
}

func stringBytes(v any) int {
	switch v := v.(type) {
	case string:
		return len(v)
	case []any:
		n := 0
		for _, e := range v {
			n += stringBytes(e)
		}
		return n
	case map[string]any:
		n := 0
		for _, e := range v {
			n += stringBytes(e)
		}
		return n
	}
	return 0
}

// requestInfo is what the fake reads from a request body.
type requestInfo struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func parseRequest(body []byte) requestInfo {
	var ri requestInfo
	_ = json.Unmarshal(body, &ri) // the fake accepts any body; fields that parse are used
	return ri
}

func (ri requestInfo) includeUsage() bool {
	return ri.StreamOptions != nil && ri.StreamOptions.IncludeUsage
}

// compactJSON marshals v without HTML escaping, as the providers do.
func compactJSON(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("fakeupstream: " + err.Error())
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// indentJSON marshals v indented by prefix, with a trailing newline, as
// OpenAI and Gemini format their error bodies.
func indentJSON(v any, indent string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", indent)
	if err := enc.Encode(v); err != nil {
		panic("fakeupstream: " + err.Error())
	}
	return b.Bytes()
}
