//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestClusterSIGKILLOwnerFailover kills (SIGKILL) the process owning a
// ratelimit key (on_owner_loss reset) and a kv key (on_owner_loss wait)
// while clients write kv and take tokens through the two survivors.
//
//   - ratelimit: another node serves the key again after about TTL + ε,
//     with a fresh bucket under the replicated per-key limit; the time and
//     the over-admitted takes are logged.
//   - kv: every call for the key answers 503 with a retryable reason until
//     the killed node is back on its data directory; then the key holds
//     exactly its last acknowledged value, and every acknowledged write of
//     the background load is readable.
func TestClusterSIGKILLOwnerFailover(t *testing.T) {
	skipShort(t)
	t.Parallel()
	c := startProcCluster(t, 3)
	a, b, victim := c.nodes[0], c.nodes[1], c.nodes[2]
	victimID := c.ids[2]
	survivors := []*Node{a, b}

	rlKey, rlWhere := keyOwnedBy(t, a, "ratelimit", "rl", victimID)
	kvKey, kvWhere := keyOwnedBy(t, a, "kv", "acct", victimID)
	t.Logf("ratelimit/%s: %+v; kv/%s: %+v", rlKey, rlWhere, kvKey, kvWhere)

	const capacity = 100
	if r := a.MustDo(t, "POST", "/v1/actors/ratelimit/"+rlKey+"/ratelimit.set",
		fmt.Sprintf(`{"buckets":{"b":{"capacity":%d,"refill_per_second":0.001}}}`, capacity), "Idempotency-Key", "kill-rl-set"); r.Status != 200 {
		t.Fatalf("ratelimit.set: %v", r)
	}

	// killing: SIGKILL is about to be sent (failures are expected from
	// then on); deadAt: the process is dead (unix nanos; 0 before).
	var killing atomic.Bool
	var deadAt atomic.Int64
	killed := killing.Load
	stop := make(chan struct{}) // background load and takers
	stopKeyWriter := make(chan struct{})
	var wg sync.WaitGroup

	// Background kv load through the survivors: before the kill nothing may
	// fail; after it, only retryable 503s (partitions of the dead node).
	h := newHistory()
	bg := newTally()
	var bgNext, bgAcks atomic.Int64
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			via := survivors[w%2]
			for !isClosed(stop) {
				i := bgNext.Add(1)
				actor := loadActor(int(i))
				key := fmt.Sprintf("bg-%06d", i)
				value := fmt.Sprintf("bg-%d", i)
				h.attempt(actor, key, value)
				r, err := kvPut(via, actor, key, value, "kill-"+key)
				class, retryable, detail := outcome(r, err)
				switch {
				case class == "ok":
					h.ack(actor, key, value)
					bgAcks.Add(1)
					bg.add("ok", "", false)
					continue
				case !killed():
					bg.add("before the kill: "+class, detail, true)
				case retryable:
					bg.add(class, "", false)
				default:
					bg.add(class, detail, true)
				}
				pause(stop, 20*time.Millisecond)
			}
		}()
	}

	// One writer of the chosen kv key, sequential, through both survivors.
	var kvMu sync.Mutex
	lastAcked, inDoubt := "", map[string]bool{} // values sent whose outcome is unknown
	kvOut := newTally()
	var kvKeyAcks atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !isClosed(stopKeyWriter); i++ {
			value := fmt.Sprintf("v%05d", i)
			sent := time.Now().UnixNano()
			r, err := kvPut(survivors[i%2], kvKey, "balance", value, fmt.Sprintf("kill-kv-%d", i))
			class, retryable, detail := outcome(r, err)
			kvMu.Lock()
			switch {
			case class == "ok":
				if d := deadAt.Load(); d != 0 && sent > d {
					kvOut.add("ACKNOWLEDGED WHILE ITS OWNER WAS DEAD", "put "+value, true)
				}
				lastAcked, inDoubt = value, map[string]bool{}
				kvKeyAcks.Add(1)
			case strings.Contains(class, "UNKNOWN_OUTCOME") || !retryable:
				inDoubt[value] = true
				kvOut.add(class, fmt.Sprintf("put %s: %s", value, detail), !retryable || !killed())
			default:
				kvOut.add(class, detail, !killed())
			}
			kvMu.Unlock()
			if class != "ok" {
				pause(stopKeyWriter, 20*time.Millisecond)
			}
		}
	}()

	// Readers of the chosen kv key (reads carry no request ID: a read in
	// flight at the kill must still fail as retryable).
	reads := newTally()
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !isClosed(stopKeyWriter) {
				r, err := kvGet(survivors[w], kvKey, "balance")
				class, retryable, detail := outcome(r, err)
				if class == "ok" || r.Status == 404 && !killed() {
					reads.add("ok", "", false)
					pause(stopKeyWriter, 2*time.Millisecond)
					continue
				}
				reads.add(class, "get: "+detail, !retryable || !killed())
				pause(stopKeyWriter, 20*time.Millisecond)
			}
		}()
	}

	// Takers of the chosen ratelimit key through both survivors.
	var allowed, refused, rlUnknown, rlAfterFailoverRefused atomic.Int64
	var servedAgainAt atomic.Int64
	rl := newTally()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			via := survivors[w%2]
			for i := 0; !isClosed(stop); i++ {
				sent := time.Now().UnixNano()
				r, err := via.Do("POST", "/v1/actors/ratelimit/"+rlKey+"/ratelimit.take", `{"amounts":{"b":1}}`,
					"Idempotency-Key", fmt.Sprintf("kill-take-%d-%d", w, i))
				class, retryable, detail := outcome(r, err)
				if class == "ok" {
					var tk takeJSON
					if err := json.Unmarshal(r.Body, &tk); err != nil {
						rl.add("bad take reply", r.String(), true)
						continue
					}
					if tk.Allowed {
						allowed.Add(1)
					} else {
						refused.Add(1)
					}
					if k := deadAt.Load(); k != 0 && sent > k {
						servedAgainAt.CompareAndSwap(0, time.Now().UnixNano())
						if !tk.Allowed {
							rlAfterFailoverRefused.Add(1)
						}
					}
					pause(stop, 5*time.Millisecond)
					continue
				}
				if strings.Contains(class, "UNKNOWN_OUTCOME") {
					rlUnknown.Add(1)
				}
				rl.add(class, detail, !retryable || !killed())
				pause(stop, 20*time.Millisecond)
			}
		}()
	}
	defer func() {
		closeOnce(stop)
		closeOnce(stopKeyWriter)
		wg.Wait()
	}()

	// Kill once the bucket is empty and the kv key has acknowledged writes.
	WaitFor(t, 30*time.Second, "the bucket emptied and kv writes acknowledged", func() (bool, string) {
		return refused.Load() > 0 && kvKeyAcks.Load() >= 20 && bgAcks.Load() >= 200,
			fmt.Sprintf("allowed %d refused %d, kv key acks %d, background acks %d", allowed.Load(), refused.Load(), kvKeyAcks.Load(), bgAcks.Load())
	})
	kill := time.Now()
	killing.Store(true)
	victim.Kill()
	deadAt.Store(time.Now().UnixNano())
	t.Logf("SIGKILL %s after %d allowed and %d refused takes, %d acknowledged puts of kv/%s, %d background writes acknowledged",
		victimID, allowed.Load(), refused.Load(), kvKeyAcks.Load(), kvKey, bgAcks.Load())

	// ratelimit (reset): served again by a survivor.
	WaitFor(t, 30*time.Second, "ratelimit/"+rlKey+" served again", func() (bool, string) {
		return servedAgainAt.Load() != 0, rl.String()
	})
	failover := time.Unix(0, servedAgainAt.Load()).Sub(kill)
	t.Logf("ratelimit/%s served again %v after SIGKILL (lease TTL + ε = %v); failed takes meanwhile: %v",
		rlKey, failover.Round(time.Millisecond), clusterLeaseTTL+clusterEpsilon, rl)
	// The survivors count TTL + ε from the last renewal they saw, at most
	// one renew interval before the kill.
	if earliest := clusterLeaseTTL + clusterEpsilon - clusterRenewInterval; failover < earliest {
		t.Errorf("ratelimit/%s served again %v after the owner's SIGKILL, before its lease could have expired (TTL + ε - renew interval = %v): two owners possible",
			rlKey, failover, earliest)
	}
	if w := where(t, a, "ratelimit", rlKey); w.Owner == victimID || w.Owner == "" || w.Epoch <= rlWhere.Epoch {
		t.Errorf("where ratelimit %s after the failover: %+v (before %+v)", rlKey, w, rlWhere)
	}
	// Let the fresh bucket empty, then count.
	WaitFor(t, 30*time.Second, "the fresh bucket emptied", func() (bool, string) {
		return rlAfterFailoverRefused.Load() > 0, fmt.Sprintf("allowed %d", allowed.Load())
	})

	// kv (wait): orphaned, and every call answers retryable unavailable.
	WaitFor(t, 30*time.Second, "kv/"+kvKey+"'s partition orphaned", func() (bool, string) {
		rg, err := c.ring(t, a)
		if err != nil {
			return false, err.Error()
		}
		for _, p := range rg.Partitions {
			if p.Partition == kvWhere.Partition {
				return p.Orphaned && p.Owner == victimID, fmt.Sprintf("%+v", p)
			}
		}
		return false, fmt.Sprintf("partition %d not in the ring", kvWhere.Partition)
	})
	for _, n := range survivors {
		r, err := kvGet(n, kvKey, "balance")
		if class, retryable, detail := outcome(r, err); !retryable || !strings.HasPrefix(class, "503") {
			t.Errorf("GET kv/%s while its owner is dead: %s (%s), want 503 retryable", kvKey, class, detail)
		} else {
			t.Logf("GET kv/%s while its owner is dead: %s", kvKey, detail)
		}
	}
	// Ratelimit over-admission.
	closeOnce(stop)
	closeOnce(stopKeyWriter)
	wg.Wait()
	over := allowed.Load() - capacity
	t.Logf("ratelimit/%s capacity %d: %d takes allowed in all, over-admitted %d (reset gives a fresh bucket), %d refused, %d of unknown outcome",
		rlKey, capacity, allowed.Load(), over, refused.Load(), rlUnknown.Load())
	if over > capacity {
		t.Errorf("over-admitted %d takes: more than one fresh bucket (%d)", over, capacity)
	}
	kvMu.Lock()
	final, doubt := lastAcked, inDoubt
	kvMu.Unlock()
	t.Logf("kv/%s puts: %d acknowledged (last %q), outcomes after the kill: %v", kvKey, kvKeyAcks.Load(), final, kvOut)
	t.Logf("background kv load: %d acknowledged, %v", bgAcks.Load(), bg)
	t.Logf("reads of kv/%s: %v", kvKey, reads)
	for _, ty := range []*tally{bg, kvOut, rl, reads} {
		if _, d := ty.snapshot(); len(d) > 0 {
			t.Errorf("unexpected failures (first %d; a retryable 503 is the only acceptable failure while the owner is dead):\n  %s",
				len(d), strings.Join(d, "\n  "))
		}
	}

	// Restart the dead node on its disk: the key comes back as it was.
	restart := time.Now()
	victim.Restart()
	var got string
	WaitFor(t, 60*time.Second, "kv/"+kvKey+" served again", func() (bool, string) {
		r, err := kvGet(a, kvKey, "balance")
		class, retryable, detail := outcome(r, err)
		if class == "ok" {
			got = string(r.Body)
			return true, ""
		}
		if !retryable {
			t.Fatalf("GET kv/%s after the restart: %s", kvKey, detail)
		}
		return false, detail
	})
	t.Logf("kv/%s served again %v after the restart (%v after the kill)", kvKey,
		time.Since(restart).Round(time.Millisecond), time.Since(kill).Round(time.Millisecond))
	switch {
	case got == final:
	case doubt[got]:
		t.Logf("kv/%s = %q: a put whose outcome was unknown at the kill (last acknowledged %q)", kvKey, got, final)
	default:
		t.Errorf("kv/%s = %q after the owner returned, last acknowledged %q (in doubt: %v): an acknowledged write lost", kvKey, got, final, doubt)
	}
	for _, n := range c.nodes {
		if r, err := kvGet(n, kvKey, "balance"); err != nil || string(r.Body) != got {
			t.Errorf("GET kv/%s through %s: %v %v, want %q", kvKey, n.HTTPAddr, r, err, got)
		}
	}
	c.waitStable(60*time.Second, c.ids...)
	verifyWrites(t, b, h)
}

// pause waits d or until stop is closed (pacing a load loop).
func pause(stop <-chan struct{}, d time.Duration) {
	select {
	case <-stop:
	case <-time.After(d):
	}
}

var closeMu sync.Mutex

func closeOnce(c chan struct{}) {
	closeMu.Lock()
	defer closeMu.Unlock()
	if !isClosed(c) {
		close(c)
	}
}
