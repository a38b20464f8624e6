package usage

import (
	"io"
	"strings"
	"testing"
)

// longStream repeats content deltas between a real start and end, about 1 MB,
// the shape of a long answer.
func longStream(start, delta, end string) []byte {
	var b strings.Builder
	b.WriteString(start)
	for b.Len() < 1<<20 {
		b.WriteString(delta)
	}
	b.WriteString(end)
	return []byte(b.String())
}

var (
	anthropicDelta = "event: content_block_delta\n" +
		`data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" the quick brown fox jumps over the lazy dog,"}}` + "\n\n"
	benchAnthropic = longStream(anthropicStream[:strings.Index(anthropicStream, "event: content_block_delta")], anthropicDelta,
		anthropicStream[strings.Index(anthropicStream, "event: message_delta"):])
	benchOpenAI = longStream("", strings.SplitAfter(openaiStream, "\n\n")[1], openaiUsageChunk+openaiDone)
)

// benchFeed feeds stream in network-sized chunks.
func benchFeed(b *testing.B, stream []byte, chunk int, yield func([]byte) error) {
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	s := NewSplitter(0)
	for b.Loop() {
		for rest := stream; len(rest) > 0; {
			n := min(chunk, len(rest))
			if err := s.Feed(rest[:n], yield); err != nil {
				b.Fatal(err)
			}
			rest = rest[n:]
		}
		if _, err := s.End(yield); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSSESplit(b *testing.B) {
	nop := func([]byte) error { return nil }
	b.Run("lf/4KiB", func(b *testing.B) { benchFeed(b, benchAnthropic, 4096, nop) })
	b.Run("lf/1B", func(b *testing.B) { benchFeed(b, benchAnthropic[:64<<10], 1, nop) })
	crlf := []byte(strings.ReplaceAll(string(benchAnthropic), "\n", "\r\n"))
	b.Run("crlf/4KiB", func(b *testing.B) { benchFeed(b, crlf, 4096, nop) })
}

// BenchmarkTee is the whole per-stream cost in the proxy: split, observe,
// forward.
func BenchmarkTee(b *testing.B) {
	for _, tc := range []struct {
		name   string
		stream []byte
		acc    func() Accumulator
	}{
		{"anthropic", benchAnthropic, func() Accumulator { return new(Anthropic) }},
		{"openai", benchOpenAI, func() Accumulator { return new(OpenAI) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.stream)))
			b.ReportAllocs()
			for b.Loop() {
				tee := NewTee(io.Discard, tc.acc(), TeeOptions{})
				for rest := tc.stream; len(rest) > 0; {
					n := min(4096, len(rest))
					if _, err := tee.Write(rest[:n]); err != nil {
						b.Fatal(err)
					}
					rest = rest[n:]
				}
				if err := tee.Close(); err != nil || !tee.Usage().Complete {
					b.Fatal("incomplete", err)
				}
			}
		})
	}
}
