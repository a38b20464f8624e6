//go:build chaos

package chaos

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	failoverRuns   = flag.Int("chaos.failover-runs", 0, "TestSIGKILLFailoverRuns: SIGKILLs to time (0: skip)")
	failoverReport = flag.String("chaos.report", "", "TestSIGKILLFailoverRuns: write a markdown report here")
)

// TestSIGKILLFailoverRuns times, over -chaos.failover-runs real SIGKILLs
// of a container, how long a reset partition of the killed node takes to
// be served again by a survivor (SIGKILL → a write through a survivor
// succeeds on the new owner). Each run kills the owner of a fresh key (the
// owner is whichever node the key hashes to, so the directory stream's
// leader is killed in some runs and not in others), then starts it again
// and waits for a stable cluster. It measures; it asserts only that every
// run fails over. `make chaos-failover` writes docs/BENCHMARKS-chaos.md.
func TestSIGKILLFailoverRuns(t *testing.T) {
	if *failoverRuns <= 0 {
		t.Skip("set -chaos.failover-runs N (make chaos-failover)")
	}
	c := startCluster(t)
	var times []time.Duration
	var rows []string
	for run := range *failoverRuns {
		victim := run % nodes
		via := (victim + 1) % nodes
		key, w := c.keyOwnedBy("kvreset", fmt.Sprintf("fo%d-", run), victim)
		c.mustPut(via, "kvreset", key, "before")
		docker(t, "kill", "--signal", "KILL", c.container(c.ids[victim]))
		killed := time.Now()
		c.waitFor(90*time.Second, "a survivor to serve the killed node's reset partition", func() error {
			if err := c.movedOn(via, "kvreset", key, victim, w.Epoch); err != nil {
				return err
			}
			return c.tryPut(via, "kvreset", key, "after")
		})
		d := time.Since(killed)
		if os.Getenv("CHAOS_DEBUG") != "" {
			out, _ := dockerErr("logs", "--since", "40s", c.container(c.ids[via]))
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "WARN") || strings.Contains(l, "ERROR") || strings.Contains(l, "leader") {
					t.Log(l[:min(len(l), 300)])
				}
			}
		}
		times = append(times, d)
		rows = append(rows, fmt.Sprintf("| %d | %s | %d | %.2f s |", run+1, c.ids[victim], w.Partition, d.Seconds()))
		t.Logf("run %d: killed %s (partition %d): served again after %v", run+1, c.ids[victim], w.Partition, d.Round(time.Millisecond))
		docker(t, "start", c.container(c.ids[victim]))
		c.waitReady(victim, 120*time.Second)
		c.waitStable()
	}
	sorted := slices.Clone(times)
	slices.Sort(sorted)
	pct := func(p float64) time.Duration { return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))] }
	ttlEps := leaseTTL + leaseEpsilon // what a failover is expected near
	ratio := func(d time.Duration) float64 { return d.Seconds() / ttlEps.Seconds() }
	summary := fmt.Sprintf("%d runs: p50 %.2f s, p90 %.2f s, max %.2f s; against lease TTL + ε = %.2f s: p50 %.2f×, p90 %.2f×, max %.2f×",
		len(times), pct(0.5).Seconds(), pct(0.9).Seconds(), sorted[len(sorted)-1].Seconds(), ttlEps.Seconds(),
		ratio(pct(0.5)), ratio(pct(0.9)), ratio(sorted[len(sorted)-1]))
	t.Log(summary)
	if *failoverReport == "" {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Failover after a real SIGKILL (test/chaos)\n\n")
	fmt.Fprintf(&b, "Written by `make chaos-failover` (`go test -tags chaos -run TestSIGKILLFailoverRuns -chaos.failover-runs %d -chaos.report docs/BENCHMARKS-chaos.md ./test/chaos/`) on %s UTC. Nothing here is a test threshold.\n\n",
		*failoverRuns, time.Now().UTC().Format("2006-01-02 15:04"))
	fmt.Fprintf(&b, "Three holdfast containers (images FROM scratch from the static binary) on a private Docker network on one 2-CPU machine; lease TTL %v, ε %v, renewal every 500 ms. Each run kills (`docker kill --signal KILL`) the owner of a key of a `kvreset` namespace (`on_owner_loss: reset`) and times SIGKILL → a survivor shows a new owner at a higher epoch and a write through it succeeds; then the node is started again on its disk and the cluster left to settle. Unlike the in-process crash of docs/BENCHMARKS-cluster.md (figure 3), whose embedded NATS server shuts down in order and hands its raft leaderships over, a SIGKILL of the node leading the directory's JetStream stream leaves the survivors to elect a new leader (nats-server's election timeout: 4-9 s, not configurable), during which their renewals, and so their countdowns, wait.\n\n", leaseTTL, leaseEpsilon)
	fmt.Fprintf(&b, "**%s**\n\n| run | killed | partition | SIGKILL → served again |\n|---|---|---|---|\n%s\n", summary, strings.Join(rows, "\n"))
	if err := os.WriteFile(*failoverReport, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
