package usage

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// diffEvents turns fuzz input into a sequence of raw events: payload is cut
// at NUL bytes (at most 8 pieces) and kinds[i] chooses how piece i is
// framed, so one input exercises named and unnamed Anthropic events, OpenAI
// and Gemini data lines, and arbitrary raw bytes.
func diffEvents(kinds, payload []byte) [][]byte {
	pieces := bytes.SplitN(payload, []byte{0}, 8)
	events := make([][]byte, 0, len(pieces))
	for i, p := range pieces {
		k := byte(0)
		if len(kinds) > 0 {
			k = kinds[i%len(kinds)]
		}
		var ev []byte
		switch k % 6 {
		case 0:
			ev = append(ev, p...)
		case 1:
			ev = append(append([]byte("data: "), p...), "\n\n"...)
		case 2:
			ev = append(append([]byte("event: message_start\ndata: "), p...), "\n\n"...)
		case 3:
			ev = append(append([]byte("event: message_delta\ndata: "), p...), "\n\n"...)
		case 4:
			ev = append(append([]byte("event: error\ndata: "), p...), "\n\n"...)
		case 5:
			ev = append(append([]byte("data: "), p...), "\r\n\r\n"...)
		}
		events = append(events, ev)
	}
	return events
}

// checkDifferential feeds events to every production observer and to its
// encoding/json reference and fails at the first difference in EventInfo or
// Usage.
func checkDifferential(t *testing.T, events [][]byte) {
	t.Helper()
	pairs := []struct {
		name     string
		got, ref Accumulator
	}{
		{"anthropic", new(Anthropic), new(refAnthropic)},
		{"openai", new(OpenAI), new(refOpenAI)},
		{"gemini", new(Gemini), new(refGemini)},
	}
	for _, p := range pairs {
		for i, ev := range events {
			gotInfo, refInfo := p.got.Observe(ev), p.ref.Observe(ev)
			if gotInfo != refInfo {
				t.Fatalf("%s event %d %q: info %+v, encoding/json %+v", p.name, i, ev, gotInfo, refInfo)
			}
			if got, ref := p.got.Usage(), p.ref.Usage(); got != ref {
				t.Fatalf("%s event %d %q:\n usage          %+v\n encoding/json  %+v", p.name, i, ev, got, ref)
			}
		}
	}
}

// FuzzObserveDifferential holds the walker-based observers to the
// encoding/json ones they replaced (oracle_test.go): on any sequence of
// events, every EventInfo and the Usage after every event must be equal.
func FuzzObserveDifferential(f *testing.F) {
	for _, s := range []string{anthropicStream, anthropicToolStream, anthropicOverloaded, openaiStreamWithUsage, openaiStreamError, geminiStream, geminiStreamError} {
		f.Add([]byte{0}, []byte(s))
	}
	f.Fuzz(func(t *testing.T, kinds, payload []byte) {
		for _, piece := range bytes.Split(payload, []byte{0}) {
			checkPrefilter(t, piece)
			checkIgnored(t, piece)
		}
		checkDifferential(t, diffEvents(kinds, payload))
		// The payload as one whole stream, split as the Tee splits it.
		var events [][]byte
		collect := func(ev []byte) error {
			events = append(events, bytes.Clone(ev))
			return nil
		}
		s := NewSplitter(0)
		if err := s.Feed(payload, collect); err == nil {
			if rest, err := s.End(collect); err == nil && len(rest) > 0 {
				events = append(events, bytes.Clone(rest))
			}
			checkDifferential(t, events)
		}
	})
}

// checkPrefilter holds the one-pass pre-filter to the key searches it
// replaced wherever its answer matters: on valid JSON (on anything else the
// decode fails whether or not the pre-filter lets it through).
func checkPrefilter(t *testing.T, data []byte) {
	t.Helper()
	if !json.Valid(data) {
		return
	}
	oldOpenAI := refHasNonNullKey(data, keyUsage) || refHasNonNullKey(data, keyFinishReason) || refHasKey(data, keyError)
	oldGemini := refHasKey(data, keyUsageMetadata) || refHasKey(data, keyFinishReasonG) || refHasKey(data, keyError)
	if anyKey(data, openaiKeys) != oldOpenAI || anyKey(data, geminiKeys) != oldGemini || hasKey(data, keyType) != refHasKey(data, keyType) {
		t.Fatalf("pre-filter differs on %q: openai %v gemini %v type %v", data, oldOpenAI, oldGemini, refHasKey(data, keyType))
	}
}

// checkIgnored holds anthropicIgnored to the parse it spares: when it says
// the name alone makes Anthropic.Observe ignore raw, the reference parse
// must find a name, and one Observe does not act on.
func checkIgnored(t *testing.T, raw []byte) {
	t.Helper()
	if !anthropicIgnored(raw) {
		return
	}
	name := refParseEvent(raw).Name
	if len(name) == 0 || anthropicEventName(str{raw: name}) != nil {
		t.Fatalf("anthropicIgnored(%q), but the event is named %q", raw, name)
	}
}

// diffCases are the edge cases of encoding/json's decoding that the walker
// must reproduce; they also seed the fuzzer.
var diffCases = []string{
	// Keys: case folding, escapes, Kelvin sign and long s, near misses.
	`{"message":{"ID":"a","Model":"m","USAGE":{"Input_Tokens":3,"output_tokens":4}}}`,
	`{"m\u0065ssage":{"usag\u0065":{"input_tokens":5}},"mess\u0061ge":{"id":"x"}}`,
	`{"message":{"usage":{"input_to\u212Aens":7,"cache_creation_input_toKens":8,"\u017Futput_tokens":9}}}`,
	`{"message":{"usage":{"input_tokens ":7,"input_tokens\u0000":8,"İnput_tokens":1,"ınput_tokens":2}}}`,
	`{"message":{"usage":{"inp\ud800ut_tokens":7,"\u0069nput_tokens":6}}}`,
	// Numbers: sign, zero, fraction, exponent, overflow, strings.
	`{"message":{"usage":{"input_tokens":-5,"output_tokens":-0,"cache_read_input_tokens":9223372036854775807}}}`,
	`{"message":{"usage":{"input_tokens":9223372036854775808}}}`,
	`{"message":{"usage":{"input_tokens":-9223372036854775808,"output_tokens":1}}}`,
	`{"message":{"usage":{"input_tokens":1.0}}}`,
	`{"message":{"usage":{"input_tokens":1e2}}}`,
	`{"message":{"usage":{"input_tokens":"5"}}}`,
	`{"message":{"usage":{"cache_creation":{"ephemeral_5m_input_tokens":1E+2}}}}`,
	`{"message":{"usage":{"cache_creation":{"ephemeral_5m_input_tokens":null,"ephemeral_1h_input_tokens":-4}}}}`,
	// Duplicates: scalars replace, objects merge, null clears.
	`{"message":{"usage":{"input_tokens":1},"usage":{"output_tokens":2}}}`,
	`{"message":{"usage":{"input_tokens":1},"usage":null,"usage":{"output_tokens":2}}}`,
	`{"message":{"usage":{"cache_creation":{"ephemeral_1h_input_tokens":3},"cache_creation":{"ephemeral_5m_input_tokens":4}}}}`,
	`{"message":{"usage":{"cache_creation":{"ephemeral_1h_input_tokens":3},"cache_creation":null}}}`,
	`{"message":{"id":"a"},"message":{"model":"b"},"message":null}`,
	`{"delta":{"stop_reason":"x"},"delta":{"stop_reason":null},"usage":{"output_tokens":1}}`,
	`{"delta":{"stop_reason":"x"},"delta":null,"usage":{"output_tokens":1}}`,
	// Types: wrong types anywhere reject the event; null top level is fine.
	`null`, ` `, `[]`, `"x"`, `{"message":[]}`, `{"message":{"usage":"x"}}`, `{"message":{"usage":[1]}}`,
	`{"message":{"id":5}}`, `{"delta":{"stop_reason":5},"usage":{"output_tokens":1}}`,
	// Error events: partial decoding survives type errors.
	`{"error":{"type":"a"},"error":{"type":3}}`, `{"error":{"type":"a"},"error":null}`, `{"error":"x","other":1}`,
	`{"error":{"type":"a"},"x":[1,2}`, `{"type":"error","error":{"type":"overloaded_error"}}`,
	// Unnamed Anthropic events.
	`{"type":"message_st\u0061rt","message":{"id":"q","usage":{"input_tokens":1}}}`,
	`{"type":"message_delta","TYPE":"message_stop"}`, `{"type":null,"type":"message_stop"}`, `{"type":5}`,
	// OpenAI: choices repeated (slice reuse), errors, usage merges.
	`{"choices":[{"finish_reason":"a"},{"finish_reason":"b"}],"choices":[{}],"choices":[{},{}],"usage":{"prompt_tokens":1}}`,
	`{"choices":[{"finish_reason":"a"}],"choices":[],"choices":[{},{}],"usage":{"prompt_tokens":1}}`,
	`{"choices":[{"finish_reason":"a"}],"choices":[{"finish_reason":null}],"usage":{"prompt_tokens":1}}`,
	`{"choices":[{"finish_reason":"a"},null],"choices":[null,null,{"finish_reason":""}],"usage":{"prompt_tokens":1}}`,
	`{"choices":[{"finish_reason":"a"},{"finish_reason":"b"}],"choices":null,"choices":[{},{}],"finish_reason":"x"}`,
	`{"choices":{},"usage":{"prompt_tokens":1}}`, `{"choices":[1],"usage":{"prompt_tokens":1}}`,
	`{"usage":{"prompt_tokens":10,"prompt_tokens_details":{"cached_tokens":20}},"usage":{"completion_tokens":3}}`,
	`{"usage":{"prompt_tokens_details":{"cached_tokens":2}},"usage":{"prompt_tokens_details":null,"prompt_tokens":5}}`,
	`{"usage":{"prompt_tokens":-9223372036854775808,"prompt_tokens_details":{"cached_tokens":1}}}`,
	`{"error":{"code":"c"},"error":{"type":""}}`, `{"error":{"code":5}}`, `{"error":{"code":null}}`, `{"error":[]}`,
	`{"error":{"type":"t","code":"c"}}`, `{"error":{"code":"c","code":1}}`, `{"error":null,"usage":{"prompt_tokens":1}}`,
	`{"error":{"type":7}}`, `{"id":"","model":"","usage":{}}`, `{"id":"a\u00e9\ud83d\ude00","usage":{}}`,
	// Gemini.
	`{"candidates":[{"finishReason":"STOP"}],"candidates":[{"finishReason":null}],"usageMetadata":{"promptTokenCount":1}}`,
	`{"candidates":[{"finishReason":"A"},{"finishReason":"B"}],"candidates":[{}],"candidates":[{},{}]}`,
	`{"usageMetadata":{"promptTokenCount":5},"usageMetadata":{"candidatesTokenCount":3}}`,
	`{"usageMetadata":{"promptTokenCount":5},"usageMetadata":null,"usageMetadata":{"candidatesTokenCount":3}}`,
	`{"error":{},"usageMetadata":{}}`, `{"error":{"status":"X"},"error":null,"usageMetadata":{}}`, `{"error":5}`,
	`{"usageMetadata":{"promptTokenCount":1,"cachedContentTokenCount":5,"toolUsePromptTokenCount":-2,"thoughtsTokenCount":2}}`,
	// Deep nesting around and inside the interesting members.
	`{"x":` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `,"usage":{"prompt_tokens":1}}`,
	`{"x":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `,"usage":{"prompt_tokens":1}}`,
	`{"choices":[` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `],"usage":{"prompt_tokens":1}}`,
}

// TestObserveDifferentialStreams runs the realistic fixtures through both
// implementations (too large to be useful fuzz seeds).
func TestObserveDifferentialStreams(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "streams", "*.sse"))
	if err != nil || len(files) == 0 {
		t.Fatal("no fixtures", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		checkDifferential(t, eventChunks(t, b))
	}
}

// TestObserveDifferentialCases checks the edge cases, each framed every
// way (the deeply nested ones are too slow to be fuzz seeds).
func TestObserveDifferentialCases(t *testing.T) {
	for _, c := range diffCases {
		checkPrefilter(t, []byte(c))
		for k := byte(0); k < 6; k++ {
			checkDifferential(t, diffEvents([]byte{k}, []byte(c)))
		}
		// Twice in one stream: merges across events must not leak.
		checkDifferential(t, diffEvents([]byte{2, 3, 1, 4}, []byte(c+"\x00"+c+"\x00"+c+"\x00"+c)))
	}
}
