package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	neg := v < 0
	n := int64(math.Round(math.Abs(v)))
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func ratio(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "—"
	case v >= 10:
		return fmt.Sprintf("%.1f×", v)
	default:
		return fmt.Sprintf("%.2f×", v)
	}
}

func dur(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
}

func div(a, b time.Duration) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func (r *report) command() string {
	cmd := "go run ./test/cmd/clusterbench"
	if len(r.args) > 0 {
		cmd += " " + strings.Join(r.args, " ")
	} else {
		cmd += " -out " + r.o.out
	}
	return cmd
}

func (r *report) markdown() string {
	var b strings.Builder
	o := r.o
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# holdfast cluster benchmarks\n\n")
	p("Written by `make bench-cluster`, i.e.\n\n```\n%s\n```\n\n", r.command())
	p("on %s, in %s. Every figure is set against a baseline measured **in the same run**, as a ratio; "+
		"no figure is a pass/fail threshold. The requirements are issue 4's Performance section; the single-node figures are in [BENCHMARKS.md](BENCHMARKS.md).\n\n",
		r.started.UTC().Format("2006-01-02 15:04 UTC"), r.finished.Sub(r.started).Round(time.Second))
	m := r.machine
	p("| machine | |\n|---|---|\n")
	p("| CPUs (nproc) | %d |\n| CPU model | %s |\n| Go | %s |\n| kernel | %s |\n| commit | %s |\n", m.nproc, m.cpu, m.goVersion, m.kernel, m.commit)
	p("| load average (1, 5, 15 min) at start / end | %s / %s |\n\n", m.loadStart, m.loadEnd)
	p("**Setup.** Every node runs in this one process (test/harness): real embedded NATS with JetStream (`sync_interval: always`), "+
		"real memberlist gossip over loopback UDP/TCP, real gRPC between nodes (insecure: no TLS), real bbolt files in a temporary directory. "+
		"The load generator runs in the same process, so callers and all nodes share the %d CPUs: absolute figures are bounded by the machine, and a "+
		"forwarded call pays for both nodes' work on the same cores. %d partitions per placement group (%d ownership partitions); "+
		"lease TTL %v, ε %v, renewal every %v (short leases keep the failover runs quick; production default TTL is 15 s). "+
		"The `ratelimit` namespace is `memory` durability with one namespace-default bucket far above the load (every take is allowed), "+
		"so the figures measure routing, not fsync; `kv` keeps its default (`local`). Takes carry no request ID. "+
		"Each load run: %v warm-up, then %v measured; closed loop (each caller sends its next call when the last returns); "+
		"latencies are of successful calls, nearest-rank percentiles.\n\n",
		m.nproc, o.partitions, 2*o.partitions, o.ttl, o.epsilon, o.renew, o.warmup, o.window)

	r.summary(&b)
	r.forwardDetails(&b)
	r.handoffDetails(&b)
	r.failoverDetails(&b)
	r.throughputDetails(&b)
	r.interpretation(&b)
	return b.String()
}

func (r *report) fwd(op string, callers int) *fwdRow {
	for i := range r.forward {
		if strings.HasPrefix(r.forward[i].Op, op) && r.forward[i].Callers == callers {
			return &r.forward[i]
		}
	}
	return nil
}

func (r *report) singleMid() (float64, string) {
	if len(r.single) == 0 {
		return math.NaN(), ""
	}
	var v []float64
	var parts []string
	for _, s := range r.single {
		v = append(v, s.PerSec())
		parts = append(parts, num(s.PerSec()))
	}
	return median(v), strings.Join(parts, " / ")
}

func (r *report) failoverStats() (p50, p99, mx time.Duration, s []time.Duration) {
	for _, f := range r.failover {
		s = append(s, f.Failover)
	}
	s = sortedDur(s)
	if len(s) == 0 {
		return
	}
	return pct(s, 0.5), pct(s, 0.99), s[len(s)-1], s
}

func (r *report) summary(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Summary\n\n| # | figure | result | baseline (same run) | ratio |\n|---|---|---|---|---|\n")
	for _, op := range []string{"kv get", "ratelimit take"} {
		for _, c := range []int{1, 64} {
			if f := r.fwd(op, c); f != nil {
				p("| 1 | %s, %d caller(s): forwarded through a non-owner | p50 %s, p99 %s, %s calls/s | owner's router (in-process): p50 %s, p99 %s, %s calls/s | p50 %s, p99 %s, throughput %s |\n",
					op, c, dur(f.Fwd.P50()), dur(f.Fwd.P99()), num(f.Fwd.PerSec()), dur(f.Local.P50()), dur(f.Local.P99()), num(f.Local.PerSec()),
					ratio(div(f.Fwd.P50(), f.Local.P50())), ratio(div(f.Fwd.P99(), f.Local.P99())), ratio(f.Fwd.PerSec()/f.Local.PerSec()))
			}
		}
	}
	if f1, f64 := r.fwd("ratelimit take", 1), r.fwd("ratelimit take", 64); f1 != nil && f64 != nil {
		p("| 1 | batching: 64 concurrent forwarded callers (ratelimit take) | %s calls/s | 1 forwarded caller: %s calls/s | %s (the same for in-process calls: %s) |\n",
			num(f64.Fwd.PerSec()), num(f1.Fwd.PerSec()), ratio(f64.Fwd.PerSec()/f1.Fwd.PerSec()), ratio(f64.Local.PerSec()/f1.Local.PerSec()))
	}
	if h := r.handoff; h != nil {
		p("| 2 | pause per moved partition while a 4th node joins under load (longest call started during the join, per partition; %d of %d partitions moved, %d sampled) | p50 %s, p99 %s | partitions that did not move, same window (%d sampled): p50 %s, p99 %s | p50 %s, p99 %s |\n",
			h.Moved, h.Partitions, h.MovedSampled, dur(pct(h.MovedMax, 0.5)), dur(pct(h.MovedMax, 0.99)), h.StayedSampled, dur(pct(h.StayedMax, 0.5)), dur(pct(h.StayedMax, 0.99)),
			ratio(div(pct(h.MovedMax, 0.5), pct(h.StayedMax, 0.5))), ratio(div(pct(h.MovedMax, 0.99), pct(h.StayedMax, 0.99))))
		p("| 2 | time to rebalance all partitions (Add called → every member sees every partition on its desired owner) | %s | lease TTL: %s | %s |\n",
			dur(h.Rebalance), dur(r.o.ttl), ratio(div(h.Rebalance, r.o.ttl)))
		p("| 2 | calls failed during the join | %d of %d | — | — |\n", h.JoinErrors, h.JoinCalls)
	}
	if p50, p99, mx, s := r.failoverStats(); len(s) > 0 {
		te := r.o.ttl + r.o.epsilon
		p("| 3 | failover after an in-process crash of the owner (%d runs): crash → a take on the key succeeds through a survivor | p50 %s, p99 %s, max %s | TTL + ε = %s | p50 %s, p99 %s, max %s |\n",
			len(s), dur(p50), dur(p99), dur(mx), dur(te), ratio(div(p50, te)), ratio(div(p99, te)), ratio(div(mx, te)))
	}
	if r.cluster != nil && len(r.single) > 0 {
		mid, all := r.singleMid()
		p("| 4 | ratelimit checks/s through every node of a 3-node cluster (%d callers spread over the nodes, %s keys) | %s checks/s, p50 %s, p99 %s | one non-clustered node, same load: %s checks/s (before / after the cluster: %s) | %s |\n",
			r.o.callers, num(float64(r.o.keys)), num(r.cluster.PerSec()), dur(r.cluster.P50()), dur(r.cluster.P99()), num(mid), all, ratio(r.cluster.PerSec()/mid))
	}
	for _, e := range []struct {
		what string
		err  error
	}{{"1 (forward)", r.forwardErr}, {"2 (handoff)", r.handoffErr}, {"3 (failover)", r.failoverErr}, {"4 (cluster checks/s)", r.clusterErr}, {"4 (single node)", r.singleErr}} {
		if e.err != nil {
			p("| %s | **failed** | %s | | |\n", e.what, oneLine(e.err.Error()))
		}
	}
	p("\n")
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func (r *report) forwardDetails(b *strings.Builder) {
	if len(r.forward) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## 1. Forwarded call vs local call, loopback\n\n")
	p("3-node cluster (stable in %s). The keys all belong to node-1. *Local*: the call enters node-1's cluster router, which finds itself the owner and runs it in-process. "+
		"*Forwarded*: the same call enters node-2's router, which sends it over gRPC to node-1 (the peer pool batches calls to one peer Nagle-style: "+
		"alone when nothing is in flight, else together when the in-flight batch returns or the 200 µs window ends). Caller *j* uses key *j* (no two callers share an actor). "+
		"The two sides run one after the other at each level, alternating which goes first.\n\n", dur(r.clusterStart))
	p("| operation | callers | local p50 | local p99 | local calls/s | forwarded p50 | forwarded p99 | forwarded calls/s | ratio p50 (fwd/local) | ratio p99 | ratio calls/s | errors (local / fwd) |\n")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range r.forward {
		p("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d / %d |\n", f.Op, f.Callers,
			dur(f.Local.P50()), dur(f.Local.P99()), num(f.Local.PerSec()), dur(f.Fwd.P50()), dur(f.Fwd.P99()), num(f.Fwd.PerSec()),
			ratio(div(f.Fwd.P50(), f.Local.P50())), ratio(div(f.Fwd.P99(), f.Local.P99())), ratio(f.Fwd.PerSec()/f.Local.PerSec()), f.Local.Errors, f.Fwd.Errors)
	}
	p("\nBatching effect (throughput at 64 concurrent callers ÷ at 1 caller):\n\n| operation | forwarded 64/1 | local 64/1 |\n|---|---|---|\n")
	for _, op := range []string{"kv get", "ratelimit take"} {
		if f1, f64 := r.fwd(op, 1), r.fwd(op, 64); f1 != nil && f64 != nil {
			p("| %s | %s | %s |\n", op, ratio(f64.Fwd.PerSec()/f1.Fwd.PerSec()), ratio(f64.Local.PerSec()/f1.Local.PerSec()))
		}
	}
	p("\nOn %d cores, 64 callers cannot run 64× faster than 1 whatever the transport: the forwarded ratio is read against the local one. "+
		"The number of calls per CallBatch RPC is not exported by cluster/peer, so the batch size itself is not reported.\n\n", r.machine.nproc)
	for _, f := range r.forward {
		if f.Local.FirstErr != "" || f.Fwd.FirstErr != "" {
			p("First error (%s, %d callers): local `%s`, forwarded `%s`\n\n", f.Op, f.Callers, oneLine(f.Local.FirstErr), oneLine(f.Fwd.FirstErr))
		}
	}
}

func (r *report) handoffDetails(b *strings.Builder) {
	h := r.handoff
	if h == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## 2. Handoff while a 4th node joins under load\n\n")
	p("The same 3-node cluster; %d callers through node-1..3 (never the new node), half on %s `kv` keys (`local`, 100-byte values written first; alternating get and put), "+
		"half on %s `ratelimit` keys (take). After the warm-up and a %v window before the join (the latency baseline), `harness.Add` starts node-4 and "+
		"the load runs on until `WaitStable` (every member serving, every partition owned by its desired owner in every member's view; polled every 20 ms).\n\n",
		h.Callers, num(float64(h.KVKeys)), num(float64(h.RLKeys)), r.o.window)
	p("*Pause per partition* is measured from the client side: for each partition, the longest call that started between `Add` and a stable ring. " +
		"A call on a moving partition waits while the old owner holds it (or is answered NOT_OWNER and retried on the new owner); the same statistic on " +
		"the partitions that did not move, over the same window, is the baseline (it includes the join's CPU cost: starting node-4 shares the same cores). " +
		"A partition that no call hit during its hold shows no pause: with these callers a partition is hit every few milliseconds, so pauses shorter than that are under-sampled.\n\n")
	p("| | value |\n|---|---|\n")
	p("| ownership partitions moved to node-4 / stayed | %d / %d |\n", h.Moved, h.Stayed)
	p("| pause per moved partition (%d sampled): p50 / p99 / max | %s / %s / %s |\n", h.MovedSampled, dur(pct(h.MovedMax, 0.5)), dur(pct(h.MovedMax, 0.99)), dur(pct(h.MovedMax, 1)))
	p("| same statistic, partitions that stayed (%d sampled): p50 / p99 / max | %s / %s / %s |\n", h.StayedSampled, dur(pct(h.StayedMax, 0.5)), dur(pct(h.StayedMax, 0.99)), dur(pct(h.StayedMax, 1)))
	p("| extra pause on moved partitions (moved − stayed): p50 / p99 | %s / %s |\n", dur(pct(h.MovedMax, 0.5)-pct(h.StayedMax, 0.5)), dur(pct(h.MovedMax, 0.99)-pct(h.StayedMax, 0.99)))
	p("| all calls before the join (%s calls): p50 / p99 | %s / %s |\n", num(float64(h.PreCalls)), dur(h.PreP50), dur(h.PreP99))
	p("| all calls during the join (%s calls): p50 / p99 | %s / %s |\n", num(float64(h.JoinCalls)), dur(h.JoinP50), dur(h.JoinP99))
	p("| calls on moved partitions during the join: p50 / p99 | %s / %s |\n", dur(h.JoinMovedP50), dur(h.JoinMovedP99))
	p("| calls failed during the join | %d |\n", h.JoinErrors)
	p("| `Add` (node-4's Start returns) | %s |\n", dur(h.AddTook))
	p("| `Add` called → node-4 serves its first / last moved partition (%d serve records) | %s / %s |\n", h.ServedN, dur(h.ServedFirst), dur(h.ServedLast))
	p("| **time to rebalance**: `Add` called → stable ring | **%s** |\n\n", dur(h.Rebalance))
	if h.FirstErr != "" {
		p("First error: `%s`\n\n", oneLine(h.FirstErr))
	}
	if len(h.Warnings) > 0 {
		p("Warnings and errors logged by the nodes during the join:\n\n")
		for _, k := range sortedKeys(h.Warnings) {
			p("- %s × %d\n", k, h.Warnings[k])
		}
		p("\n")
	}
	p("**Not measured: the server-side pause (old owner's Hold → new owner's Serve) per partition.** The driver logs the new owner's `serving partition` (Debug, used above for the serve times) " +
		"but nothing when `ownership.Hold`, `ReleaseHeld` or `Resume` is executed (cluster/node.go `exec`). The hook needed, for the lead: a Debug record " +
		"(`holding partition`, `released held partition`, with partition and handoff ID) in those three cases, or a `cluster.Config.OnHandoff func(HandoffEvent)` " +
		"callback with the timestamps of hold, transfer acked, compare-and-set done and serve. No cluster code was changed for this report.\n\n")
}

func (r *report) failoverDetails(b *strings.Builder) {
	if len(r.failover) == 0 && r.failoverErr == nil {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	te := r.o.ttl + r.o.epsilon
	p("## 3. Failover after a crash\n\n")
	p("A fresh 3-node cluster (stable in %s), lease TTL %v, ε %v, renewal every %v. Each run: pick a fresh `ratelimit` key owned by node-3 (on_owner_loss `reset`), "+
		"take once, then `harness.Crash(node-3)` and probe takes on that key through a survivor (alternately node-1 and node-2; 1 s deadline per probe, 5 ms between probes) until one succeeds; "+
		"then `Restart(node-3)` on its data directory and wait for a stable ring (node-3 takes its partitions back by handoff) before the next run.\n\n",
		dur(r.failoverUp), r.o.ttl, r.o.epsilon, r.o.renew)
	p("**In-process Crash is not a SIGKILL.** `Node.Crash` cancels the node, shuts memberlist down without a leave, stops the embedded NATS server and the gRPC server and commits queued writes; " +
		"the sockets close at once, as the kernel would close a killed process's sockets on the same host, but the process (and its Go runtime) lives on. " +
		"A machine that vanishes (power, network partition) sends no RST: peers then also wait for gRPC and gossip timeouts — " +
		"which does not change the lease arithmetic below (revocation waits TTL + ε of successful renewals either way), only the errors seen meanwhile. " +
		"The test/e2e suite kills real processes.\n\n")
	if p50, p99, mx, s := r.failoverStats(); len(s) > 0 {
		p("| | p50 | p99 | max | min |\n|---|---|---|---|---|\n")
		p("| crash → first successful take through a survivor | %s | %s | %s | %s |\n", dur(p50), dur(p99), dur(mx), dur(s[0]))
		p("| ratio to TTL + ε (%s) | %s | %s | %s | %s |\n", dur(te), ratio(div(p50, te)), ratio(div(p99, te)), ratio(div(mx, te)), ratio(div(s[0], te)))
		var claim, crash, rec []time.Duration
		for _, f := range r.failover {
			claim = append(claim, f.ClaimSeen)
			crash = append(crash, f.CrashTook)
			rec = append(rec, f.Recover)
		}
		claim, crash, rec = sortedDur(claim), sortedDur(crash), sortedDur(rec)
		p("| crash → the survivor's directory copy names a new owner | %s | %s | %s | %s |\n", dur(pct(claim, 0.5)), dur(pct(claim, 0.99)), dur(pct(claim, 1)), dur(claim[0]))
		p("| the `Crash` call itself (included above) | %s | %s | %s | %s |\n", dur(pct(crash, 0.5)), dur(pct(crash, 0.99)), dur(pct(crash, 1)), dur(crash[0]))
		p("| `Restart` → stable ring again (not part of failover) | %s | %s | %s | %s |\n\n", dur(pct(rec, 0.5)), dur(pct(rec, 0.99)), dur(pct(rec, 1)), dur(rec[0]))
		p("Expected: the survivors revoke the lease TTL + ε after its last renewal seen, which happened up to one renewal interval (%v) before the crash, "+
			"then the desired owner claims epoch+1 (a compare-and-set in JetStream) and serves; so roughly [TTL + ε − %v, TTL + ε] plus the claim, the watch and the probe interval.\n\n", r.o.renew, r.o.renew)
		p("Per run:\n\n| run | failover | claim seen | probes | probe errors |\n|---|---|---|---|---|\n")
		for i, f := range r.failover {
			var errs []string
			for _, k := range sortedKeys(f.ProbeErrors) {
				errs = append(errs, fmt.Sprintf("%s × %d", k, f.ProbeErrors[k]))
			}
			p("| %d | %s | %s | %d | %s |\n", i+1, dur(f.Failover), dur(f.ClaimSeen), f.Probes, oneLine(strings.Join(errs, "; ")))
		}
		p("\n")
	}
	if r.failoverErr != nil {
		p("**Failed** after %d runs: %s\n\n", len(r.failover), oneLine(r.failoverErr.Error()))
	}
}

func (r *report) throughputDetails(b *strings.Builder) {
	if r.cluster == nil && len(r.single) == 0 {
		return
	}
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## 4. Ratelimit checks/s through every node of a 3-node cluster\n\n")
	p("%d callers, caller *j* calling through node *j mod 3*, each take on a key drawn uniformly from %s keys (every key touched once before; so about two calls in three are forwarded). "+
		"Baseline: the same callers and keys on one non-clustered node (`cluster.enabled: false`; its caller is the runtime), run once before the cluster starts and once after it stops.\n\n",
		r.o.callers, num(float64(r.o.keys)))
	p("| run | checks/s | p50 | p99 | errors |\n|---|---|---|---|---|\n")
	for i, s := range r.single {
		when := "before"
		if i == 1 || len(r.single) == 1 && r.cluster == nil {
			when = "after"
		}
		p("| one node (%s the cluster) | %s | %s | %s | %d |\n", when, num(s.PerSec()), dur(s.P50()), dur(s.P99()), s.Errors)
	}
	if c := r.cluster; c != nil {
		p("| 3-node cluster, through every node | %s | %s | %s | %d |\n", num(c.PerSec()), dur(c.P50()), dur(c.P99()), c.Errors)
		if mid, _ := r.singleMid(); !math.IsNaN(mid) {
			p("| **ratio cluster / one node (median of the baseline runs)** | **%s** | | | |\n", ratio(c.PerSec()/mid))
		}
	}
	p("\nAll three nodes run in one process on the same %d cores as the callers: this measures what routing and forwarding cost, not what three machines would add.\n\n", r.machine.nproc)
}

func (r *report) interpretation(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Interpretation\n\n")
	var s []string
	if f1, f64 := r.fwd("kv get", 1), r.fwd("kv get", 64); f1 != nil && f64 != nil {
		s = append(s, fmt.Sprintf("A forwarded call costs one loopback gRPC round trip plus the work of two nodes on the same cores: "+
			"with one caller a forwarded kv get takes %s at p50 against %s in-process (%s), and at 64 callers forwarded throughput is %s of local (%s vs %s calls/s), "+
			"so on this machine forwarding is CPU-bound, not latency-bound.",
			dur(f1.Fwd.P50()), dur(f1.Local.P50()), ratio(div(f1.Fwd.P50(), f1.Local.P50())), ratio(f64.Fwd.PerSec()/f64.Local.PerSec()), num(f64.Fwd.PerSec()), num(f64.Local.PerSec())))
	}
	if f1, f64 := r.fwd("ratelimit take", 1), r.fwd("ratelimit take", 64); f1 != nil && f64 != nil {
		s = append(s, fmt.Sprintf("Concurrency helps forwarded calls more than local ones (ratelimit take: 64 callers give %s the single-caller throughput forwarded, %s local), which is what the peer pool's batching is for; "+
			"with %d cores the ceiling is CPU, and the batch size itself is not observable from outside the peer package.",
			ratio(f64.Fwd.PerSec()/f1.Fwd.PerSec()), ratio(f64.Local.PerSec()/f1.Local.PerSec()), r.machine.nproc))
	}
	if h := r.handoff; h != nil {
		s = append(s, fmt.Sprintf("During the join %d of %d partitions moved and %d of %d calls failed; the longest call per moved partition was %s at p50 and %s at p99 against %s and %s on partitions that stayed, "+
			"and the whole rebalance took %s from Add — the client-side view only, since the server-side hold→serve interval needs a hook the cluster package does not have yet.",
			h.Moved, h.Partitions, h.JoinErrors, h.JoinCalls, dur(pct(h.MovedMax, 0.5)), dur(pct(h.MovedMax, 0.99)), dur(pct(h.StayedMax, 0.5)), dur(pct(h.StayedMax, 0.99)), dur(h.Rebalance)))
	}
	if p50, _, mx, ss := r.failoverStats(); len(ss) > 0 {
		te := r.o.ttl + r.o.epsilon
		s = append(s, fmt.Sprintf("Failover tracks the lease as designed: p50 %s (%s of TTL + ε), max %s (%s) over %d runs with a %v lease; with the production TTL of 15 s expect about 15 s plus ε — "+
			"that wait, not the claim, is the cost of never having two owners, and a drain (no crash) avoids it.",
			dur(p50), ratio(div(p50, te)), dur(mx), ratio(div(mx, te)), len(ss), r.o.ttl))
	}
	if c := r.cluster; c != nil && len(r.single) > 0 {
		mid, _ := r.singleMid()
		s = append(s, fmt.Sprintf("Three nodes on one %d-core machine give %s the checks/s of one node (%s vs %s): two calls in three pay a forward, and the nodes' background work (gossip, lease renewals, JetStream) "+
			"competes for the same cores, so this figure bounds the routing overhead; it says nothing about scaling out across machines, which this run cannot measure.",
			r.machine.nproc, ratio(c.PerSec()/mid), num(c.PerSec()), num(mid)))
	}
	if len(s) == 0 {
		s = append(s, "No figure completed; see the failures above.")
	}
	p("%s\n", strings.Join(s, " "))
}
