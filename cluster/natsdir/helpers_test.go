package natsdir

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testToken = "s3cret-token-value"

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(t *testing.T, buf *syncBuffer) *slog.Logger {
	if buf == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func startTestServer(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	s, err := StartServer(cfg)
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

func singleConfig(t *testing.T, dir string) ServerConfig {
	cfg := DefaultServerConfig()
	cfg.NodeID = "n1"
	cfg.DataDir = dir
	cfg.ClientAddr = "127.0.0.1:0"
	cfg.ClusterAddr = ""
	cfg.Token = testToken
	return cfg
}

// jsFor connects to s and returns a JetStream context; the connection is
// closed at cleanup (before the server's Shutdown, cleanups run LIFO).
func jsFor(t *testing.T, s *Server, name string) jetstream.JetStream {
	t.Helper()
	nc, err := s.Connect(name)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return js
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startCluster starts n clustered servers on loopback; it returns their
// configs too, for restarts.
func startCluster(t *testing.T, n int) ([]*Server, []ServerConfig) {
	t.Helper()
	ports := make([]int, n)
	routes := make([]string, n)
	for i := range ports {
		ports[i] = freePort(t)
		routes[i] = "127.0.0.1:" + strconv.Itoa(ports[i])
	}
	servers := make([]*Server, n)
	cfgs := make([]ServerConfig, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		cfg := DefaultServerConfig()
		cfg.NodeID = "n" + strconv.Itoa(i)
		cfg.DataDir = t.TempDir()
		cfg.ClientAddr = "127.0.0.1:0"
		cfg.ClusterAddr = routes[i]
		cfg.Routes = routes
		cfg.Token = testToken
		cfgs[i] = cfg
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i], errs[i] = StartServer(cfg)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			for _, s := range servers {
				if s != nil {
					s.Shutdown()
				}
			}
			t.Fatalf("server %d: %v", i, err)
		}
	}
	for _, s := range servers {
		t.Cleanup(s.Shutdown)
	}
	for _, s := range servers {
		if err := s.WaitJetStreamReady(ctxT(t, 20*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	return servers, cfgs
}
