package usage

import "bytes"

// Splitter cuts an SSE byte stream into events. The zero value is ready to
// use with DefaultMaxEventSize.
//
// An event is a run of lines ended by a blank line; lines end in "\r\n",
// "\n" or "\r" (the SSE specification allows all three). A blank line that
// ends in a bare "\r" at the end of a chunk is held back until the next byte
// shows whether it is "\r\n": the extra "\n" belongs to the same event, and
// deciding early would make the output depend on where chunks were split.
type Splitter struct {
	max int
	// buf holds the start of an event whose end has not arrived yet. It is
	// the only copy the Splitter makes: events wholly inside a chunk are
	// yielded as sub-slices of that chunk.
	buf []byte
	// midLine: a byte other than a terminator was seen since the last
	// terminator. When false, the next terminator ends a blank line and
	// therefore the event.
	midLine bool
	// cr: the previous byte was a "\r" that ended a non-blank line; an "\n"
	// right after it is the second half of the same terminator.
	cr bool
	// pending: buf is a complete event whose final blank line ended in "\r";
	// if the next byte is "\n" it is appended to this event.
	pending bool
	err     error
}

// NewSplitter returns a Splitter that rejects events longer than max bytes
// (DefaultMaxEventSize when max <= 0).
func NewSplitter(max int) *Splitter {
	if max <= 0 {
		max = DefaultMaxEventSize
	}
	return &Splitter{max: max}
}

// Feed consumes chunk and calls yield for every event it completes, in
// order. The event slice is only valid during the call (it may alias chunk
// or the Splitter's buffer). chunk is not retained. An error from yield, or
// an *EventTooLargeError, stops processing and is returned by this and every
// later call.
func (s *Splitter) Feed(chunk []byte, yield func(event []byte) error) error {
	return s.feed(chunk, func(ev []byte, _ int) error { return yield(ev) })
}

// feed is Feed, telling yield also where in chunk the event ends. An event
// that lies wholly in chunk is exactly chunk[end-len(event):end], and the
// events of chunk follow one another there without gaps; only the first
// event of a chunk can instead be the Splitter's buffer (the start that
// earlier chunks left, then chunk[:end]), and then end-len(event) < 0. The
// Tee relies on this to forward a run of events with one write.
func (s *Splitter) feed(chunk []byte, yield func(event []byte, end int) error) error {
	if s.err != nil {
		return s.err
	}
	start, i := 0, 0 // chunk[start:] is not yet yielded or buffered
	if s.pending && len(chunk) > 0 {
		s.pending = false
		if chunk[0] == '\n' {
			i = 1
		}
		if err := s.emit(chunk[:i], i, yield); err != nil {
			return err
		}
		start = i
	}
	// Positions of the next '\n' and '\r' at or after i (len(chunk) when
	// there is none), each found with a vectorised IndexByte and reused
	// until passed, so every byte is searched at most once per terminator
	// kind whatever the line-ending style.
	nextLF, nextCR := -1, -1
	for i < len(chunk) {
		if nextLF < i {
			nextLF = indexFrom(chunk, i, '\n')
		}
		if nextCR < i {
			nextCR = indexFrom(chunk, i, '\r')
		}
		t := min(nextLF, nextCR)
		if t > i {
			s.midLine, s.cr = true, false
		}
		if t == len(chunk) {
			break
		}
		i = t + 1
		switch {
		case chunk[i-1] == '\n' && s.cr:
			s.cr = false // second half of "\r\n"
		case s.midLine:
			s.midLine, s.cr = false, chunk[i-1] == '\r'
		case chunk[i-1] == '\n':
			if err := s.emit(chunk[start:i], i, yield); err != nil {
				return err
			}
			start = i
		case i == len(chunk):
			s.pending = true // blank line ended by "\r": wait for the next byte
		default:
			if chunk[i] == '\n' {
				i++
			}
			if err := s.emit(chunk[start:i], i, yield); err != nil {
				return err
			}
			start = i
		}
	}
	if start < len(chunk) {
		if len(s.buf)+len(chunk)-start > s.limit() {
			return s.fail(&EventTooLargeError{Limit: s.limit()})
		}
		if cap(s.buf) == 0 {
			// Room for the rest of the event too: growing from an exact fit
			// would cost a second allocation at the event's end.
			s.buf = make([]byte, 0, min(max(minBuf, 2*(len(chunk)-start)), s.limit()))
		}
		s.buf = append(s.buf, chunk[start:]...)
	}
	return nil
}

// minBuf is the least capacity of a Splitter's buffer: a few events of
// the usual size.
const minBuf = 1 << 10

// End marks the end of the stream. It yields an event that was only waiting
// to see whether "\n" followed its final "\r", and returns the trailing bytes
// of an unterminated event, which the proxy forwards as they are. The
// returned slice is valid until the next Feed. End resets the Splitter for a
// new stream.
func (s *Splitter) End(yield func(event []byte) error) (rest []byte, err error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.pending {
		s.pending = false
		if err := s.emit(nil, 0, func(ev []byte, _ int) error { return yield(ev) }); err != nil {
			return nil, err
		}
	}
	rest = s.buf
	s.buf = s.buf[:0]
	s.midLine, s.cr = false, false
	return rest, nil
}

func (s *Splitter) limit() int {
	if s.max <= 0 {
		return DefaultMaxEventSize
	}
	return s.max
}

// Buffered returns the number of bytes held for an incomplete event.
func (s *Splitter) Buffered() int { return len(s.buf) }

// emit yields the buffered start of the event followed by tail, which ends
// at end in the chunk being fed, then resets the line state for the next
// event.
func (s *Splitter) emit(tail []byte, end int, yield func([]byte, int) error) error {
	ev := tail
	if len(s.buf) > 0 {
		s.buf = append(s.buf, tail...)
		ev = s.buf
	}
	if len(ev) > s.limit() {
		return s.fail(&EventTooLargeError{Limit: s.limit()})
	}
	s.midLine, s.cr = false, false
	err := yield(ev, end)
	// Reuse the buffer across events, but do not let one large event pin
	// its memory for the rest of a long stream.
	if cap(s.buf) > 64<<10 {
		s.buf = nil
	} else {
		s.buf = s.buf[:0]
	}
	if err != nil {
		return s.fail(err)
	}
	return nil
}

func (s *Splitter) fail(err error) error {
	s.err = err
	s.buf = nil
	return err
}

// indexFrom returns the index of the first c in b[from:], as an index into
// b, or len(b) when there is none.
func indexFrom(b []byte, from int, c byte) int {
	if k := bytes.IndexByte(b[from:], c); k >= 0 {
		return from + k
	}
	return len(b)
}
