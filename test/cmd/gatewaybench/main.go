// Command gatewaybench measures the holdfast gateway's streaming overhead
// (issue 3, performance): added time to first byte against a direct
// baseline and against nginx, RSS and CPU per open stream, and the
// streams/s ceiling, all against one fake upstream in one run, on loopback.
//
//	go run ./test/cmd/gatewaybench -out docs/BENCHMARKS-gateway.md
//
// Processes: this one (the orchestrator and the holdfast node, started
// in-process with holdfast.NewNode); a child playing the upstream (a tiny
// SSE server replaying one Anthropic stream captured from fakeupstream);
// a child generating the load (so its CPU, file descriptors and memory are
// not the node's); nginx as a child in the foreground.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/gateway"
	"github.com/holdfast/holdfast/gateway/account"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

var (
	flagMode     = flag.String("mode", "", "internal: fake or loadgen (child processes)")
	flagBody     = flag.String("body", "", "internal: the captured stream for -mode fake")
	flagOut      = flag.String("out", "", "write the Markdown section here (default: stdout)")
	flagRuns     = flag.Int("runs", 2, "complete runs (the machine is shared: compare them)")
	flagDur      = flag.Duration("dur", 10*time.Second, "measured window of each open-loop phase")
	flagRates    = flag.String("rates", "1000,5000", "open-loop offered loads, streams/s")
	flagTTFT     = flag.Duration("upstream-ttft", 0, "the fake upstream's time to first token: it waits this long before message_start (real providers: hundreds of ms)")
	flagUpClient = flag.String("upstream-client", "", "holdfast's gateway.upstream_client (default: the config default, auto)")
	flagDefer    = flag.Duration("commit-defer", -1, "holdfast's runtime.commit_defer (default: the config default)")
	flagLinger   = flag.Duration("settle-linger", -1, "holdfast's gateway.settle_linger (default: the config default)")
	flagDeferAdm = flag.String("defer-admit-commits", "", "holdfast's gateway.defer_admit_commits: true or false (default: the config default)")
	flagGC       = flag.Int("gc-percent", 0, "holdfast's runtime.gc_percent, applied to this process (0: the Go runtime's)")
	flagSyscalls = flag.Bool("syscalls", true, "count each proxy's system calls per stream with `perf trace -s` in an extra phase of the last run (skipped, and said so, where perf is missing or not permitted)")
	flagProcs    = flag.Int("gomaxprocs", 0, "GOMAXPROCS of this process (holdfast) only; the child processes keep theirs (0: the Go runtime's)")
	flagHold     = flag.Int("hold", 8000, "concurrent open streams for the memory figure")
	flagMemProf  = flag.String("memprofile", "", "write a heap profile of this process at the held-streams plateau (last run)")
	flagProf     = flag.String("cpuprofile", "", "write a CPU profile of this process (holdfast) during the last run's highest-rate phase of -cpuprofile-path")
	flagProfPath = flag.String("cpuprofile-path", "holdfast", "the path whose phase -cpuprofile and -trace record: holdfast or holdfast-limits")
	flagTrace    = flag.String("trace", "", "write a runtime/trace of this process (holdfast) during the last run's highest-rate phase of -cpuprofile-path")
)

func main() {
	flag.Parse()
	var err error
	switch *flagMode {
	case "fake":
		err = runFake(*flagBody, *flagTTFT)
	case "loadgen":
		err = runLoadgen()
	case "":
		err = orchestrate()
	default:
		err = fmt.Errorf("unknown -mode %q", *flagMode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
		os.Exit(1)
	}
}

type target struct {
	name, url, holdURL string
	holdHdr            map[string]string
}

// phase is one measured load phase and what every process spent on it.
type phase struct {
	res                        result
	selfCPU, nginxCPU, fakeCPU float64
	mallocs, allocBytes        uint64
	turnP50, turnN, fsyncP50   float64
	waitP50, waitN             float64 // holdfast_commit_wait_seconds: urgent writes' queue-to-durable
	// The account actor's side (all calls go to one actor): mailbox depth
	// met by arriving calls, calls refused for a full mailbox, writes per
	// group commit.
	mailboxP50, mailboxP99, overloaded, batchP50 float64
	settleFailed                                 float64
}

type holdRes struct {
	n, ok, errs              int
	firstErr                 string
	rss0, rss1               float64 // KiB
	heap0, heap1             uint64
	goroutines0, goroutines1 int
	setupCPU, plateauCPU     float64 // seconds; plateauCPU over plateauWall
	plateauWall, setupWall   float64
	lgCPU                    float64
}

type ceilRow struct {
	conc int
	res  result
	cpu  float64 // server-side CPU seconds (holdfast: this process; nginx: nginx)
	lg   float64
}

type run struct {
	start, end        time.Time
	load0, load1      string
	open              map[string]map[float64]phase
	hold              map[string]holdRes
	ceil              map[string][]ceilRow
	census            map[string]census
	path              *ttfbPath // from -trace
	pathPhase         string
	censusRate        float64
	events, bodyBytes int
	nginxVer          string
	rlimit            uint64
}

// targets are the paths of the open and closed loops. holdfast-limits is
// the same node with limits set for its user (high enough never to
// refuse): every admit then takes from its buckets, a write, so the
// group commit is on the path to the first byte; plain holdfast has no
// limits, so its admit writes nothing and waits for no commit.
var targets = []string{"direct", "holdfast", "holdfast-limits", "nginx"}

func isHoldfast(n string) bool { return strings.HasPrefix(n, "holdfast") }

// benchLimits are holdfast-limits' limits: every bucket and the budget
// set, none reachable by the benchmark's load.
var benchLimits = &holdfastv1.AccountLimits{
	RequestsPerMinute:     1_000_000_000,
	InputTokensPerMinute:  account.MaxPerMinute,
	OutputTokensPerMinute: account.MaxPerMinute,
	DailyBudgetNanos:      1_000_000 * 1_000_000_000, // $1M
}

// setLimits sets (on) or clears the limits of the gateway's single user
// (gateway.auth: none) for the holdfast-limits phases.
func setLimits(node *holdfast.Node, on bool) error {
	l := &holdfastv1.AccountLimits{}
	if on {
		l = benchLimits
	}
	ref := &holdfastv1.ActorRef{Namespace: account.DefaultNamespace, Key: gateway.LocalUser}
	_, err := node.Caller().Call(context.Background(), actor.ID{Namespace: ref.Namespace, Key: ref.Key}, &holdfastv1.AccountLimitsSetRequest{
		Actor: ref, Limits: l,
		Fields: []string{account.RequestsPerMinute, account.InputTokensPerMinute, account.OutputTokensPerMinute, account.DailyBudgetNanos},
	})
	if err != nil {
		return fmt.Errorf("setting the bench user's limits (on=%v): %w", on, err)
	}
	return nil
}

func orchestrate() error {
	rl := raise()
	var rates []float64
	for _, s := range strings.Split(*flagRates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("-rates: %v", err)
		}
		rates = append(rates, v)
	}
	t0 := time.Now()
	var runs []*run
	for i := 0; i < *flagRuns; i++ {
		fmt.Fprintf(os.Stderr, "gatewaybench: run %d/%d\n", i+1, *flagRuns)
		r, err := runOnce(rates, i == *flagRuns-1)
		if err != nil {
			return err
		}
		r.rlimit = rl
		runs = append(runs, r)
	}
	md := report(runs, rates, time.Since(t0))
	if *flagOut == "" {
		_, err := os.Stdout.WriteString(md)
		return err
	}
	return os.WriteFile(*flagOut, []byte(md), 0o644)
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func selfCPU() float64 { return cpuSelf() }

func runOnce(rates []float64, last bool) (*run, error) {
	r := &run{start: time.Now(), load0: loadavg(), open: map[string]map[float64]phase{}, hold: map[string]holdRes{}, ceil: map[string][]ceilRow{}}
	dir, err := os.MkdirTemp("", "gatewaybench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	// The upstream: a dedicated child replaying fakeupstream's stream.
	body, events, err := captureStream()
	if err != nil {
		return nil, fmt.Errorf("capture a fakeupstream stream: %w", err)
	}
	r.events, r.bodyBytes = events, len(body)
	bodyFile := filepath.Join(dir, "stream.sse")
	if err := os.WriteFile(bodyFile, body, 0o644); err != nil {
		return nil, err
	}
	fake, err := startChild("-mode", "fake", "-body", bodyFile, "-upstream-ttft", flagTTFT.String())
	if err != nil {
		return nil, err
	}
	defer fake.stop()
	line, err := fake.out.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("fake upstream: %w", err)
	}
	fakeAddr := strings.TrimSpace(line)
	fakeURL := "http://" + fakeAddr

	// holdfast, in-process.
	os.Setenv("GATEWAYBENCH_UPSTREAM_KEY", "sk-ant-bench-upstream")
	cfg := holdfast.DefaultConfig()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.HTTPAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Gateway.Auth = gateway.AuthNone
	if *flagUpClient != "" {
		cfg.Gateway.UpstreamClient = *flagUpClient
	}
	if *flagDefer >= 0 {
		cfg.Runtime.CommitDefer = *flagDefer
	}
	if *flagLinger >= 0 {
		cfg.Gateway.SettleLinger = *flagLinger
	}
	if *flagGC > 0 {
		cfg.Runtime.GCPercent = *flagGC
		holdfast.ApplyProcessSettings(cfg)
		defer debug.SetGCPercent(100)
	}
	if *flagProcs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(*flagProcs))
	}
	switch *flagDeferAdm {
	case "":
	case "true", "false":
		cfg.Gateway.DeferAdmitCommits = *flagDeferAdm == "true"
	default:
		return nil, fmt.Errorf("-defer-admit-commits %q: true or false", *flagDeferAdm)
	}
	cfg.Providers = map[string]gateway.ProviderConfig{
		"fake": {Type: gateway.TypeAnthropic, BaseURL: fakeURL, APIKeyEnv: "GATEWAYBENCH_UPSTREAM_KEY"},
		"hold": {Type: gateway.TypeAnthropic, BaseURL: fakeURL + "/hold", APIKeyEnv: "GATEWAYBENCH_UPSTREAM_KEY", Models: []string{"hold-"}},
	}
	logf, err := os.Create(filepath.Join(dir, "holdfast.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	node, err := holdfast.NewNode(cfg, holdfast.Options{Logger: holdfast.NewLogger(cfg.Log, logf)})
	if err != nil {
		return nil, err
	}
	if err := node.Start(); err != nil {
		return nil, err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		node.Shutdown(ctx)
	}()
	hf := "http://" + node.HTTPAddr()

	ng, err := startNginx(dir, fakeAddr)
	if err != nil {
		return nil, err
	}
	defer ng.stop()
	r.nginxVer = ng.ver
	ngPID, fakePID := ng.cmd.Process.Pid, fake.cmd.Process.Pid

	lg, err := startChild("-mode", "loadgen")
	if err != nil {
		return nil, err
	}
	defer lg.stop()

	tg := map[string]target{
		"direct":          {name: "direct", url: fakeURL + "/v1/messages", holdURL: fakeURL + "/hold/v1/messages"},
		"holdfast":        {name: "holdfast", url: hf + "/v1/messages", holdURL: hf + "/v1/messages", holdHdr: map[string]string{"x-holdfast-provider": "hold"}},
		"holdfast-limits": {name: "holdfast-limits", url: hf + "/v1/messages"},
		"nginx":           {name: "nginx", url: "http://" + ng.addr + "/v1/messages", holdURL: "http://" + ng.addr + "/hold/v1/messages"},
	}

	// Warm-up: every path, connections established, actor activated.
	for _, n := range targets {
		if err := setLimits(node, n == "holdfast-limits"); err != nil {
			return nil, err
		}
		res, err := lg.do(cmd{Op: "open", URL: tg[n].url, Rate: 500, Dur: 2 * time.Second})
		if err != nil {
			return nil, err
		}
		if res.Done == 0 {
			return nil, fmt.Errorf("warm-up against %s: nothing completed (%d errors, first: %s)", n, res.Errors, res.FirstErr)
		}
	}

	// 1. Open streams held by the upstream: holdfast's and nginx's memory.
	for _, n := range []string{"holdfast", "nginx"} {
		t := tg[n]
		var h holdRes
		h.n = *flagHold
		runtime.GC()
		debug.FreeOSMemory()
		time.Sleep(time.Second)
		pidS := "self"
		cpuOf := selfCPU
		if n == "nginx" {
			pidS = strconv.Itoa(ngPID)
			cpuOf = func() float64 { return procCPU(ngPID) }
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.rss0, h.heap0, h.goroutines0 = rssKiB(pidS), ms.HeapInuse+ms.StackInuse, runtime.NumGoroutine()
		c0, w0 := cpuOf(), time.Now()
		res, err := lg.do(cmd{Op: "hold", URL: t.holdURL, Header: t.holdHdr, N: h.n, Dur: 90 * time.Second})
		if err != nil {
			return nil, err
		}
		h.setupCPU, h.setupWall, h.lgCPU = cpuOf()-c0, time.Since(w0).Seconds(), res.CPU
		h.ok, h.errs, h.firstErr = res.Done, res.Errors, res.FirstErr
		time.Sleep(time.Second)
		c1, w1 := cpuOf(), time.Now()
		time.Sleep(3 * time.Second)
		h.plateauCPU, h.plateauWall = cpuOf()-c1, time.Since(w1).Seconds()
		h.rss1 = rssKiB(pidS)
		if n == "holdfast" && last && *flagMemProf != "" {
			if f, err := os.Create(*flagMemProf); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		if n == "holdfast" {
			runtime.ReadMemStats(&ms)
			h.heap1, h.goroutines1 = ms.HeapInuse+ms.StackInuse, runtime.NumGoroutine()
		}
		if resp, err := http.Post(fakeURL+"/release", "text/plain", nil); err == nil {
			resp.Body.Close()
		}
		if _, err := lg.do(cmd{Op: "release"}); err != nil {
			return nil, err
		}
		r.hold[n] = h
		fmt.Fprintf(os.Stderr, "  hold %s: %d ok %d errors, RSS %+.0f KiB\n", n, h.ok, h.errs, h.rss1-h.rss0)
		time.Sleep(2 * time.Second)
	}

	// 2. Open loop, TTFB, every rate, the three paths back to back.
	metrics := hf + "/metrics"
	for ri, rate := range rates {
		for _, n := range targets {
			if err := setLimits(node, n == "holdfast-limits"); err != nil {
				return nil, err
			}
			var p phase
			ctx := context.Background()
			ta, _ := scrapeHist(ctx, metrics, "holdfast_turn_seconds", `namespace="account"`)
			fa, _ := scrapeHist(ctx, metrics, "holdfast_fsync_seconds", "")
			wa, _ := scrapeHist(ctx, metrics, "holdfast_commit_wait_seconds", "")
			ma, _ := scrapeHist(ctx, metrics, "holdfast_mailbox_depth", "")
			ba, _ := scrapeHist(ctx, metrics, "holdfast_commit_batch_writes", "")
			oa := scrapeCounter(ctx, metrics, "holdfast_overloaded_total", "")
			sfa := scrapeCounter(ctx, metrics, "holdfast_gateway_failures_total", `failure="settle_failed"`)
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			s0, n0, f0 := selfCPU(), procCPU(ngPID), procCPU(fakePID)
			// The phase -cpuprofile and -trace record.
			record := last && ri == len(rates)-1 && n == *flagProfPath
			var prof *os.File
			if record && *flagProf != "" {
				if prof, err = os.Create(*flagProf); err == nil {
					pprof.StartCPUProfile(prof)
				}
			}
			var tf *os.File
			if record && *flagTrace != "" {
				if tf, err = os.Create(*flagTrace); err == nil {
					trace.Start(tf)
				}
			}
			p.res, err = lg.do(cmd{Op: "open", URL: tg[n].url, Rate: rate, Warm: time.Second, Dur: *flagDur})
			if tf != nil {
				trace.Stop()
				tf.Close()
				if f, err := os.Open(*flagTrace); err == nil {
					r.path, err = analyzeTTFB(f)
					f.Close()
					if err != nil {
						return nil, fmt.Errorf("reading the trace: %w", err)
					}
					r.pathPhase = fmt.Sprintf("%s at %.0f/s", n, rate)
				}
			}
			if prof != nil {
				pprof.StopCPUProfile()
				prof.Close()
			}
			if err != nil {
				return nil, err
			}
			p.selfCPU, p.nginxCPU, p.fakeCPU = selfCPU()-s0, procCPU(ngPID)-n0, procCPU(fakePID)-f0
			runtime.ReadMemStats(&m1)
			p.mallocs, p.allocBytes = m1.Mallocs-m0.Mallocs, m1.TotalAlloc-m0.TotalAlloc
			if isHoldfast(n) {
				// Let the background settles drain, so that the next phase
				// does not pay for them.
				var tb histogram
				for i, prev := 0, -1.0; i < 100; i++ {
					time.Sleep(200 * time.Millisecond)
					tb, _ = scrapeHist(ctx, metrics, "holdfast_turn_seconds", `namespace="account"`)
					if len(tb.count) == 0 || tb.count[len(tb.count)-1] == prev {
						break
					}
					prev = tb.count[len(tb.count)-1]
				}
				fb, _ := scrapeHist(ctx, metrics, "holdfast_fsync_seconds", "")
				p.turnP50, p.turnN = tb.quantile(ta, 0.5)
				p.fsyncP50, _ = fb.quantile(fa, 0.5)
				wb, _ := scrapeHist(ctx, metrics, "holdfast_commit_wait_seconds", "")
				p.waitP50, p.waitN = wb.quantile(wa, 0.5)
				if p.waitN == 0 {
					p.waitP50 = 0 // no urgent write: no commit on the path
				}
				mb, _ := scrapeHist(ctx, metrics, "holdfast_mailbox_depth", "")
				bb, _ := scrapeHist(ctx, metrics, "holdfast_commit_batch_writes", "")
				p.mailboxP50, _ = mb.quantile(ma, 0.5)
				p.mailboxP99, _ = mb.quantile(ma, 0.99)
				p.batchP50, _ = bb.quantile(ba, 0.5)
				p.overloaded = scrapeCounter(ctx, metrics, "holdfast_overloaded_total", "") - oa
				p.settleFailed = scrapeCounter(ctx, metrics, "holdfast_gateway_failures_total", `failure="settle_failed"`) - sfa
			}
			if r.open[n] == nil {
				r.open[n] = map[float64]phase{}
			}
			r.open[n][rate] = p
			fmt.Fprintf(os.Stderr, "  open %s %.0f/s: p50 %s p99 %s done %d err %d dropped %d\n", n, rate, us(p.res.P50), us(p.res.P99), p.res.Done, p.res.Errors, p.res.Dropped)
		}
	}

	// 3. The system calls per stream of each proxy, at the first rate, in
	// phases of their own (perf slows what it traces).
	if last && *flagSyscalls {
		r.census, r.censusRate = map[string]census{}, rates[0]
		for _, n := range targets {
			pid := os.Getpid()
			switch {
			case n == "nginx":
				pid = ngPID
			case !isHoldfast(n):
				continue
			}
			if err := setLimits(node, n == "holdfast-limits"); err != nil {
				return nil, err
			}
			c, err := countSyscalls(dir, pid, func() (int64, error) {
				res, err := lg.do(cmd{Op: "open", URL: tg[n].url, Rate: rates[0], Dur: min(*flagDur, 5*time.Second)})
				return int64(res.Done + res.Errors), err
			})
			if err != nil {
				return nil, err
			}
			r.census[n] = c
			calls, _ := c.total()
			fmt.Fprintf(os.Stderr, "  syscalls %s: %d calls, %d streams %s\n", n, calls, c.streams, c.skipped)
			time.Sleep(time.Second) // let settles finish outside the next count
		}
	}

	// 4. Closed loop with rising concurrency: the streams/s ceiling.
	for _, n := range targets {
		if err := setLimits(node, n == "holdfast-limits"); err != nil {
			return nil, err
		}
		best, flat := 0.0, 0
		for _, conc := range []int{4, 8, 16, 32, 64, 128, 256} {
			s0, n0 := selfCPU(), procCPU(ngPID)
			res, err := lg.do(cmd{Op: "closed", URL: tg[n].url, Conc: conc, Warm: 500 * time.Millisecond, Dur: 2 * time.Second})
			if err != nil {
				return nil, err
			}
			row := ceilRow{conc: conc, res: res, lg: res.CPU}
			switch {
			case isHoldfast(n):
				row.cpu = selfCPU() - s0
			case n == "nginx":
				row.cpu = procCPU(ngPID) - n0
			}
			r.ceil[n] = append(r.ceil[n], row)
			fmt.Fprintf(os.Stderr, "  closed %s c=%d: %.0f/s err %d\n", n, conc, res.Rate, res.Errors)
			if res.Rate > best*1.03 {
				best, flat = max(best, res.Rate), 0
			} else if flat++; flat >= 2 {
				break
			}
		}
	}
	r.end, r.load1 = time.Now(), loadavg()
	return r, nil
}

func us(s float64) string { return fmt.Sprintf("%.0fµs", s*1e6) }

var _ = io.Discard
var _ = slog.LevelInfo
