package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// flushCounter is a ResponseWriter that counts flushes.
type flushCounter struct {
	*httptest.ResponseRecorder
	flushes int
}

func (f *flushCounter) Flush() { f.flushes++; f.ResponseRecorder.Flush() }

// The read that brought the upstream's end is not flushed by the relay:
// net/http writes it with the end of the response, one write instead of
// two. Every earlier read is flushed as it arrives.
func TestFinalReadLeftToTheEndOfTheResponse(t *testing.T) {
	fc := &flushCounter{ResponseRecorder: httptest.NewRecorder()}
	c := &call{}
	cw := &clientWriter{c: c, w: fc, rc: http.NewResponseController(fc), status: 200, header: http.Header{}, sse: true}
	if _, err := cw.Write([]byte("event: a\n\n")); err != nil {
		t.Fatal(err)
	}
	if err := cw.Flush(); err != nil || fc.flushes != 1 {
		t.Fatalf("a read before the end: flush err %v, %d flushes, want 1", err, fc.flushes)
	}
	cw.final = true
	if _, err := cw.Write([]byte("event: b\n\n")); err != nil {
		t.Fatal(err)
	}
	if err := cw.Flush(); err != nil || fc.flushes != 1 {
		t.Fatalf("the final read: flush err %v, %d flushes, want still 1", err, fc.flushes)
	}
	if got := fc.Body.String(); got != "event: a\n\nevent: b\n\n" {
		t.Fatalf("body %q", got)
	}
}
