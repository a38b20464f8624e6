package usage

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// flushRecorder records, at every flush, how much had been written, so tests
// see that flushes fall exactly on event boundaries.
type flushRecorder struct {
	bytes.Buffer
	flushedAt []int
}

func (f *flushRecorder) flush() error {
	f.flushedAt = append(f.flushedAt, f.Len())
	return nil
}

func TestTeeForwardsEventsUnchanged(t *testing.T) {
	for _, stream := range []string{anthropicStream, anthropicOverloaded, openaiStreamWithUsage, geminiStream} {
		var out flushRecorder
		tee := NewTee(&out, new(Anthropic), TeeOptions{Flush: out.flush})
		if _, err := io.Copy(tee, iotest.OneByteReader(strings.NewReader(stream))); err != nil {
			t.Fatal(err)
		}
		if err := tee.Close(); err != nil {
			t.Fatal(err)
		}
		if out.String() != stream {
			t.Fatalf("forwarded bytes differ from upstream")
		}
		// Fed a byte at a time, each Write completes at most one event, so
		// there is one flush per event, right after its blank line.
		var want []int
		n := 0
		for _, ev := range splitEvents(t, stream) {
			n += len(ev)
			want = append(want, n)
		}
		if !slices.Equal(out.flushedAt, want) {
			t.Fatalf("flushed at %v, want %v", out.flushedAt, want)
		}
	}
}

func TestTeeDropsUsageOnlyChunkWhenAsked(t *testing.T) {
	for _, drop := range []bool{false, true} {
		var out bytes.Buffer
		tee := NewTee(&out, new(OpenAI), TeeOptions{DropUsageOnly: drop})
		if _, err := tee.Write([]byte(openaiStreamWithUsage)); err != nil {
			t.Fatal(err)
		}
		if err := tee.Close(); err != nil {
			t.Fatal(err)
		}
		want := openaiStreamWithUsage
		if drop {
			want = openaiStream + openaiDone
		}
		if out.String() != want {
			t.Errorf("drop=%v: client received\n%s", drop, out.String())
		}
		if u := tee.Usage(); !u.Complete || u.OutputTokens != 300 || !tee.Last().Terminal {
			t.Errorf("drop=%v: usage %+v last %+v", drop, u, tee.Last())
		}
	}
}

func TestTeeForwardsTruncatedTail(t *testing.T) {
	stream := anthropicOverloaded + "event: ping\ndata: {\"ty"
	var out flushRecorder
	tee := NewTee(&out, nil, TeeOptions{Flush: out.flush})
	if _, err := tee.Write([]byte(stream)); err != nil {
		t.Fatal(err)
	}
	if out.String() != anthropicOverloaded {
		t.Fatal("incomplete event forwarded before EOF")
	}
	if err := tee.Close(); err != nil || out.String() != stream {
		t.Fatalf("Close: %v, forwarded %q", err, out.String())
	}
	// One flush for the Write's four complete events, one for the tail.
	if want := []int{len(anthropicOverloaded), len(stream)}; !slices.Equal(out.flushedAt, want) || tee.Usage() != (Usage{}) {
		t.Fatalf("flushed at %v, want %v", out.flushedAt, want)
	}
}

// TestTeeFlushesOncePerWrite: every Write that completes events forwards
// all of them and flushes once, after the last; the start of an event
// whose end has not arrived is neither forwarded nor flushed until the
// Write that completes it. Every chunking of every stream is checked
// against the event boundaries.
func TestTeeFlushesOncePerWrite(t *testing.T) {
	for _, stream := range []string{anthropicStream, anthropicOverloaded, openaiStreamWithUsage, geminiStream} {
		var ends []int // offset just past each event
		n := 0
		for _, ev := range splitEvents(t, stream) {
			n += len(ev)
			ends = append(ends, n)
		}
		for _, size := range []int{len(stream), 1000, 333, 64, 7} {
			var out flushRecorder
			tee := NewTee(&out, new(Anthropic), TeeOptions{Flush: out.flush})
			var want []int
			for off := 0; off < len(stream); off += size {
				end := min(off+size, len(stream))
				if _, err := tee.Write([]byte(stream[off:end])); err != nil {
					t.Fatal(err)
				}
				// What this Write completed: the events ending in (off, end].
				done := 0
				for _, e := range ends {
					if e <= end {
						done = e
					}
				}
				if out.Len() != done {
					t.Fatalf("chunk %d: after Write of [%d,%d) forwarded %d bytes, want %d (the complete events)", size, off, end, out.Len(), done)
				}
				if done > off {
					want = append(want, done)
				}
			}
			if !slices.Equal(out.flushedAt, want) {
				t.Fatalf("chunk %d: flushed at %v, want %v", size, out.flushedAt, want)
			}
			if err := tee.Close(); err != nil || out.String() != stream || len(out.flushedAt) != len(want) {
				t.Fatalf("chunk %d: Close %v, %d flushes after it", size, err, len(out.flushedAt)-len(want))
			}
		}
		// The whole stream in one Write: one flush, after everything.
		var out flushRecorder
		tee := NewTee(&out, nil, TeeOptions{Flush: out.flush})
		if _, err := tee.Write([]byte(stream)); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out.flushedAt, []int{len(stream)}) {
			t.Fatalf("one Write of %d events flushed at %v", len(ends), out.flushedAt)
		}
	}
}

// TestTeeFlushesEventsBeforeOversized: the complete events of a Write that
// then hits an oversized event still reach the client, flushed.
func TestTeeFlushesEventsBeforeOversized(t *testing.T) {
	var out flushRecorder
	tee := NewTee(&out, nil, TeeOptions{Flush: out.flush, MaxEventSize: 64})
	_, err := tee.Write([]byte(openaiDone + "data: " + strings.Repeat("x", 100)))
	var tl *EventTooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("oversized event: %v", err)
	}
	if out.String() != openaiDone || !slices.Equal(out.flushedAt, []int{len(openaiDone)}) {
		t.Fatalf("forwarded %q, flushed at %v", out.String(), out.flushedAt)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestTeeErrors(t *testing.T) {
	gone := errors.New("client gone")
	tee := NewTee(failWriter{gone}, new(OpenAI), TeeOptions{})
	if _, err := tee.Write([]byte(openaiDone)); !errors.Is(err, gone) {
		t.Fatalf("write error not returned: %v", err)
	}
	tee = NewTee(io.Discard, nil, TeeOptions{MaxEventSize: 64})
	_, err := tee.Write([]byte("data: " + strings.Repeat("x", 100)))
	var tl *EventTooLargeError
	if !errors.As(err, &tl) || tl.Limit != 64 {
		t.Fatalf("oversized event: %v", err)
	}
	failFlush := errors.New("flush failed")
	tee = NewTee(io.Discard, nil, TeeOptions{Flush: func() error { return failFlush }})
	if _, err := tee.Write([]byte(openaiDone)); !errors.Is(err, failFlush) {
		t.Fatalf("flush error not returned: %v", err)
	}
}

func splitEvents(t *testing.T, stream string) []string {
	t.Helper()
	events, rest, err := splitAll(0, [][]byte{[]byte(stream)})
	if err != nil || rest != "" {
		t.Fatalf("split: %v rest %q", err, rest)
	}
	return events
}
