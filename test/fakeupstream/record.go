package fakeupstream

import (
	"net/http"
	"sync"
)

// Recorded is one request as the server received it, and the response body
// it sent so far.
type Recorded struct {
	Seq      int         // 1-based arrival number, never reused (not even after Reset)
	Method   string      // request method
	Path     string      // URL path, unescaped
	RawQuery string      // query string, without '?'
	Host     string      // the Host header (net/http moves it out of Header)
	Header   http.Header // every request header, as received
	Body     []byte      // the exact body bytes received
	Script   Script      // the script that answered, as pushed (zero for the default answer)
	Sent     []byte      // response body bytes written to the connection, in order
	// ClientGone: the handler ended because the request's context was
	// done (the client disconnected or cancelled) before the response was
	// complete. Meaningful once Done(Seq) is closed.
	ClientGone bool
}

// entry is a recording being filled while its response is written.
type entry struct {
	Recorded
	done chan struct{} // closed when the handler has returned
}

// recorder keeps the requests in arrival order. All access is locked.
type recorder struct {
	mu      sync.Mutex
	seq     int
	entries []*entry
}

func (rc *recorder) add(r *http.Request, body []byte) *entry {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.seq++
	e := &entry{done: make(chan struct{}), Recorded: Recorded{
		Seq:      rc.seq,
		Method:   r.Method,
		Path:     r.URL.Path,
		RawQuery: r.URL.RawQuery,
		Host:     r.Host,
		Header:   r.Header.Clone(),
		Body:     body,
	}}
	rc.entries = append(rc.entries, e)
	return e
}

func (rc *recorder) setScript(e *entry, sc Script) {
	rc.mu.Lock()
	e.Script = sc
	rc.mu.Unlock()
}

// appendSent records bytes before they are written, so that whatever a
// client has read is already visible in Sent.
func (rc *recorder) appendSent(e *entry, b []byte) {
	rc.mu.Lock()
	e.Sent = append(e.Sent, b...)
	rc.mu.Unlock()
}

// finish marks e's handler as returned.
func (rc *recorder) finish(e *entry, clientGone bool) {
	rc.mu.Lock()
	e.ClientGone = clientGone
	rc.mu.Unlock()
	close(e.done)
}

// Done returns a channel closed once the handler of request seq has
// returned (its Recorded is then final), or nil when there is no such
// request.
func (s *Server) Done(seq int) <-chan struct{} {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	for _, e := range s.rec.entries {
		if e.Seq == seq {
			return e.done
		}
	}
	return nil
}

func (rc *recorder) snapshot(e *entry) Recorded {
	r := e.Recorded
	r.Header = e.Header.Clone()
	r.Sent = append([]byte(nil), e.Sent...)
	return r
}

// Requests returns a copy of every recorded request, oldest first.
func (s *Server) Requests() []Recorded {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	out := make([]Recorded, len(s.rec.entries))
	for i, e := range s.rec.entries {
		out[i] = s.rec.snapshot(e)
	}
	return out
}

// Last returns the most recent request, or the zero Recorded (Seq 0) when
// there is none.
func (s *Server) Last() Recorded {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	if len(s.rec.entries) == 0 {
		return Recorded{}
	}
	return s.rec.snapshot(s.rec.entries[len(s.rec.entries)-1])
}

// Count returns the number of requests recorded since the last Reset.
func (s *Server) Count() int {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	return len(s.rec.entries)
}

// Reset forgets the recorded requests and drops every queued script.
// Sequence numbers keep counting, so IDs stay unique.
func (s *Server) Reset() {
	s.rec.mu.Lock()
	s.rec.entries = nil
	s.rec.mu.Unlock()
	s.queue.reset()
}
