package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// turnUS prints a turn quantile; at the histogram's top finite bucket
// (10µs×2.5¹³ ≈ 1.49 s) it is only a lower bound.
func turnUS(s float64) string {
	if s >= 1.49 {
		return "≥" + us(s)
	}
	return us(s)
}

func yes(b bool) string {
	if b {
		return "**yes**"
	}
	return "**no**"
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			return strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
		}
	}
	return "?"
}

func sh(name string, args ...string) string {
	b, _ := exec.Command(name, args...).Output()
	return strings.TrimSpace(string(b))
}

func ceiling(rows []ceilRow) ceilRow {
	var b ceilRow
	for _, r := range rows {
		if r.res.Rate > b.res.Rate {
			b = r
		}
	}
	return b
}

func report(runs []*run, rates []float64, took time.Duration) string {
	var w strings.Builder
	p := func(f string, a ...any) { fmt.Fprintf(&w, f, a...) }
	ncpu := float64(runtime.NumCPU())
	r0 := runs[0]
	p("# holdfast gateway benchmarks (issue 3, performance)\n\n")
	p("Written by `go run ./test/cmd/gatewaybench -out docs/BENCHMARKS-gateway.md` on %s, in %s, %d complete runs (the machine is shared with other engineers' test runs; each run is reported, compare them). Baselines are measured **in the same run**, against the **same** upstream, phases back to back. Nothing here is a test.\n\n",
		r0.start.UTC().Format("2006-01-02 15:04 UTC"), took.Round(time.Second), len(runs))
	p("| machine | |\n|---|---|\n")
	p("| CPUs (nproc) | %d |\n| CPU model | %s |\n| Go | %s |\n| kernel | %s |\n| nginx | %s (worker_processes 1, `daemon off; master_process off;`, one process) |\n| RLIMIT_NOFILE (raised to hard) | %d |\n| ratelimit / account durability | local / local (defaults) |\n", runtime.NumCPU(), cpuModel(), runtime.Version(), sh("uname", "-r"), r0.nginxVer, r0.rlimit)
	for i, r := range runs {
		p("| run %d load average (1, 5, 15 min) start / end | %s / %s |\n", i+1, r.load0, r.load1)
	}
	p("\n**Set-up.** Four processes on loopback. *Upstream*: a dedicated child process (not `fakeupstream` itself: it records every request body in memory and would share the node's 20,000-descriptor limit) serving one Anthropic stream **captured from fakeupstream at start-up** (%d SSE events, %d bytes): `message_start` written and flushed alone (the first byte), the rest in one write; on `/hold/...` it stalls after `message_start` until released. Its time to first token (the wait before `message_start`, `-upstream-ttft`): **%s**. *holdfast*: this process, `holdfast.NewNode` with the default config in a temporary data dir (ratelimit/account `local` durability, group commit), `gateway.auth: none` (every call: one admit turn on the single user's account actor. On the path **holdfast** the user has no limits: the admit reads the user's settings, takes nothing and writes nothing, and its reply waits for no commit (it gates on what it read, `actor.Turn.GateOnReads`, not on the settles still committing). On the path **holdfast-limits**, the same node a phase later, the user has every limit set (%d requests/min, %d input and output tokens/min, a $1M daily budget: never reached): the admit takes from its buckets, a write, and the request goes upstream while that turn commits (`gateway.speculative_upstream`, the default); no byte reaches the client before the commit, so the group commit is on the path to the first byte, unless the provider is slow to its first byte: once its first bytes have all taken at least twice `runtime.commit_defer` (20 ms) for 10 s, `gateway.defer_admit_commits` (default on) defers each admit's commit, to share one with the other admits and settles of up to `commit_defer`, started at the latest when the answer begins (so with `-upstream-ttft 20ms` the commits are shared; with no time to first token they are not). Settles in the background, those of calls that finish within `gateway.settle_linger` (5 ms) or while a settle turn is in flight together in one turn, whose commit is deferred (`runtime.commit_defer`) to ride along in the next admit's), a provider `type: anthropic` with `base_url` = the upstream (plain `http://`: `gateway.upstream_client: auto` sends it through holdfast's own HTTP/1.1 client, `gateway/h1`, which does the round trip on the call's goroutine), key from `GATEWAYBENCH_UPSTREAM_KEY`; its per-call log line goes to a file.%s *nginx*: `proxy_buffering off; proxy_http_version 1.1; proxy_set_header Connection \"\";`, upstream `keepalive 256`, access and error log to files in the temp dir. *Load generator*: a child process (Go net/http, keep-alive); request `claude-sonnet-4-5`, `stream: true`. \n\n", r0.events, r0.bodyBytes, ttftLabel(), benchLimits.GetRequestsPerMinute(), benchLimits.GetInputTokensPerMinute(), overridesLabel())
	p("**TTFB** is measured from each stream's *scheduled* start (open loop: a fixed arrival schedule, 1 s warm-up then %s measured per phase; nothing waits for earlier answers, so a queueing proxy is not hidden) to the first response body byte. *Added TTFB* = proxy TTFB − direct TTFB at the same percentile and rate, same run. **Turn** = p50 of `holdfast_turn_seconds{namespace=\"account\"}` over the same phase from `/metrics` (histogram buckets 10µs×2.5ⁿ, interpolated: coarse), i.e. the admit turn including its group commit (plus the settle turns, which wait for the next admit's commit to ride along in; an admit sent upstream early counts until its gate was waited on, so with `speculative_upstream` it shows little of the commit); *fsync* = p50 of `holdfast_fsync_seconds` (one bbolt commit with its fdatasyncs) over the same phase; *commit wait* = p50 of `holdfast_commit_wait_seconds`, the time from a turn's write being queued to its being durable (the rest of the commit in flight, then its own: the group-commit latency a writing turn waits; deferred settles are not counted), with how many writes it counts. The goal reads: added TTFB p50 ≤ commit wait p50 + 100µs (the group-commit latency of the admit turn), and ≤ 1.2× what nginx adds. On the holdfast path no admit writes, so the commit wait counts only other writes (the settles' commits do not count, being deferred; a phase with no urgent write shows 0).\n\n", *flagDur)

	// Summary
	p("## Summary\n\n")
	p("| figure | run | holdfast | nginx (baseline) | ratio holdfast/nginx | goal | met |\n|---|---|---|---|---|---|---|\n")
	for _, hn := range []string{"holdfast", "holdfast-limits"} {
		for _, rate := range rates {
			for i, r := range runs {
				d, h, n := r.open["direct"][rate].res, r.open[hn][rate], r.open["nginx"][rate].res
				ah50, an50 := h.res.P50-d.P50, n.P50-d.P50
				ah99, an99 := h.res.P99-d.P99, n.P99-d.P99
				goalAbs := ah50 <= h.waitP50+100e-6
				p("| %s: added TTFB p50 @ %.0f/s | %d | %s (commit wait p50 %s, %.0f writes) | %s | %.2f× | ≤ commit wait + 100µs, ≤ 1.2× nginx | abs %s, ratio %s |\n", hn, rate, i+1, us(ah50), us(h.waitP50), h.waitN, us(an50), ah50/an50, yes(goalAbs), yes(ah50 <= 1.2*an50))
				p("| %s: added TTFB p99 @ %.0f/s | %d | %s | %s | %.2f× | ≤ 1.2× nginx | %s |\n", hn, rate, i+1, us(ah99), us(an99), ah99/an99, yes(ah99 <= 1.2*an99))
			}
		}
	}
	for i, r := range runs {
		h, n := r.hold["holdfast"], r.hold["nginx"]
		hp, np := (h.rss1-h.rss0)/float64(max(h.ok, 1)), (n.rss1-n.rss0)/float64(max(n.ok, 1))
		p("| RSS per open stream (%d held) | %d | %.1f KiB | %.1f KiB | %.1f× | ≤ 100 KiB | %s |\n", h.n, i+1, hp, np, hp/np, yes(hp <= 100 && h.ok == h.n))
		p("| CPU per stream set-up (held streams) | %d | %.0f µs | %.0f µs | %.1f× | report | — |\n", i+1, h.setupCPU/float64(max(h.ok, 1))*1e6, n.setupCPU/float64(max(n.ok, 1))*1e6, (h.setupCPU/float64(max(h.ok, 1)))/(n.setupCPU/float64(max(n.ok, 1))))
		cn, cd := ceiling(r.ceil["nginx"]), ceiling(r.ceil["direct"])
		for _, hn := range []string{"holdfast", "holdfast-limits"} {
			ch := ceiling(r.ceil[hn])
			p("| %s: streams/s ceiling (closed loop) | %d | %.0f/s (at %d clients) | %.0f/s (at %d); direct %.0f/s | %.2f× | report | — |\n", hn, i+1, ch.res.Rate, ch.conc, cn.res.Rate, cn.conc, cd.res.Rate, ch.res.Rate/cn.res.Rate)
		}
	}
	p("\n")

	// Per-run details
	for i, r := range runs {
		p("## Run %d (%s, load average %s → %s)\n\n", i+1, r.start.UTC().Format("15:04:05 UTC"), r.load0, r.load1)
		p("### Open loop: time to first byte\n\n")
		p("| offered | path | done | errors | dropped | TTFB p50 | TTFB p99 | added p50 | added p99 | send lag p99 | proxy CPU / stream | proxy CPU share | upstream CPU share | load-gen CPU share | allocs / stream (holdfast process) | turn p50 (account) | fsync p50 | commit wait p50 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, rate := range rates {
			d := r.open["direct"][rate].res
			for _, n := range targets {
				ph := r.open[n][rate]
				x := ph.res
				wall := x.Wall
				pc, pshare := "—", "—"
				var proxyCPU float64
				switch {
				case isHoldfast(n):
					proxyCPU = ph.selfCPU
				case n == "nginx":
					proxyCPU = ph.nginxCPU
				}
				if n != "direct" {
					pc = fmt.Sprintf("%.0f µs", proxyCPU/float64(max(x.Done, 1))*1e6)
					pshare = fmt.Sprintf("%.0f%%", 100*proxyCPU/wall/ncpu)
				}
				added50, added99, allocs, turn, fs, cw := "—", "—", "—", "—", "—", "—"
				if n != "direct" {
					added50, added99 = us(x.P50-d.P50), us(x.P99-d.P99)
				}
				if isHoldfast(n) {
					allocs = fmt.Sprintf("%.0f (%.1f KiB)", float64(ph.mallocs)/float64(max(x.Done, 1)), float64(ph.allocBytes)/float64(max(x.Done, 1))/1024)
					turn, fs = fmt.Sprintf("%s (%.0f turns)", turnUS(ph.turnP50), ph.turnN), us(ph.fsyncP50)
					cw = fmt.Sprintf("%s (%.0f writes)", us(ph.waitP50), ph.waitN)
					if ph.waitN == 0 {
						cw = "none (no urgent write)"
					}
				}
				errs := fmt.Sprint(x.Errors)
				if x.FirstErr != "" {
					errs += fmt.Sprintf(" (`%.80s`)", strings.ReplaceAll(x.FirstErr, "|", "/"))
				}
				p("| %.0f/s | %s | %d | %s | %d | %s | %s | %s | %s | %s | %s | %s | %.0f%% | %.0f%% | %s | %s | %s | %s |\n", rate, n, x.Done, errs, x.Dropped, us(x.P50), us(x.P99), added50, added99, us(x.LagP99), pc, pshare, 100*ph.fakeCPU/wall/ncpu, 100*x.CPU/wall/ncpu, allocs, turn, fs, cw)
			}
		}
		p("\nCPU shares are of the whole machine (%d CPUs) over the phase's wall time (warm-up included). *Send lag* is how late the load generator sent against its schedule (its own saturation).\n\n", runtime.NumCPU())
		p("The account actor under the holdfast phases (every call is one admit and one settle turn on the one user's actor; turns of one actor run one at a time, its commits are grouped): *mailbox depth* is `holdfast_mailbox_depth`, the calls already waiting for the actor when a call arrives (buckets 0, 1, 2, 4, … 1024: coarse); *refused* is `holdfast_overloaded_total`, calls refused because more than `limits.mailbox_depth` (1024) were waiting, which the gateway answers with 529 `overloaded_error` (admit_unavailable); *batch* is `holdfast_commit_batch_writes`, turn writes per bbolt commit; *settles failed* is `holdfast_gateway_failures_total{failure=\"settle_failed\"}`, calls whose usage could not be debited.\n\n")
		p("| offered | path | mailbox depth p50 | p99 | refused (mailbox full) | settles failed | writes per commit p50 |\n|---|---|---|---|---|---|---|\n")
		for _, rate := range rates {
			for _, hn := range []string{"holdfast", "holdfast-limits"} {
				ph := r.open[hn][rate]
				p99 := fmt.Sprintf("%.0f", ph.mailboxP99)
				if ph.mailboxP99 >= 1024 {
					p99 = "≥1024"
				}
				p("| %.0f/s | %s | %.1f | %s | %.0f | %.0f | %.1f |\n", rate, hn, ph.mailboxP50, p99, ph.overloaded, ph.settleFailed, ph.batchP50)
			}
		}
		p("\n")
		p("### Open streams held by the upstream\n\n")
		p("| path | streams open | errors | RSS before → at plateau | RSS per stream | Go heap+stacks per stream | goroutines per stream | set-up: wall, CPU per stream | plateau CPU share (idle streams) | load-gen CPU share during set-up |\n|---|---|---|---|---|---|---|---|---|---|\n")
		for _, n := range []string{"holdfast", "nginx"} {
			h := r.hold[n]
			ok := float64(max(h.ok, 1))
			heap, gor := "—", "—"
			if n == "holdfast" {
				heap = fmt.Sprintf("%.1f KiB", (float64(h.heap1)-float64(h.heap0))/ok/1024)
				gor = fmt.Sprintf("%.1f", float64(h.goroutines1-h.goroutines0)/ok)
			}
			errs := fmt.Sprint(h.errs)
			if h.firstErr != "" {
				errs += fmt.Sprintf(" (`%.80s`)", h.firstErr)
			}
			p("| %s | %d of %d | %s | %.0f → %.0f KiB | **%.1f KiB** | %s | %s | %.1f s, %.0f µs | %.1f%% | %.0f%% |\n", n, h.ok, h.n, errs, h.rss0, h.rss1, (h.rss1-h.rss0)/ok, heap, gor, h.setupWall, h.setupCPU/ok*1e6, 100*h.plateauCPU/h.plateauWall/ncpu, 100*h.lgCPU/h.setupWall/ncpu)
		}
		p("\nholdfast's RSS is this process's (`/proc/self/status` VmRSS; the node, the orchestrator idle; GC'd and returned to the OS before the *before* reading); the upstream and the load generator are other processes. Every held stream is two sockets in holdfast (client, upstream), as in nginx.\n\n")
		writeCensus(p, r)
		if r.path != nil {
			p("### Where holdfast's time to first byte goes (the traced phase: %s)\n\n", r.pathPhase)
			p("From the runtime/trace of the phase (`-trace`), per request on its connection's goroutine. Tracing slows every step, so these are larger than in the untraced phases; the shares are what they show.\n\n")
			var b strings.Builder
			r.path.markdown(&b)
			p("%s\n", b.String())
		}
		p("### Closed loop: streams/s ceiling\n\n| path | clients | streams/s | errors | stream latency p50 | p99 | proxy CPU share | load-gen CPU share |\n|---|---|---|---|---|---|---|---|\n")
		for _, n := range targets {
			for _, c := range r.ceil[n] {
				share := "—"
				if n != "direct" {
					share = fmt.Sprintf("%.0f%%", 100*c.cpu/c.res.Wall/ncpu)
				}
				p("| %s | %d | %.0f | %d | %s | %s | %s | %.0f%% |\n", n, c.conc, c.res.Rate, c.res.Errors, us(c.res.P50b), us(c.res.P99), share, 100*c.lg/c.res.Wall/ncpu)
			}
		}
		p("\n")
	}
	p("Reproduce: `go run ./test/cmd/gatewaybench -out docs/BENCHMARKS-gateway.md` (needs nginx: `apt-get install -y nginx`; flags `-runs`, `-dur`, `-rates`, `-hold`, `-upstream-ttft`; holdfast's settings `-upstream-client`, `-commit-defer`, `-settle-linger`, `-defer-admit-commits`, `-gc-percent`, `-gomaxprocs`; `-syscalls=false` to skip the system-call count; `-cpuprofile FILE`, `-memprofile FILE`, `-trace FILE` with `-cpuprofile-path holdfast|holdfast-limits`; `-h` for all).\n")
	return w.String()
}

// ttftLabel is the fake upstream's time to first token, for the set-up.
func ttftLabel() string {
	if *flagTTFT == 0 {
		return "none (it answers at once: the proxy's own costs are all that differ)"
	}
	return flagTTFT.String() + " (real providers: hundreds of ms)"
}

// overridesLabel names the config flags that changed holdfast's defaults
// for this report (same-run A/B comparisons), or nothing.
func overridesLabel() string {
	var o []string
	if *flagUpClient != "" {
		o = append(o, "`gateway.upstream_client: "+*flagUpClient+"`")
	}
	if *flagDefer >= 0 {
		o = append(o, fmt.Sprintf("`runtime.commit_defer: %v`", *flagDefer))
	}
	if *flagLinger >= 0 {
		o = append(o, fmt.Sprintf("`gateway.settle_linger: %v`", *flagLinger))
	}
	if *flagGC > 0 {
		o = append(o, fmt.Sprintf("`runtime.gc_percent: %d`", *flagGC))
	}
	if *flagProcs > 0 {
		o = append(o, fmt.Sprintf("GOMAXPROCS %d (holdfast only)", *flagProcs))
	}
	if *flagDeferAdm != "" {
		o = append(o, "`gateway.defer_admit_commits: "+*flagDeferAdm+"`")
	}
	if len(o) == 0 {
		return ""
	}
	return " **Not the defaults here:** " + strings.Join(o, ", ") + "."
}

// writeCensus writes the system calls per stream of each proxy, if counted.
func writeCensus(p func(string, ...any), r *run) {
	if r.census == nil {
		return
	}
	p("### System calls per stream\n\n")
	paths := []string{"holdfast", "holdfast-limits", "nginx"}
	for _, n := range paths {
		if c := r.census[n]; c.skipped != "" {
			p("Not counted for %s: %s.\n\n", n, c.skipped)
			return
		}
	}
	p("Counted by `perf trace -s -p PID` (every thread of the proxy's process) over an extra open-loop phase at %.0f streams/s, after the measured ones: perf slows what it traces, so these phases' latencies are not reported. *failed* counts the calls that returned an error: for Go mostly reads answered EAGAIN (Go reads a socket before it waits for it) and holdfast's h1 MSG_PEEK probe of a pooled upstream connection, which answers EAGAIN when the connection is alive.\n\n", r.censusRate)
	p("| system call | holdfast | holdfast-limits | nginx |\n|---|---|---|---|\n")
	row := func(name string, get func(census) (int64, int64)) {
		p("| %s |", name)
		for _, n := range paths {
			c := r.census[n]
			v, e := get(c)
			st := float64(max(c.streams, 1))
			if e > 0 {
				p(" %.2f (%.2f failed) |", float64(v)/st, float64(e)/st)
			} else {
				p(" %.2f |", float64(v)/st)
			}
		}
		p("\n")
	}
	row("**all**", func(c census) (int64, int64) { return c.total() })
	seen := map[string]bool{}
	for _, n := range paths {
		for _, name := range r.census[n].names() {
			if seen[name] {
				continue
			}
			seen[name] = true
			var sum int64
			for _, m := range paths {
				sum += r.census[m].calls[name]
			}
			if sum < r.census[n].streams/100 { // under 0.01 per stream anywhere
				continue
			}
			row(name, func(c census) (int64, int64) { return c.calls[name], c.errs[name] })
		}
	}
	p("\nStreams counted: holdfast %d, holdfast-limits %d, nginx %d.\n\n", r.census["holdfast"].streams, r.census["holdfast-limits"].streams, r.census["nginx"].streams)
}
