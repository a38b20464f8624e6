package fakeupstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"syscall"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
)

var streamBody = []byte(`{"model":"claude-x","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"hi"}]}`)

func TestResetBeforeHeadersIsAConnectionError(t *testing.T) {
	fake := newFake(t)
	fake.Push(ResetBeforeHeaders())
	_, err := anthropicClient(fake).Messages.New(t.Context(), anthropicParams("x"))
	var apiErr *anthropic.Error
	if err == nil || errors.As(err, &apiErr) {
		t.Fatalf("want a connection error, got %T %v", err, err)
	}
	if fake.Count() != 1 || len(fake.Last().Sent) != 0 {
		t.Fatalf("%d requests, sent %q", fake.Count(), fake.Last().Sent)
	}
}

func TestResetMidStreamBreaksTheSDKStream(t *testing.T) {
	fake := newFake(t)
	fake.Push(ResetAfter(3))
	stream := anthropicClient(fake).Messages.NewStreaming(t.Context(), anthropicParams("x"))
	n := 0
	for stream.Next() {
		n++
	}
	var apiErr *anthropic.Error
	if stream.Err() == nil || errors.As(stream.Err(), &apiErr) || n > 3 {
		t.Fatalf("after %d events: %T %v", n, stream.Err(), stream.Err())
	}
}

func TestResetAfterEventsExactly(t *testing.T) {
	fake := newFake(t)
	gate := NewGate()
	sc := Script{Fault: FaultResetAfter, After: 2, Gate: gate}
	fake.Push(sc)
	resp := post(t, fake.URL()+"/v1/messages", streamBody, nil)
	want := RenderEvents(sc, fake.Last())
	if len(want) != 2 {
		t.Fatalf("RenderEvents gave %d events", len(want))
	}
	gate.Allow(2)
	br := bufio.NewReader(resp.Body)
	for i := range 2 {
		ev, err := ReadEvent(br)
		if err != nil || !bytes.Equal(ev, want[i]) {
			t.Fatalf("event %d: %q, %v", i, ev, err)
		}
	}
	gate.Next() // lets the reset happen
	if _, err := br.ReadByte(); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after reset: %v, want ECONNRESET (an RST, not a FIN)", err)
	}
}

func TestStallUntilClientGoesAway(t *testing.T) {
	fake := newFake(t)
	sc := StallAfter(1, nil)
	fake.Push(sc)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fake.URL()+"/v1/messages", bytes.NewReader(streamBody))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	ev, err := ReadEvent(br)
	want := RenderEvents(sc, fake.Last())
	if err != nil || !bytes.Equal(ev, want[0]) {
		t.Fatalf("first event %q, %v", ev, err)
	}
	cancel()
	if _, err := br.ReadByte(); !errors.Is(err, context.Canceled) {
		t.Fatalf("read after cancel: %v", err)
	}
	if sent := fake.Last().Sent; !bytes.Equal(sent, want[0]) {
		t.Fatalf("stalled server sent %q", sent)
	}
}

func TestStallReleased(t *testing.T) {
	fake := newFake(t)
	release := make(chan struct{})
	sc := StallAfter(2, release)
	fake.Push(sc)
	resp := post(t, fake.URL()+"/v1/messages", streamBody, nil)
	br := bufio.NewReader(resp.Body)
	want := RenderEvents(sc, fake.Last())
	for i := range 2 {
		if ev, err := ReadEvent(br); err != nil || !bytes.Equal(ev, want[i]) {
			t.Fatalf("event %d: %q %v", i, ev, err)
		}
	}
	if sent := fake.Last().Sent; !bytes.Equal(sent, bytes.Join(want[:2], nil)) {
		t.Fatalf("stalled server sent %q", sent)
	}
	close(release)
	rest := readAll(t, br)
	if !bytes.Equal(rest, bytes.Join(want[2:], nil)) {
		t.Fatalf("after release: %q", rest)
	}
}

func TestCloseReleasesStalledAndGatedResponses(t *testing.T) {
	fake := New(Options{})
	fake.Push(StallAfter(0, nil), Script{Gate: NewGate()})
	var bodies []io.Reader
	for range 2 {
		resp := post(t, fake.URL()+"/v1/messages", streamBody, nil)
		bodies = append(bodies, resp.Body)
	}
	fake.Close() // must not hang
	for i, b := range bodies {
		if _, err := io.ReadAll(b); err == nil {
			t.Errorf("body %d ended cleanly after Close", i)
		}
	}
}
