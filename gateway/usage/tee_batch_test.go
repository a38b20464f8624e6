package usage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// refTee is the Tee as it was before it wrote runs of events at once: one
// Write to W per forwarded event. The batching Tee must be
// indistinguishable from it: same bytes, same flushes at the same offsets,
// same results, usage and event count.
type refTee struct {
	w         io.Writer
	flush     func() error
	acc       Accumulator
	split     *Splitter
	drop      bool
	info      EventInfo
	unflushed bool
	forwarded int
}

func (t *refTee) Write(p []byte) (int, error) {
	err := t.split.Feed(p, t.event)
	if ferr := t.flushForwarded(); err == nil {
		err = ferr
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (t *refTee) Close() error {
	rest, err := t.split.End(t.event)
	if err == nil && len(rest) > 0 {
		t.forwarded++
		if _, err = t.w.Write(rest); err == nil {
			t.unflushed = true
		}
	}
	if ferr := t.flushForwarded(); err == nil {
		err = ferr
	}
	return err
}

func (t *refTee) event(ev []byte) error {
	if t.acc != nil {
		t.info = t.acc.Observe(ev)
		if t.drop && t.info.UsageOnly {
			return nil
		}
	}
	t.forwarded++
	if _, err := t.w.Write(ev); err != nil {
		return err
	}
	t.unflushed = true
	return nil
}

func (t *refTee) flushForwarded() error {
	if !t.unflushed || t.flush == nil {
		t.unflushed = false
		return nil
	}
	t.unflushed = false
	return t.flush()
}

// writeRecorder is a flushRecorder that also counts the Writes it gets and
// can fail the Write with index failAt (0-based; -1 never).
type writeRecorder struct {
	flushRecorder
	writes int
	failAt int
}

var errClientGone = errors.New("client gone")

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.writes++
	if w.writes-1 == w.failAt {
		return 0, errClientGone
	}
	return w.Buffer.Write(p)
}

// teeRun is everything observable about feeding chunks to a tee.
type teeRun struct {
	out       string
	flushedAt []int
	results   []string // per Write, then Close: bytes accepted and error
	infos     []EventInfo
	usage     Usage
	forwarded int
	writes    int
}

type teeLike interface {
	io.WriteCloser
}

func runTee(newTee func(w *writeRecorder) (teeLike, func() (EventInfo, Usage, int)), chunks [][]byte, failAt int) teeRun {
	w := &writeRecorder{failAt: failAt}
	tee, state := newTee(w)
	var r teeRun
	result := func(n int, err error) {
		var tl *EventTooLargeError
		kind := "nil"
		switch {
		case errors.As(err, &tl):
			kind = fmt.Sprintf("too large %d", tl.Limit)
		case err != nil:
			kind = err.Error()
		}
		r.results = append(r.results, fmt.Sprintf("%d %s", n, kind))
	}
	for _, c := range chunks {
		n, err := tee.Write(c)
		result(n, err)
		info, _, _ := state()
		r.infos = append(r.infos, info)
	}
	result(0, tee.Close())
	info, u, fw := state()
	r.infos = append(r.infos, info)
	r.out, r.flushedAt, r.usage, r.forwarded, r.writes = w.String(), w.flushedAt, u, fw, w.writes
	return r
}

func newBatching(acc func() Accumulator, opt TeeOptions) func(w *writeRecorder) (teeLike, func() (EventInfo, Usage, int)) {
	return func(w *writeRecorder) (teeLike, func() (EventInfo, Usage, int)) {
		opt.Flush = w.flush
		var a Accumulator
		if acc != nil {
			a = acc()
		}
		t := NewTee(w, a, opt)
		return t, func() (EventInfo, Usage, int) { return t.Last(), t.Usage(), t.Forwarded() }
	}
}

func newPerEvent(acc func() Accumulator, opt TeeOptions) func(w *writeRecorder) (teeLike, func() (EventInfo, Usage, int)) {
	return func(w *writeRecorder) (teeLike, func() (EventInfo, Usage, int)) {
		var a Accumulator
		if acc != nil {
			a = acc()
		}
		t := &refTee{w: w, flush: w.flush, acc: a, split: NewSplitter(opt.MaxEventSize), drop: opt.DropUsageOnly}
		return t, func() (EventInfo, Usage, int) {
			var u Usage
			if a != nil {
				u = a.Usage()
			}
			return t.info, u, t.forwarded
		}
	}
}

// teeEvents are the events random streams are made of: every event of the
// test streams and fixtures, each with its "\n" line ends kept or turned
// into "\r\n" or "\r" by the generator.
func teeEvents(t *testing.T) []string {
	var evs []string
	for _, s := range []string{anthropicStream, anthropicOverloaded, openaiStreamWithUsage, geminiStream} {
		evs = append(evs, splitEvents(t, s)...)
	}
	for _, fx := range streamFixtures {
		for _, ev := range eventChunks(t, readFixture(t, fx.file)) {
			evs = append(evs, string(ev))
		}
	}
	return evs
}

// randomStream strings together random events with random line ends,
// sometimes a blank line or comment between them, and sometimes an
// unterminated tail.
func randomStream(rng *rand.Rand, events []string) []byte {
	var b []byte
	for range 1 + rng.IntN(40) {
		ev := events[rng.IntN(len(events))]
		switch rng.IntN(8) {
		case 0:
			ev = strings.ReplaceAll(strings.ReplaceAll(ev, "\r\n", "\n"), "\n", "\r\n")
		case 1:
			ev = strings.ReplaceAll(strings.ReplaceAll(ev, "\r\n", "\n"), "\n", "\r")
		case 2:
			ev = "\n"
		case 3:
			ev = ": keepalive\r\n\r\n"
		}
		b = append(b, ev...)
	}
	if rng.IntN(4) == 0 {
		b = append(b, "event: ping\r\ndata: {\"ty"...)
	}
	return b
}

// randomChunks cuts b at random places, sometimes into a chunk per byte,
// sometimes with empty chunks in between.
func randomChunks(rng *rand.Rand, b []byte) [][]byte {
	var chunks [][]byte
	maxLen := []int{1, 8, 200, 1000, 5000, len(b) + 1}[rng.IntN(6)]
	for len(b) > 0 {
		if rng.IntN(10) == 0 {
			chunks = append(chunks, b[:0])
		}
		n := min(1+rng.IntN(maxLen), len(b))
		// A fresh copy: a chunk must not alias its neighbours, as the
		// buffer of a real read does not.
		chunks = append(chunks, bytes.Clone(b[:n]))
		b = b[n:]
	}
	return chunks
}

// TestTeeBatchingMatchesPerEvent: for random streams (Anthropic, OpenAI
// with and without DropUsageOnly, Gemini; "\n", "\r\n" and "\r" line ends;
// oversized events; unterminated tails) cut into random chunks, the Tee
// that writes runs of events is indistinguishable from one that writes
// each event: the client gets the same bytes, flushed at the same offsets
// (so as often per upstream read), and every Write, Close, EventInfo,
// Usage and event count agrees. Failing client writes are included.
func TestTeeBatchingMatchesPerEvent(t *testing.T) {
	events := teeEvents(t)
	accs := []func() Accumulator{
		nil,
		func() Accumulator { return new(Anthropic) },
		func() Accumulator { return new(OpenAI) },
		func() Accumulator { return new(Gemini) },
	}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 1000
	if testing.Short() {
		n = 300
	}
	for i := range n {
		stream := randomStream(rng, events)
		chunks := randomChunks(rng, stream)
		acc := accs[rng.IntN(len(accs))]
		opt := TeeOptions{DropUsageOnly: rng.IntN(2) == 0}
		if rng.IntN(4) == 0 {
			opt.MaxEventSize = 200 + rng.IntN(600) // some fixture events are larger
		}
		failAt := -1
		if rng.IntN(4) == 0 {
			failAt = rng.IntN(6)
		}
		got := runTee(newBatching(acc, opt), chunks, failAt)
		want := runTee(newPerEvent(acc, opt), chunks, -1)
		if failAt < 0 {
			if got.out != want.out || !slices.Equal(got.flushedAt, want.flushedAt) || !slices.Equal(got.results, want.results) ||
				!slices.Equal(got.infos, want.infos) || got.usage != want.usage || got.forwarded != want.forwarded {
				t.Fatalf("case %d (drop %v, max %d): batching differs from per-event\nout   %q\nwant  %q\nflush %v\nwant  %v\nres   %v\nwant  %v\nfwd %d want %d",
					i, opt.DropUsageOnly, opt.MaxEventSize, got.out, want.out, got.flushedAt, want.flushedAt, got.results, want.results, got.forwarded, want.forwarded)
			}
			if got.writes > want.writes {
				t.Fatalf("case %d: %d writes to W, more than one per event (%d)", i, got.writes, want.writes)
			}
			continue
		}
		// With a failing client: what reached it is a prefix of what the
		// per-event Tee sends, every result after the failure is the
		// failure. (The n-th Write to W is not the same bytes in the two,
		// so failing both there would compare nothing.)
		if !strings.HasPrefix(want.out, got.out) {
			t.Fatalf("case %d: after a failed write the client got %q, not a prefix of %q", i, got.out, want.out)
		}
		failed := false
		for k, res := range got.results[:len(got.results)-1] {
			if strings.HasSuffix(res, errClientGone.Error()) {
				failed = true
			} else if failed {
				t.Fatalf("case %d: Write %d after the failed one returned %q", i, k, res)
			}
		}
	}
}

// TestTeeWritesRuns: the events of one upstream read go to W in as few
// Writes as the contract allows, and the flushes stay one per read.
func TestTeeWritesRuns(t *testing.T) {
	usageChunkAt := len(openaiStream)
	tests := []struct {
		name   string
		acc    Accumulator
		drop   bool
		chunks []string
		writes int   // Writes to W in all
		flush  []int // flush offsets, one per read that completed events
	}{
		{"one read of whole events", new(Anthropic), false, []string{anthropicStream}, 1, []int{len(anthropicStream)}},
		{"crlf", nil, false, []string{geminiStream}, 1, []int{len(geminiStream)}},
		// The usage-only chunk cuts the run in two.
		{"dropped event", new(OpenAI), true, []string{openaiStreamWithUsage}, 2, []int{len(openaiStream + openaiDone)}},
		{"dropped event kept", new(OpenAI), false, []string{openaiStreamWithUsage}, 1, []int{len(openaiStreamWithUsage)}},
		// The first event of the second read was started by the first:
		// it comes from the Splitter's buffer, the rest as one run.
		{"event across reads", new(OpenAI), false,
			[]string{openaiStreamWithUsage[:usageChunkAt+10], openaiStreamWithUsage[usageChunkAt+10:]}, 3,
			[]int{usageChunkAt, len(openaiStreamWithUsage)}},
		// A blank line ended by "\r" at the end of a read: the event
		// waits for the next byte, then is written alone, and the rest of
		// the read as a run; the last event, waiting the same way, is
		// written by Close.
		{"pending cr", nil, false, []string{"data: 1\r\r", "\ndata: 2\r\rdata: 3\r\r"}, 3,
			[]int{len("data: 1\r\r\ndata: 2\r\r"), len("data: 1\r\r\ndata: 2\r\rdata: 3\r\r")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &writeRecorder{failAt: -1}
			tee := NewTee(w, tt.acc, TeeOptions{Flush: w.flush, DropUsageOnly: tt.drop})
			var want string
			for _, c := range tt.chunks {
				if _, err := tee.Write([]byte(c)); err != nil {
					t.Fatal(err)
				}
				want += c
			}
			if err := tee.Close(); err != nil {
				t.Fatal(err)
			}
			if tt.drop {
				want = strings.Replace(want, openaiUsageChunk, "", 1)
			}
			if w.String() != want || w.writes != tt.writes || !slices.Equal(w.flushedAt, tt.flush) {
				t.Fatalf("%d writes (want %d), flushed at %v (want %v), forwarded\n%q", w.writes, tt.writes, w.flushedAt, tt.flush, w.String())
			}
		})
	}
}

// TestTeeForwardedCountsEvents: Forwarded counts events, not Writes to W,
// leaves out a dropped event and counts an unterminated tail as one.
func TestTeeForwardedCountsEvents(t *testing.T) {
	stream := openaiStreamWithUsage + "data: {\"cut"
	events := len(splitEvents(t, openaiStreamWithUsage))
	for _, drop := range []bool{false, true} {
		tee := NewTee(io.Discard, new(OpenAI), TeeOptions{DropUsageOnly: drop})
		if _, err := tee.Write([]byte(stream)); err != nil {
			t.Fatal(err)
		}
		want := events
		if drop {
			want--
		}
		if tee.Forwarded() != want {
			t.Fatalf("drop %v: forwarded %d events, want %d", drop, tee.Forwarded(), want)
		}
		if err := tee.Close(); err != nil || tee.Forwarded() != want+1 {
			t.Fatalf("drop %v: after Close forwarded %d, want %d (%v)", drop, tee.Forwarded(), want+1, err)
		}
	}
}

// TestTeeStopsAfterFailedWrite: once a Write to W fails, every later Write
// fails without forwarding anything, even when W would accept it again,
// as when the Tee wrote event by event.
func TestTeeStopsAfterFailedWrite(t *testing.T) {
	for _, failAt := range []int{0, 1} {
		w := &writeRecorder{failAt: failAt}
		tee := NewTee(w, new(OpenAI), TeeOptions{Flush: w.flush, DropUsageOnly: true})
		// Two runs around the dropped chunk: write 0 is the first run,
		// write 1 the second (the one after Feed returns).
		if _, err := tee.Write([]byte(openaiStreamWithUsage)); !errors.Is(err, errClientGone) {
			t.Fatalf("failAt %d: Write returned %v", failAt, err)
		}
		sent := w.Len()
		if _, err := tee.Write([]byte(openaiStreamWithUsage)); !errors.Is(err, errClientGone) || w.Len() != sent {
			t.Fatalf("failAt %d: Write after the failure returned %v and forwarded %d bytes", failAt, err, w.Len()-sent)
		}
	}
}
