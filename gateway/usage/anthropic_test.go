package usage

import (
	"strings"
	"testing"
)

func TestAnthropicStreams(t *testing.T) {
	tests := []struct {
		name     string
		stream   string
		want     Usage
		terminal int // index of the terminal event, -1 for none
	}{
		{"cached, 1h writes, pings; delta repeats cache figures", anthropicStream, Usage{
			InputTokens: 12, OutputTokens: 15,
			CacheCreationInputTokens: 2048, CacheCreation1hInputTokens: 2048,
			CacheReadInputTokens: 10240, Complete: true,
			Model: "claude-sonnet-4-5-20250929", ID: "msg_01XFDUDYJgAACzvnptvVoYEL", StopReason: "end_turn",
		}, 8},
		{"tool use, creation without split counts as 5m", anthropicToolStream, Usage{
			InputTokens: 472, OutputTokens: 89,
			CacheCreationInputTokens: 1500, CacheCreation5mInputTokens: 1500,
			Complete: true, Model: "claude-opus-4-1-20250805", ID: "msg_014p7gG3wDgGV9EUtLvnow3U", StopReason: "tool_use",
		}, 7},
		{"in-stream overloaded_error", anthropicOverloaded, Usage{
			InputTokens: 25, OutputTokens: 1, ErrorType: "overloaded_error",
			Model: "claude-sonnet-4-5-20250929", ID: "msg_01AbCdEf",
		}, 3},
		{"cut off before message_delta is not complete", anthropicStream[:strings.Index(anthropicStream, "event: message_delta")], Usage{
			InputTokens: 12, OutputTokens: 1,
			CacheCreationInputTokens: 2048, CacheCreation1hInputTokens: 2048, CacheReadInputTokens: 10240,
			Model: "claude-sonnet-4-5-20250929", ID: "msg_01XFDUDYJgAACzvnptvVoYEL",
		}, -1},
		{"CRLF and no event names", strings.ReplaceAll(
			strings.NewReplacer("event: message_start\n", "", "event: message_delta\n", "").Replace(anthropicToolStream),
			"\n", "\r\n"), Usage{
			InputTokens: 472, OutputTokens: 89,
			CacheCreationInputTokens: 1500, CacheCreation5mInputTokens: 1500,
			Complete: true, Model: "claude-opus-4-1-20250805", ID: "msg_014p7gG3wDgGV9EUtLvnow3U", StopReason: "tool_use",
		}, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Anthropic
			infos := observe(t, &a, tt.stream)
			checkUsage(t, a.Usage(), tt.want)
			for i, info := range infos {
				if info.Terminal != (i == tt.terminal) || info.UsageOnly {
					t.Errorf("event %d: %+v", i, info)
				}
			}
		})
	}
}

// message_delta figures replace message_start's; they are never added.
// Summing would report 2×cache reads (bifrost #5354).
func TestAnthropicDeltaReplacesNeverAdds(t *testing.T) {
	start := "event: message_start\n" + `data: {"type":"message_start","message":{"id":"m","model":"c","usage":{"input_tokens":100,"cache_creation_input_tokens":50,"cache_read_input_tokens":1000,"cache_creation":{"ephemeral_5m_input_tokens":20,"ephemeral_1h_input_tokens":30},"output_tokens":1}}}` + "\n\n"
	tests := []struct {
		name  string
		delta string
		want  Usage
	}{
		{"output only", `{"output_tokens":7}`, Usage{InputTokens: 100, OutputTokens: 7, CacheCreationInputTokens: 50,
			CacheCreation5mInputTokens: 20, CacheCreation1hInputTokens: 30, CacheReadInputTokens: 1000}},
		{"all repeated", `{"input_tokens":100,"cache_creation_input_tokens":50,"cache_read_input_tokens":1000,"output_tokens":7}`,
			Usage{InputTokens: 100, OutputTokens: 7, CacheCreationInputTokens: 50,
				CacheCreation5mInputTokens: 20, CacheCreation1hInputTokens: 30, CacheReadInputTokens: 1000}},
		{"revised figures replace", `{"input_tokens":90,"cache_read_input_tokens":1010,"output_tokens":7,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":50}}`,
			Usage{InputTokens: 90, OutputTokens: 7, CacheCreationInputTokens: 50,
				CacheCreation1hInputTokens: 50, CacheReadInputTokens: 1010}},
		{"null keeps earlier", `{"input_tokens":null,"cache_read_input_tokens":null,"output_tokens":7}`,
			Usage{InputTokens: 100, OutputTokens: 7, CacheCreationInputTokens: 50,
				CacheCreation5mInputTokens: 20, CacheCreation1hInputTokens: 30, CacheReadInputTokens: 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			delta := "event: message_delta\n" + `data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":` + tt.delta + "}\n\n"
			var a Anthropic
			observe(t, &a, start+delta+delta) // two deltas: still no summing
			tt.want.Complete, tt.want.Model, tt.want.ID, tt.want.StopReason = true, "c", "m", "end_turn"
			checkUsage(t, a.Usage(), tt.want)
		})
	}
}

func TestAnthropicCacheSplit(t *testing.T) {
	tests := []struct {
		usage         string
		total, m5, h1 int64
	}{
		{`{"cache_creation_input_tokens":100}`, 100, 100, 0},
		{`{"cache_creation_input_tokens":100,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":100}}`, 100, 0, 100},
		{`{"cache_creation_input_tokens":100,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":60}}`, 100, 40, 60},
		{`{"cache_creation_input_tokens":10,"cache_creation":{"ephemeral_5m_input_tokens":10,"ephemeral_1h_input_tokens":60}}`, 70, 10, 60},
		{`{"cache_creation":{"ephemeral_1h_input_tokens":60}}`, 60, 0, 60},
	}
	for _, tt := range tests {
		u, err := AnthropicBody([]byte(`{"usage":` + tt.usage + `}`))
		if err != nil {
			t.Fatal(err)
		}
		if u.CacheCreationInputTokens != tt.total || u.CacheCreation5mInputTokens != tt.m5 || u.CacheCreation1hInputTokens != tt.h1 {
			t.Errorf("%s: total %d 5m %d 1h %d; want %d %d %d", tt.usage, u.CacheCreationInputTokens,
				u.CacheCreation5mInputTokens, u.CacheCreation1hInputTokens, tt.total, tt.m5, tt.h1)
		}
	}
}

// A malformed usage event is ignored, not fatal, and leaves the usage
// incomplete; an unreadable error event still names an error.
func TestAnthropicMalformedEvents(t *testing.T) {
	var a Anthropic
	observe(t, &a, "event: message_start\ndata: {\"message\":{\"usage\":{\"input_tokens\":5}}}\n\n"+
		"event: message_delta\ndata: {\"usage\":{\"output_tokens\":\n\n"+
		"event: error\ndata: not json\n\n")
	checkUsage(t, a.Usage(), Usage{InputTokens: 5, ErrorType: "error"})
}

// TestAnthropicIgnored: the name-only pre-filter skips the events Observe
// does nothing with, and never one whose name Observe acts on, however the
// name is hidden; events with a "\r" are left to the full parse.
func TestAnthropicIgnored(t *testing.T) {
	delta := `data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`
	for _, tc := range []struct {
		raw  string
		skip bool
	}{
		{"event: content_block_delta\n" + delta + "\n\n", true},
		{"event: ping\ndata: {\"type\": \"ping\"}\n\n", true},
		{"event:ping\n: comment\ndata: {}\n\n", true},
		{"event: content_block_stop", true}, // no terminator at all
		{"event: content_block_stop\n", true},
		{"event: a:b\n\n", true},
		{"event:  ping\n\n", true}, // the name is " ping"
		{"event: ping\ndata: an event\n\n", true},
		// ParseEvent stops at the blank line: what follows names nothing.
		{"event: ping\n\nevent: message_stop\n\n", true},
		// Names Observe acts on, an empty name (data.type decides), or no
		// event field first: the full parse.
		{"event: message_start\ndata: {}\n\n", false},
		{"event: message_delta\ndata: {}\n\n", false},
		{"event: message_stop\ndata: {}\n\n", false},
		{"event: error\ndata: {}\n\n", false},
		{"event: \ndata: {\"type\":\"message_stop\"}\n\n", false},
		{"event:\ndata: {}\n\n", false},
		{"event:", false},
		{"data: {}\nevent: ping\n\n", false},
		{"\xef\xbb\xbfevent: ping\n\n", false},
		{": comment\nevent: ping\n\n", false},
		{"Event: ping\n\n", false},
		// A later "event" line may rename it.
		{"event: ping\nevent: message_stop\n\n", false},
		{"event: ping\ndata: 1\nevent: error\n\n", false},
		{"event: ping\nevent\n\n", false},
		{"event: ping\neventually: 1\n\n", false}, // not a rename, but the parse decides
		// Any "\r": lines may end there.
		{"event: ping\r\ndata: {}\r\n\r\n", false},
		{"event: ping\ndata: x\revent: error\n\n", false},
		{"event: ping\revent: message_stop\r\r", false},
	} {
		if got := anthropicIgnored([]byte(tc.raw)); got != tc.skip {
			t.Errorf("anthropicIgnored(%q) = %v, want %v", tc.raw, got, tc.skip)
		}
		checkIgnored(t, []byte(tc.raw))
	}
}
