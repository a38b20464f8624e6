package usage

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

const fuzzMaxEvent = 256 // small, so random inputs reach the bound

// FuzzSSE feeds the same bytes whole, one byte at a time and in chunks
// chosen by cuts, and checks that every way yields the same events, rest,
// error and usage as an independent whole-input reference; that nothing is
// lost or invented; that no event or buffer exceeds the bound; and that the
// Tee's runs of events reach the client as a Write per event would.
func FuzzSSE(f *testing.F) {
	f.Add([]byte(anthropicStream), []byte{7, 200, 3})
	f.Add([]byte(openaiStreamWithUsage), []byte{0, 255, 40})
	f.Add([]byte("data: 1\r\r\ndata: 2\r\rdata: "+string(make([]byte, 300))+"\n\n"), []byte{9, 2})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		want := refSplit(data, fuzzMaxEvent)
		ways := map[string][][]byte{"whole": {data}, "bytes": nil, "cuts": nil}
		for i := range data {
			ways["bytes"] = append(ways["bytes"], data[i:i+1])
		}
		for rest, k := data, 0; len(rest) > 0; k++ {
			n := 1
			if len(cuts) > 0 {
				n = int(cuts[k%len(cuts)])
			}
			if n == 0 { // feed an empty chunk too, then make progress
				ways["cuts"] = append(ways["cuts"], rest[:0])
				n = 1
			}
			n = min(n, len(rest))
			ways["cuts"] = append(ways["cuts"], rest[:n])
			rest = rest[n:]
		}
		for how, chunks := range ways {
			got := runSplit(t, chunks)
			if !slices.Equal(got.events, want.events) || got.rest != want.rest || got.tooLarge != want.tooLarge {
				t.Fatalf("%s: events %q rest %q tooLarge %v\nwant    %q rest %q tooLarge %v",
					how, got.events, got.rest, got.tooLarge, want.events, want.rest, want.tooLarge)
			}
			if got.usage != want.usage || !slices.Equal(got.infos, want.infos) {
				t.Fatalf("%s: usage %+v\nwant  %+v", how, got.usage, want.usage)
			}
			checkTeeBatching(t, how, chunks)
		}
	})
}

// checkTeeBatching: the Tee, writing runs of events, and the per-event
// reference (refTee) send the client the same bytes with the same flushes
// and results, for each accumulator, dropping the usage-only chunk or not.
func checkTeeBatching(t *testing.T, how string, chunks [][]byte) {
	t.Helper()
	for _, acc := range []func() Accumulator{
		nil,
		func() Accumulator { return new(Anthropic) },
		func() Accumulator { return new(OpenAI) },
		func() Accumulator { return new(Gemini) },
	} {
		for _, drop := range []bool{false, true} {
			opt := TeeOptions{MaxEventSize: fuzzMaxEvent, DropUsageOnly: drop}
			got := runTee(newBatching(acc, opt), chunks, -1)
			want := runTee(newPerEvent(acc, opt), chunks, -1)
			if got.out != want.out || !slices.Equal(got.flushedAt, want.flushedAt) || !slices.Equal(got.results, want.results) ||
				!slices.Equal(got.infos, want.infos) || got.usage != want.usage || got.forwarded != want.forwarded {
				t.Fatalf("%s, drop %v: Tee differs from per-event\nout   %q\nwant  %q\nflush %v want %v\nres %v want %v",
					how, drop, got.out, want.out, got.flushedAt, want.flushedAt, got.results, want.results)
			}
		}
	}
}

type splitResult struct {
	events   []string
	rest     string
	tooLarge bool
	usage    [3]Usage
	infos    []EventInfo
}

// observeAll records what every accumulator makes of the events.
func (r *splitResult) observeAll() {
	accs := [3]Accumulator{new(Anthropic), new(OpenAI), new(Gemini)}
	for _, ev := range r.events {
		for _, a := range accs {
			r.infos = append(r.infos, a.Observe([]byte(ev)))
		}
	}
	for i, a := range accs {
		r.usage[i] = a.Usage()
	}
}

func runSplit(t *testing.T, chunks [][]byte) splitResult {
	var r splitResult
	var fed []byte
	s := NewSplitter(fuzzMaxEvent)
	yield := func(ev []byte) error {
		if len(ev) > fuzzMaxEvent {
			t.Fatalf("event of %d bytes exceeds the bound", len(ev))
		}
		r.events = append(r.events, string(ev))
		return nil
	}
	var err error
	for _, c := range chunks {
		fed = append(fed, c...)
		if err = s.Feed(c, yield); err != nil {
			break
		}
		if s.Buffered() > fuzzMaxEvent {
			t.Fatalf("buffered %d bytes", s.Buffered())
		}
	}
	if err == nil {
		var rest []byte
		rest, err = s.End(yield)
		r.rest = string(rest)
	}
	if err != nil {
		var tl *EventTooLargeError
		if !errors.As(err, &tl) || tl.Limit != fuzzMaxEvent {
			t.Fatalf("unexpected error %v", err)
		}
		r.tooLarge = true
	}
	// Lossless: what was yielded, then the rest, is a prefix of the input
	// (all of it without an error).
	out := []byte(r.rest)
	for i := len(r.events) - 1; i >= 0; i-- {
		out = append([]byte(r.events[i]), out...)
	}
	if !bytes.HasPrefix(fed, out) || err == nil && len(out) != len(fed) {
		t.Fatalf("output %q is not the input %q", out, fed)
	}
	r.observeAll()
	return r
}

// refSplit is the reference: it sees the whole input at once, so a final
// "\r" is unambiguous, and finds lines first, events second.
func refSplit(data []byte, max int) splitResult {
	var r splitResult
	start, lineEmpty := 0, true
	for i := 0; i < len(data); {
		if c := data[i]; c != '\r' && c != '\n' {
			lineEmpty = false
			i++
			continue
		}
		end := i + 1
		if data[i] == '\r' && end < len(data) && data[end] == '\n' {
			end++
		}
		if lineEmpty {
			if end-start > max {
				r.tooLarge = true
				r.observeAll()
				return r
			}
			r.events = append(r.events, string(data[start:end]))
			start = end
		}
		lineEmpty = true
		i = end
	}
	if len(data)-start > max {
		r.tooLarge = true
	} else {
		r.rest = string(data[start:])
	}
	r.observeAll()
	return r
}
