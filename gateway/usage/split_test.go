package usage

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unsafe"
)

// splitAll feeds chunks to a fresh Splitter and returns the yielded events,
// the bytes returned by End, and the first error.
func splitAll(max int, chunks [][]byte) (events []string, rest string, err error) {
	s := NewSplitter(max)
	yield := func(ev []byte) error {
		events = append(events, string(ev))
		return nil
	}
	for _, c := range chunks {
		if err := s.Feed(c, yield); err != nil {
			return events, "", err
		}
	}
	r, err := s.End(yield)
	return events, string(r), err
}

func bytesEach(s string) [][]byte {
	out := make([][]byte, len(s))
	for i := range s {
		out[i] = []byte{s[i]}
	}
	return out
}

func TestSplitterEvents(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		events []string
		rest   string
	}{
		{"lf", "event: a\ndata: 1\n\ndata: 2\n\n", []string{"event: a\ndata: 1\n\n", "data: 2\n\n"}, ""},
		{"crlf", "data: 1\r\n\r\ndata: 2\r\n\r\n", []string{"data: 1\r\n\r\n", "data: 2\r\n\r\n"}, ""},
		{"cr", "data: 1\r\rdata: 2\r\r", []string{"data: 1\r\r", "data: 2\r\r"}, ""},
		{"mixed", "data: 1\r\n\ndata: 2\n\r\ndata: 3\r\r\n", []string{"data: 1\r\n\n", "data: 2\n\r\n", "data: 3\r\r\n"}, ""},
		{"blank lines between events", "\n\ndata: 1\n\n\r\n", []string{"\n", "\n", "data: 1\n\n", "\r\n"}, ""},
		{"comment lines are part of the event", ": keepalive\n\n", []string{": keepalive\n\n"}, ""},
		{"unterminated tail", "data: 1\n\ndata: 2\n", []string{"data: 1\n\n"}, "data: 2\n"},
		{"tail without newline", "data: 1\n\ndata: [DO", []string{"data: 1\n\n"}, "data: [DO"},
		{"final bare cr completes at EOF", "data: 1\r\r", []string{"data: 1\r\r"}, ""},
		{"empty", "", nil, ""},
		{"anthropic", anthropicStream, eventsOf(anthropicStream), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(how string, chunks [][]byte) {
				t.Helper()
				events, rest, err := splitAll(0, chunks)
				if err != nil {
					t.Fatalf("%s: %v", how, err)
				}
				if strings.Join(events, "|") != strings.Join(tt.events, "|") || rest != tt.rest {
					t.Fatalf("%s: events %q rest %q\nwant %q rest %q", how, events, rest, tt.events, tt.rest)
				}
			}
			check("whole", [][]byte{[]byte(tt.in)})
			check("bytes", bytesEach(tt.in))
			for i := 0; i <= len(tt.in); i++ {
				check("split", [][]byte{[]byte(tt.in[:i]), nil, []byte(tt.in[i:])})
			}
		})
	}
}

// A blank line ended by "\r" at the end of a chunk is held until the next
// byte: an "\n" belongs to the same event.
func TestSplitterHoldsFinalCR(t *testing.T) {
	s := NewSplitter(0)
	var got []string
	yield := func(ev []byte) error { got = append(got, string(ev)); return nil }
	if err := s.Feed([]byte("data: 1\r\n\r"), yield); err != nil || len(got) != 0 {
		t.Fatalf("yielded %q before seeing the next byte (err %v)", got, err)
	}
	if err := s.Feed([]byte("\ndata: 2\r\n\r"), yield); err != nil {
		t.Fatal(err)
	}
	if err := s.Feed([]byte("data: 3"), yield); err != nil {
		t.Fatal(err)
	}
	rest, err := s.End(yield)
	if err != nil || string(rest) != "data: 3" {
		t.Fatalf("rest %q err %v", rest, err)
	}
	want := []string{"data: 1\r\n\r\n", "data: 2\r\n\r"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q want %q", got, want)
	}
}

// Events wholly inside a chunk are sub-slices of it: no copy, no allocation.
func TestSplitterZeroCopy(t *testing.T) {
	chunk := []byte(anthropicStream)
	s := NewSplitter(0)
	n := 0
	err := s.Feed(chunk, func(ev []byte) error {
		p := uintptr(unsafe.Pointer(unsafe.SliceData(ev)))
		base := uintptr(unsafe.Pointer(unsafe.SliceData(chunk)))
		if p < base || p+uintptr(len(ev)) > base+uintptr(len(chunk)) {
			t.Errorf("event %d was copied", n)
		}
		n++
		return nil
	})
	if err != nil || n != 9 || s.Buffered() != 0 {
		t.Fatalf("n=%d buffered=%d err=%v", n, s.Buffered(), err)
	}
	nop := func([]byte) error { return nil }
	if a := testing.AllocsPerRun(100, func() { _ = s.Feed(chunk, nop) }); a != 0 {
		t.Errorf("Feed allocates %v times per call", a)
	}
	// Only the incomplete tail is copied, and the buffer is reused.
	half := len(chunk) / 2
	if a := testing.AllocsPerRun(100, func() {
		_ = s.Feed(chunk[:half], nop)
		_ = s.Feed(chunk[half:], nop)
	}); a != 0 {
		t.Errorf("split Feed allocates %v times per call", a)
	}
}

func TestSplitterMaxEventSize(t *testing.T) {
	ev := "data: " + strings.Repeat("x", 10) + "\n\n" // 18 bytes
	for _, tt := range []struct {
		max  int
		fail bool
	}{{18, false}, {17, true}, {100, false}} {
		for _, chunks := range [][][]byte{{[]byte(ev + ev)}, bytesEach(ev + ev)} {
			events, _, err := splitAll(tt.max, chunks)
			var tl *EventTooLargeError
			if tt.fail != errors.As(err, &tl) || tt.fail && (tl.Limit != tt.max || len(events) != 0) {
				t.Errorf("max %d: events %q err %v", tt.max, events, err)
			}
			if tt.fail && !strings.Contains(err.Error(), "17-byte limit") {
				t.Errorf("error does not name the limit: %v", err)
			}
		}
	}
	// An unterminated event is refused as soon as it outgrows the limit,
	// which is what bounds memory; the error is sticky.
	s := NewSplitter(32)
	nop := func([]byte) error { return nil }
	if err := s.Feed([]byte("data: 1\n\ndata: "+strings.Repeat("y", 30)), nop); err == nil {
		t.Fatal("no error for an oversized partial event")
	}
	if err := s.Feed([]byte("\n\n"), nop); err == nil {
		t.Fatal("error not sticky")
	}
	if s.Buffered() != 0 {
		t.Fatal("buffer kept after failure")
	}
	if s := NewSplitter(0); s.limit() != DefaultMaxEventSize || (&Splitter{}).limit() != 16<<20 {
		t.Fatal("default limit is not 16 MiB")
	}
}

func TestSplitterYieldErrorStops(t *testing.T) {
	boom := errors.New("client gone")
	s := NewSplitter(0)
	calls := 0
	err := s.Feed([]byte("data: 1\n\ndata: 2\n\n"), func([]byte) error { calls++; return boom })
	if !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
	if _, err := s.End(func([]byte) error { return nil }); !errors.Is(err, boom) {
		t.Fatalf("End after failure: %v", err)
	}
}

func TestSplitterEndResets(t *testing.T) {
	s := NewSplitter(0)
	var got bytes.Buffer
	yield := func(ev []byte) error { got.Write(ev); got.WriteByte('|'); return nil }
	_ = s.Feed([]byte("data: a\n"), yield)
	if rest, _ := s.End(yield); string(rest) != "data: a\n" {
		t.Fatalf("rest %q", rest)
	}
	// After End the next stream starts at a line start again.
	_ = s.Feed([]byte("\ndata: b\n\n"), yield)
	if got.String() != "\n|data: b\n\n|" {
		t.Fatalf("got %q", got.String())
	}
}

// eventsOf splits a stream that uses "\n\n" only as event terminators.
func eventsOf(stream string) []string {
	ev := strings.SplitAfter(stream, "\n\n")
	return ev[:len(ev)-1]
}
