package usage

import "io"

// Tee forwards an SSE response to the client event by event while an
// Accumulator reads usage from the same bytes. Write it the upstream body
// as it arrives (io.Copy works): each Write forwards to W, unchanged and
// in order, every event that p completes, then calls Flush once if it
// forwarded anything. A flush per upstream read rather than per event is
// what nginx does with proxy_buffering off: an event never waits for
// later upstream bytes (it is flushed before the proxy reads again), but
// the events of one read share one write to the socket, where a flush per
// event cost a system call each. Only the start of an event whose end has
// not arrived stays behind, in the Splitter. It is not safe for
// concurrent use.
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
	err := t.split.Feed(p, t.event)
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
	rest, err := t.split.End(t.event)
	if err == nil && len(rest) > 0 {
		if _, err = t.w.Write(rest); err == nil {
			t.unflushed = true
		}
	}
	if ferr := t.flushForwarded(); err == nil {
		err = ferr
	}
	return err
}

// Last returns what the accumulator said about the most recent event, so the
// proxy can stop reading after a terminal one.
func (t *Tee) Last() EventInfo { return t.info }

// Usage returns the accumulated usage (zero without an accumulator).
func (t *Tee) Usage() Usage {
	if t.acc == nil {
		return Usage{}
	}
	return t.acc.Usage()
}

func (t *Tee) event(ev []byte) error {
	if t.acc != nil {
		t.info = t.acc.Observe(ev)
		if t.dropUsageOnly && t.info.UsageOnly {
			return nil
		}
	}
	if _, err := t.w.Write(ev); err != nil {
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
