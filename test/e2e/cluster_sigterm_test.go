//go:build linux

package e2e

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestClusterSIGTERMDrains stops one of three processes with SIGTERM while
// clients write kv through all three. The node hands every partition off
// before it exits (status 0); calls through the survivors meanwhile pause
// rather than fail: any failure other than a retryable 503 fails the test;
// retryable 503s are logged with their details (the design says a call for
// a moving partition pauses, so any is worth a look); every acknowledged
// write is readable after.
func TestClusterSIGTERMDrains(t *testing.T) {
	skipShort(t)
	t.Parallel()
	_, rng := Seed(t)
	c := startProcCluster(t, 3)
	victimIdx := rng.IntN(3)
	victim, victimID := c.nodes[victimIdx], c.ids[victimIdx]
	var survivors []*Node
	var survivorIDs []string
	for i, n := range c.nodes {
		if i != victimIdx {
			survivors, survivorIDs = append(survivors, n), append(survivorIDs, c.ids[i])
		}
	}
	before, err := c.ring(t, survivors[0])
	if err != nil {
		t.Fatal(err)
	}

	h := newHistory()
	var termSent atomic.Bool
	stop := make(chan struct{})
	viaSurvivor, viaVictim := newTally(), newTally()
	var maxPause atomic.Int64 // longest acknowledged call through a survivor after SIGTERM (ns)
	var next, acks, acksAfterExit atomic.Int64
	var wg sync.WaitGroup
	for w := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodeIdx := w % 3
			n := c.nodes[nodeIdx]
			onVictim := nodeIdx == victimIdx
			for !isClosed(stop) {
				if onVictim && isClosed(victim.Exited()) {
					return
				}
				i := next.Add(1)
				actor := loadActor(int(i))
				key := fmt.Sprintf("term-%06d", i)
				value := fmt.Sprintf("term-%d", i)
				h.attempt(actor, key, value)
				after := termSent.Load()
				exitedBefore := isClosed(victim.Exited())
				start := time.Now()
				r, err := kvPut(n, actor, key, value, "term-"+key)
				took := time.Since(start)
				class, retryable, detail := outcome(r, err)
				if class == "ok" {
					h.ack(actor, key, value)
					acks.Add(1)
					if exitedBefore {
						acksAfterExit.Add(1)
					}
					if after && !onVictim {
						for {
							m := maxPause.Load()
							if int64(took) <= m || maxPause.CompareAndSwap(m, int64(took)) {
								break
							}
						}
					}
					continue
				}
				d := fmt.Sprintf("put %s through %s after %v: %s", key, c.ids[nodeIdx], took.Round(time.Millisecond), detail)
				switch {
				case !after && !termSent.Load():
					viaSurvivor.add("before SIGTERM: "+class, d, true)
				case onVictim:
					// The stopping node's own listeners: a clean refusal is
					// expected once it stops accepting.
					clean := retryable || class == "connection refused"
					viaVictim.add(class, d, !clean)
				default:
					viaSurvivor.add(class, d, true)
				}
				pause(stop, 20*time.Millisecond)
			}
		}()
	}
	defer func() { closeOnce(stop); wg.Wait() }()

	WaitFor(t, 30*time.Second, "writes acknowledged before SIGTERM", func() (bool, string) {
		return acks.Load() >= 300, fmt.Sprintf("%d acknowledged; %v", acks.Load(), viaSurvivor)
	})

	acksAtTerm := acks.Load()
	termSent.Store(true)
	sent := time.Now()
	victim.Term()
	// Watch the ring through a survivor while the node drains: when does
	// it show nothing owned by the node, before or after the exit?
	var handedOff time.Duration
	exitedFirst := false
	WaitFor(t, 60*time.Second, "the ring through "+survivorIDs[0]+" to show no partition owned by "+victimID, func() (bool, string) {
		exited := isClosed(victim.Exited())
		rg, err := c.ring(t, survivors[0])
		if err != nil {
			return false, err.Error()
		}
		if k := rg.ownedBy(victimID); k > 0 {
			return false, fmt.Sprintf("%d partitions owned by %s", k, victimID)
		}
		handedOff, exitedFirst = time.Since(sent), exited
		return true, ""
	})
	code, ok := victim.WaitExit(60 * time.Second)
	if !ok {
		t.Fatalf("%s still running 60s after SIGTERM", victimID)
	}
	exitTook := time.Since(sent)
	if code != 0 {
		t.Errorf("%s exited with status %d %v after SIGTERM, want 0; output:\n%s", victimID, code, exitTook.Round(time.Millisecond), tail(victim.Logs(), 3000))
	}
	for _, n := range survivors {
		WaitFor(t, 10*time.Second, "no partition owned by "+victimID, func() (bool, string) {
			rg, err := c.ring(t, n)
			if err != nil {
				return false, err.Error()
			}
			return rg.ownedBy(victimID) == 0, fmt.Sprintf("%d partitions owned by %s", rg.ownedBy(victimID), victimID)
		})
	}
	t.Logf("SIGTERM to %s (owning %d partitions) after %d acknowledged writes: exit %d after %v; ring through %s showed none owned by it %v after SIGTERM (%s the exit)",
		victimID, before.ownedBy(victimID), acksAtTerm, code, exitTook.Round(time.Millisecond), survivorIDs[0],
		handedOff.Round(time.Millisecond), map[bool]string{true: "after", false: "before"}[exitedFirst])
	if !strings.Contains(victim.Logs(), "drained: this node owns no partition") {
		t.Errorf("%s's log has no \"drained\" line: it exited without handing off every partition:\n%s", victimID, tail(victim.Logs(), 3000))
	}

	// Keep writing through the survivors until they have acknowledged more
	// writes after the exit, then stop and count.
	WaitFor(t, 30*time.Second, "writes acknowledged after the exit", func() (bool, string) {
		return acksAfterExit.Load() >= 100, fmt.Sprintf("%d; %v", acksAfterExit.Load(), viaSurvivor)
	})
	closeOnce(stop)
	wg.Wait()
	c.waitStable(30*time.Second, survivorIDs...)

	t.Logf("outcomes of failed calls through the survivors: %v; through %s: %v; longest acknowledged survivor call after SIGTERM: %v",
		viaSurvivor, victimID, viaVictim, time.Duration(maxPause.Load()).Round(time.Millisecond))
	m, details := viaSurvivor.snapshot()
	retryableFailures := 0
	for k, v := range m {
		if strings.HasPrefix(k, "503") && !strings.Contains(k, "not retryable") {
			retryableFailures += v
		}
	}
	if retryableFailures > 0 {
		t.Logf("NOTE: %d calls through the survivors failed with a retryable 503 while partitions moved (the design says such calls pause); first:\n  %s",
			retryableFailures, strings.Join(details, "\n  "))
	}
	if n := total(m) - retryableFailures; n > 0 {
		t.Errorf("%d calls through the survivors failed otherwise than with a retryable 503 (first %d):\n  %s", n, len(details), strings.Join(details, "\n  "))
	}
	if _, d := viaVictim.snapshot(); len(d) > 0 {
		t.Errorf("calls through the stopping node failed uncleanly (first %d):\n  %s", len(d), strings.Join(d, "\n  "))
	}
	_, acked := h.counts()
	t.Logf("%d writes acknowledged in all", acked)
	verifyWrites(t, survivors[0], h)
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
