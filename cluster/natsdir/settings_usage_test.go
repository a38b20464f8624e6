package natsdir

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestSettings(t *testing.T) {
	t.Parallel()
	s := startTestServer(t, singleConfig(t, t.TempDir()))
	js := jsFor(t, s, "settings")
	ctx := ctxT(t, 20*time.Second)
	st, err := OpenSettings(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, found, err := st.Get(ctx, "limits.k1"); found || err != nil {
		t.Fatalf("absent key: found %v err %v", found, err)
	}
	rev, err := st.Put(ctx, "limits.k1", []byte(`{"rps":10}`))
	if err != nil {
		t.Fatal(err)
	}
	val, grev, found, err := st.Get(ctx, "limits.k1")
	if err != nil || !found || grev != rev || string(val) != `{"rps":10}` {
		t.Fatalf("get: %s %d %v %v", val, grev, found, err)
	}

	type change struct {
		key, val string
		deleted  bool
	}
	var mu sync.Mutex
	var changes []change
	wctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- st.Watch(wctx, func(k string, v []byte, del bool) {
			mu.Lock()
			changes = append(changes, change{k, string(v), del})
			mu.Unlock()
		})
	}()
	defer func() {
		cancel()
		<-done
	}()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(changes) }
	waitFor(t, 10*time.Second, "initial value", func() bool { return count() >= 1 })
	if _, err := st.Put(ctx, "limits.k2", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, "limits.k1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "changes", func() bool { return count() >= 3 })
	mu.Lock()
	got := fmt.Sprint(changes)
	mu.Unlock()
	if want := fmt.Sprint([]change{{"limits.k1", `{"rps":10}`, false}, {"limits.k2", "2", false}, {"limits.k1", "", true}}); got != want {
		t.Fatalf("changes %s, want %s", got, want)
	}
	if _, _, found, _ := st.Get(ctx, "limits.k1"); found {
		t.Fatal("deleted key found")
	}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	s := startTestServer(t, singleConfig(t, t.TempDir()))
	js := jsFor(t, s, "usage")
	ctx := ctxT(t, 20*time.Second)
	u, err := OpenUsage(ctx, js, UsageConfig{Retention: time.Hour, BatchSize: 10, FlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	info, err := js.Stream(ctx, UsageStream)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.CachedInfo().Config; c.MaxAge != time.Hour || c.Subjects[0] != "holdfast.usage.>" {
		t.Fatalf("usage stream config %+v", c)
	}

	odd := "user/with spaces.*>\x00é"
	base := time.Now()
	for i := range 25 {
		user := "alice"
		if i%2 == 1 {
			user = odd
		}
		u.Publish(UsageEvent{Time: base.Add(time.Duration(i) * time.Millisecond), User: user, Body: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
	}
	waitFor(t, 10*time.Second, "acks", func() bool { return u.Stats().Published == 25 })
	mid := time.Now()
	u.Publish(UsageEvent{Time: time.Now(), User: "alice", Body: json.RawMessage(`{"i":100}`)})
	waitFor(t, 10*time.Second, "late ack", func() bool { return u.Stats().Published == 26 })

	all, err := u.Read(ctx, "alice", time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 14 {
		t.Fatalf("alice has %d events, want 14", len(all))
	}
	for i, ev := range all[:13] {
		if ev.User != "alice" || string(ev.Body) != fmt.Sprintf(`{"i":%d}`, 2*i) {
			t.Fatalf("event %d: %+v %s", i, ev, ev.Body)
		}
	}
	oddEvents, err := u.Read(ctx, odd, time.Time{}, 5)
	if err != nil || len(oddEvents) != 5 || oddEvents[0].User != odd || string(oddEvents[0].Body) != `{"i":1}` {
		t.Fatalf("odd user: %v %+v", err, oddEvents)
	}
	since, err := u.Read(ctx, "alice", mid, 0)
	if err != nil || len(since) != 1 || string(since[0].Body) != `{"i":100}` {
		t.Fatalf("since: %v %+v", err, since)
	}
	none, err := u.Read(ctx, "nobody", time.Time{}, 0)
	if err != nil || len(none) != 0 {
		t.Fatalf("nobody: %v %+v", err, none)
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	u.Publish(UsageEvent{User: "late"})
	if st := u.Stats(); st.Dropped != 1 || st.Failed != 0 {
		t.Fatalf("stats after close %+v", st)
	}
	if UsageSubject("") != "holdfast.usage._" || UsageSubject("ab") != "holdfast.usage.6162" {
		t.Fatal("UsageSubject encoding")
	}
}

func TestUsageCloseFlushes(t *testing.T) {
	t.Parallel()
	s := startTestServer(t, singleConfig(t, t.TempDir()))
	js := jsFor(t, s, "usage")
	ctx := ctxT(t, 20*time.Second)
	u, err := OpenUsage(ctx, js, UsageConfig{BatchSize: 1000, FlushInterval: time.Hour, BufferSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		u.Publish(UsageEvent{Time: time.Now(), User: "bob", Body: json.RawMessage(fmt.Sprint(i))})
	}
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	// The publisher may take some events out of the buffer of 5 before it
	// fills: at least 5 are kept, the rest are dropped and counted.
	st := u.Stats()
	if st.Published < 5 || st.Published+st.Dropped != 8 || st.Failed != 0 {
		t.Fatalf("stats %+v, want 8 = published (>= 5) + dropped", st)
	}
	evs, err := u.Read(ctx, "bob", time.Time{}, 0)
	if err != nil || uint64(len(evs)) != st.Published {
		t.Fatalf("read after close: %v %d events, %d published", err, len(evs), st.Published)
	}
}
