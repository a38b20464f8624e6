package jsonscan

import (
	"errors"
	"testing"
)

func TestScanFields(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Fields // Open/Empty/StreamOptions are checked separately
	}{
		{"minimal", `{"model":"claude-opus-4-1","max_tokens":1024,"messages":[]}`,
			Fields{Model: "claude-opus-4-1", HasModel: true}},
		{"model last after messages", `{"messages":[{"role":"user","content":"hi"}],"max_tokens":5,"model":"gpt-4o","stream":true}`,
			Fields{Model: "gpt-4o", HasModel: true, Stream: true}},
		{"unicode escape in model", `{"model":"claude\u002dopus"}`,
			Fields{Model: "claude-opus", HasModel: true}},
		{"surrogate pair in model", `{"model":"m\ud83d\ude00"}`,
			Fields{Model: "m😀", HasModel: true}},
		{"escaped key", `{"mod\u0065l":"x","str\u0065am":true}`,
			Fields{Model: "x", HasModel: true, Stream: true}},
		{"keys are case sensitive", `{"Model":"x","STREAM":true}`, Fields{}},
		{"nested model ignored", `{"messages":[{"model":"evil","content":[{"model":"evil2"}]}],"metadata":{"model":"evil3"}}`,
			Fields{}},
		{"nested model ignored, top-level later", `{"tools":[{"name":"t","input_schema":{"model":{"type":"string"}}}],"model":"real"}`,
			Fields{Model: "real", HasModel: true}},
		{"duplicate model last wins", `{"model":"first","model":"second"}`,
			Fields{Model: "second", HasModel: true}},
		{"later non-string model clears", `{"model":"first","model":null}`, Fields{}},
		{"non-string model", `{"model":42}`, Fields{}},
		{"stream false", `{"stream":false}`, Fields{}},
		{"stream string is not true", `{"stream":"true"}`, Fields{}},
		{"stream duplicate last wins", `{"stream":true,"stream":false}`, Fields{}},
		{"stream options include usage", `{"stream":true,"stream_options":{"include_usage":true}}`,
			Fields{Stream: true, HasStreamOptions: true, HasIncludeUsage: true, IncludeUsage: true}},
		{"include usage false", `{"stream":true,"stream_options":{"include_usage":false}}`,
			Fields{Stream: true, HasStreamOptions: true, HasIncludeUsage: true}},
		{"include usage duplicate last wins", `{"stream_options":{"include_usage":true,"include_usage":false}}`,
			Fields{HasStreamOptions: true, HasIncludeUsage: true}},
		{"stream options duplicate last wins", `{"stream_options":{"include_usage":true},"stream_options":{}}`,
			Fields{HasStreamOptions: true, StreamOptionsEmpty: true}},
		{"stream options empty", `{"stream_options":{}}`,
			Fields{HasStreamOptions: true, StreamOptionsEmpty: true}},
		{"stream options null", `{"stream_options":null}`, Fields{HasStreamOptions: true}},
		{"nested include usage ignored", `{"stream_options":{"x":{"include_usage":true}}}`,
			Fields{HasStreamOptions: true}},
		{"whitespace everywhere", " \r\n\t{ \"model\" \n:\t\"m\" , \"stream\"\r\n:\r\ntrue\n}\t\r\n ",
			Fields{Model: "m", HasModel: true, Stream: true}},
		{"cache_control blocks", `{"system":[{"type":"text","text":"You are \"helpful\"\\","cache_control":{"type":"ephemeral","ttl":"1h"}}],"model":"claude-sonnet-4-5"}`,
			Fields{Model: "claude-sonnet-4-5", HasModel: true}},
		{"numbers and literals", `{"a":-0.5e+10,"b":[0,1E2,-3,true,false,null],"c":"\/\b\f\n\r\t","model":"m"}`,
			Fields{Model: "m", HasModel: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Scan([]byte(tt.body))
			if err != nil {
				t.Fatalf("Scan: %v", err)
			}
			got.Open, got.Empty, got.StreamOptions, got.ModelValue = 0, false, Span{}, Span{}
			got.MaxTokens, got.HasMaxTokens = 0, false
			if got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestScanModelValueAndMaxTokens(t *testing.T) {
	tests := []struct {
		body      string
		model     string // raw span text, "" when none
		maxTokens int64
		hasMax    bool
	}{
		{`{"model":"m","max_tokens":1024}`, `"m"`, 1024, true},
		{`{"messages":[{"model":"x","max_tokens":5}],"max_completion_tokens":7, "model" : "claude\u002dx" }`, `"claude\u002dx"`, 7, true},
		{`{"model":"a","model":"b","max_tokens":3,"max_tokens":4}`, `"b"`, 4, true},
		{`{"model":"a","model":1,"max_tokens":-1}`, ``, 0, false},
		{`{"max_tokens":1.5}`, ``, 0, false},
		{`{"max_tokens":1e3}`, ``, 0, false},
		{`{"max_tokens":"10"}`, ``, 0, false},
		{`{"max_tokens":99999999999999999999}`, ``, 0, false},
		{`{"max_tokens":9223372036854775807}`, ``, 9223372036854775807, true},
		{`{"max_tokens":9223372036854775808}`, ``, 0, false},
		{`{"max_tokens":10,"max_tokens":null}`, ``, 0, false},
	}
	for _, tt := range tests {
		body := []byte(tt.body)
		f, err := Scan(body)
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		got := ""
		if f.HasModel {
			got = string(body[f.ModelValue.Start:f.ModelValue.End])
		} else if f.ModelValue != (Span{-1, -1}) {
			t.Errorf("%s: ModelValue %v without a model", tt.body, f.ModelValue)
		}
		if got != tt.model || f.MaxTokens != tt.maxTokens || f.HasMaxTokens != tt.hasMax {
			t.Errorf("%s: model span %q max %d/%v; want %q %d/%v", tt.body, got, f.MaxTokens, f.HasMaxTokens, tt.model, tt.maxTokens, tt.hasMax)
		}
	}
}

func TestScanOffsets(t *testing.T) {
	body := []byte("  {\"stream\":true, \"stream_options\" : { } }")
	f, err := Scan(body)
	if err != nil {
		t.Fatal(err)
	}
	if f.Open != 2 || f.Empty {
		t.Errorf("Open=%d Empty=%v, want 2 false", f.Open, f.Empty)
	}
	if got := string(body[f.StreamOptions.Start:f.StreamOptions.End]); got != "{ }" {
		t.Errorf("StreamOptions span = %q", got)
	}
	f, err = Scan([]byte(" { } "))
	if err != nil || !f.Empty || f.Open != 1 || f.HasStreamOptions || f.StreamOptions.Start != -1 {
		t.Errorf("empty object: %+v, %v", f, err)
	}
}

func TestScanErrors(t *testing.T) {
	tests := []struct {
		body   string
		cause  error
		offset int
	}{
		{``, ErrUnexpectedEnd, 0},
		{`   `, ErrUnexpectedEnd, 3},
		{`[]`, ErrNotObject, 0},
		{` "model"`, ErrNotObject, 1},
		{`{"model":"x"} x`, ErrTrailingData, 14},
		{`{"model":"x"}{}`, ErrTrailingData, 13},
		{`{"model":"x}`, ErrUnterminatedString, 9},
		{`{"a":"\`, ErrUnterminatedString, 5},
		{`{"a":"\u12`, ErrUnterminatedString, 5},
		{`{"a":"\u12G4"}`, ErrInvalidEscape, 10},
		{`{"a":"\x"}`, ErrInvalidEscape, 7},
		{"{\"a\":\"\x01\"}", ErrControlCharacter, 6},
		{`{"a":1,}`, ErrInvalidCharacter, 7},
		{`{"a" 1}`, ErrInvalidCharacter, 5},
		{`{"a":01}`, ErrInvalidCharacter, 6},
		{`{"a":1.}`, ErrInvalidCharacter, 7},
		{`{"a":1e}`, ErrInvalidCharacter, 7},
		{`{"a":-}`, ErrInvalidCharacter, 6},
		{`{"a":tru}`, ErrInvalidCharacter, 8},
		{`{"a":[1 2]}`, ErrInvalidCharacter, 8},
		{`{"a":[1,]}`, ErrInvalidCharacter, 8},
		{`{"a":{"b":1]}`, ErrInvalidCharacter, 11},
		{`{"a":[`, ErrUnexpectedEnd, 6},
		{`{"a"`, ErrUnexpectedEnd, 4},
		{`{a:1}`, ErrInvalidCharacter, 1},
		{"\ufeff{}", ErrNotObject, 0},
	}
	for _, tt := range tests {
		_, err := Scan([]byte(tt.body))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Scan(%q) = %v, want *SyntaxError", tt.body, err)
			continue
		}
		if !errors.Is(err, tt.cause) || se.Offset != tt.offset {
			t.Errorf("Scan(%q) = %v (offset %d), want %v at %d", tt.body, err, se.Offset, tt.cause, tt.offset)
		}
	}
}

func TestScanDepthLimit(t *testing.T) {
	nest := func(n int) []byte {
		b := []byte(`{"a":`)
		for i := 1; i < n; i++ {
			b = append(b, '[')
		}
		b = append(b, '1')
		for i := 1; i < n; i++ {
			b = append(b, ']')
		}
		return append(b, '}')
	}
	if _, err := Scan(nest(MaxDepth)); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
	if _, err := Scan(nest(MaxDepth + 1)); !errors.Is(err, ErrTooDeep) {
		t.Errorf("depth %d: %v, want ErrTooDeep", MaxDepth+1, err)
	}
}
