// Command clusterbench measures holdfast's cluster figures (issue 4,
// Performance) on an in-process cluster (test/harness: real embedded NATS
// JetStream, real memberlist gossip over loopback, real gRPC between nodes,
// real bbolt files), every figure as a ratio against a baseline measured in
// the same run, and writes them to a Markdown report:
//
//  1. forwarded call vs local call on loopback: kv get and ratelimit take
//     on a 3-node cluster entering the owner's router (in-process) vs a
//     non-owner's (forwarded over gRPC), 1, 16 and 64 callers; and the
//     batching effect (64 forwarded callers against 1);
//  2. handoff while a 4th node joins under load: per moved partition the
//     longest call during the join, against the partitions that did not
//     move (same window); time from Add to a stable ring;
//  3. failover after an in-process crash of a ratelimit key's owner
//     (on_owner_loss reset), N runs, against the configured TTL + ε;
//  4. ratelimit checks/s through every node of a 3-node cluster vs the same
//     load on one non-clustered node (measured before and after the
//     cluster, to bracket drift);
//  5. one hot ratelimit key taken by callers through every node of a
//     3-node cluster (its own cluster): unsplit vs split into hot_shards
//     shards with allowances, and split without allowances, same load.
//
// Nothing here is a test: no figure fails the run. The harness takes a
// testing.TB; benchTB (tb.go) is a small one for a program.
//
// Usage:
//
//	go run ./test/cmd/clusterbench -out docs/BENCHMARKS-cluster.md
//	go run ./test/cmd/clusterbench -only forward -out /tmp/c.md
//	go run ./test/cmd/clusterbench -only hot -out /tmp/hot.md
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/holdfast/holdfast/test/internal/benchenv"
)

type options struct {
	out            string
	only           map[string]bool
	partitions     int
	ttl, epsilon   time.Duration
	renew          time.Duration
	warmup, window time.Duration
	callers        int
	keys           int
	handoffCallers int
	failoverRuns   int
	reps           int
	joins          int
}

func main() {
	var o options
	only := flag.String("only", "forward,throughput,handoff,failover,hot", "figures to run, comma-separated: forward, throughput, handoff, failover, hot")
	flag.StringVar(&o.out, "out", "docs/BENCHMARKS-cluster.md", "report to write")
	flag.IntVar(&o.partitions, "partitions", 128, "P per placement group (the cluster has 2P ownership partitions)")
	flag.DurationVar(&o.ttl, "ttl", 3*time.Second, "lease TTL")
	flag.DurationVar(&o.epsilon, "epsilon", 300*time.Millisecond, "lease ε")
	flag.DurationVar(&o.renew, "renew", 500*time.Millisecond, "lease renewal interval")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "warm-up of each load run")
	flag.DurationVar(&o.window, "window", 1500*time.Millisecond, "measured window of each load run")
	flag.IntVar(&o.callers, "callers", 64, "callers of the checks/s figure")
	flag.IntVar(&o.keys, "keys", 10_000, "ratelimit keys of the checks/s figure")
	flag.IntVar(&o.handoffCallers, "handoff-callers", 32, "callers during the join")
	flag.IntVar(&o.failoverRuns, "failover-runs", 20, "crash runs")
	flag.IntVar(&o.joins, "joins", 2, "nodes joining one after the other under load (3→4, 4→5, ...)")
	flag.IntVar(&o.reps, "reps", 3, "repetitions of the forward and checks/s sweeps (medians reported)")
	flag.Parse()
	o.only = map[string]bool{}
	for _, f := range strings.Split(*only, ",") {
		o.only[strings.TrimSpace(f)] = true
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "clusterbench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "clusterbench %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

type report struct {
	o                 options
	args              []string
	started, finished time.Time
	machine           machine

	clusterStart time.Duration
	forward      []fwdRow
	forwardErr   error
	tput         *tputFigure
	tputErr      error
	handoff      []*handoffFigure
	handoffErr   error
	failover     []failoverRun
	failoverErr  error
	failoverUp   time.Duration
	hot          *hotFigure
	hotErr       error
	// others: cores busy with other processes during each figure.
	others map[string]float64
}

// noise runs f and records the cores other processes used meanwhile.
func (r *report) noise(figure string, f func()) {
	a := snapCPU()
	f()
	r.others[figure] = benchenv.OthersCores(a, snapCPU())
}

func run(o options) error {
	root, err := benchenv.ModuleRoot()
	if err != nil {
		return err
	}
	if err := os.Chdir(root); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "clusterbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	r := &report{o: o, args: os.Args[1:], started: time.Now(), machine: describeMachine(), others: map[string]float64{}}
	logf("machine: %d CPUs, %s, %s; GOMAXPROCS %d", r.machine.nproc, r.machine.cpu, r.machine.goVersion, runtime.GOMAXPROCS(0))
	sink := newLogSink()

	if o.only["forward"] || o.only["throughput"] || o.only["handoff"] {
		err := runSection("cluster", tmp, func(t *benchTB) error {
			t0 := time.Now()
			c := newCluster(t, 3, o, sink, "memory")
			r.clusterStart = time.Since(t0)
			logf("3-node cluster stable in %v", r.clusterStart.Round(time.Millisecond))
			if o.only["forward"] {
				r.noise("forward", func() { r.forward, r.forwardErr = measureForward(c, o) })
			}
			if o.only["throughput"] {
				r.noise("throughput", func() { r.tput, r.tputErr = measureThroughput(t, c, o) })
			}
			if o.only["handoff"] {
				r.noise("handoff", func() { r.handoff, r.handoffErr = measureHandoff(c, o, sink) })
			}
			return nil
		})
		if err != nil {
			logf("%v", err)
			for _, e := range []*error{&r.forwardErr, &r.tputErr, &r.handoffErr} {
				if *e == nil {
					*e = err
				}
			}
		}
	}
	if o.only["failover"] {
		err := runSection("failover", tmp, func(t *benchTB) error {
			t0 := time.Now()
			c := newCluster(t, 3, o, sink, "memory")
			r.failoverUp = time.Since(t0)
			r.noise("failover", func() { r.failover, r.failoverErr = measureFailover(c, o) })
			return nil
		})
		if err != nil && r.failoverErr == nil {
			r.failoverErr = err
		}
	}
	if o.only["hot"] {
		err := runSection("hot", tmp, func(t *benchTB) error {
			c := newCluster(t, 3, o, sink, "memory", configureHot)
			r.noise("hot", func() { r.hot, r.hotErr = measureHot(c, o) })
			return nil
		})
		if err != nil && r.hotErr == nil {
			r.hotErr = err
		}
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
	logf("wrote %s in %v", o.out, r.finished.Sub(r.started).Round(time.Second))
	return nil
}

type machine struct {
	nproc                          int
	cpu, goVersion, kernel, commit string
	loadStart, loadEnd             string
	cpu0                           benchenv.CPUSnap
	others                         float64 // cores busy with other processes during the run, on average
}

func describeMachine() machine {
	return machine{nproc: runtime.NumCPU(), cpu: benchenv.CPUModel(), goVersion: benchenv.GoVersion(), kernel: benchenv.Kernel(),
		commit: benchenv.Commit(), loadStart: benchenv.LoadAvg()}
}
