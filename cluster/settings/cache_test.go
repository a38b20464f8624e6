package settings

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/actor/ratelimit"
	"github.com/holdfast/holdfast/cluster/natsdir"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testToken = "settings-test-token"

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
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startServer starts an embedded single-node NATS server with JetStream
// in dir (a fresh t.TempDir() unless reused for a restart).
func startServer(t *testing.T, dir string) *natsdir.Server {
	t.Helper()
	cfg := natsdir.DefaultServerConfig()
	cfg.NodeID = "n1"
	cfg.DataDir = dir
	cfg.ClientAddr = "127.0.0.1:0"
	cfg.ClusterAddr = ""
	cfg.Token = testToken
	s, err := natsdir.StartServer(cfg)
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// connect opens a client connection (closed at cleanup, before the
// server's Shutdown) and the settings bucket through it, as a node does.
func connect(t *testing.T, s *natsdir.Server, name string) (jetstream.JetStream, *natsdir.Settings) {
	t.Helper()
	nc, err := s.Connect(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := natsdir.OpenSettings(ctxT(t, 20*time.Second), js, 1)
	if err != nil {
		t.Fatal(err)
	}
	return js, st
}

func openCache(t *testing.T, js jetstream.JetStream, logger *slog.Logger) *Cache[ratelimit.KeySettings] {
	t.Helper()
	c, err := Open(ctxT(t, 20*time.Second), js, RateLimit, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var (
	lim = func(tokens int64) ratelimit.Limit {
		return ratelimit.Limit{Capacity: tokens * ratelimit.Micro, Refill: ratelimit.Micro}
	}
	ks1 = ratelimit.KeySettings{Limits: map[string]ratelimit.Limit{"requests": lim(2)}, DailyBudgetNanos: 5}
	ks2 = ratelimit.KeySettings{Limits: map[string]ratelimit.Limit{"requests": lim(3), "tokens": lim(10)}}
)

func TestKeyEncoding(t *testing.T) {
	valid := regexp.MustCompile(`^[-/_=.A-Za-z0-9]+$`)
	cases := [][2]string{
		{"ratelimit", "alice"}, {"", ""}, {"ns", ""}, {"", "k"}, {"a.b", "c.d"},
		{"x", "\x00\xff/ *>.é"}, {"x", strings.Repeat("k", 2048)}, {"rl.", "="},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		k := Key(c[0], c[1])
		if !valid.MatchString(k) || strings.HasSuffix(k, ".") || strings.Count(k, ".") != 2 {
			t.Errorf("Key(%q, %q) = %q: not a valid KV key", c[0], c[1], k)
		}
		if seen[k] {
			t.Errorf("Key(%q, %q) = %q: collision", c[0], c[1], k)
		}
		seen[k] = true
		ns, key, ok := ParseKey(k)
		if !ok || ns != c[0] || key != c[1] {
			t.Errorf("ParseKey(%q) = %q, %q, %v", k, ns, key, ok)
		}
	}
	if Key("ratelimit", "alice") != "rl.cmF0ZWxpbWl0.YWxpY2U" {
		t.Errorf("Key changed: %s (stored keys would be lost)", Key("ratelimit", "alice"))
	}
	for _, bad := range []string{"", "rl.", "rl.a", "gw.YQ.YQ", "rl..YQ", "rl.YQ.", "rl.YQ.YQ.YQ", "rl.YR.YQ", "rl.Y.YQ", "rl.YQ==.YQ", "rl.==.YQ"} {
		if _, _, ok := ParseKey(bad); ok {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

// A Put on one node's cache is read back at once there, and reaches
// another node's cache through the watch; the second node's CAS builds on
// it; a stale revision is a conflict that refreshes the cache.
func TestPutGetAcrossCachesAndConflict(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir())
	jsA, _ := connect(t, srv, "a")
	jsB, _ := connect(t, srv, "b")
	a, b := openCache(t, jsA, nil), openCache(t, jsB, nil)
	ctx := ctxT(t, 20*time.Second)

	if _, rev, ok := a.Get("ratelimit", "alice"); ok || rev != 0 {
		t.Fatalf("empty bucket: rev %d found %v", rev, ok)
	}
	rev1, err := a.Put(ctx, "ratelimit", "alice", ks1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, rev, ok := a.Get("ratelimit", "alice"); !ok || rev != rev1 || !got.Equal(ks1) {
		t.Fatalf("read-your-writes: %v rev %d/%d found %v", got, rev, rev1, ok)
	}
	waitFor(t, 10*time.Second, "b sees a's put", func() bool { _, rev, _ := b.Get("ratelimit", "alice"); return rev == rev1 })
	if got, _, ok := b.Get("ratelimit", "alice"); !ok || !got.Equal(ks1) {
		t.Fatalf("b: %v", got)
	}

	rev2, err := b.Put(ctx, "ratelimit", "alice", ks2, rev1)
	if err != nil || rev2 <= rev1 {
		t.Fatalf("b's CAS: rev %d err %v", rev2, err)
	}
	// a still at rev1 (or already rev2 from the watch): a CAS at rev1 loses.
	_, err = a.Put(ctx, "ratelimit", "alice", ks1, rev1)
	if !errors.Is(err, ratelimit.ErrSettingsConflict) {
		t.Fatalf("stale CAS: %v", err)
	}
	// The conflict refreshed a: the retry reads rev2 without waiting.
	if got, rev, ok := a.Get("ratelimit", "alice"); !ok || rev != rev2 || !got.Equal(ks2) {
		t.Fatalf("a after the conflict: %v rev %d want %d", got, rev, rev2)
	}
	// Creating what exists is a conflict too.
	if _, err := b.Put(ctx, "ratelimit", "alice", ks1, 0); !errors.Is(err, ratelimit.ErrSettingsConflict) {
		t.Fatalf("create over an existing key: %v", err)
	}
	// Invalid settings are refused before any I/O.
	if _, err := a.Put(ctx, "ratelimit", "bob", ratelimit.KeySettings{DailyBudgetNanos: -1}, 0); err == nil || errors.Is(err, ratelimit.ErrSettingsConflict) {
		t.Fatalf("invalid settings: %v", err)
	}
	// Keys are independent; every byte is allowed.
	odd := "\x00.*>/ x"
	if _, err := a.Put(ctx, "ratelimit", odd, ks2, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "b sees the odd key", func() bool { _, _, ok := b.Get("ratelimit", odd); return ok })
	if _, rev, _ := b.Get("ratelimit", "alice"); rev != rev2 {
		t.Fatalf("alice moved: %d", rev)
	}
}

// A cache started on a bucket with values has them when New returns, also
// after the NATS server restarted from its data dir.
func TestRestartLoadsExisting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	srv := startServer(t, dir)
	js, _ := connect(t, srv, "a")
	c := openCache(t, js, nil)
	ctx := ctxT(t, 20*time.Second)
	want := map[string]ratelimit.KeySettings{}
	for i, k := range []string{"k1", "k2", "k3"} {
		ks := ratelimit.KeySettings{Limits: map[string]ratelimit.Limit{"requests": lim(int64(i + 1))}}
		if _, err := c.Put(ctx, "ratelimit", k, ks, 0); err != nil {
			t.Fatal(err)
		}
		want[k] = ks
	}
	_, rev3, _ := c.Get("ratelimit", "k3")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil { // idempotent
		t.Fatal(err)
	}

	check := func(c *Cache[ratelimit.KeySettings]) {
		t.Helper()
		for k, ks := range want {
			if got, rev, ok := c.Get("ratelimit", k); !ok || rev == 0 || !got.Equal(ks) {
				t.Fatalf("%s: %v rev %d found %v", k, got, rev, ok)
			}
		}
		if _, rev, _ := c.Get("ratelimit", "k3"); rev != rev3 {
			t.Fatalf("k3 rev %d, want %d", rev, rev3)
		}
	}
	check(openCache(t, js, nil)) // no waiting: New returned after the initial load

	srv.Shutdown()
	srv2 := startServer(t, dir)
	js2, _ := connect(t, srv2, "a2")
	c2 := openCache(t, js2, nil)
	check(c2)
	// And it keeps following changes.
	if _, err := c2.Put(ctx, "ratelimit", "k1", ks2, 0); !errors.Is(err, ratelimit.ErrSettingsConflict) {
		t.Fatalf("create after restart: %v", err)
	}
}

// Deletions (tombstones keep their revision, which a later CAS uses),
// keys outside "rl." (ignored) and undecodable values (logged; the last
// good settings stay, at the new revision, so a set overwrites them).
func TestDeleteForeignAndCorrupt(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir())
	js, raw := connect(t, srv, "a")
	var logs syncBuffer
	c := openCache(t, js, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := ctxT(t, 20*time.Second)

	rev1, err := c.Put(ctx, "ratelimit", "alice", ks1, 0)
	if err != nil {
		t.Fatal(err)
	}
	k := Key("ratelimit", "alice")
	if err := raw.Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the deletion", func() bool { _, rev, ok := c.Get("ratelimit", "alice"); return !ok && rev > rev1 })
	_, delRev, _ := c.Get("ratelimit", "alice")
	if _, err := c.Put(ctx, "ratelimit", "alice", ks2, delRev); err != nil {
		t.Fatalf("CAS over the tombstone: %v", err)
	}

	if _, err := raw.Put(ctx, "gw.limits.x", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	badRev, err := raw.Put(ctx, k, []byte{0x31, 0xff})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the corrupt value", func() bool { _, rev, _ := c.Get("ratelimit", "alice"); return rev == badRev })
	if got, _, ok := c.Get("ratelimit", "alice"); !ok || !got.Equal(ks2) {
		t.Fatalf("after a corrupt value: %v (want the last good %v)", got, ks2)
	}
	if !strings.Contains(logs.String(), "does not decode") {
		t.Fatalf("corrupt value not logged: %s", logs.String())
	}
	if _, err := c.Put(ctx, "ratelimit", "alice", ks1, badRev); err != nil {
		t.Fatalf("overwrite the corrupt value: %v", err)
	}
	if got, _, _ := c.Get("ratelimit", "alice"); !got.Equal(ks1) {
		t.Fatalf("after overwrite: %v", got)
	}
	if len(c.m) != 1 {
		t.Fatalf("foreign key cached: %v", c.m)
	}
}

// The cache never regresses: an older revision, from the watch or a
// refresh, does not replace a newer one (for example the Put of this
// node, stored before the watch delivers the writes preceding it).
func TestNoRegress(t *testing.T) {
	c := &Cache[ratelimit.KeySettings]{kind: RateLimit, m: map[id]entry[ratelimit.KeySettings]{}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	k := Key("ns", "k")
	v1, _ := ks1.MarshalBinary()
	v2, _ := ks2.MarshalBinary()
	c.store(id{"ns", "k"}, entry[ratelimit.KeySettings]{v: ks2, rev: 10, found: true}) // this node's Put
	for _, older := range []func(){
		func() { c.apply(k, v1, 9, false) },                                                          // an older write, late from the watch
		func() { c.apply(k, nil, 8, true) },                                                          // an older deletion
		func() { c.apply(k, []byte{0}, 7, false) },                                                   // an older corrupt value
		func() { c.apply(k, v2, 10, false) },                                                         // the Put itself, from the watch
		func() { c.store(id{"ns", "k"}, entry[ratelimit.KeySettings]{v: ks1, rev: 9, found: true}) }, // a slow Put
	} {
		older()
		if got, rev, ok := c.Get("ns", "k"); !ok || rev != 10 || !got.Equal(ks2) {
			t.Fatalf("regressed: %v rev %d found %v", got, rev, ok)
		}
	}
	c.apply(k, v1, 11, false)
	if got, rev, _ := c.Get("ns", "k"); rev != 11 || !got.Equal(ks1) {
		t.Fatalf("newer not applied: %v rev %d", got, rev)
	}
	c.apply(k, nil, 12, true)
	if _, rev, ok := c.Get("ns", "k"); ok || rev != 12 {
		t.Fatalf("deletion: rev %d found %v", rev, ok)
	}
}

// New gives up when ctx ends before the initial load, leaving no goroutine.
func TestNewCanceled(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir())
	js, _ := connect(t, srv, "a")
	kv, err := js.KeyValue(ctxT(t, 10*time.Second), natsdir.SettingsBucket)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c, err := New(ctx, kv, RateLimit, nil); err == nil {
		c.Close()
		t.Fatal("New with a canceled context succeeded")
	} else if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if _, err := New(context.Background(), nil, RateLimit, nil); err == nil {
		t.Fatal("nil KeyValue accepted")
	}
}

// End to end: the ratelimit kind on two nodes' runtimes, each with its own
// store and its own cache of the one bucket. Node A sets a per-key limit
// and is lost; node B, a fresh state (on_owner_loss reset), judges takes
// by the key's limit, not the namespace default.
func TestRatelimitLimitsSurviveOwnerLoss(t *testing.T) {
	t.Parallel()
	srv := startServer(t, t.TempDir())
	jsA, _ := connect(t, srv, "a")
	jsB, _ := connect(t, srv, "b")
	cacheA, cacheB := openCache(t, jsA, nil), openCache(t, jsB, nil)
	defaults := map[string]ratelimit.Limit{"requests": lim(100)}
	runtime := func(st ratelimit.Settings) *actor.Runtime {
		cfg := actor.DefaultConfig()
		cfg.Clock = clock.NewFake(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		cfg.Partitions = 8
		rt, err := actor.New(cfg, actor.NewMemStore(), []actor.NamespaceConfig{{
			Name: "ratelimit", Durability: actor.Local,
			New: ratelimit.New(ratelimit.Defaults{Buckets: defaults, Settings: st}),
		}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rt.Shutdown(context.Background()) })
		return rt
	}
	alice := actor.ID{Namespace: "ratelimit", Key: "alice"}
	ctx := ctxT(t, 20*time.Second)
	take := func(rt *actor.Runtime) bool {
		t.Helper()
		resp, err := rt.Call(ctx, alice, &holdfastv1.RateLimitTakeRequest{Amounts: map[string]int64{"requests": 1}})
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*holdfastv1.RateLimitTakeResponse).GetAllowed()
	}

	rtA := runtime(cacheA)
	if _, err := rtA.Call(ctx, alice, &holdfastv1.RateLimitSetRequest{Buckets: map[string]*holdfastv1.BucketLimit{"requests": {Capacity: 2, RefillPerSecond: 0.001}}}); err != nil {
		t.Fatal(err)
	}
	if a1, a2, a3 := take(rtA), take(rtA), take(rtA); !a1 || !a2 || a3 {
		t.Fatal("node A: the per-key limit of 2 not applied")
	}
	_, revA, _ := cacheA.Get("ratelimit", "alice")
	waitFor(t, 10*time.Second, "node B's cache", func() bool { _, rev, _ := cacheB.Get("ratelimit", "alice"); return rev == revA })

	rtB := runtime(cacheB) // a fresh state: levels lost, limits kept
	if b1, b2, b3 := take(rtB), take(rtB), take(rtB); !b1 || !b2 || b3 {
		t.Fatal("node B: the per-key limit of 2 not applied after the owner loss")
	}
	resp, err := rtB.Call(ctx, alice, &holdfastv1.RateLimitGetRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if b := resp.(*holdfastv1.RateLimitState).GetBuckets()[0]; b.GetSource() != "key" || b.GetCapacity() != 2 {
		t.Fatalf("node B state: %v", b)
	}
	// Node A, deposed but unaware, cannot overwrite B's later set: its
	// cache may lag, and the CAS fences it; its retry builds on B's write.
	if _, err := rtB.Call(ctx, alice, &holdfastv1.RateLimitSetRequest{DailyBudgetNanos: 9}); err != nil {
		t.Fatal(err)
	}
	_, revB, _ := cacheB.Get("ratelimit", "alice")
	if _, err := cacheA.Put(ctx, "ratelimit", "alice", ks1, revA); !errors.Is(err, ratelimit.ErrSettingsConflict) {
		t.Fatalf("deposed owner's write with its stale revision: %v", err)
	}
	if _, rev, _ := cacheA.Get("ratelimit", "alice"); rev != revB {
		t.Fatalf("node A not refreshed by the conflict: rev %d, want %d", rev, revB)
	}
}
