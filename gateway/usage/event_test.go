package usage

import "testing"

func TestParseEvent(t *testing.T) {
	tests := []struct {
		raw, name, data string
	}{
		{"event: message_start\ndata: {\"a\":1}\n\n", "message_start", `{"a":1}`},
		{"data: [DONE]\n\n", "", "[DONE]"},
		{"data:no-space\r\n\r\n", "", "no-space"},
		{"data:  two spaces\n\n", "", " two spaces"},
		{"event:x\revent: y\rdata: 1\r\r", "y", "1"},
		{": comment\ndata: a\ndata: b\ndata\n\n", "", "a\nb\n"},
		{"id: 7\nretry: 10\ndata: d\n\n", "", "d"},
		{"\xef\xbb\xbfevent: e\ndata: d\n\n", "e", "d"},
		{"data: x\n\ndata: after blank line\n", "", "x"},
		{"event: ping\n\n", "ping", ""},
		{"\n", "", ""},
	}
	for _, tt := range tests {
		ev := ParseEvent([]byte(tt.raw))
		if string(ev.Name) != tt.name || string(ev.Data) != tt.data {
			t.Errorf("ParseEvent(%q) = %q, %q; want %q, %q", tt.raw, ev.Name, ev.Data, tt.name, tt.data)
		}
	}
}

func TestParseEventJoinDoesNotAliasRaw(t *testing.T) {
	raw := []byte("data: a\ndata: b\n\n")
	ev := ParseEvent(raw)
	ev.Data[0] = 'Z'
	if string(raw) != "data: a\ndata: b\n\n" {
		t.Fatalf("joining data lines wrote into raw: %q", raw)
	}
}

func TestPrefilter(t *testing.T) {
	tests := []struct {
		data    string
		key     []byte
		has     bool
		nonNull bool
	}{
		{`{"usage":null}`, keyUsage, true, false},
		{`{"usage" : { "prompt_tokens":1}}`, keyUsage, true, true},
		{`{"a":{"usage":null},"usage":{}}`, keyUsage, true, true},
		{`{"content":"usage"}`, keyUsage, false, false},
		{`{"content":"\"usage\": {}"}`, keyUsage, false, false},
		{`{"finish_reason":"stop"}`, keyFinishReason, true, true},
		{`{"finish_reason":null}`, keyFinishReason, true, false},
		{`{"usage":`, keyUsage, false, false},
		{`{"error":{"type":"x"}}`, keyError, true, true},
	}
	for _, tt := range tests {
		if got := hasKey([]byte(tt.data), tt.key); got != tt.has {
			t.Errorf("hasKey(%s, %s) = %v", tt.data, tt.key, got)
		}
		if got := hasNonNullKey([]byte(tt.data), tt.key); got != tt.nonNull {
			t.Errorf("hasNonNullKey(%s, %s) = %v", tt.data, tt.key, got)
		}
	}
}
