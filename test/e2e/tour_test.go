//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestTour is the README tour a new user follows after `make run`: first
// with holdctl, then with curl (here net/http), then health and metrics.
func TestTour(t *testing.T) {
	t.Parallel()
	n := StartNode(t, NodeOptions{})

	t.Run("api", func(t *testing.T) {
		t.Run("holdctl", func(t *testing.T) {
			t.Parallel()
			tourHoldctl(t, n)
		})
		t.Run("http", func(t *testing.T) {
			t.Parallel()
			tourHTTP(t, n)
		})
	})

	t.Run("health", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz"} {
			if r := n.MustDo(t, "GET", p, ""); r.Status != 200 {
				t.Errorf("GET %s: %v, want 200", p, r)
			}
		}
		r := n.MustDo(t, "GET", "/metrics", "")
		if r.Status != 200 {
			t.Fatalf("GET /metrics: %v", r)
		}
		for _, name := range []string{
			"holdfast_turn_seconds", "holdfast_commit_batch_writes", "holdfast_fsync_seconds",
			"holdfast_alarms_fired_total", "holdfast_actors_in_memory", "holdfast_evictions_total",
			"holdfast_mailbox_depth",
		} {
			if !bytes.Contains(r.Body, []byte("\n"+name)) {
				t.Errorf("/metrics has no %s", name)
			}
		}
		// Both tours' alarms fired: the counter says so.
		if got := metricSum(string(r.Body), "holdfast_alarms_fired_total"); got < 2 {
			t.Errorf("holdfast_alarms_fired_total = %v after two alarms fired, want >= 2", got)
		}
	})
}

func tourHoldctl(t *testing.T, n *Node) {
	ctl := func(args ...string) Result { t.Helper(); return n.Ctl(t, args...) }
	want := func(r Result, code int) {
		t.Helper()
		if r.Code != code {
			t.Fatalf("want exit %d, got %v", code, r)
		}
	}

	// A limit of 3 requests, refilled at 1/s.
	setAt := time.Now()
	r := ctl("ratelimit", "set", "alice", "--bucket", "requests=3/1")
	want(r, 0)
	if !strings.Contains(r.Stdout, "requests") {
		t.Errorf("ratelimit set printed no bucket: %v", r)
	}
	for i := 1; i <= 3; i++ {
		r := ctl("ratelimit", "take", "alice", "requests=1")
		want(r, 0)
		if !strings.HasPrefix(r.Stdout, "allowed") {
			t.Errorf("take %d: %v", i, r)
		}
	}
	// The 4th is refused, unless more than a second has passed since the
	// set (then refill may legitimately have brought a token back).
	var refused takeJSON
	for attempt := 4; ; attempt++ {
		r := ctl("ratelimit", "take", "alice", "requests=1", "-o", "json")
		if r.Code == 3 {
			DecodeJSON(t, []byte(r.Stdout), &refused)
			break
		}
		want(r, 0)
		if since := time.Since(setAt); since < time.Second || attempt > 10 {
			t.Fatalf("take %d allowed %v after a set of capacity 3 refilled at 1/s: %v", attempt, since, r)
		}
	}
	if refused.Allowed || refused.RetryAfterMs <= 0 || refused.RefusedBy != "requests" {
		t.Errorf("refused take: %+v, want allowed=false, retry_after_ms>0, refused_by=requests", refused)
	}
	// Watch it refill.
	WaitFor(t, 30*time.Second, "ratelimit take alice to be allowed again", func() (bool, string) {
		r := ctl("ratelimit", "take", "alice", "requests=1", "-o", "json")
		if r.Code != 0 && r.Code != 3 {
			t.Fatalf("take while refilling: %v", r)
		}
		return r.Code == 0, r.Stdout
	})

	// Storage.
	want(ctl("kv", "put", "app1", "greeting", "hello"), 0)
	r = ctl("kv", "get", "app1", "greeting")
	want(r, 0)
	if r.Stdout != "hello\n" {
		t.Errorf("kv get: stdout %q, want %q", r.Stdout, "hello\n")
	}
	r = ctl("kv", "list", "app1")
	want(r, 0)
	if !strings.Contains(r.Stdout, "greeting") || !strings.Contains(r.Stdout, "hello") {
		t.Errorf("kv list: %v", r)
	}
	r = ctl("kv", "list", "app1", "-o", "json")
	want(r, 0)
	wantJSON(t, "kv list -o json", r.Stdout, `{"entries":[{"key":"greeting","value":"hello"}],"truncated":false}`)

	// An alarm in 2 s.
	r = ctl("alarm", "set", "kv", "app1", "--in", "2s")
	want(r, 0)
	var a alarmJSON
	WaitFor(t, 30*time.Second, "kv/app1 alarm to fire", func() (bool, string) {
		r := ctl("alarm", "get", "kv", "app1", "-o", "json")
		want(r, 0)
		a = alarmJSON{}
		DecodeJSON(t, []byte(r.Stdout), &a)
		return a.FiredCount >= 1, r.Stdout
	})
	if a.FiredCount != 1 || a.Scheduled || a.LastFired == nil {
		t.Errorf("alarm after firing: %+v, want fired_count 1, not scheduled, last_fired set", a)
	}

	// Inspection.
	r = ctl("actors", "list", "kv")
	want(r, 0)
	if !strings.Contains(r.Stdout, "app1") {
		t.Errorf("actors list kv: %v", r)
	}
	r = ctl("actors", "get", "kv", "app1")
	want(r, 0)
	for _, s := range []string{"kv/app1", "greeting", "hello", "fired count"} {
		if !strings.Contains(r.Stdout, s) {
			t.Errorf("actors get kv app1: no %q in %v", s, r)
		}
	}
	r = ctl("actors", "get", "kv", "app1", "-o", "json")
	want(r, 0)
	var got struct {
		Actor struct {
			Key      string `json:"key"`
			Keys     int64  `json:"keys"`
			InMemory bool   `json:"in_memory"`
		} `json:"actor"`
		Alarm   *alarmJSON `json:"alarm"`
		Entries []struct {
			Key   string `json:"key"`
			Value string `json:"value"`
		} `json:"entries"`
	}
	DecodeJSON(t, []byte(r.Stdout), &got)
	if got.Actor.Key != "app1" || got.Actor.Keys != 1 || len(got.Entries) != 1 || got.Entries[0].Value != "hello" ||
		got.Alarm == nil || got.Alarm.FiredCount != 1 {
		t.Errorf("actors get kv app1 -o json: %s", r.Stdout)
	}
	r = ctl("status")
	want(r, 0)
	for _, s := range []string{"serving", n.DataDir, "kv", "ratelimit"} {
		if !strings.Contains(r.Stdout, s) {
			t.Errorf("status: no %q in %v", s, r)
		}
	}
	r = ctl("status", "-o", "json")
	want(r, 0)
	var st struct {
		State          string `json:"state"`
		ActorsInMemory int64  `json:"actors_in_memory"`
		Namespaces     []struct {
			Name           string `json:"name"`
			ActorsInMemory int64  `json:"actors_in_memory"`
		} `json:"namespaces"`
	}
	DecodeJSON(t, []byte(r.Stdout), &st)
	if st.State != "serving" || st.ActorsInMemory < 2 || len(st.Namespaces) < 2 {
		t.Errorf("status -o json: %s", r.Stdout)
	}
	// kv/app1 is in memory (idle timeout 70 s): its namespace must count it.
	if got.Actor.InMemory {
		for _, ns := range st.Namespaces {
			if ns.Name == "kv" && ns.ActorsInMemory < 1 {
				t.Errorf("BUG: status says namespace kv has %d actors in memory while `actors get kv app1` says in_memory=true "+
					"and the node total is %d:\n%s", ns.ActorsInMemory, st.ActorsInMemory, r.Stdout)
			}
		}
	}
}

func tourHTTP(t *testing.T, n *Node) {
	do := func(method, path, body string) HTTPResult { t.Helper(); return n.MustDo(t, method, path, body) }
	want := func(r HTTPResult, status int, what string) {
		t.Helper()
		if r.Status != status {
			t.Fatalf("%s: %v, want %d", what, r, status)
		}
	}

	r := do("POST", "/v1/actors/ratelimit/bob/ratelimit.set", `{"buckets":{"requests":{"capacity":2,"refill_per_second":1}}}`)
	want(r, 200, "ratelimit.set")
	var state struct {
		Buckets []struct {
			Name     string  `json:"name"`
			Capacity float64 `json:"capacity"`
		} `json:"buckets"`
	}
	DecodeJSON(t, r.Body, &state)
	if len(state.Buckets) != 1 || state.Buckets[0].Name != "requests" || state.Buckets[0].Capacity != 2 {
		t.Errorf("ratelimit.set: %s", r.Body)
	}
	allowed := 0
	var take struct {
		Allowed      bool   `json:"allowed"`
		RetryAfterMs int64  `json:"retry_after_ms"`
		RefusedBy    string `json:"refused_by"`
	}
	for {
		r = do("POST", "/v1/actors/ratelimit/bob/ratelimit.take", `{"amounts":{"requests":1}}`)
		want(r, 200, "ratelimit.take")
		take.Allowed = false
		DecodeJSON(t, r.Body, &take)
		if !take.Allowed {
			break
		}
		if allowed++; allowed > 10 {
			t.Fatalf("ratelimit.take allowed %d times with capacity 2, refill 1/s", allowed)
		}
	}
	if allowed < 2 {
		t.Errorf("only %d takes allowed before a refusal, capacity 2", allowed)
	}
	if take.RetryAfterMs <= 0 || take.RefusedBy != "requests" {
		t.Errorf("refused take: %s", r.Body)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("refused take: Retry-After %q, want a positive number of seconds", r.Header.Get("Retry-After"))
	}

	want(do("PUT", "/v1/actors/kv/app2/storage/color", "blue"), 200, "PUT storage/color")
	r = do("GET", "/v1/actors/kv/app2/storage/color", "")
	want(r, 200, "GET storage/color")
	if string(r.Body) != "blue" {
		t.Errorf("GET storage/color: %q, want blue", r.Body)
	}
	r = do("GET", "/v1/actors/kv/app2/storage", "")
	want(r, 200, "GET storage")
	wantJSON(t, "GET /v1/actors/kv/app2/storage", string(r.Body), `{"entries":[{"key":"color","value":"blue"}],"truncated":false}`)

	r = do("POST", "/v1/actors/kv/app2/alarm.set", `{"in_ms":1000}`)
	want(r, 200, "alarm.set")
	var a struct {
		Scheduled  bool  `json:"scheduled"`
		FiredCount int64 `json:"fired_count"`
	}
	DecodeJSON(t, r.Body, &a)
	if !a.Scheduled {
		t.Errorf("alarm.set: %s", r.Body)
	}
	WaitFor(t, 30*time.Second, "kv/app2 alarm to fire", func() (bool, string) {
		r := do("GET", "/v1/actors/kv/app2/alarm.get", "")
		want(r, 200, "alarm.get")
		DecodeJSON(t, r.Body, &a)
		return a.FiredCount >= 1, string(r.Body)
	})
	if a.FiredCount != 1 || a.Scheduled {
		t.Errorf("alarm after firing: %+v", a)
	}
}

type takeJSON struct {
	Allowed      bool               `json:"allowed"`
	Remaining    map[string]float64 `json:"remaining"`
	RetryAfterMs int64              `json:"retry_after_ms"`
	RefusedBy    string             `json:"refused_by"`
}

type alarmJSON struct {
	Scheduled  bool    `json:"scheduled"`
	At         *string `json:"at"`
	LastFired  *string `json:"last_fired"`
	FiredCount int64   `json:"fired_count"`
	Retries    int64   `json:"retries"`
}

// wantJSON compares two JSON documents exactly, ignoring white space.
func wantJSON(t testing.TB, what, got, want string) {
	t.Helper()
	var g, w bytes.Buffer
	if err := json.Compact(&g, []byte(got)); err != nil {
		t.Errorf("%s: not JSON: %q", what, got)
		return
	}
	json.Compact(&w, []byte(want))
	if g.String() != w.String() {
		t.Errorf("%s:\n got %s\nwant %s", what, g.String(), w.String())
	}
}

// metricSum adds up every sample of a counter or gauge family.
func metricSum(text, name string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}
