package usage

import (
	"strings"
	"testing"
)

func TestGeminiStreams(t *testing.T) {
	final := Usage{
		InputTokens: 200 + 5, CacheReadInputTokens: 1000, OutputTokens: 12 + 30, Complete: true,
		Model: "gemini-2.5-flash", ID: "nXsCaPXZKqGqnvgPjuH-gQI", StopReason: "STOP",
	}
	tests := []struct {
		name     string
		stream   string
		want     Usage
		terminal int
	}{
		{"running totals, last wins", geminiStream, final, -1},
		{"LF endings", strings.ReplaceAll(geminiStream, "\r\n", "\n"), final, -1},
		{"cut before finishReason is not complete", geminiStream[:strings.LastIndex(geminiStream, "data: ")],
			Usage{InputTokens: 200, CacheReadInputTokens: 1000, OutputTokens: 7,
				Model: "gemini-2.5-flash", ID: "nXsCaPXZKqGqnvgPjuH-gQI"}, -1},
		{"usage-only chunk after finishReason",
			`data: {"candidates": [{"content": {"parts": [{"text": "ok"}]},"finishReason": "STOP"}]}` + "\n\n" +
				`data: {"usageMetadata": {"promptTokenCount": 9,"candidatesTokenCount": 1}}` + "\n\n",
			Usage{InputTokens: 9, OutputTokens: 1, Complete: true, StopReason: "STOP"}, -1},
		{"in-stream error", geminiStreamError,
			Usage{InputTokens: 10, ErrorType: "UNAVAILABLE", Model: "gemini-2.5-pro"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g Gemini
			infos := observe(t, &g, tt.stream)
			checkUsage(t, g.Usage(), tt.want)
			for i, info := range infos {
				if info.Terminal != (i == tt.terminal) || info.UsageOnly {
					t.Errorf("event %d: %+v", i, info)
				}
			}
		})
	}
}
