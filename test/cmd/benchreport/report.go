package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Goals of issue 2's performance section.
const (
	goalHotTurns      = 1_000_000 // turns/s, one hot actor, memory
	goalGroupCommit   = 20.0      // group commit / commit per turn
	goalVsGubernator  = 2.0       // holdfast memory checks/s / gubernator's
	goalP99Microsecs  = 2000.0    // holdfast memory p99, at a fixed offered rate
	footprintStateB   = 5 + 16    // the footprint actor's key "state" and its value
	footprintIDB      = 1 + 1 + 1 + 13 + 1
	footprintIDString = "f / user-NNNNNNNN"
)

func yesNo(ok bool) string {
	if ok {
		return "**yes**"
	}
	return "**no**"
}

// num renders a figure with thousands separators and sensible precision.
func num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return "n/a"
	case math.Abs(v) >= 1000:
		return group(int64(math.Round(v)))
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func group(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
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
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	if v >= 10 {
		return fmt.Sprintf("%.1f×", v)
	}
	if v >= 0.1 {
		return fmt.Sprintf("%.2f×", v)
	}
	return fmt.Sprintf("%.4f×", v)
}

func ms(us float64) string {
	if us < 1000 {
		return fmt.Sprintf("%.0f µs", us)
	}
	return fmt.Sprintf("%.2f ms", us/1000)
}

type agg struct{ med, lo, hi float64 }

func aggregate(runs []LoadResult, f func(LoadResult) float64) agg {
	var v []float64
	for _, r := range runs {
		v = append(v, f(r))
	}
	lo, hi := minMax(v)
	return agg{median(v), lo, hi}
}

func (a agg) rangeStr() string {
	return fmt.Sprintf("%s (%s–%s)", num(a.med), num(a.lo), num(a.hi))
}

func (s *scenarioRuns) checks() agg {
	return aggregate(s.runs, func(r LoadResult) float64 { return r.ChecksPerSec })
}
func (s *scenarioRuns) p50() float64 {
	return aggregate(s.runs, func(r LoadResult) float64 { return r.P50us }).med
}
func (s *scenarioRuns) p99() float64 {
	return aggregate(s.runs, func(r LoadResult) float64 { return r.P99us }).med
}
func (s *scenarioRuns) p999() float64 {
	return aggregate(s.runs, func(r LoadResult) float64 { return r.P999us }).med
}
func (s *scenarioRuns) ok() bool { return s != nil && len(s.runs) > 0 }

func (s *scenarioRuns) api() string {
	if len(s.runs) > 0 {
		return s.runs[0].API
	}
	return s.sc.api
}

func (s *scenarioRuns) label() string {
	l := "gubernator (in memory)"
	if s.sc.system == "holdfast" {
		l = "holdfast, " + s.sc.durability
	}
	if s.sc.gcPercent > 0 {
		l += fmt.Sprintf(", `runtime.gc_percent: %d`", s.sc.gcPercent)
	}
	if s.sc.fixed {
		l += ", fixed rate"
	}
	return l
}

// The closed-loop (saturation) scenarios of each side, for best().
var (
	hfMemAPIs = []string{"hf-mem-unary", "hf-mem-stream", "hf-mem-batch", "hf-mem-many", "hf-mem-manystream"}
	hfLocAPIs = []string{"hf-local-unary", "hf-local-stream", "hf-local-batch", "hf-local-many", "hf-local-manystream"}
	// The fixed-rate rows of holdfast's batching APIs, for bestLatency().
	hfMemFixed = []string{"hf-mem-batch-fixed", "hf-mem-manystream-fixed"}
	gubAPIs    = []string{"gub-unary", "gub-batch"}
)

// best returns the scenario of the given prefix with the highest median
// checks/s.
func (f *rateLimitFigure) best(keys ...string) *scenarioRuns {
	var b *scenarioRuns
	for _, k := range keys {
		s := f.get(k)
		if !s.ok() {
			continue
		}
		if b == nil || s.checks().med > b.checks().med {
			b = s
		}
	}
	return b
}

// bestLatency returns the scenario of keys with the lowest median p99.
func (f *rateLimitFigure) bestLatency(keys ...string) *scenarioRuns {
	var b *scenarioRuns
	for _, k := range keys {
		s := f.get(k)
		if !s.ok() {
			continue
		}
		if b == nil || s.p99() < b.p99() {
			b = s
		}
	}
	return b
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.machine
	w("# holdfast benchmarks\n\n")
	w("Written by `make bench` (`go run ./test/cmd/benchreport -out docs/BENCHMARKS.md`) on %s, in %s. "+
		"Every figure is reported against a baseline measured **in the same run**, as a ratio; the goals are issue 2's. "+
		"Nothing here is a test: no figure fails a build.\n\n",
		r.started.UTC().Format("2006-01-02 15:04 MST"), r.finished.Sub(r.started).Round(time.Second))
	w("%s\n\n", gatewayPointer)
	w("| machine | |\n|---|---|\n")
	w("| CPUs (nproc) | %d |\n| CPU model | %s |\n| Go | %s |\n| kernel | %s |\n| commit | %s |\n| load average (1, 5, 15 min) at start / end | %s / %s |\n",
		m.nproc, m.cpu, m.goVersion, m.kernel, m.commit, m.loadStart, m.loadEnd)
	w("| CPU busy with other processes during the run | %.2f of %d cores on average (from /proc/stat, minus this run's own processes) |\n\n", m.others, m.nproc)
	if m.others > 0.2*float64(m.nproc) {
		w("> **Caveat: shared, noisy machine.** Other processes kept %.2f of the %d cores busy on average during this run, "+
			"competing with the benchmarks, the servers and the load generator: absolute figures are low and noisy. "+
			"Ratios are more stable than absolute numbers (both sides of a ratio run alternately, rep after rep, under the same noise); "+
			"rerun `make bench` on a quiet machine for absolute figures.\n\n", m.others, m.nproc)
	} else if m.nproc <= 2 {
		w("> **Caveat: small machine.** With %d CPUs the load generator and the server share the same cores: absolute figures for "+
			"the gRPC runs are bounded by the machine; see the CPU columns.\n\n", m.nproc)
	}

	if f := r.fsync; f != nil {
		if f.err != nil {
			w("Disk: the fsync probe failed: `%v`.\n\n", f.err)
		} else {
			w("Disk: a 4 KiB overwrite + fsync in %s takes **%s** (p50; p99 %s, %d samples) — the floor of one durable commit, which bbolt pays twice (data, then meta page).\n\n",
				f.dir, f.p50.Round(time.Microsecond), f.p99.Round(time.Microsecond), f.n)
		}
	}

	// ---- summary ----
	w("## Summary\n\n")
	w("| # | figure | result | baseline (same run) | ratio | goal | met |\n|---|---|---|---|---|---|---|\n")
	if f := r.hot; f != nil {
		if f.err != nil {
			w("| 1 | hot actor, memory, in-process | failed: see below | | | ≥ %s turns/s | no |\n", num(goalHotTurns))
		} else {
			v := f.median(f.num, "turns/s")
			w("| 1 | one hot actor, `memory`, in-process turns/s | %s turns/s | mutex-protected map increment: %s ops/s | %s | ≥ %s turns/s | %s |\n",
				num(v), num(f.median(f.den, "turns/s")), ratio(median(f.ratios)), num(goalHotTurns), yesNo(v >= goalHotTurns))
		}
	}
	if f := r.idem; f != nil && f.err == nil {
		w("| 1 | the same, with a new request ID on every turn (idempotency record: two more keys and a scan per turn) | %s turns/s | without request IDs: %s turns/s | %s | — | — |\n",
			num(f.median(f.num, "turns/s")), num(f.median(f.den, "turns/s")), ratio(median(f.ratios)))
	}
	if f := r.idemFlat; f != nil && f.err == nil {
		w("| 1 | cost of a turn with a request ID when the actor holds 400,000 records (200,000 turns) | %s ns/turn | at 20,000 records (10,000 turns): %s ns/turn | %s | ≤ 2× (a guard against growth; not an issue-2 goal) | %s |\n",
			num(f.median(f.num, "ns/op")), num(f.median(f.den, "ns/op")), ratio(median(f.ratios)), yesNo(median(f.ratios) <= 2))
	}
	if f := r.local; f != nil {
		if f.err != nil {
			w("| 2 | `local` group commit vs commit per turn | failed: see below | | | ≥ %.0f× | no |\n", goalGroupCommit)
		} else {
			rt := median(f.ratios)
			w("| 2 | `local` durability, group commit, 256 callers / 4096 actors | %s turns/s (%s turns per commit) | one commit per turn (CommitMaxBatch=1): %s turns/s | %s | ≥ %.0f× | %s |\n",
				num(f.median(f.num, "turns/s")), num(f.median(f.num, "turns/commit")), num(f.median(f.den, "turns/s")), ratio(rt), goalGroupCommit, yesNo(rt >= goalGroupCommit))
		}
	}
	if f := r.rl; f != nil {
		hb := f.best(hfMemAPIs...)
		gb := f.best(gubAPIs...)
		switch {
		case hb == nil:
			w("| 3 | ratelimit over gRPC, `memory` | failed: see below | | | ≥ %.0f× gubernator, p99 ≤ 2 ms | no |\n", goalVsGubernator)
		case gb == nil:
			w("| 3 | ratelimit over gRPC, `memory` (%s) | %s checks/s, p99 %s | gubernator: not measured (%s) | n/a | ≥ %.0f× gubernator, p99 ≤ 2 ms | not measurable |\n",
				hb.api(), num(hb.checks().med), ms(hb.p99()), f.gubErr, goalVsGubernator)
		default:
			rt := hb.checks().med / gb.checks().med
			w("| 3 | ratelimit over gRPC, `memory`, checks/s at saturation, best API each: holdfast %s vs gubernator %s | %s checks/s (p50 %s, p99 %s: queueing at saturation) | gubernator %s: %s checks/s (p99 %s) | %s | ≥ %.0f× | %s |\n",
				hb.api(), gb.api(), num(hb.checks().med), ms(hb.p50()), ms(hb.p99()), gb.api(), num(gb.checks().med), ms(gb.p99()), ratio(rt), goalVsGubernator,
				yesNo(rt >= goalVsGubernator))
		}
		hfx, gbx := f.bestLatency(hfMemFixed...), f.get("gub-batch-fixed")
		switch {
		case !hfx.ok():
			w("| 3 | ratelimit over gRPC, `memory`, p99 at a fixed offered rate | not measured: %s | | | p99 ≤ 2 ms | not measurable |\n", oneLine(fixedFailure(f, f.get(hfMemFixed[0]))))
		default:
			base := "gubernator: not measured"
			rt := "n/a"
			if gbx.ok() {
				base = fmt.Sprintf("gubernator %s: p50 %s, p99 %s", gbx.api(), ms(gbx.p50()), ms(gbx.p99()))
				rt = ratio(hfx.p99()/gbx.p99()) + " (p99)"
			}
			w("| 3 | ratelimit over gRPC, `memory`, latency at the same fixed offered rate, %s checks/s (%s), lowest p99 of holdfast's batching APIs: %s | p50 %s, p99 %s (%s checks/s achieved) | %s | %s | p99 ≤ 2 ms | %s |\n",
				num(f.fixedRate), f.fixedWhy, hfx.api(), ms(hfx.p50()), ms(hfx.p99()), num(hfx.checks().med), base, rt, yesNo(hfx.p99() <= goalP99Microsecs))
			if gc := f.get("hf-mem-manystream-fixed-gc400"); gc.ok() {
				w("| 3 | the same, %s, the node with `runtime.gc_percent: 400` (default: Go's 100) | p50 %s, p99 %s (%s checks/s achieved) | the same API at the default: p99 %s | %s (p99) | p99 ≤ 2 ms | %s |\n",
					gc.api(), ms(gc.p50()), ms(gc.p99()), num(gc.checks().med), ms(f.get("hf-mem-manystream-fixed").p99()), ratio(gc.p99()/f.get("hf-mem-manystream-fixed").p99()), yesNo(gc.p99() <= goalP99Microsecs))
			}
		}
		for _, api := range []string{"unary", "stream", "batch", "many", "manystream"} {
			l, mm := f.get("hf-local-"+api), f.get("hf-mem-"+api)
			if l.ok() && mm.ok() {
				w("| 3 | ratelimit over gRPC, `local` (fsync before reply), %s | %s checks/s, p50 %s, p99 %s | same API, `memory`: %s checks/s | %s | report the fsync cost | — |\n",
					l.api(), num(l.checks().med), ms(l.p50()), ms(l.p99()), num(mm.checks().med), ratio(l.checks().med/mm.checks().med))
			}
		}
	}
	if r.fp != nil {
		mem, loc := r.fp["BenchmarkActorFootprint/memory"], r.fp["BenchmarkActorFootprint/local"]
		w("| 4 | RAM per activated actor (small state) | `memory`: %s B, `local`: %s B | its state: %d B of key and value | %s (memory) | report | — |\n",
			num(mem["heapB/actor"]), num(loc["heapB/actor"]), footprintStateB, ratio(mem["heapB/actor"]/footprintStateB))
		w("| 4 | disk per actor (`local`, bbolt) | %s B of file (%s B in use) | its state: %d B of key and value | %s (file) | report | — |\n",
			num(loc["fileB/actor"]), num(loc["usedB/actor"]), footprintStateB, ratio(loc["fileB/actor"]/footprintStateB))
	}
	w("\n")

	// ---- details ----
	if f := r.hot; f != nil {
		w("## 1. One hot actor, `memory` durability, in-process\n\n")
		w("`BenchmarkHotActorMemory` (actor/bench_test.go): GOMAXPROCS parallel callers (`b.RunParallel`) send turns to **one** actor of a `memory` namespace; " +
			"each turn reads and writes one key. Baseline `BenchmarkHotMutexMapBaseline`: the same callers increment one entry of a `map[string]int` behind a " +
			"`sync.Mutex` — the floor any actor runtime pays for serialising one key. The ratio is the median of the per-rep ratios.\n\n")
		w("Reproduce: `%s`\n\n", f.cmd)
		r.ratioDetails(&b, f, []string{"turns/s", "ns/op", "B/op", "allocs/op"})
		if f := r.idem; f != nil {
			w("### With a request ID on every turn\n\n")
			w("`BenchmarkHotActorMemoryRequestIDs`: the same hot actor, each call with a new request ID, so every turn also records its reply " +
				"(idempotency: the record and its age-index key) and scans the age index for expired records, as every mutating call over the API does.\n\n")
			w("Reproduce: `%s`\n\n", f.cmd)
			r.ratioDetails(&b, f, []string{"turns/s", "ns/op", "B/op", "allocs/op"})
		}
		if f := r.idemFlat; f != nil {
			w("The cost of such a turn must not grow with the records the actor holds (the idempotency window keeps them for 10 minutes: " +
				"a key taking 1,000 checks/s holds 1.2 million). The same benchmark at 200,000 turns against 10,000 turns (ratio of ns/turn; ≈ 1× is flat):\n\n")
			w("Reproduce: `%s`\n\n", f.cmd)
			r.ratioDetails(&b, f, []string{"ns/op", "turns/s"})
		}
	}
	if f := r.local; f != nil {
		w("## 2. `local` durability: group commit vs one commit per turn\n\n")
		w("`BenchmarkLocalGroupCommit` vs `BenchmarkLocalCommitPerTurn` (actor/bench_test.go): 256 concurrent callers over 4096 actors of a `local` namespace " +
			"on bbolt in a temporary directory; the same turns with CommitMaxBatch=4096 (group commit) and CommitMaxBatch=1 (one bbolt commit, two fdatasyncs, per turn). " +
			"Every reply waits for its turn's commit (the output gate) in both.\n\n")
		w("Reproduce: `%s`\n\n", f.cmd)
		r.ratioDetails(&b, f, []string{"turns/s", "turns/commit", "ns/op"})
	}
	if f := r.rl; f != nil {
		r.rateLimitDetails(&b, f)
	}
	if r.fp != nil || r.fpErr != nil {
		w("## 4. Memory per actor\n\n")
		w("`BenchmarkActorFootprint` (actor/bench_test.go) activates %s actors (`-benchtime %dx`), each through one turn that writes one key "+
			"(`state`, 16 bytes of value), with 256 concurrent callers; then it reports the live heap per actor "+
			"(runtime.MemStats.HeapAlloc after GC, minus the same before activation) and, for `local`, the bbolt file size per actor "+
			"and the bytes bbolt has in use (file minus free pages) per actor. Actor IDs are `%s` (%d bytes encoded).\n\n",
			num(float64(r.o.footprintN)), r.o.footprintN, footprintIDString, footprintIDB)
		w("Reproduce: `%s`\n\n", r.fpCmd)
		if r.fpErr != nil {
			w("Failed: `%v`\n\n", oneLine(r.fpErr.Error()))
		} else {
			w("| durability | heap B/actor | file B/actor | used B/actor | µs per activation |\n|---|---|---|---|---|\n")
			for _, d := range []string{"memory", "local"} {
				m := r.fp["BenchmarkActorFootprint/"+d]
				file, used := "—", "—"
				if d == "local" {
					file, used = num(m["fileB/actor"]), num(m["usedB/actor"])
				}
				w("| `%s` | %s | %s | %s | %s |\n", d, num(m["heapB/actor"]), file, used, num(m["ns/op"]/1000))
			}
			w("\nWith `memory` the state itself lives in the heap (MemStore); with `local` it lives in bbolt and the heap holds the activated actor " +
				"(its cell, registry entry and the overlay entry of its last write, kept until its next turn prunes it).\n\n")
		}
	}
	w("## Method and caveats\n\n")
	w("- Ratios, not thresholds: every figure above has its baseline measured in the same run, on the same machine, alternately with it.\n")
	w("- Go benchmarks are run from one compiled test binary (`go test -c ./actor`), one benchmark per process, alternating the two sides of a ratio; " +
		"`go test -bench ... -count N` reproduces the same numbers (it runs the reps of one side back to back).\n")
	w("- Throughput load runs are closed loop: each client sends its next check when the previous answer arrives (or keeps `-window` in flight), so at saturation " +
		"latency ≈ checks in flight / throughput (Little's law); the latency goal is measured by the fixed-rate runs instead. " +
		"They run on loopback only, bounded in time and count.\n")
	for _, n := range r.notes {
		w("- %s\n", n)
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " | ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

func (r *report) ratioDetails(b *strings.Builder, f *ratioFigure, units []string) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	if f.err != nil {
		w("Failed: `%s`\n\n", oneLine(f.err.Error()))
		return
	}
	numH, denH := f.spec.num, f.spec.den
	if f.spec.denBenchtime != "" {
		numH += " -benchtime " + f.spec.benchtime
		denH += " -benchtime " + f.spec.denBenchtime
	}
	w("| rep | %s | %s | ratio (%s) |\n|---|---|---|---|\n", numH, denH, f.spec.unit)
	cell := func(m map[string]float64) string {
		var parts []string
		for _, u := range units {
			if v, ok := m[u]; ok {
				parts = append(parts, num(v)+" "+u)
			}
		}
		return strings.Join(parts, ", ")
	}
	for i := range f.num {
		rt := 0.0
		if i < len(f.ratios) {
			rt = f.ratios[i]
		}
		w("| %d | %s | %s | %s |\n", i+1, cell(f.num[i]), cell(f.den[i]), ratio(rt))
	}
	lo, hi := minMax(f.ratios)
	w("| median | %s %s | %s %s | %s (range %s–%s) |\n\n", num(f.median(f.num, f.spec.unit)), f.spec.unit, num(f.median(f.den, f.spec.unit)), f.spec.unit,
		ratio(median(f.ratios)), ratio(lo), ratio(hi))
}

func (r *report) rateLimitDetails(b *strings.Builder, f *rateLimitFigure) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	o := r.o
	w("## 3. Rate-limit checks over gRPC on loopback, one node\n\n")
	w("%d clients (one gRPC connection each) take 1 token per check from %s keys: every key once first, then uniformly random keys, "+
		"%s of warm-up, then a %s measured window; %d reps of every row, interleaved. "+
		"The limit is the same on both sides: 1000 per second with a burst of 1000 "+
		"(holdfast: a `requests` bucket of capacity 1000 refilled at 1000/s in the `ratelimit` namespace; gubernator: `LEAKY_BUCKET`, limit 1000, duration 1 s, burst 1000), "+
		"so every check is allowed and the run measures the cost of a check.\n\n",
		o.clients, num(float64(o.keys)), o.loadWarmup, o.loadDuration, o.reps)
	w("- **holdfast**: `holdfast.NewNode` with a temporary data dir, in its own process (benchreport starting itself with `-role holdfast-server`); "+
		"the `ratelimit` namespace set to `memory` or `local`. Each take names no request ID, so none is recorded for deduplication (the API records only IDs a client sends, to retry with; a single node assigns none). "+
		"APIs: unary `RateLimitTake`, `RateLimitTakeStream` with %d takes in flight per client (the node answers them in order), "+
		"`RateLimitTakeBatch` with %d takes per call (one call in flight per client, as gubernator's batch), "+
		"and the columnar batch (namespace and bucket once, keys and amounts as packed columns, answers as packed columns) with %d takes per call: "+
		"`RateLimitTakeMany` (unary) and `RateLimitTakeManyStream` (one stream per client, one batch message in flight, answered in order). "+
		"Every client builds a fresh request message per call, as gubernator's does.\n", o.window, o.window, o.window)
	if f.gubErr != "" {
		w("- **gubernator**: not measured: %s\n", oneLine(f.gubErr))
	} else {
		w("- **gubernator** %s (github.com/gubernator-io/gubernator/v2): started as a library (`gubernator.SpawnDaemon`) with its own defaults "+
			"from the separate module test/bench/gubernator (its own go.mod), in its own process; peer discovery `none` with itself as the only, owning, peer. "+
			"APIs: `GetRateLimits` with 1 check per call, and with %d checks per call (its batching API; the same checks in flight per client as holdfast's stream).\n", f.gubVersion, o.window)
	}
	if f.engineSame {
		w("- Both are driven by the same load engine (test/cmd/benchreport/loadgen.go, byte-identical copy in test/bench/gubernator; checked by this run) with each system's own generated gRPC client.\n")
	} else {
		w("- **Warning**: test/cmd/benchreport/loadgen.go and test/bench/gubernator/loadgen.go differ: the two systems were not driven by the same engine.\n")
	}
	w("- CPU: the load generator's own CPU time (getrusage) and the server's (/proc/PID/stat), over the measured window, in cores (CPU seconds / wall seconds). " +
		"\"load share\" is the load generator's part of the two: the CPU the server did not get. " +
		"µs/check: each side's CPU time over the measured window divided by the checks answered in it (median of the reps).\n\n")
	w("Reproduce: `%s` (or `make bench` for everything).\n\n", f.cmd)
	w("| system | API | checks/s median (min–max) | p50 | p99 | p99.9 | allowed | errors | load gen cores | server cores | load share | load gen µs/check | server µs/check | turns/commit |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range f.scenarios {
		if s.sc.fixed {
			continue
		}
		if !s.ok() {
			w("| %s | %s | failed: %s | | | | | | | | | | | |\n", s.label(), s.sc.api, oneLine(strings.Join(s.errors, "; ")))
			continue
		}
		var checks, allowed, errs int64
		for _, x := range s.runs {
			checks += x.Checks
			allowed += x.Allowed
			errs += x.Errors
		}
		lgc := aggregate(s.runs, func(x LoadResult) float64 { return x.LoadgenCPUSec / x.WallSeconds }).med
		svc := aggregate(s.runs, func(x LoadResult) float64 { return x.ServerCPUSec / x.WallSeconds }).med
		// CPU per check: CPU seconds over the measured window's checks.
		perCheck := func(cpu func(LoadResult) float64) float64 {
			return aggregate(s.runs, func(x LoadResult) float64 {
				if x.Checks == 0 {
					return 0
				}
				return cpu(x) / float64(x.Checks) * 1e6
			}).med
		}
		lgus := perCheck(func(x LoadResult) float64 { return x.LoadgenCPUSec })
		svus := perCheck(func(x LoadResult) float64 { return x.ServerCPUSec })
		share := "n/a"
		if lgc+svc > 0 {
			share = fmt.Sprintf("%.0f%%", 100*lgc/(lgc+svc))
		}
		tpc := "—"
		if s.sc.durability == "local" {
			var seq, commits float64
			for _, st := range s.stats {
				seq += float64(st.DurableSeq)
				commits += float64(st.Commits)
			}
			if commits > 0 {
				tpc = num(seq / commits)
			}
		}
		allowedPct := "n/a"
		if checks > 0 {
			allowedPct = fmt.Sprintf("%.1f%%", 100*float64(allowed)/float64(checks))
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f | %s | %.1f | %.1f | %s |\n", s.label(), s.api(), s.checks().rangeStr(),
			ms(s.p50()), ms(s.p99()), ms(s.p999()), allowedPct, group(errs), lgc, svc, share, lgus, svus, tpc)
		for _, x := range s.runs {
			if x.FirstError != "" {
				r.notes = append(r.notes, fmt.Sprintf("%s, %s: first error: `%s`", s.label(), s.api(), oneLine(x.FirstError)))
				break
			}
		}
	}
	w("\n")
	r.fixedRateDetails(b, f)
	hb := f.best(hfMemAPIs...)
	gb := f.best(gubAPIs...)
	w("Ratios (medians of checks/s):\n\n")
	pair := func(name, a, bk string) {
		x, y := f.get(a), f.get(bk)
		if x.ok() && y.ok() {
			w("- %s: %s\n", name, ratio(x.checks().med/y.checks().med))
		}
	}
	if hb != nil && gb != nil {
		w("- holdfast `memory` best (%s) / gubernator best (%s): **%s** (goal ≥ %.0f×)\n",
			hb.api(), gb.api(), ratio(hb.checks().med/gb.checks().med), goalVsGubernator)
	}
	pair("holdfast `memory` unary / gubernator unary (1 check per call each)", "hf-mem-unary", "gub-unary")
	pair(fmt.Sprintf("holdfast `memory` stream / gubernator batch (%d checks in flight per client each)", o.window), "hf-mem-stream", "gub-batch")
	pair(fmt.Sprintf("holdfast `memory` batch / gubernator batch (%d checks per call each)", o.window), "hf-mem-batch", "gub-batch")
	pair(fmt.Sprintf("holdfast `memory` columnar batch (RateLimitTakeMany) / gubernator batch (%d checks per call each)", o.window), "hf-mem-many", "gub-batch")
	pair(fmt.Sprintf("holdfast `memory` columnar batch stream (RateLimitTakeManyStream) / gubernator batch (%d checks per message each, one in flight per client)", o.window), "hf-mem-manystream", "gub-batch")
	pair("holdfast `memory` RateLimitTakeMany / RateLimitTakeBatch (the columnar message's gain)", "hf-mem-many", "hf-mem-batch")
	pair("holdfast `memory` RateLimitTakeManyStream / RateLimitTakeMany (the stream's gain over unary calls)", "hf-mem-manystream", "hf-mem-many")
	pair("holdfast `local` unary / `memory` unary (the fsync cost)", "hf-local-unary", "hf-mem-unary")
	pair("holdfast `local` stream / `memory` stream (the fsync cost)", "hf-local-stream", "hf-mem-stream")
	pair("holdfast `local` batch / `memory` batch (the fsync cost)", "hf-local-batch", "hf-mem-batch")
	pair("holdfast `local` columnar batch / `memory` columnar batch (the fsync cost)", "hf-local-many", "hf-mem-many")
	pair("holdfast `local` columnar batch stream / `memory` columnar batch stream (the fsync cost)", "hf-local-manystream", "hf-mem-manystream")
	if lb, gb := f.best(hfLocAPIs...), f.best(gubAPIs...); lb != nil && gb != nil {
		w("- holdfast `local` best (%s) / gubernator best (%s): %s\n", lb.api(), gb.api(), ratio(lb.checks().med/gb.checks().med))
	}
	w("\n")
	if l, m := f.get("hf-local-unary"), f.get("hf-mem-unary"); l.ok() && m.ok() {
		w("With `local`, a reply waits for the group commit that holds its turn's writes (one bbolt commit, two fdatasyncs, per batch): "+
			"unary p50 goes from %s to %s. \"turns/commit\" is the node's durable write sequence over its commits, for the whole run (warm-up included).\n\n",
			ms(m.p50()), ms(l.p50()))
	}
}

// gatewayPointer sends readers to the gateway's figures, which a separate
// tool writes (it needs nginx).
const gatewayPointer = "The LLM gateway's figures (issue 3: added time to first byte against nginx and direct, memory per open stream, streams/s ceiling) are in [BENCHMARKS-gateway.md](BENCHMARKS-gateway.md), written by `go run ./test/cmd/gatewaybench -out docs/BENCHMARKS-gateway.md` (needs nginx: `apt-get install -y nginx`); each with two holdfast paths, a user with no limits (the admit writes nothing: no commit on the path) and one with every limit set (the admit writes: the group commit is on the path); the same against an upstream with a 20 ms time to first token, as providers have (the admit's commit then hides behind it and, with `gateway.defer_admit_commits`, is shared among the admits of up to `runtime.commit_defer`), in [BENCHMARKS-gateway-ttft.md](BENCHMARKS-gateway-ttft.md), written by `go run ./test/cmd/gatewaybench -runs 1 -upstream-ttft 20ms -hold 2000 -out docs/BENCHMARKS-gateway-ttft.md`, and with the deferral off, for comparison, in [BENCHMARKS-gateway-ttft-nodefer.md](BENCHMARKS-gateway-ttft-nodefer.md) (the same command with `-defer-admit-commits false`); what the gateway's own HTTP/1.1 upstream client and the deferred settle commits buy, in an interleaved A/B, in [BENCHMARKS-gateway-ab.md](BENCHMARKS-gateway-ab.md) (`bash test/bench/gateway-ab.sh`), and there too session 6's narrow admit gate and deferred admit commits and session 7's upstream head parser, tee and admit allocations, as same-run ratios to nginx (`bash test/bench/gateway-ab-builds.sh`); BENCHMARKS-gateway.md also counts each proxy's system calls per stream (`perf trace`, `-syscalls`), and with `-trace` gatewaybench says where holdfast's time to first byte goes, segment by segment. The cluster's figures (issue 4: forwarded vs local calls, handoff pause, rebalance and failover times, checks/s through a 3-node cluster) are in [BENCHMARKS-cluster.md](BENCHMARKS-cluster.md), written by `make bench-cluster`. Failover after real SIGKILLs of containers (a fault the in-process cluster cannot inflict: no orderly NATS shutdown) is in [BENCHMARKS-chaos.md](BENCHMARKS-chaos.md), written by `make chaos-failover` (needs Docker)."

// fixedFailure says why a fixed-rate scenario has no run.
func fixedFailure(f *rateLimitFigure, s *scenarioRuns) string {
	if s != nil && len(s.errors) > 0 {
		return strings.Join(s.errors, "; ")
	}
	if f.fixedWhy != "" {
		return f.fixedWhy
	}
	return "not run"
}

// fixedRateDetails writes the table of the fixed-rate (paced) runs.
func (r *report) fixedRateDetails(b *strings.Builder, f *rateLimitFigure) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("Latency at a fixed offered rate: at saturation a closed loop's p99 is queueing (checks in flight / throughput), not the server, "+
		"so the batch APIs of both (and holdfast's columnar batch stream) are also driven at the same offered rate, below both systems' saturation: **%s checks/s** (%s). "+
		"Each client schedules its checks at clients/rate intervals with a random phase within one call period (`-rate`, loadgen.go), so the clients' calls are spread evenly over time, and sends a call once its %d checks are due; "+
		"latency runs from the call's send to its answer. A check sent more than one call period (%d intervals, at least 1 ms) after its scheduled time is \"late\" "+
		"(the client was still waiting for a previous answer): a large late share means the clients did not keep up with the offered rate.\n\n",
		num(f.fixedRate), f.fixedWhy, r.o.window, r.o.window)
	w("| system | API | offered checks/s | achieved checks/s | late | p50 | p99 | p99.9 | max | errors | load gen cores | server cores |\n")
	w("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range f.scenarios {
		if !s.sc.fixed {
			continue
		}
		if !s.ok() {
			w("| %s | %s | %s | not measured: %s | | | | | | | | |\n", s.label(), s.sc.api, num(f.fixedRate), oneLine(fixedFailure(f, s)))
			continue
		}
		var checks, late, errs int64
		for _, x := range s.runs {
			checks += x.Checks
			late += x.LateChecks
			errs += x.Errors
		}
		latePct := "n/a"
		if checks > 0 {
			latePct = fmt.Sprintf("%.2f%%", 100*float64(late)/float64(checks))
		}
		lgc := aggregate(s.runs, func(x LoadResult) float64 { return x.LoadgenCPUSec / x.WallSeconds }).med
		svc := aggregate(s.runs, func(x LoadResult) float64 { return x.ServerCPUSec / x.WallSeconds }).med
		maxUs := aggregate(s.runs, func(x LoadResult) float64 { return x.MaxUs }).med
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.2f | %.2f |\n", s.label(), s.api(), num(s.runs[0].OfferedPerSec), s.checks().rangeStr(),
			latePct, ms(s.p50()), ms(s.p99()), ms(s.p999()), ms(maxUs), group(errs), lgc, svc)
	}
	w("\n")
}
