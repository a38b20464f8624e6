package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// census is one proxy's system calls over one open-loop phase, counted by
// `perf trace -s` attached to its process (every thread). Counting is all
// it is for: perf slows the traced process, so the phase's latencies are
// not reported, and it runs after the measured phases.
type census struct {
	streams int64
	calls   map[string]int64
	errs    map[string]int64
	// skipped says why there is no count (no perf, not permitted, ...).
	skipped string
}

func (c census) total() (calls, errs int64) {
	for k, v := range c.calls {
		calls += v
		errs += c.errs[k]
	}
	return calls, errs
}

// names returns the system calls by count, highest first.
func (c census) names() []string {
	var ns []string
	for k := range c.calls {
		ns = append(ns, k)
	}
	sort.Slice(ns, func(i, j int) bool {
		if c.calls[ns[i]] != c.calls[ns[j]] {
			return c.calls[ns[i]] > c.calls[ns[j]]
		}
		return ns[i] < ns[j]
	})
	return ns
}

// perfLine is one row of perf trace's summary table:
// "   write   3601   0   145.000 ...": name, calls, errors.
var perfLine = regexp.MustCompile(`^\s+([a-z_0-9]+)\s+(\d+)\s+(\d+)\s+[\d.]+\s`)

// countSyscalls runs phase with `perf trace -s -p pid` attached and returns
// the system calls of pid's threads during it. perf is given three
// seconds to attach before the phase starts (it prints nothing when it
// has; on a busy machine one second was not always enough, and the first
// second's streams went uncounted). The idle process's calls in that time
// are counted too: a few hundred, against tens of thousands in the phase.
func countSyscalls(dir string, pid int, phase func() (streams int64, err error)) (census, error) {
	c := census{calls: map[string]int64{}, errs: map[string]int64{}}
	perf, err := exec.LookPath("perf")
	if err != nil {
		c.skipped = "perf is not installed (Debian: apt-get install -y linux-perf)"
		return c, nil
	}
	out := filepath.Join(dir, fmt.Sprintf("perf-%d.txt", pid))
	cmd := exec.Command(perf, "trace", "-s", "-o", out, "-p", strconv.Itoa(pid))
	cmd.Stderr = nil
	if err := cmd.Start(); err != nil {
		c.skipped = "perf trace: " + err.Error()
		return c, nil
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		c.skipped = fmt.Sprintf("perf trace exited at once (%v): kernel.perf_event_paranoid or tracefs not available", err)
		return c, nil
	case <-time.After(3 * time.Second):
	}
	c.streams, err = phase()
	_ = cmd.Process.Signal(syscall.SIGINT)
	<-exited
	if err != nil {
		return c, err
	}
	f, err := os.Open(out)
	if err != nil {
		c.skipped = "perf trace wrote no summary"
		return c, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := perfLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		n, _ := strconv.ParseInt(m[2], 10, 64)
		e, _ := strconv.ParseInt(m[3], 10, 64)
		c.calls[m[1]] += n
		c.errs[m[1]] += e
	}
	if len(c.calls) == 0 {
		c.skipped = "perf trace counted nothing"
	}
	return c, sc.Err()
}
