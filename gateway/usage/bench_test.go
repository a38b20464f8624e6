package usage

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
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

// streamFixtures are realistic whole responses (testdata/streams), one per
// shape the gateway relays: a long Anthropic answer, an Anthropic tool call,
// an OpenAI stream with the include_usage chunk, a Gemini alt=sse stream.
var streamFixtures = []struct {
	name string
	file string
	p    Provider
}{
	{"anthropic_text", "anthropic_text.sse", ProviderAnthropic},
	{"anthropic_tool_use", "anthropic_tool_use.sse", ProviderAnthropic},
	{"openai_include_usage", "openai_include_usage.sse", ProviderOpenAI},
	{"gemini_alt_sse", "gemini_alt_sse.sse", ProviderGemini},
}

func readFixture(tb testing.TB, file string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "streams", file))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// eventChunks cuts stream into one chunk per event, the shape of upstream
// reads when the provider flushes every event and the proxy keeps up.
func eventChunks(tb testing.TB, stream []byte) [][]byte {
	tb.Helper()
	var chunks [][]byte
	s := NewSplitter(0)
	err := s.Feed(stream, func(ev []byte) error {
		chunks = append(chunks, ev)
		return nil
	})
	if rest, _ := s.End(nil); err != nil || len(rest) != 0 {
		tb.Fatalf("fixture does not split cleanly: %v", err)
	}
	return chunks
}

func sizeChunks(stream []byte, n int) [][]byte {
	var chunks [][]byte
	for rest := stream; len(rest) > 0; {
		k := min(n, len(rest))
		chunks = append(chunks, rest[:k])
		rest = rest[k:]
	}
	return chunks
}

// BenchmarkStream is the gateway's per-stream usage cost: a new accumulator
// and Tee, every upstream read written through, Close. One op is one whole
// realistic stream; events/op is reported for per-event figures.
func BenchmarkStream(b *testing.B) {
	for _, fx := range streamFixtures {
		stream := readFixture(b, fx.file)
		for _, ch := range []struct {
			name   string
			chunks [][]byte
		}{
			{"per_event", eventChunks(b, stream)},
			{"4KiB", sizeChunks(stream, 4096)},
		} {
			b.Run(fx.name+"/"+ch.name, func(b *testing.B) {
				b.SetBytes(int64(len(stream)))
				b.ReportAllocs()
				for b.Loop() {
					acc, _ := NewAccumulator(fx.p)
					tee := NewTee(io.Discard, acc, TeeOptions{})
					for _, c := range ch.chunks {
						if _, err := tee.Write(c); err != nil {
							b.Fatal(err)
						}
					}
					if err := tee.Close(); err != nil || !tee.Usage().Complete {
						b.Fatal("incomplete", err)
					}
				}
				b.ReportMetric(float64(len(eventChunks(b, stream))), "events/op")
			})
		}
	}
}

// BenchmarkObserve is the cost of one event of each kind that reaches the
// JSON path (usage, stop reason), and of a content event that the
// pre-filter rejects, for comparison; each against the encoding/json
// observers it replaced (encoding_json), in the same run.
func BenchmarkObserve(b *testing.B) {
	pick := func(file, marker string) []byte {
		for _, ev := range eventChunks(b, readFixture(b, file)) {
			if bytes.Contains(ev, []byte(marker)) {
				return ev
			}
		}
		b.Fatalf("%s: no event with %q", file, marker)
		return nil
	}
	for _, tc := range []struct {
		name string
		acc  func() Accumulator
		ev   []byte
	}{
		{"anthropic/message_start", func() Accumulator { return new(Anthropic) }, pick("anthropic_text.sse", "event: message_start")},
		{"anthropic/message_delta", func() Accumulator { return new(Anthropic) }, pick("anthropic_text.sse", "event: message_delta")},
		{"anthropic/content_delta", func() Accumulator { return new(Anthropic) }, pick("anthropic_text.sse", "event: content_block_delta")},
		{"openai/finish_chunk", func() Accumulator { return new(OpenAI) }, pick("openai_include_usage.sse", `"finish_reason":"stop"`)},
		{"openai/usage_chunk", func() Accumulator { return new(OpenAI) }, pick("openai_include_usage.sse", `"choices":[]`)},
		{"openai/content_chunk", func() Accumulator { return new(OpenAI) }, pick("openai_include_usage.sse", `"content":" `)},
		{"gemini/running_usage", func() Accumulator { return new(Gemini) }, pick("gemini_alt_sse.sse", `"candidatesTokenCount"`)},
		{"gemini/final", func() Accumulator { return new(Gemini) }, pick("gemini_alt_sse.sse", `"finishReason"`)},
	} {
		for _, side := range []struct {
			name string
			acc  Accumulator
		}{{"walk", tc.acc()}, {"encoding_json", oracleFor(tc.acc())}} {
			b.Run(tc.name+"/"+side.name, func(b *testing.B) {
				b.SetBytes(int64(len(tc.ev)))
				b.ReportAllocs()
				for b.Loop() {
					side.acc.Observe(tc.ev)
				}
			})
		}
	}
}

// oracleFor is the encoding/json observer (oracle_test.go, the code the
// walk replaced) of acc's family: BenchmarkObserve's baseline, measured
// in the same run.
func oracleFor(acc Accumulator) Accumulator {
	switch acc.(type) {
	case *Anthropic:
		return new(refAnthropic)
	case *OpenAI:
		return new(refOpenAI)
	}
	return new(refGemini)
}

// BenchmarkPrefilter compares the one-pass pre-filter with the three key
// searches it replaced, on the OpenAI content chunk (the event it rejects
// several hundred times per stream) and on a Gemini chunk.
func BenchmarkPrefilter(b *testing.B) {
	for _, tc := range []struct {
		name, file, marker string
		keys               []keySpec
		old                func([]byte) bool
	}{
		{"openai_content_chunk", "openai_include_usage.sse", `"content":" `, openaiKeys, func(d []byte) bool {
			return refHasNonNullKey(d, keyUsage) || refHasNonNullKey(d, keyFinishReason) || refHasKey(d, keyError)
		}},
		{"gemini_chunk", "gemini_alt_sse.sse", `"candidatesTokenCount"`, geminiKeys, func(d []byte) bool {
			return refHasKey(d, keyUsageMetadata) || refHasKey(d, keyFinishReasonG) || refHasKey(d, keyError)
		}},
	} {
		var data []byte
		for _, ev := range eventChunks(b, readFixture(b, tc.file)) {
			if bytes.Contains(ev, []byte(tc.marker)) {
				data = ParseEvent(ev).Data
				break
			}
		}
		b.Run(tc.name+"/three_searches", func(b *testing.B) {
			for b.Loop() {
				tc.old(data)
			}
		})
		b.Run(tc.name+"/one_pass", func(b *testing.B) {
			for b.Loop() {
				anyKey(data, tc.keys)
			}
		})
	}
}
