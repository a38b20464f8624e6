package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestCancelDial(t *testing.T) {
	leakCheck(t)
	dialing := make(chan struct{})
	tr := newTransport(t, func(c *Config) {
		c.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			close(dialing) // a blackhole: never connects
			<-ctx.Done()
			return nil, ctx.Err()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-dialing; cancel() }()
	req := mustReq(t, ctx, "GET", "http://10.255.255.1/", nil)
	err := within(t, "RoundTrip", func() error {
		_, err := tr.RoundTrip(req)
		return err
	})
	if !errors.Is(err, context.Canceled) || stageOf(err) != OpDial {
		t.Fatalf("got %v, want a dial error wrapping context.Canceled", err)
	}
}

func TestDialTimeout(t *testing.T) {
	tr := newTransport(t, func(c *Config) {
		c.DialTimeout = time.Millisecond
		c.Dial = func(ctx context.Context, _, _ string) (net.Conn, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}
	})
	_, err := tr.RoundTrip(mustReq(t, context.Background(), "GET", "http://10.255.255.1/", nil))
	if !errors.Is(err, ErrDialTimeout) || stageOf(err) != OpDial || errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want ErrDialTimeout", err)
	}
}

func TestDialRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	tr := newTransport(t, nil)
	_, err = tr.RoundTrip(mustReq(t, context.Background(), "GET", "http://"+addr+"/", nil))
	if err == nil || errors.Is(err, ErrDialTimeout) || stageOf(err) != OpDial || !strings.Contains(err.Error(), addr) {
		t.Fatalf("got %v, want a plain dial error naming %s", err, addr)
	}
}

// stallServer reads one request (or, with readWhole false, only its first
// byte, leaving the client blocked writing into full socket buffers), then
// sends prefix, signals reached and stalls until the client goes away or
// the test ends.
func stallServer(t *testing.T, prefix string, readWhole bool, reached chan<- struct{}) *rawServer {
	hold := make(chan struct{})
	srv := newRawServer(t, func(c net.Conn, br *bufio.Reader) {
		if readWhole {
			if _, _, err := readRequest(br); err != nil {
				return
			}
		} else if _, err := br.ReadByte(); err != nil {
			return
		}
		_, _ = io.WriteString(c, prefix)
		reached <- struct{}{}
		if !readWhole {
			<-hold // read nothing more
			return
		}
		_, _ = io.Copy(io.Discard, c)
	})
	t.Cleanup(func() { close(hold) }) // runs before the server's own cleanup
	return srv
}

func TestCancelStages(t *testing.T) {
	cases := []struct {
		name      string
		prefix    string
		readWhole bool
		bigBody   bool
		stage     string
	}{
		{"write", "", false, true, OpWrite},
		{"headers", "", true, false, OpReadHeaders},
		{"headers after 1xx", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", true, false, OpReadHeaders},
		{"body chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n", true, false, OpReadBody},
		{"body content-length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabcd", true, false, OpReadBody},
		{"body close-delimited", "HTTP/1.1 200 OK\r\n\r\nabcd", true, false, OpReadBody},
	}
	for _, tc := range cases {
		for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
			t.Run(tc.name+"/"+cause.Error(), func(t *testing.T) {
				leakCheck(t)
				reached := make(chan struct{}, 1)
				srv := stallServer(t, tc.prefix, tc.readWhole, reached)
				tr := newTransport(t, nil)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				end := cancel
				if cause == context.DeadlineExceeded {
					ctx, end = withTriggeredDeadline(ctx)
				}
				var body io.Reader
				if tc.bigBody {
					body = bytes.NewReader(make([]byte, 64<<20))
				}
				inBody := tc.stage == OpReadBody
				if !inBody {
					go func() { <-reached; end() }()
				}
				req := mustReq(t, ctx, "POST", srv.url("/"), body)
				err := within(t, "RoundTrip and body read", func() error {
					resp, err := tr.RoundTrip(req)
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					if !inBody {
						t.Errorf("got a response before the stall")
					}
					// The client is mid-body once it holds the first bytes.
					b := make([]byte, 4)
					if _, err := io.ReadFull(resp.Body, b); err != nil || string(b) != "abcd" {
						t.Errorf("body before the stall %q, %v", b, err)
					}
					end()
					b, err = io.ReadAll(resp.Body)
					if err == nil {
						t.Errorf("body ended cleanly with %q", b)
					}
					return err
				})
				if !errors.Is(err, cause) || stageOf(err) != tc.stage {
					t.Fatalf("got %v (stage %q), want %v at %q", err, stageOf(err), cause, tc.stage)
				}
				if n := tr.idleCount(srv.addr); n != 0 {
					t.Fatalf("a cancelled connection was pooled")
				}
				_ = tr.Close()
			})
		}
	}
}

// deadlineCtx reports DeadlineExceeded once the test ends it, so deadline
// handling is tested without waiting on a clock.
type deadlineCtx struct{ context.Context }

func (c deadlineCtx) Err() error {
	if c.Context.Err() != nil {
		return context.DeadlineExceeded
	}
	return nil
}

func withTriggeredDeadline(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(parent)
	return deadlineCtx{ctx}, cancel
}

func TestBodyCloseUnblocksRead(t *testing.T) {
	leakCheck(t)
	reached := make(chan struct{}, 1)
	srv := stallServer(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, reached)
	tr := newTransport(t, nil)
	resp, err := tr.RoundTrip(mustReq(t, context.Background(), "GET", srv.url("/"), nil))
	if err != nil {
		t.Fatal(err)
	}
	<-reached
	readErr := make(chan error, 1)
	go func() {
		_, err := resp.Body.Read(make([]byte, 10))
		readErr <- err
	}()
	_ = resp.Body.Close()
	if err := within(t, "blocked Read", func() error { return <-readErr }); !errors.Is(err, ErrBodyClosed) {
		t.Fatalf("got %v, want ErrBodyClosed", err)
	}
	srv.Close()
}

func TestCancelAfterResponseDoesNotPoisonPool(t *testing.T) {
	srv := newCountingServer(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	tr := newTransport(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := tr.RoundTrip(mustReq(t, ctx, "GET", srv.URL, nil))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
	cancel() // after EOF: the hook is stopped, the pooled conn keeps no deadline
	_, b := get(t, tr, srv.URL)
	if b != "ok" || srv.accepted.Load() != 1 {
		t.Fatalf("body %q, accepted %d", b, srv.accepted.Load())
	}
}
