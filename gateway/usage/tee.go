package usage

import "io"

// Tee forwards an SSE response to the client, whole events at a time,
// while an Accumulator reads usage from the same bytes. Write it the
// upstream body as it arrives (io.Copy works): each Write forwards to W,
// unchanged and in order, every event that p completes, then calls Flush
// once if it forwarded anything. A flush per upstream read rather than
// per event is what nginx does with proxy_buffering off: an event never
// waits for later upstream bytes (it is flushed before the proxy reads
// again), but the events of one read share one write to the socket, where
// a flush per event cost a system call each. Only the start of an event
// whose end has not arrived stays behind, in the Splitter. It is not safe
// for concurrent use.
//
// The events of one Write also share writes to W: a run of consecutive
// events that lie in p and pass unchanged goes to W as one sub-slice of
// p, not one Write per event (each a pass through net/http's response
// writer, with its lock and buffers). A Write therefore calls W once for a
// read of whole events, and a few times when an event straddles reads
// (the one completed from the Splitter's buffer is written on its own) or
// an event is dropped (the run is cut around it). The bytes, the flushes
// and the results are those of a Write per event; only how W's bytes
// fall into its Write calls differs (for net/http: into chunks of the
// chunked encoding, which the client does not see). Every complete event
// of p is observed before the run that holds it is written, so when W
// fails the accumulator may have seen events of that read that never
// reached the client, as when the failure only surfaces at the flush.
type Tee struct {
	w     io.Writer
	flush func() error
	acc   Accumulator
	split Splitter
	// dropUsageOnly: see TeeOptions.DropUsageOnly.
	dropUsageOnly bool
	info          EventInfo
	// unflushed: an event went to W since the last flush.
	unflushed bool
	// During a Write: chunk is its p; chunk[runStart:next] is the run of
	// complete, unchanged events not yet written to W, and next is where
	// the last event yielded ended.
	chunk          []byte
	runStart, next int
	// forwarded counts the events handed to W (see Forwarded).
	forwarded int
}

// TeeOptions configures a Tee. The zero value is usable.
type TeeOptions struct {
	// Flush, if set, is called at the end of every Write (and Close) that
	// forwarded at least one event (for an HTTP response:
	// http.NewResponseController(w).Flush).
	Flush func() error
	// MaxEventSize bounds one event (DefaultMaxEventSize when <= 0).
	MaxEventSize int
	// DropUsageOnly withholds the OpenAI usage-only chunk from the client.
	// Set it exactly when the gateway inserted include_usage into the
	// request, so the client receives the stream it asked for.
	DropUsageOnly bool
}

// NewTee returns a Tee writing to w and feeding acc (which may be nil to
// only split and flush).
func NewTee(w io.Writer, acc Accumulator, opt TeeOptions) *Tee {
	t := &Tee{w: w, flush: opt.Flush, acc: acc, dropUsageOnly: opt.DropUsageOnly}
	t.split.max = opt.MaxEventSize
	return t
}

// Write implements io.Writer. It returns len(p) once every event completed
// by p has been forwarded and flushed; an error means the client write
// failed, Flush failed, or an event exceeded the limit
// (*EventTooLargeError). The events before an oversized one are still
// flushed: they were complete.
func (t *Tee) Write(p []byte) (int, error) {
	t.chunk, t.runStart, t.next = p, 0, 0
	err := t.split.feed(p, t.event)
	// After an oversized event the run before it is still written; after
	// a failed write to W the run is empty (event emptied it). A failed
	// write stops the Tee for good, as a failed yield stops the Splitter.
	if werr := t.writeRun(); werr != nil {
		err = t.split.fail(werr)
	}
	t.chunk, t.runStart, t.next = nil, 0, 0
	if ferr := t.flushForwarded(); err == nil {
		err = ferr
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close forwards whatever the upstream sent after its last complete event
// (an event cut off by EOF is passed on as it is, never invented or
// dropped) and flushes. It does not close W.
func (t *Tee) Close() error {
	rest, err := t.split.End(t.single)
	if err == nil && len(rest) > 0 {
		err = t.forward(rest)
	}
	if ferr := t.flushForwarded(); err == nil {
		err = ferr
	}
	return err
}

// Last returns what the accumulator said about the most recent event, so the
// proxy can stop reading after a terminal one.
func (t *Tee) Last() EventInfo { return t.info }

// Forwarded returns the number of events handed to W, counting an
// unterminated tail forwarded by Close as one (a dropped usage-only chunk
// is not counted). Writes to W are no measure of it: a run of events
// shares one.
func (t *Tee) Forwarded() int { return t.forwarded }

// Usage returns the accumulated usage (zero without an accumulator).
func (t *Tee) Usage() Usage {
	if t.acc == nil {
		return Usage{}
	}
	return t.acc.Usage()
}

// event observes one event completed by a Write and either extends the
// run of events to write (it lies in the chunk right after the run and is
// forwarded unchanged) or ends the run: the run is written, then the event
// on its own (it came from the Splitter's buffer) or not at all (dropped).
func (t *Tee) event(ev []byte, end int) error {
	inChunk := end-len(ev) == t.next
	drop := t.observe(ev)
	if inChunk && !drop {
		t.next = end
		t.forwarded++
		return nil
	}
	err := t.writeRun()
	t.runStart, t.next = end, end
	if err != nil || drop {
		return err
	}
	return t.forward(ev)
}

// single observes and forwards one event on its own: the one that End
// yields.
func (t *Tee) single(ev []byte) error {
	if t.observe(ev) {
		return nil
	}
	return t.forward(ev)
}

// observe feeds ev to the accumulator and reports whether to drop it.
func (t *Tee) observe(ev []byte) (drop bool) {
	if t.acc == nil {
		return false
	}
	t.info = t.acc.Observe(ev)
	return t.dropUsageOnly && t.info.UsageOnly
}

// writeRun writes the pending run of the current Write, if any.
func (t *Tee) writeRun() error {
	if t.runStart >= t.next {
		return nil
	}
	run := t.chunk[t.runStart:t.next]
	t.runStart = t.next
	if _, err := t.w.Write(run); err != nil {
		return err
	}
	t.unflushed = true
	return nil
}

// forward writes b, one event or the tail, to W.
func (t *Tee) forward(b []byte) error {
	t.forwarded++
	if _, err := t.w.Write(b); err != nil {
		return err
	}
	t.unflushed = true
	return nil
}

// flushForwarded flushes once if anything was forwarded since the last
// flush.
func (t *Tee) flushForwarded() error {
	if !t.unflushed || t.flush == nil {
		t.unflushed = false
		return nil
	}
	t.unflushed = false
	return t.flush()
}
