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
		// One flush per event, each right after the event's blank line.
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
	if len(out.flushedAt) != 5 || tee.Usage() != (Usage{}) {
		t.Fatalf("flushes %v", out.flushedAt)
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
