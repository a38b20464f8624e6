package main

// The load engine (closed loop, or paced at a fixed offered rate), byte-identical in
// test/cmd/benchreport/loadgen.go and test/bench/gubernator/loadgen.go
// (neither module can import the other): keep the two the same, so both
// systems are driven and measured the same way. benchreport checks it.

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// flagRate is the -rate flag of both load generators' command lines (it is
// registered here so both binaries have it): the offered rate of a run
// whose LoadSpec.Rate is 0.
var flagRate = flag.Float64("rate", 0, "load: offered checks/s over all clients, paced; 0: closed loop (as fast as answers come)")

// LoadSpec is one load run: Clients closed-loop clients over Keys keys,
// measured for Duration after every key was touched once and Warmup.
// With Rate > 0 the clients are paced: each client's checks are scheduled
// at Clients/Rate intervals (with a random phase per client, within one
// call period: Batch intervals) and Key waits for the next scheduled time,
// so the offered load is Rate whatever the latency, as long as the clients
// keep up (a check sent more than one call period, Batch intervals and at
// least 1 ms, after its scheduled time counts as late; latency is measured
// from the actual send).
type LoadSpec struct {
	System    string        // "holdfast" or "gubernator"
	API       string        // which API, in words, for the report
	Clients   int           // concurrent clients, one connection each
	Keys      int           // distinct rate-limit keys
	Batch     int           // checks in flight per client (1: unary)
	Warmup    time.Duration // after every key was touched once
	Duration  time.Duration // the measured window
	MaxChecks int64         // bound on checks, warm-up included
	ServerPID int           // the server process, for its CPU time
	Rate      float64       // offered checks/s over all clients; 0: closed loop (-rate)
}

// LoadResult is what a load run emits as one JSON line.
type LoadResult struct {
	System        string  `json:"system"`
	API           string  `json:"api"`
	Clients       int     `json:"clients"`
	Keys          int     `json:"keys"`
	Batch         int     `json:"batch"`
	WallSeconds   float64 `json:"wall_s"`
	Checks        int64   `json:"checks"`
	Allowed       int64   `json:"allowed"`
	Errors        int64   `json:"errors"`
	FirstError    string  `json:"first_error,omitempty"`
	ChecksPerSec  float64 `json:"checks_per_s"`
	P50us         float64 `json:"p50_us"`
	P99us         float64 `json:"p99_us"`
	P999us        float64 `json:"p999_us"`
	MaxUs         float64 `json:"max_us"`
	LoadgenCPUSec float64 `json:"loadgen_cpu_s"`
	ServerCPUSec  float64 `json:"server_cpu_s"`
	OfferedPerSec float64 `json:"offered_per_s,omitempty"`
	LateChecks    int64   `json:"late_checks,omitempty"`
	Extra         string  `json:"extra,omitempty"`
}

// Client runs one client's loop: until ctx ends it takes keys from c.Key,
// checks them (c.Batch at a time in flight) and calls c.Done for each
// answer.
type Client func(ctx context.Context, c *ClientState) error

// ClientState is one client's key source and recorder.
type ClientState struct {
	ID    int
	Batch int
	eng   *engine
	warm  []string // keys this client touches first, once each
	rng   *rand.Rand
	lat   []int64 // ns, measured window only
	n     int64
	ok    int64
	warmd bool
	// Pacing (Rate > 0): the scheduled time of the next check, the
	// interval between this client's checks, and late sends (measured).
	next      time.Time
	interval  time.Duration
	lateAfter time.Duration
	late      int64
}

// Key returns the next key: first this client's share of every key, then
// uniformly random keys.
// With a fixed rate, Key first waits until the next check's scheduled time.
func (c *ClientState) Key() string {
	if c.interval > 0 {
		c.pace()
	}
	if len(c.warm) > 0 {
		k := c.warm[0]
		c.warm = c.warm[1:]
		return k
	}
	if !c.warmd {
		c.warmd = true
		c.eng.warmDone.Done()
	}
	return c.eng.keys[c.rng.IntN(len(c.eng.keys))]
}

// pace waits for the next scheduled check. A client behind schedule does
// not wait (it catches up), and counts the check as late when measuring.
func (c *ClientState) pace() {
	sched := c.next
	c.next = c.next.Add(c.interval)
	if d := time.Until(sched); d > 0 {
		time.Sleep(d)
	} else if -d > c.lateAfter && c.eng.measuring.Load() {
		c.late++
	}
}

// Done records one answered check that was sent at sent. Call it from one
// goroutine per client.
func (c *ClientState) Done(sent time.Time, allowed bool) {
	if c.eng.total.Add(1) > c.eng.spec.MaxChecks {
		c.eng.cancel()
	}
	if !c.eng.measuring.Load() {
		return
	}
	c.lat = append(c.lat, int64(time.Since(sent)))
	c.n++
	if allowed {
		c.ok++
	}
}

// Fail records an error; the run goes on (it is reported).
func (c *ClientState) Fail(err error) {
	if c.eng.errors.Add(1) == 1 {
		c.eng.firstErr.Store(err.Error())
	}
}

type engine struct {
	spec      LoadSpec
	keys      []string
	measuring atomic.Bool
	total     atomic.Int64
	errors    atomic.Int64
	firstErr  atomic.Value
	warmDone  sync.WaitGroup
	cancel    context.CancelFunc
}

// KeyName is the name of rate-limit key i.
func KeyName(i int) string { return "user-" + strconv.Itoa(i) }

// RunLoad runs spec with client and returns the measurements.
func RunLoad(spec LoadSpec, client Client) (LoadResult, error) {
	if spec.MaxChecks <= 0 {
		spec.MaxChecks = 200_000_000
	}
	if spec.Rate <= 0 {
		spec.Rate = *flagRate
	}
	var interval time.Duration
	if spec.Rate > 0 {
		interval = time.Duration(float64(spec.Clients) / spec.Rate * float64(time.Second))
	}
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), spec.Duration+spec.Warmup+2*time.Minute)
	defer cancel()
	e := &engine{spec: spec, cancel: cancel}
	for i := range spec.Keys {
		e.keys = append(e.keys, KeyName(i))
	}
	states := make([]*ClientState, spec.Clients)
	e.warmDone.Add(spec.Clients)
	for i := range states {
		st := &ClientState{ID: i, Batch: spec.Batch, eng: e, rng: rand.New(rand.NewPCG(uint64(i), 42)), interval: interval}
		if interval > 0 {
			// The phase spans a whole call period (a call goes out once
			// its Batch checks are due): a phase within one interval sent
			// every client's call in the same interval of each period, a
			// burst that made the latency of a batch queueing.
			period := time.Duration(max(spec.Batch, 1)) * interval
			st.next = t0.Add(time.Duration(st.rng.Float64() * float64(period)))
			st.lateAfter = max(time.Millisecond, period)
		}
		for k := i; k < spec.Keys; k += spec.Clients {
			st.warm = append(st.warm, e.keys[k])
		}
		states[i] = st
	}
	var wg sync.WaitGroup
	clientErrs := make(chan error, spec.Clients)
	for _, st := range states {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := client(ctx, st); err != nil && ctx.Err() == nil {
				clientErrs <- err
				cancel()
			}
		}()
	}
	warmed := make(chan struct{})
	go func() { e.warmDone.Wait(); close(warmed) }()
	select {
	case <-warmed:
	case <-ctx.Done():
	}
	select {
	case <-time.After(spec.Warmup):
	case <-ctx.Done():
	}
	cpu0, srv0 := selfCPU(), procCPU(spec.ServerPID)
	start := time.Now()
	e.measuring.Store(true)
	select {
	case <-time.After(spec.Duration):
	case <-ctx.Done():
	}
	e.measuring.Store(false)
	wall := time.Since(start)
	cpu1, srv1 := selfCPU(), procCPU(spec.ServerPID)
	cancel()
	wg.Wait()
	close(clientErrs)
	if err := <-clientErrs; err != nil {
		return LoadResult{}, err
	}

	r := LoadResult{System: spec.System, API: spec.API, Clients: spec.Clients, Keys: spec.Keys, Batch: spec.Batch,
		WallSeconds: wall.Seconds(), Errors: e.errors.Load(), LoadgenCPUSec: cpu1 - cpu0, ServerCPUSec: srv1 - srv0}
	if spec.Rate > 0 {
		r.OfferedPerSec = spec.Rate
	}
	if s, ok := e.firstErr.Load().(string); ok {
		r.FirstError = s
	}
	var lat []int64
	for _, st := range states {
		r.Checks += st.n
		r.Allowed += st.ok
		r.LateChecks += st.late
		lat = append(lat, st.lat...)
	}
	r.ChecksPerSec = float64(r.Checks) / wall.Seconds()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := int(p * float64(len(lat)-1))
		return float64(lat[i]) / 1e3
	}
	r.P50us, r.P99us, r.P999us, r.MaxUs = pct(0.50), pct(0.99), pct(0.999), pct(1)
	return r, nil
}

// selfCPU is this process's user+system CPU seconds (getrusage).
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// procCPU is a process's user+system CPU seconds from /proc/PID/stat
// (fields 14 and 15, in clock ticks of 1/100 s on Linux).
func procCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// The command name (field 2) may hold spaces: count from its ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

// EmitResult prints r as one JSON line on stdout.
func EmitResult(r LoadResult) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Printf("RESULT %s\n", b)
	return err
}
