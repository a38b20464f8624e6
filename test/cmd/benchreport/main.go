// Command benchreport runs holdfast's performance figures end to end and
// writes them, as ratios against baselines measured in the same run, to a
// Markdown report (`make bench` writes docs/BENCHMARKS.md):
//
//  1. one hot actor, memory durability, in-process turns/s, against a bare
//     sync.Mutex-protected map increment from the same parallel callers;
//  2. local durability with group commit against one commit per turn
//     (CommitMaxBatch=1), 256 callers over 4096 actors;
//  3. ratelimit takes over gRPC on loopback, one node, 10,000 keys, 64
//     clients, memory and local durability, against gubernator v2.13.0
//     (LEAKY_BUCKET, burst = limit) started in the same run as a library
//     from its own module (test/bench/gubernator): throughput at
//     saturation (closed loop), then latency of the batching APIs at the
//     same fixed offered rate (by default half gubernator's best);
//  4. memory per actor in RAM and on disk.
//
// Figures 1, 2 and 4 are Go benchmarks in actor/bench_test.go; benchreport
// compiles the test binary once and runs the benchmarks of a ratio
// alternately, rep after rep, so a noisy neighbour hits both sides alike.
// Figure 3 runs each server as its own process and the load generator as
// another, so the CPU time of each is read separately (getrusage for the
// load generator, /proc/PID/stat for the server).
//
// Usage:
//
//	go run ./test/cmd/benchreport -out docs/BENCHMARKS.md
//	go run ./test/cmd/benchreport -only ratelimit -reps 1 -out /tmp/b.md
//
// The -role flag is internal: benchreport starts itself as the holdfast
// server and load generator.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/test/internal/benchenv"
)

type options struct {
	out            string
	only           map[string]bool
	reps           int
	hotBenchtime   string
	hotReps        int
	localBenchtime string
	localReps      int
	footprintN     int
	loadDuration   time.Duration
	loadWarmup     time.Duration
	clients        int
	keys           int
	window         int
	fixedRate      float64 // offered checks/s of the fixed-rate runs; 0: fixedFraction of gubernator's best
	fixedFraction  float64
}

func main() {
	role := flag.String("role", "", "internal: holdfast-server or holdfast-load")
	durability := flag.String("durability", "memory", "internal (holdfast-server): memory or local")
	addr := flag.String("addr", "", "internal (holdfast-load): server gRPC address")
	api := flag.String("api", "unary", "internal (holdfast-load): unary, stream, batch, many or manystream")
	serverPID := flag.Int("server-pid", 0, "internal (holdfast-load): server process id")
	cpuprofile := flag.String("cpuprofile", "", "internal (holdfast-server): write a CPU profile of the server here")
	gcPercent := flag.Int("gc-percent", 0, "internal (holdfast-server): runtime.gc_percent of the node (0: Go's default)")

	var o options
	only := flag.String("only", "hot,local,ratelimit,footprint", "figures to run, comma-separated: hot, local, ratelimit, footprint")
	flag.StringVar(&o.out, "out", "docs/BENCHMARKS.md", "report to write")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of each load run and of the request-ID benchmarks")
	flag.IntVar(&o.hotReps, "hot-reps", 5, "repetitions of the hot-actor benchmark and its baseline")
	flag.StringVar(&o.hotBenchtime, "hot-benchtime", "1s", "-benchtime of the hot-actor benchmark and its baseline")
	flag.StringVar(&o.localBenchtime, "local-benchtime", "3s", "-benchtime of the local-durability benchmarks")
	flag.IntVar(&o.localReps, "local-reps", 5, "repetitions of the local-durability benchmarks (their baseline swings with the disk)")
	flag.IntVar(&o.footprintN, "footprint-actors", 100_000, "actors activated by the footprint benchmark")
	flag.DurationVar(&o.loadDuration, "load-duration", 5*time.Second, "measured window of each load run")
	flag.DurationVar(&o.loadWarmup, "load-warmup", time.Second, "warm-up of each load run, after every key was touched once")
	flag.IntVar(&o.clients, "clients", 64, "load clients, one gRPC connection each")
	flag.IntVar(&o.keys, "keys", 10_000, "rate-limit keys")
	flag.IntVar(&o.window, "window", 8, "checks in flight per client for the streaming/batching APIs")
	flag.Float64Var(&o.fixedRate, "fixed-rate", 0, "offered checks/s of the fixed-rate latency runs; 0: -fixed-fraction of gubernator's best measured checks/s")
	flag.Float64Var(&o.fixedFraction, "fixed-fraction", 0.5, "with -fixed-rate 0: the fixed rate as a fraction of gubernator's best measured checks/s")
	flag.Parse()

	var err error
	switch *role {
	case "holdfast-server":
		err = serveHoldfast(*durability, *cpuprofile, *gcPercent)
	case "holdfast-load":
		spec := LoadSpec{System: "holdfast", Clients: o.clients, Keys: o.keys, Batch: o.window,
			Warmup: o.loadWarmup, Duration: o.loadDuration, ServerPID: *serverPID}
		err = loadHoldfast(spec, *addr, *api)
	case "":
		o.only = map[string]bool{}
		for _, f := range strings.Split(*only, ",") {
			o.only[strings.TrimSpace(f)] = true
		}
		err = run(o)
	default:
		err = fmt.Errorf("unknown -role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchreport %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// report collects everything the Markdown needs.
type report struct {
	o        options
	started  time.Time
	finished time.Time
	machine  machine
	hot      *ratioFigure
	idem     *ratioFigure // request IDs: cost against the plain hot actor
	idemFlat *ratioFigure // request IDs: cost per turn at many records against few
	local    *ratioFigure
	rl       *rateLimitFigure
	fp       map[string]map[string]float64 // sub-benchmark -> unit -> value
	fpCmd    string
	fpErr    error
	fsync    *fsyncFigure
	notes    []string
}

func run(o options) error {
	root, err := benchenv.ModuleRoot()
	if err != nil {
		return err
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "benchreport-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r := &report{o: o, started: time.Now(), machine: describeMachine()}
	logf("machine: %d CPUs, %s, %s; load average %s", r.machine.nproc, r.machine.cpu, r.machine.goVersion, r.machine.loadStart)

	needActor := o.only["hot"] || o.only["local"] || o.only["footprint"]
	var actorTest string
	if needActor {
		actorTest = filepath.Join(tmp, "actor.test")
		logf("compiling ./actor benchmarks")
		if out, err := exec.Command("go", "test", "-c", "-o", actorTest, "./actor").CombinedOutput(); err != nil {
			return fmt.Errorf("go test -c ./actor: %v\n%s", err, out)
		}
	}
	if o.only["local"] || o.only["ratelimit"] {
		logf("fsync probe in %s", os.TempDir())
		r.fsync = probeFsync(os.TempDir(), 2*time.Second)
	}
	if o.only["hot"] {
		r.hot = runRatio(actorTest, ratioSpec{
			what: "hot", num: "BenchmarkHotActorMemory", den: "BenchmarkHotMutexMapBaseline",
			unit: "turns/s", benchtime: o.hotBenchtime, reps: o.hotReps,
		})
	}
	if o.only["hot"] {
		r.idem = runRatio(actorTest, ratioSpec{
			what: "request IDs", num: "BenchmarkHotActorMemoryRequestIDs", den: "BenchmarkHotActorMemory",
			unit: "turns/s", benchtime: o.hotBenchtime, reps: o.reps,
		})
		r.idemFlat = runRatio(actorTest, ratioSpec{
			what: "request IDs, growth", num: "BenchmarkHotActorMemoryRequestIDs", den: "BenchmarkHotActorMemoryRequestIDs",
			unit: "ns/op", benchtime: "200000x", denBenchtime: "10000x", reps: o.reps,
		})
	}
	if o.only["local"] {
		r.local = runRatio(actorTest, ratioSpec{
			what: "local", num: "BenchmarkLocalGroupCommit", den: "BenchmarkLocalCommitPerTurn",
			unit: "turns/s", benchtime: o.localBenchtime, reps: o.localReps,
		})
	}
	if o.only["footprint"] {
		bt := fmt.Sprintf("%dx", o.footprintN)
		r.fpCmd = fmt.Sprintf("go test -run '^$' -bench '^BenchmarkActorFootprint$' -benchtime %s ./actor/", bt)
		logf("footprint: %d actors", o.footprintN)
		res, err := runBench(actorTest, "^BenchmarkActorFootprint$", bt)
		r.fp, r.fpErr = res, err
	}
	if o.only["ratelimit"] {
		r.rl = runRateLimit(o, tmp)
	}
	r.finished = time.Now()
	r.machine.loadEnd = benchenv.LoadAvg()
	r.machine.others = benchenv.OthersCores(r.machine.cpu0, snapCPU())
	md := r.markdown()
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
		return err
	}
	logf("wrote %s (%s)", o.out, r.finished.Sub(r.started).Round(time.Second))
	return nil
}

// ---- machine ----

type machine struct {
	nproc     int
	cpu       string
	goVersion string
	kernel    string
	commit    string
	loadStart string
	loadEnd   string
	cpu0      benchenv.CPUSnap
	others    float64 // cores used by other processes during the run, on average
}

func describeMachine() machine {
	return machine{nproc: runtime.NumCPU(), cpu: benchenv.CPUModel(), goVersion: benchenv.GoVersion(), kernel: benchenv.Kernel(),
		commit: benchenv.Commit(), loadStart: benchenv.LoadAvg(), cpu0: snapCPU()}
}

// snapCPU counts this process and its waited-for children as ours.
func snapCPU() benchenv.CPUSnap { return benchenv.SnapCPU(selfCPU() + childrenCPU()) }

// ---- Go benchmarks ----

// runBench runs the compiled test binary once for the benchmarks matching
// pattern and returns name -> unit -> value (the name without -GOMAXPROCS).
func runBench(testBin, pattern, benchtime string) (map[string]map[string]float64, error) {
	cmd := exec.Command(testBin, "-test.run", "^$", "-test.bench", pattern, "-test.benchtime", benchtime, "-test.benchmem", "-test.count", "1")
	cmd.Dir = "actor" // as go test runs it: in the package directory
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s -test.bench %s: %v\n%s", filepath.Base(testBin), pattern, err, out)
	}
	res := parseBench(string(out))
	if len(res) == 0 {
		return nil, fmt.Errorf("no benchmark result for %s in:\n%s", pattern, out)
	}
	return res, nil
}

func parseBench(out string) map[string]map[string]float64 {
	res := map[string]map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		m := map[string]float64{}
		if n, err := strconv.ParseFloat(f[1], 64); err == nil {
			m["iterations"] = n
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			m[f[i+1]] = v
		}
		res[name] = m
	}
	return res
}

type ratioSpec struct {
	what      string
	num, den  string // benchmark names: the figure and its baseline
	unit      string // the metric compared
	benchtime string
	// denBenchtime, when set, is the baseline's -benchtime (the same
	// benchmark at another size).
	denBenchtime string
	reps         int
}

type ratioFigure struct {
	spec     ratioSpec
	num, den []map[string]float64 // per rep
	ratios   []float64            // per rep: num/den
	err      error
	cmd      string
}

func runRatio(testBin string, s ratioSpec) *ratioFigure {
	f := &ratioFigure{spec: s, cmd: fmt.Sprintf("go test -run '^$' -bench '^(%s|%s)$' -benchtime %s -count %d -benchmem ./actor/", s.num, s.den, s.benchtime, s.reps)}
	if s.denBenchtime != "" {
		f.cmd = fmt.Sprintf("go test -run '^$' -bench '^%s$' -benchtime %s -count %d -benchmem ./actor/ # and again with -benchtime %s", s.num, s.benchtime, s.reps, s.denBenchtime)
	}
	for rep := 1; rep <= s.reps; rep++ {
		logf("%s: rep %d/%d: %s and %s (-benchtime %s)", s.what, rep, s.reps, s.num, s.den, s.benchtime)
		// Alternate which side runs first, so drift in the machine's load
		// does not always favour the same side.
		type side struct{ name, benchtime string }
		num, den := side{s.num, s.benchtime}, side{s.den, s.benchtime}
		if s.denBenchtime != "" {
			den.benchtime = s.denBenchtime
		}
		order := []*side{&num, &den}
		if rep%2 == 0 {
			order = []*side{&den, &num}
		}
		got := map[*side]map[string]float64{}
		for _, sd := range order {
			res, err := runBench(testBin, "^"+sd.name+"$", sd.benchtime)
			if err != nil {
				f.err = err
				return f
			}
			got[sd] = res[sd.name]
		}
		n, d := got[&num], got[&den]
		f.num, f.den = append(f.num, n), append(f.den, d)
		if d[s.unit] > 0 {
			f.ratios = append(f.ratios, n[s.unit]/d[s.unit])
		}
	}
	return f
}

func (f *ratioFigure) median(side []map[string]float64, unit string) float64 {
	var v []float64
	for _, m := range side {
		if x, ok := m[unit]; ok {
			v = append(v, x)
		}
	}
	return median(v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minMax(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	return slices.Min(v), slices.Max(v)
}

// ---- rate limit over gRPC ----

type scenario struct {
	key        string // row id
	system     string // holdfast or gubernator
	durability string // holdfast: memory or local
	api        string // unary, stream (holdfast), batch
	fixed      bool   // paced at the figure's fixed rate, not closed loop
	gcPercent  int    // holdfast: runtime.gc_percent of the server (0: Go's default)
}

type scenarioRuns struct {
	sc     scenario
	runs   []LoadResult
	stats  []ServerStats
	errors []string
}

type rateLimitFigure struct {
	scenarios  []*scenarioRuns
	fixedRate  float64 // offered checks/s of the fixed-rate rows; 0: not run
	fixedWhy   string  // how fixedRate was chosen, or why it was not run
	gubErr     string  // why gubernator could not be measured, if so
	gubVersion string
	cmd        string
	engineSame bool
}

func (f *rateLimitFigure) get(key string) *scenarioRuns {
	for _, s := range f.scenarios {
		if s.sc.key == key {
			return s
		}
	}
	return nil
}

func runRateLimit(o options, tmp string) *rateLimitFigure {
	f := &rateLimitFigure{cmd: fmt.Sprintf("go run ./test/cmd/benchreport -only ratelimit -reps %d -load-duration %s -clients %d -keys %d -window %d -fixed-fraction %g -out /tmp/BENCHMARKS.md", o.reps, o.loadDuration, o.clients, o.keys, o.window, o.fixedFraction)}
	if o.fixedRate > 0 {
		f.cmd = strings.Replace(f.cmd, " -out ", fmt.Sprintf(" -fixed-rate %g -out ", o.fixedRate), 1)
	}
	a, errA := os.ReadFile("test/cmd/benchreport/loadgen.go")
	b, errB := os.ReadFile("test/bench/gubernator/loadgen.go")
	f.engineSame = errA == nil && errB == nil && bytes.Equal(a, b)

	self, err := os.Executable()
	if err != nil {
		f.gubErr = err.Error()
		return f
	}
	gub := filepath.Join(tmp, "gubbench")
	logf("ratelimit: building test/bench/gubernator")
	build := exec.Command("go", "build", "-o", gub, ".")
	build.Dir = "test/bench/gubernator"
	if out, err := build.CombinedOutput(); err != nil {
		f.gubErr = fmt.Sprintf("go build in test/bench/gubernator failed: %v: %s", err, lastLines(string(out), 8))
		gub = ""
	} else {
		mod := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/gubernator-io/gubernator/v2")
		mod.Dir = "test/bench/gubernator"
		if out, err := mod.Output(); err == nil {
			f.gubVersion = strings.TrimSpace(string(out))
		}
	}
	all := []scenario{
		{"gub-unary", "gubernator", "", "unary", false, 0},
		{"gub-batch", "gubernator", "", "batch", false, 0},
		{"hf-mem-unary", "holdfast", "memory", "unary", false, 0},
		{"hf-mem-stream", "holdfast", "memory", "stream", false, 0},
		{"hf-mem-batch", "holdfast", "memory", "batch", false, 0},
		{"hf-mem-many", "holdfast", "memory", "many", false, 0},
		{"hf-mem-manystream", "holdfast", "memory", "manystream", false, 0},
		{"hf-local-unary", "holdfast", "local", "unary", false, 0},
		{"hf-local-stream", "holdfast", "local", "stream", false, 0},
		{"hf-local-batch", "holdfast", "local", "batch", false, 0},
		{"hf-local-many", "holdfast", "local", "many", false, 0},
		{"hf-local-manystream", "holdfast", "local", "manystream", false, 0},
		// Latency at the same offered rate, below both systems' saturation:
		// p99 at saturation is queueing (Little's law), not the server.
		{"gub-batch-fixed", "gubernator", "", "batch", true, 0},
		{"hf-mem-batch-fixed", "holdfast", "memory", "batch", true, 0},
		{"hf-mem-manystream-fixed", "holdfast", "memory", "manystream", true, 0},
		// The same with the collector tuned (runtime.gc_percent): GC is
		// most of what is left of the tail.
		{"hf-mem-manystream-fixed-gc400", "holdfast", "memory", "manystream", true, 400},
	}
	for _, sc := range all {
		if sc.system == "gubernator" && gub == "" {
			continue
		}
		f.scenarios = append(f.scenarios, &scenarioRuns{sc: sc})
	}
	var closed, fixed []*scenarioRuns
	for _, s := range f.scenarios {
		if s.sc.fixed {
			fixed = append(fixed, s)
		} else {
			closed = append(closed, s)
		}
	}
	common := []string{
		"-clients", strconv.Itoa(o.clients), "-keys", strconv.Itoa(o.keys), "-batch", strconv.Itoa(o.window),
		"-duration", o.loadDuration.String(), "-warmup", o.loadWarmup.String(),
	}
	runAll := func(scs []*scenarioRuns) {
		for rep := 1; rep <= o.reps; rep++ {
			for _, s := range scs {
				runScenario(o, s, rep, gub, self, common, f.fixedRate)
			}
		}
	}
	runAll(closed)
	switch gb := f.best("gub-unary", "gub-batch"); {
	case o.fixedRate > 0:
		f.fixedRate, f.fixedWhy = o.fixedRate, "set with -fixed-rate"
	case gb != nil:
		f.fixedRate = math.Round(o.fixedFraction*gb.checks().med/1000) * 1000
		f.fixedWhy = fmt.Sprintf("%.0f%% of gubernator's best median above (%s, %s checks/s)", 100*o.fixedFraction, gb.api(), num(gb.checks().med))
	default:
		f.fixedWhy = "not run: gubernator was not measured and -fixed-rate is 0"
	}
	if f.fixedRate > 0 {
		logf("ratelimit: fixed-rate runs at %s checks/s (%s)", num(f.fixedRate), f.fixedWhy)
		runAll(fixed)
	} else {
		for _, s := range fixed {
			s.errors = append(s.errors, f.fixedWhy)
		}
	}
	return f
}

// runScenario runs one rep of one scenario (rate: the offered checks/s of
// a fixed-rate scenario).
func runScenario(o options, s *scenarioRuns, rep int, gub, self string, common []string, rate float64) {
	var server, load []string
	switch s.sc.system {
	case "gubernator":
		server = []string{gub, "-role", "server"}
		load = append([]string{gub, "-role", "load", "-api", s.sc.api}, common...)
	default:
		server = []string{self, "-role", "holdfast-server", "-durability", s.sc.durability, "-gc-percent", strconv.Itoa(s.sc.gcPercent)}
		load = []string{self, "-role", "holdfast-load", "-api", s.sc.api, "-clients", strconv.Itoa(o.clients), "-keys", strconv.Itoa(o.keys),
			"-window", strconv.Itoa(o.window), "-load-duration", o.loadDuration.String(), "-load-warmup", o.loadWarmup.String()}
	}
	if s.sc.fixed {
		load = append(load, "-rate", strconv.FormatFloat(rate, 'f', 0, 64))
	}
	logf("ratelimit: rep %d/%d: %s", rep, o.reps, s.sc.key)
	res, st, err := runPair(server, load)
	if err != nil {
		logf("ratelimit: %s: %v", s.sc.key, err)
		s.errors = append(s.errors, err.Error())
		return
	}
	s.runs = append(s.runs, res)
	s.stats = append(s.stats, st)
}

// runPair starts a server process, runs the load process against it, then
// stops the server (closing its stdin) and collects its STATS line.
func runPair(server, load []string) (LoadResult, ServerStats, error) {
	var res LoadResult
	var st ServerStats
	srv := exec.Command(server[0], server[1:]...)
	stdin, err := srv.StdinPipe()
	if err != nil {
		return res, st, err
	}
	stdout, err := srv.StdoutPipe()
	if err != nil {
		return res, st, err
	}
	var srvErr bytes.Buffer
	srv.Stderr = &srvErr
	if err := srv.Start(); err != nil {
		return res, st, err
	}
	stopped := false
	defer func() {
		if !stopped {
			srv.Process.Kill()
			srv.Wait()
		}
	}()
	lines := make(chan string, 4)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var addr string
	select {
	case l, ok := <-lines:
		if !ok || !strings.HasPrefix(l, "ADDR ") {
			srv.Wait()
			stopped = true
			return res, st, fmt.Errorf("server did not start: %q %s", l, lastLines(srvErr.String(), 5))
		}
		addr = strings.TrimPrefix(l, "ADDR ")
	case <-time.After(60 * time.Second):
		return res, st, errors.New("server did not print its address within 60 s")
	}

	args := append(slices.Clone(load[1:]), "-addr", addr, "-server-pid", strconv.Itoa(srv.Process.Pid))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lg := exec.CommandContext(ctx, load[0], args...)
	var lgErr bytes.Buffer
	lg.Stderr = &lgErr
	out, err := lg.Output()
	if err != nil {
		return res, st, fmt.Errorf("load generator: %v: %s", err, lastLines(lgErr.String(), 5))
	}
	found := false
	for _, l := range strings.Split(string(out), "\n") {
		if j, ok := strings.CutPrefix(l, "RESULT "); ok {
			if err := json.Unmarshal([]byte(j), &res); err != nil {
				return res, st, err
			}
			found = true
		}
	}
	if !found {
		return res, st, fmt.Errorf("load generator printed no RESULT: %s", lastLines(string(out)+lgErr.String(), 5))
	}

	stdin.Close()
	done := make(chan struct{})
	go func() {
		for l := range lines {
			if j, ok := strings.CutPrefix(l, "STATS "); ok {
				json.Unmarshal([]byte(j), &st)
			}
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		return res, st, errors.New("server did not stop within 60 s")
	}
	stopped = true
	if err := srv.Wait(); err != nil {
		return res, st, fmt.Errorf("server: %v: %s", err, lastLines(srvErr.String(), 5))
	}
	return res, st, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// ---- the disk ----

// fsyncFigure is the latency of one small overwrite made durable with
// File.Sync (fsync) on the filesystem the benchmarks' data dirs live on:
// the cost a commit pays twice (bbolt fdatasyncs the data, then the meta
// page).
type fsyncFigure struct {
	dir      string
	n        int
	p50, p99 time.Duration
	err      error
}

func probeFsync(dir string, d time.Duration) *fsyncFigure {
	f := &fsyncFigure{dir: dir}
	file, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		f.err = err
		return f
	}
	defer os.Remove(file.Name())
	defer file.Close()
	buf := make([]byte, 4096)
	var lat []float64
	deadline := time.Now().Add(d)
	for i := 0; i < 10_000 && time.Now().Before(deadline); i++ {
		buf[0] = byte(i)
		start := time.Now()
		if _, err := file.WriteAt(buf, 0); err != nil {
			f.err = err
			return f
		}
		if err := file.Sync(); err != nil {
			f.err = err
			return f
		}
		lat = append(lat, float64(time.Since(start)))
	}
	slices.Sort(lat)
	f.n = len(lat)
	f.p50 = time.Duration(lat[len(lat)/2])
	f.p99 = time.Duration(lat[int(0.99*float64(len(lat)-1))])
	return f
}
