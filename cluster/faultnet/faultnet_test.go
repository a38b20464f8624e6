package faultnet

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func echoServer(t *testing.T, sw *Switch) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l = sw.Listener(l)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return l.Addr().String()
}

func roundTrip(c net.Conn) error {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	b := make([]byte, 1)
	_, err := io.ReadFull(c, b)
	return err
}

func TestCutClosesAndRefusesHealAllows(t *testing.T) {
	server, client := New(), New()
	addr := echoServer(t, server)
	ctx := context.Background()
	c, err := client.DialContext(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c); err != nil {
		t.Fatalf("before the cut: %v", err)
	}
	client.Cut()
	if err := roundTrip(c); err == nil {
		t.Fatal("an open connection still works after the cut")
	}
	if _, err := client.DialContext(ctx, addr); !errors.Is(err, ErrCut) {
		t.Fatalf("dial while cut: %v, want ErrCut", err)
	}
	client.Heal()
	c2, err := client.DialContext(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c2); err != nil {
		t.Fatalf("after heal: %v", err)
	}
	// The accepting side's cut refuses connections from anyone.
	server.Cut()
	c3, err := New().DialContext(ctx, addr)
	if err == nil {
		if err := roundTrip(c3); err == nil {
			t.Fatal("a cut server still answers")
		}
	}
}

func TestNilSwitchPassesThrough(t *testing.T) {
	var sw *Switch
	addr := echoServer(t, sw)
	c, err := sw.DialContext(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(c); err != nil {
		t.Fatal(err)
	}
	sw.Cut() // no-op
	if sw.IsCut() {
		t.Fatal("a nil switch reports cut")
	}
}
