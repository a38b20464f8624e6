//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	loadWorkers = 32
	loadActors  = 200
)

// history records every write sent and every write acknowledged (2xx).
type history struct {
	mu        sync.Mutex
	attempted map[string]string // "actor/key" -> value
	acked     map[string]string
}

func newHistory() *history {
	return &history{attempted: map[string]string{}, acked: map[string]string{}}
}

func (h *history) attempt(actor, key, value string) {
	h.mu.Lock()
	h.attempted[actor+"/"+key] = value
	h.mu.Unlock()
}

func (h *history) ack(actor, key, value string) {
	h.mu.Lock()
	h.acked[actor+"/"+key] = value
	h.mu.Unlock()
}

func (h *history) counts() (attempted, acked int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.attempted), len(h.acked)
}

func loadActor(i int) string { return fmt.Sprintf("w%03d", i%loadActors) }

// putOne sends one unique write; ok means a 2xx reply was received.
func putOne(n *Node, h *history, tag string, i int64) (status int, err error) {
	actor := loadActor(int(i))
	key := fmt.Sprintf("%s-%06d", tag, i)
	value := fmt.Sprintf("%s-%d-%016x", tag, i, rand.Uint64())
	h.attempt(actor, key, value)
	r, err := n.Do("PUT", "/v1/actors/kv/"+actor+"/storage/"+key, value, "Idempotency-Key", "e2e-"+key)
	if err != nil {
		return 0, err
	}
	if r.Status/100 == 2 {
		h.ack(actor, key, value)
	}
	return r.Status, nil
}

// verifyWrites lists every load actor and checks that each acknowledged
// write is present with its value, and that nothing is present that was
// never sent (or with another value than the one sent).
func verifyWrites(t *testing.T, n *Node, h *history) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	present := map[string]string{}
	for i := 0; i < loadActors; i++ {
		actor := loadActor(i)
		for k, v := range listAll(t, n, actor) {
			present[actor+"/"+k] = v
		}
	}
	var missing, wrong, unknown []string
	for k, v := range h.acked {
		got, ok := present[k]
		switch {
		case !ok:
			missing = append(missing, k)
		case got != v:
			wrong = append(wrong, fmt.Sprintf("%s = %q, acknowledged %q", k, got, v))
		}
	}
	for k, v := range present {
		if sent, ok := h.attempted[k]; !ok || sent != v {
			unknown = append(unknown, fmt.Sprintf("%s = %q (sent: %q, %v)", k, v, sent, ok))
		}
	}
	sort.Strings(missing)
	if len(missing)+len(wrong)+len(unknown) > 0 {
		t.Errorf("after restart: %d acknowledged writes missing (first: %v), %d with another value (first: %v), %d never sent (first: %v); %d acknowledged, %d present",
			len(missing), first(missing, 5), len(wrong), first(wrong, 5), len(unknown), first(unknown, 5), len(h.acked), len(present))
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// listAll returns the whole storage of kv/actor, paging if truncated.
func listAll(t *testing.T, n *Node, actor string) map[string]string {
	t.Helper()
	out := map[string]string{}
	start := ""
	for page := 0; ; page++ {
		q := url.Values{"limit": {"1000"}}
		if start != "" {
			q.Set("start", start)
		}
		r := n.MustDo(t, "GET", "/v1/actors/kv/"+actor+"/storage?"+q.Encode(), "")
		if r.Status != 200 {
			t.Fatalf("listing kv/%s: %v", actor, r)
		}
		var l struct {
			Entries []struct {
				Key   string  `json:"key"`
				Value *string `json:"value"`
			} `json:"entries"`
			Truncated bool `json:"truncated"`
		}
		DecodeJSON(t, r.Body, &l)
		for _, e := range l.Entries {
			if e.Value == nil {
				t.Fatalf("kv/%s key %q: value is not text: %s", actor, e.Key, r.Body)
			}
			out[e.Key] = *e.Value
		}
		if !l.Truncated || len(l.Entries) == 0 {
			return out
		}
		if page > 100 {
			t.Fatalf("listing kv/%s: more than 100 pages", actor)
		}
		start = l.Entries[len(l.Entries)-1].Key + "\x00"
	}
}

type alarmRec struct {
	actor string
	due   time.Time
	late  bool
}

// setAlarm sets kv/actor's alarm in d; the alarm is recorded only when
// acknowledged.
func setAlarm(t *testing.T, n *Node, actor string, d time.Duration) (alarmRec, bool) {
	due := time.Now().Add(d)
	r, err := n.Do("POST", "/v1/actors/kv/"+actor+"/alarm.set", fmt.Sprintf(`{"in_ms":%d}`, d.Milliseconds()))
	if err != nil || r.Status != 200 {
		t.Errorf("alarm.set kv/%s before the kill: %v %v", actor, r, err)
		return alarmRec{}, false
	}
	return alarmRec{actor: actor, due: due}, true
}

func alarmFired(t *testing.T, n *Node, actor string) (int64, string) {
	r := n.MustDo(t, "GET", "/v1/actors/kv/"+actor+"/alarm.get", "")
	if r.Status != 200 {
		t.Fatalf("alarm.get kv/%s: %v", actor, r)
	}
	var a alarmJSON
	DecodeJSON(t, r.Body, &a)
	return a.FiredCount, string(r.Body)
}

func waitAlarmsFired(t *testing.T, n *Node, alarms []alarmRec) {
	t.Helper()
	WaitFor(t, 30*time.Second, fmt.Sprintf("all %d acknowledged alarms to fire", len(alarms)), func() (bool, string) {
		for _, a := range alarms {
			if c, body := alarmFired(t, n, a.actor); c < 1 {
				return false, fmt.Sprintf("kv/%s (due %s, late=%v): %s", a.actor, a.due.Format(time.RFC3339Nano), a.late, body)
			}
		}
		return true, ""
	})
}

// TestSIGKILLLosesNoAcknowledgedWrite kills the node three times in the
// middle of a write load and checks, after each restart on the same data
// directory, every acknowledged write and alarm.
func TestSIGKILLLosesNoAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	_, rng := Seed(t)
	n := StartNode(t, NodeOptions{})
	h := newHistory()
	var alarms []alarmRec
	const maxWritesPerCycle = 6000

	for cycle := 0; cycle < 3; cycle++ {
		killAt := int64(200 + rng.IntN(1800))
		tag := fmt.Sprintf("c%d", cycle)
		var next, acks atomic.Int64
		var killing atomic.Bool
		threshold := make(chan struct{})
		var thresholdOnce sync.Once
		var wg sync.WaitGroup
		errs := make(chan error, loadWorkers)
		for w := 0; w < loadWorkers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > maxWritesPerCycle {
						return
					}
					status, err := putOne(n, h, tag, i)
					if err != nil || status/100 != 2 {
						if !killing.Load() {
							errs <- fmt.Errorf("write %d before the kill: status %d, %v", i, status, err)
						}
						return
					}
					if acks.Add(1) == killAt {
						thresholdOnce.Do(func() { close(threshold) })
					}
				}
			}()
		}
		loadDone := make(chan struct{})
		go func() { wg.Wait(); close(loadDone) }()
		select {
		case <-threshold:
		case <-loadDone:
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			t.Fatalf("cycle %d: the load ended before %d writes were acknowledged", cycle, killAt)
		}
		// Alarms set under load, acknowledged just before the kill: the early
		// ones fall due while the node is down, the late ones after it is
		// back.
		var early []alarmRec
		for i := 0; i < 5; i++ {
			if a, ok := setAlarm(t, n, loadActor(cycle*10+i), 300*time.Millisecond); ok {
				early = append(early, a)
			}
			if a, ok := setAlarm(t, n, loadActor(cycle*10+5+i), 3*time.Second); ok {
				a.late = true
				alarms = append(alarms, a)
			}
		}
		alarms = append(alarms, early...)
		killing.Store(true)
		n.Kill()
		<-loadDone
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		attempted, acked := h.counts()
		t.Logf("cycle %d: kill point %d reached, alarms set, SIGKILL sent with %d writes acknowledged this cycle; %d sent, %d acknowledged in all",
			cycle, killAt, acks.Load(), attempted, acked)

		// Restart only once every early alarm is due.
		for _, a := range early {
			if d := time.Until(a.due); d > 0 {
				time.Sleep(d)
			}
		}
		n.Restart()
		pendingLate := 0
		for _, a := range alarms {
			if a.late && time.Now().Before(a.due) {
				pendingLate++
			}
		}
		t.Logf("cycle %d: restarted; %d late alarms not yet due", cycle, pendingLate)
		waitAlarmsFired(t, n, alarms)
		verifyWrites(t, n, h)
		if t.Failed() {
			t.FailNow()
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout() || errors.Is(err, io.ErrNoProgress) || strings.Contains(err.Error(), "Client.Timeout")
}
