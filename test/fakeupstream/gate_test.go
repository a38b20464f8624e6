package fakeupstream

import (
	"bufio"
	"bytes"
	"testing"
)

// A raw client reads the stream one event at a time while the gate holds
// the server: each event arrives while the server has sent nothing after it.
func TestGateEventReceivedBeforeNextIsSent(t *testing.T) {
	fake := newFake(t)
	gate := NewGate()
	sc := Script{Chunks: []string{"one", " two", " three"}, Gate: gate, Pings: true}
	fake.Push(sc)

	resp := post(t, fake.URL()+"/v1/messages", streamBody, nil) // headers are not gated
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	want := RenderEvents(sc, fake.Last())
	<-gate.Reached(0) // the server waits before event 0 right after the headers
	if sent := fake.Last().Sent; len(sent) != 0 {
		t.Fatalf("sent %q before the gate opened", sent)
	}
	br := bufio.NewReader(resp.Body)
	for i := range want {
		gate.Allow(i + 1) // event i, not i+1
		ev, err := ReadEvent(br)
		if err != nil || !bytes.Equal(ev, want[i]) {
			t.Fatalf("event %d: %q, %v; want %q", i, ev, err, want[i])
		}
		if i+1 < len(want) {
			<-gate.Reached(i + 1)
		}
		if sent := fake.Last().Sent; !bytes.Equal(sent, bytes.Join(want[:i+1], nil)) {
			t.Fatalf("after event %d the server had sent %q", i, sent)
		}
	}
	if b, err := br.ReadByte(); err == nil {
		t.Fatalf("extra byte %q", b)
	}
	select {
	case <-gate.Reached(1): // already passed: closed at once
	default:
		t.Fatal("Reached of a passed event is not closed")
	}
}

func TestGateOpen(t *testing.T) {
	fake := newFake(t)
	gate := NewGate()
	sc := Script{Gate: gate}
	fake.Push(sc)
	resp := post(t, fake.URL()+"/v1/messages", streamBody, nil)
	gate.Open()
	if got := readAll(t, resp.Body); !bytes.Equal(got, Render(sc, fake.Last())) {
		t.Fatalf("body %q", got)
	}
}
