package usage

import (
	"strings"
	"testing"
)

func TestOpenAIStreams(t *testing.T) {
	base := Usage{Model: "gpt-4o-2024-08-06", ID: "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT", StopReason: "stop"}
	withUsage := base
	withUsage.InputTokens, withUsage.CacheReadInputTokens, withUsage.OutputTokens, withUsage.Complete = 86, 1920, 300, true
	tests := []struct {
		name      string
		stream    string
		want      Usage
		usageOnly int // index of the usage-only chunk, -1 for none
		terminal  int
	}{
		{"include_usage: prompt minus cached", openaiStreamWithUsage, withUsage, 4, 5},
		{"no usage requested", openaiStream + openaiDone, base, -1, 4},
		{"in-stream error ends the stream", openaiStreamError,
			Usage{ErrorType: "server_error"}, -1, 1},
		{"CRLF", strings.ReplaceAll(openaiStreamWithUsage, "\n", "\r\n"), withUsage, 4, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o OpenAI
			infos := observe(t, &o, tt.stream)
			checkUsage(t, o.Usage(), tt.want)
			for i, info := range infos {
				if info.UsageOnly != (i == tt.usageOnly) || info.Terminal != (i == tt.terminal) {
					t.Errorf("event %d: %+v", i, info)
				}
			}
		})
	}
}

func TestOpenAIChunks(t *testing.T) {
	tests := []struct {
		name string
		data string
		info EventInfo
		want Usage
	}{
		{"usage with choices is not usage-only",
			`{"id":"x","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15}}`,
			EventInfo{}, Usage{InputTokens: 10, OutputTokens: 5, Complete: true, Model: "m", ID: "x", StopReason: "length"}},
		{"usage without prompt details", `{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":5}}`,
			EventInfo{UsageOnly: true}, Usage{InputTokens: 10, OutputTokens: 5, Complete: true}},
		{"error with code only", `{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}`,
			EventInfo{Terminal: true}, Usage{ErrorType: "rate_limit_exceeded"}},
		{"error as a bare string", `{"error":"upstream failed"}`,
			EventInfo{Terminal: true}, Usage{ErrorType: "error"}},
		{"error null is no error", `{"choices":[],"usage":{"prompt_tokens":1},"error":null}`,
			EventInfo{UsageOnly: true}, Usage{InputTokens: 1, Complete: true}},
		{"malformed usage chunk is ignored", `{"choices":[],"usage":{"prompt_tokens":`, EventInfo{}, Usage{}},
		{"content chunk is skipped", `{"choices":[{"delta":{"content":"x"},"finish_reason":null}],"usage":null}`, EventInfo{}, Usage{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o OpenAI
			if info := o.Observe([]byte("data: " + tt.data + "\n\n")); info != tt.info {
				t.Errorf("info %+v, want %+v", info, tt.info)
			}
			checkUsage(t, o.Usage(), tt.want)
		})
	}
}

// Content chunks must not be decoded: the pre-filter rejects them without
// allocating.
func TestOpenAIContentChunkIsCheap(t *testing.T) {
	ev := []byte(strings.SplitAfter(openaiStream, "\n\n")[1])
	var o OpenAI
	if a := testing.AllocsPerRun(100, func() { o.Observe(ev) }); a != 0 {
		t.Errorf("content chunk costs %v allocations", a)
	}
}
