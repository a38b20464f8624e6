package fakeupstream

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"testing"
)

func TestDoneAndClientGone(t *testing.T) {
	fake := newFake(t)
	resp := post(t, fake.URL()+"/v1/messages", streamBody, nil)
	readAll(t, resp.Body)
	<-fake.Done(fake.Last().Seq)
	if fake.Last().ClientGone {
		t.Fatal("a complete response marked ClientGone")
	}

	fake.Push(StallAfter(1, nil))
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, fake.URL()+"/v1/messages", bytes.NewReader(streamBody))
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	if _, err := ReadEvent(bufio.NewReader(r2.Body)); err != nil {
		t.Fatal(err)
	}
	seq := fake.Last().Seq
	cancel()
	<-fake.Done(seq)
	if !fake.Last().ClientGone {
		t.Fatal("a cancelled request not marked ClientGone")
	}
	if fake.Done(seq+100) != nil {
		t.Fatal("Done of an unknown request")
	}
}
