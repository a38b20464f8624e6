package natsdir

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestServerConfigValidate(t *testing.T) {
	ok := singleConfig(t, t.TempDir())
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	bad := map[string]func(*ServerConfig){
		"node id":       func(c *ServerConfig) { c.NodeID = "a b" },
		"no data dir":   func(c *ServerConfig) { c.DataDir = "" },
		"client addr":   func(c *ServerConfig) { c.ClientAddr = "nohostport" },
		"routes alone":  func(c *ServerConfig) { c.ClusterAddr = ""; c.Routes = []string{"h:1"} },
		"route no port": func(c *ServerConfig) { c.ClusterAddr = "127.0.0.1:0"; c.Routes = []string{"h"} },
		"cluster name":  func(c *ServerConfig) { c.ClusterName = "x y" },
		"no routes":     func(c *ServerConfig) { c.ClusterAddr = "127.0.0.1:0"; c.Routes = nil },
	}
	for name, mut := range bad {
		c := ok
		mut(&c)
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate = %v, want ErrInvalidConfig", name, err)
		}
	}
}

func TestStartServerFailsFast(t *testing.T) {
	t.Parallel()
	// Occupied client port: StartServer reports it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := singleConfig(t, t.TempDir())
	cfg.ClientAddr = l.Addr().String()
	cfg.ReadyTimeout = 3 * time.Second
	start := time.Now()
	if s, err := StartServer(cfg); err == nil {
		s.Shutdown()
		t.Fatal("started on a busy port")
	} else {
		t.Logf("busy port: %v after %s", err, time.Since(start))
	}
}

func TestServerSingle(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	cfg := singleConfig(t, t.TempDir())
	cfg.Logger = testLogger(t, &logs)
	s := startTestServer(t, cfg)

	if strings.HasSuffix(s.ClientURL(), ":0") || strings.HasSuffix(s.ClientURL(), ":4222") {
		t.Fatalf("ClientURL %s does not report the bound port", s.ClientURL())
	}
	// sync_interval: always, as the running server sees it.
	if jc := s.NATS().JetStreamConfig(); jc == nil || !jc.SyncAlways {
		t.Fatalf("JetStream config %+v: SyncAlways not set", jc)
	}
	if jc := s.NATS().JetStreamConfig(); !strings.HasSuffix(jc.StoreDir, "jetstream") {
		t.Fatalf("store dir %q", jc.StoreDir)
	}

	// The token is required over TCP.
	if nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected without the token")
	}
	if nc, err := nats.Connect(s.ClientURL(), nats.Token("wrong"), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Fatal("connected with a wrong token")
	}
	nc, err := nats.Connect(s.ClientURL(), nats.Token(testToken))
	if err != nil {
		t.Fatalf("connect with token: %v", err)
	}
	nc.Close()

	// In-process connection.
	ic, err := s.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ic.Request("nobody.listens", nil, 100e6); !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("in-process request: %v", err)
	}

	s.Shutdown()
	s.Shutdown() // idempotent
	if !ic.IsClosed() {
		t.Fatal("Shutdown left a Connect connection open")
	}
	if _, err := s.Connect("late"); err == nil {
		t.Fatal("Connect after Shutdown succeeded")
	}
	out := logs.String()
	if !strings.Contains(out, "component=nats-server") {
		t.Fatalf("no server logs routed to slog:\n%s", out)
	}
	if strings.Contains(out, testToken) {
		t.Fatal("the token appears in the logs")
	}
}
