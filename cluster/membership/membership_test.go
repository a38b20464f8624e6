package membership

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond until it holds; fails after d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testConfig returns a loopback config with fast failure detection.
func testConfig(id string, seeds ...string) Config {
	c := DefaultConfig()
	c.NodeID = id
	c.BindAddr = "127.0.0.1:0"
	c.Join = seeds
	c.Meta = Meta{Region: "r1", GRPCAddr: "grpc-" + id, HTTPAddr: "http-" + id}
	c.ProbeInterval = 100 * time.Millisecond
	c.ProbeTimeout = 50 * time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.SuspicionMult = 2
	c.PushPullInterval = 300 * time.Millisecond
	c.JoinRetry = 50 * time.Millisecond
	c.DeadNodeReclaimTime = 100 * time.Millisecond
	c.BroadcastTimeout = 2 * time.Second
	c.Logger = slog.New(slog.DiscardHandler)
	return c
}

func start(t *testing.T, cfg Config) *Membership {
	t.Helper()
	m, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start(%s): %v", cfg.NodeID, err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(); err != nil {
			t.Errorf("Shutdown(%s): %v", cfg.NodeID, err)
		}
	})
	return m
}

func ids(ms []Meta) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.NodeID)
	}
	return strings.Join(s, ",")
}

func find(m *Membership, id string) (Meta, bool) {
	for _, x := range m.Members() {
		if x.NodeID == id {
			return x, true
		}
	}
	return Meta{}, false
}

// freePort returns a port free for both TCP and UDP on 127.0.0.1 (released
// before returning; tests bind it right away).
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free TCP+UDP port")
	return 0
}

func cluster3(t *testing.T) (a, b, c *Membership) {
	t.Helper()
	a = start(t, testConfig("node-a"))
	b = start(t, testConfig("node-b", a.LocalAddr()))
	c = start(t, testConfig("node-c", b.LocalAddr()))
	for _, m := range []*Membership{a, b, c} {
		waitFor(t, 10*time.Second, m.Self().NodeID+" sees 3 members", func() bool {
			return ids(m.Members()) == "node-a,node-b,node-c"
		})
	}
	return a, b, c
}

func TestThreeNodesSeeEachOthersMeta(t *testing.T) {
	a, b, c := cluster3(t)
	for _, m := range []*Membership{a, b, c} {
		for _, x := range m.Members() {
			want := Meta{NodeID: x.NodeID, Region: "r1", GRPCAddr: "grpc-" + x.NodeID, HTTPAddr: "http-" + x.NodeID, State: StateJoining}
			if x != want {
				t.Errorf("%s sees %+v, want %+v", m.Self().NodeID, x, want)
			}
		}
	}
	if a.LocalAddr() == b.LocalAddr() || !strings.HasPrefix(a.LocalAddr(), "127.0.0.1:") || strings.HasSuffix(a.LocalAddr(), ":0") {
		t.Fatalf("local addrs %s %s", a.LocalAddr(), b.LocalAddr())
	}
}

func TestUpdatePropagates(t *testing.T) {
	a, b, c := cluster3(t)
	notes, unsubscribe := a.Subscribe()
	defer unsubscribe()
	// Drain a notification left from the joins, if any.
	select {
	case <-notes:
	default:
	}
	if err := b.Update(func(m *Meta) { m.State = StateDraining; m.Load = 42; m.Incarnation = 3 }); err != nil {
		t.Fatal(err)
	}
	if s := b.Self(); s.State != StateDraining || s.Load != 42 {
		t.Fatalf("self after update: %+v", s)
	}
	for _, m := range []*Membership{a, c} {
		waitFor(t, 10*time.Second, m.Self().NodeID+" sees node-b draining", func() bool {
			x, ok := find(m, "node-b")
			return ok && x.State == StateDraining && x.Load == 42 && x.Incarnation == 3
		})
	}
	select {
	case <-notes:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification for node-b's update")
	}

	// Invalid updates change nothing.
	if err := b.Update(func(m *Meta) { m.NodeID = "other" }); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("changing NodeID: %v", err)
	}
	if err := b.Update(func(m *Meta) { m.Region = strings.Repeat("x", MaxMetaSize) }); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("oversize meta: %v", err)
	}
	if err := b.Update(func(m *Meta) { m.State = "sleeping" }); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("bad state: %v", err)
	}
	if s := b.Self(); s.State != StateDraining || s.NodeID != "node-b" || s.Region != "r1" {
		t.Fatalf("self changed by a failed update: %+v", s)
	}
}

func TestShutdownWithoutLeaveIsDetected(t *testing.T) {
	a, b, c := cluster3(t)
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Membership{a, b} {
		waitFor(t, 15*time.Second, m.Self().NodeID+" drops failed node-c", func() bool {
			_, ok := find(m, "node-c")
			return !ok
		})
	}
}

// With failure detection too slow to matter, only the leave message can
// remove the node within the deadline.
func TestLeaveRemovesPromptly(t *testing.T) {
	slow := func(c Config) Config {
		c.ProbeInterval = time.Minute
		c.ProbeTimeout = 30 * time.Second
		c.SuspicionMult = 10
		c.PushPullInterval = time.Minute
		return c
	}
	a := start(t, slow(testConfig("node-a")))
	b := start(t, slow(testConfig("node-b", a.LocalAddr())))
	c := start(t, slow(testConfig("node-c", a.LocalAddr())))
	for _, m := range []*Membership{a, b, c} {
		waitFor(t, 10*time.Second, m.Self().NodeID+" sees 3 members", func() bool { return len(m.Members()) == 3 })
	}
	if err := c.Leave(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Leave(time.Second); err != nil {
		t.Fatalf("second Leave: %v", err)
	}
	for _, m := range []*Membership{a, b} {
		waitFor(t, 5*time.Second, m.Self().NodeID+" drops node-c after its leave", func() bool {
			_, ok := find(m, "node-c")
			return !ok
		})
	}
	if err := c.Update(func(m *Meta) { m.Load = 1 }); !errors.Is(err, ErrLeft) {
		t.Fatalf("Update after Leave: %v", err)
	}
}

func TestEncryptedGossip(t *testing.T) {
	key1 := bytes.Repeat([]byte{1}, 32)
	key2 := bytes.Repeat([]byte{2}, 16)
	withKey := func(c Config, k []byte) Config { c.SecretKey = k; return c }

	a := start(t, withKey(testConfig("node-a"), key1))
	b := start(t, withKey(testConfig("node-b", a.LocalAddr()), key1))
	waitFor(t, 10*time.Second, "same key joins", func() bool {
		return ids(a.Members()) == "node-a,node-b" && ids(b.Members()) == "node-a,node-b"
	})

	wrong := start(t, withKey(testConfig("node-wrong", a.LocalAddr()), key2))
	plain := start(t, testConfig("node-plain", a.LocalAddr()))
	// Several failed attempts each, then check nobody got in.
	waitFor(t, 10*time.Second, "repeated join attempts", func() bool {
		return wrong.joinAttempts.Load() >= 3 && plain.joinAttempts.Load() >= 3
	})
	for _, m := range []*Membership{a, b} {
		if got := ids(m.Members()); got != "node-a,node-b" {
			t.Errorf("%s sees %s", m.Self().NodeID, got)
		}
	}
	if got := ids(wrong.Members()); got != "node-wrong" {
		t.Errorf("wrong key sees %s", got)
	}
	if got := ids(plain.Members()); got != "node-plain" {
		t.Errorf("unencrypted sees %s", got)
	}
}

func TestJoinBeforeSeedIsUp(t *testing.T) {
	port := freePort(t)
	seed := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	b := start(t, testConfig("node-b", seed))
	waitFor(t, 10*time.Second, "failed join attempts", func() bool { return b.joinAttempts.Load() >= 2 })
	if got := ids(b.Members()); got != "node-b" {
		t.Fatalf("before the seed is up: %s", got)
	}
	ac := testConfig("node-a")
	ac.BindAddr = seed
	a := start(t, ac)
	for _, m := range []*Membership{a, b} {
		waitFor(t, 10*time.Second, m.Self().NodeID+" sees both", func() bool {
			return ids(m.Members()) == "node-a,node-b"
		})
	}
}

func TestDNSSeed(t *testing.T) {
	a := start(t, testConfig("node-a"))
	_, port, _ := net.SplitHostPort(a.LocalAddr())
	b := start(t, testConfig("node-b", "localhost:"+port))
	for _, m := range []*Membership{a, b} {
		waitFor(t, 10*time.Second, m.Self().NodeID+" sees both", func() bool {
			return ids(m.Members()) == "node-a,node-b"
		})
	}
}

// A node that comes back at another address under its old name is accepted
// once DeadNodeReclaimTime has passed.
func TestDeadNodeReclaimedAtNewAddress(t *testing.T) {
	a := start(t, testConfig("node-a"))
	c := start(t, testConfig("node-c", a.LocalAddr()))
	waitFor(t, 10*time.Second, "node-a sees node-c", func() bool { _, ok := find(a, "node-c"); return ok })
	oldAddr := c.LocalAddr()
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "node-a drops node-c", func() bool { _, ok := find(a, "node-c"); return !ok })

	cfg := testConfig("node-c", a.LocalAddr())
	cfg.Meta.GRPCAddr = "grpc-new"
	c2 := start(t, cfg)
	if c2.LocalAddr() == oldAddr {
		t.Skip("kernel gave the same port again; nothing to reclaim")
	}
	waitFor(t, 15*time.Second, "node-a accepts node-c at its new address", func() bool {
		x, ok := find(a, "node-c")
		return ok && x.GRPCAddr == "grpc-new"
	})
}

func TestSubscribe(t *testing.T) {
	a := start(t, testConfig("node-a"))
	ch, unsubscribe := a.Subscribe()
	ch2, _ := a.Subscribe()
	b := start(t, testConfig("node-b", a.LocalAddr()))
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification on join")
	}
	unsubscribe()
	unsubscribe() // idempotent
	waitFor(t, time.Second, "unsubscribed channel closed", func() bool {
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return true
				}
			default:
				return false
			}
		}
	})
	// Self updates notify too.
	select {
	case <-ch2:
	default:
	}
	if err := a.Update(func(m *Meta) { m.State = StateServing }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch2:
	case <-time.After(10 * time.Second):
		t.Fatal("no notification on self update")
	}
	_ = b
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	for range ch2 { // closed by Shutdown (may hold one pending notification)
	}
	ch3, unsub3 := a.Subscribe()
	if _, ok := <-ch3; ok {
		t.Fatal("Subscribe after Shutdown: channel open")
	}
	unsub3()
}

func TestAfterShutdown(t *testing.T) {
	a := start(t, testConfig("node-a", "127.0.0.1:1")) // join loop running
	waitFor(t, 10*time.Second, "join attempts", func() bool { return a.joinAttempts.Load() >= 1 })
	for range 2 {
		if err := a.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Leave(time.Second); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Leave after Shutdown: %v", err)
	}
	if err := a.Update(func(*Meta) {}); !errors.Is(err, ErrShutdown) {
		t.Fatalf("Update after Shutdown: %v", err)
	}
	if got := ids(a.Members()); got != "node-a" {
		t.Fatalf("members after shutdown: %s", got)
	}
}

// Concurrent use from many goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	a := start(t, testConfig("node-a"))
	b := start(t, testConfig("node-b", a.LocalAddr()))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				_ = a.Update(func(m *Meta) { m.Load = int64(i*100 + j) })
				_ = a.Members()
				_ = b.Members()
				ch, un := b.Subscribe()
				_ = ch
				un()
			}
		})
	}
	wg.Wait()
	final := a.Self().Load
	waitFor(t, 10*time.Second, "node-b sees node-a's last load", func() bool {
		x, ok := find(b, "node-a")
		return ok && x.Load == final
	})
}

func TestConfigValidate(t *testing.T) {
	good := testConfig("node-1", "seed.example:7946")
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	secret := []byte("0123456789abcdefXYZ") // 19 bytes: invalid
	cases := map[string]func(*Config){
		"empty id":         func(c *Config) { c.NodeID = "" },
		"id with dot":      func(c *Config) { c.NodeID = "node.1" },
		"id too long":      func(c *Config) { c.NodeID = strings.Repeat("n", 65) },
		"bind host name":   func(c *Config) { c.BindAddr = "localhost:7946" },
		"bind no port":     func(c *Config) { c.BindAddr = "127.0.0.1" },
		"advertise port 0": func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" },
		"seed no port":     func(c *Config) { c.Join = []string{"seed.example"} },
		"bad key":          func(c *Config) { c.SecretKey = secret },
		"meta other id":    func(c *Config) { c.Meta.NodeID = "node-2" },
		"meta bad state":   func(c *Config) { c.Meta.State = "up" },
		"meta too big":     func(c *Config) { c.Meta.Region = strings.Repeat("r", 600) },
		"no reclaim":       func(c *Config) { c.DeadNodeReclaimTime = 0 },
		"no probe":         func(c *Config) { c.ProbeInterval = 0 },
		"no join retry":    func(c *Config) { c.JoinRetry = 0 },
		"suspicion 0":      func(c *Config) { c.SuspicionMult = 0 },
	}
	for name, mutate := range cases {
		c := good
		c.Join = append([]string(nil), good.Join...)
		mutate(&c)
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) && !errors.Is(err, ErrInvalidMeta) {
			t.Errorf("%s: Validate = %v", name, err)
			continue
		}
		if strings.Contains(err.Error(), string(secret)) {
			t.Errorf("%s: error reveals the key: %v", name, err)
		}
		if _, err := Start(c); err == nil {
			t.Errorf("%s: Start accepted an invalid config", name)
		}
	}
	for _, k := range [][]byte{nil, make([]byte, 16), make([]byte, 24), make([]byte, 32)} {
		c := good
		c.SecretKey = k
		if err := c.Validate(); err != nil {
			t.Errorf("key of %d bytes: %v", len(k), err)
		}
	}
}

func TestMetaEncoding(t *testing.T) {
	m := Meta{NodeID: "holdfast-0", Incarnation: 9, Region: "eu-west-1", GRPCAddr: "10.0.0.1:7000", HTTPAddr: "10.0.0.1:8080", State: StateServing, Load: 12}
	raw, err := m.encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeMeta("holdfast-0", raw)
	if err != nil || got != m {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if _, err := decodeMeta("holdfast-1", raw); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("meta of another node accepted: %v", err)
	}
	if _, err := decodeMeta("x", []byte("{")); !errors.Is(err, ErrInvalidMeta) {
		t.Fatalf("garbage accepted: %v", err)
	}
	// Unknown fields from newer peers are ignored.
	if _, err := decodeMeta("holdfast-0", append(raw[:len(raw)-1], []byte(`,"future":1}`)...)); err != nil {
		t.Fatalf("unknown field: %v", err)
	}
}

type captureHandler struct {
	mu   sync.Mutex
	recs []string
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, fmt.Sprintf("%s %s", r.Level, r.Message))
	return nil
}
func (h *captureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *captureHandler) WithGroup(string) slog.Handler      { return h }

func TestLogWriterLevels(t *testing.T) {
	h := &captureHandler{}
	w := &logWriter{log: slog.New(h)}
	for _, line := range []string{
		"[DEBUG] memberlist: a\n", "[INFO] memberlist: b\n", "[WARN] memberlist: c\n", "[ERR] memberlist: d\n", "plain\n",
	} {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	want := "DEBUG a|INFO b|WARN c|ERROR d|INFO plain"
	if got := strings.Join(h.recs, "|"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// The secret key never reaches the logs.
func TestKeyNotLogged(t *testing.T) {
	h := &captureHandler{}
	key := []byte("super-secret-key") // 16 bytes
	cfg := testConfig("node-a")
	cfg.SecretKey = key
	cfg.Logger = slog.New(h)
	a := start(t, cfg)
	cfg2 := testConfig("node-b", a.LocalAddr())
	cfg2.SecretKey = key
	cfg2.Logger = slog.New(h)
	b := start(t, cfg2)
	waitFor(t, 10*time.Second, "join", func() bool { return len(b.Members()) == 2 })
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.recs) == 0 {
		t.Fatal("nothing logged")
	}
	for _, r := range h.recs {
		if strings.Contains(r, string(key)) {
			t.Fatalf("key in log: %q", r)
		}
	}
}
