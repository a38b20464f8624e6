package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

// ttfbPath is where the time between a request's arrival and its first
// response byte went in holdfast, reconstructed per request from a
// runtime/trace of the process: the connection goroutine's state changes
// and system calls, matched by the functions on their stacks. It depends on
// those names: net/http's server reading a request ((*connReader).Read,
// not its backgroundRead) and writing a response (checkConnErrorWriter),
// and gateway/h1's connection (pconn) writing the upstream request and
// reading the answer. A request whose goroutine never blocked on the
// upstream (the answer was already there) is not counted.
type ttfbPath struct {
	// Per request, in trace order.
	wait      []time.Duration // request bytes arrived (goroutine runnable) → running
	request   []time.Duration // running → the upstream request's write begins
	reqSys    []time.Duration // of request: in system calls
	upstream  []time.Duration // that write begins → the answer arrived (runnable)
	wait2     []time.Duration // answer arrived → running
	answer    []time.Duration // running → the first write to the client begins
	answerSys []time.Duration // of answer: in system calls
	total     []time.Duration // request bytes arrived → first write to the client
	// regions holds, per runtime/trace region the gateway marks (its
	// steps: gateway.read_body, gateway.admit, ...), the time spent in it
	// by each counted request that entered it.
	regions map[string][]time.Duration
}

// goTrack follows one goroutine through one request.
type goTrack struct {
	stage                  int // 0 idle, 1 request, 2 upstream, 3 answer
	blockedOn              int // what the goroutine last blocked on
	unblocked              trace.Time
	ready1, run1, upw      trace.Time
	ready2, run2, sysStart trace.Time
	sys1, sys2             time.Duration
	// Regions of the request under way: open ones by name, and the
	// time in each that ended.
	open     map[string]trace.Time
	inRegion map[string]time.Duration
}

const (
	blockedOther = iota
	blockedClient
	blockedUpstream
)

func stackHas(s trace.Stack, sub string) bool {
	for f := range s.Frames() {
		if strings.Contains(f.Func, sub) {
			return true
		}
	}
	return false
}

// analyzeTTFB reads a runtime/trace (Go 1.22 format and later).
func analyzeTTFB(r io.Reader) (*ttfbPath, error) {
	tr, err := trace.NewReader(r)
	if err != nil {
		return nil, err
	}
	p := &ttfbPath{regions: map[string][]time.Duration{}}
	gs := map[trace.GoID]*goTrack{}
	for {
		ev, err := tr.ReadEvent()
		if err == io.EOF {
			return p, nil
		}
		if err != nil {
			return nil, err
		}
		if k := ev.Kind(); k == trace.EventRegionBegin || k == trace.EventRegionEnd {
			if g := gs[ev.Goroutine()]; g != nil && g.stage != 0 {
				g.region(k == trace.EventRegionBegin, ev.Region().Type, ev.Time())
			}
			continue
		}
		if ev.Kind() != trace.EventStateTransition {
			continue
		}
		st := ev.StateTransition()
		if st.Resource.Kind != trace.ResourceGoroutine {
			continue
		}
		id := st.Resource.Goroutine()
		g := gs[id]
		if g == nil {
			g = &goTrack{}
			gs[id] = g
		}
		from, to := st.Goroutine()
		t := ev.Time()
		switch {
		case from == trace.GoRunning && to == trace.GoWaiting:
			switch {
			case stackHas(st.Stack, "net/http.(*connReader).Read") && !stackHas(st.Stack, "backgroundRead"):
				g.blockedOn = blockedClient
			case stackHas(st.Stack, "gateway/h1.(*pconn).Read"):
				g.blockedOn = blockedUpstream
			default:
				g.blockedOn = blockedOther
			}
		case from == trace.GoWaiting && to == trace.GoRunnable:
			g.unblocked = t
		case from == trace.GoRunnable && to == trace.GoRunning:
			switch {
			case g.blockedOn == blockedClient:
				g.stage, g.ready1, g.run1, g.sys1, g.sys2 = 1, g.unblocked, t, 0, 0
				g.open, g.inRegion = map[string]trace.Time{}, map[string]time.Duration{}
			case g.blockedOn == blockedUpstream && g.stage == 2:
				g.stage, g.ready2, g.run2 = 3, g.unblocked, t
			}
			g.blockedOn = blockedOther
		case from == trace.GoRunning && to == trace.GoSyscall:
			g.sysStart = t
			switch {
			case g.stage == 1 && stackHas(st.Stack, "gateway/h1.(*pconn).Write"):
				g.stage, g.upw = 2, t
			case g.stage == 3 && stackHas(st.Stack, "net/http.checkConnErrorWriter"):
				p.wait = append(p.wait, g.run1.Sub(g.ready1))
				p.request = append(p.request, g.upw.Sub(g.run1))
				p.reqSys = append(p.reqSys, g.sys1)
				p.upstream = append(p.upstream, g.ready2.Sub(g.upw))
				p.wait2 = append(p.wait2, g.run2.Sub(g.ready2))
				p.answer = append(p.answer, t.Sub(g.run2))
				p.answerSys = append(p.answerSys, g.sys2)
				p.total = append(p.total, t.Sub(g.ready1))
				for name, d := range g.inRegion {
					p.regions[name] = append(p.regions[name], d)
				}
				g.stage = 0
			}
		case from == trace.GoSyscall && to == trace.GoRunning:
			switch g.stage {
			case 1:
				g.sys1 += t.Sub(g.sysStart)
			case 3:
				g.sys2 += t.Sub(g.sysStart)
			}
		}
	}
}

// region notes a region's begin or end on the request under way; the time
// in it accumulates (a region entered twice, as on a retry, counts both).
func (g *goTrack) region(begin bool, name string, t trace.Time) {
	if begin {
		g.open[name] = t
		return
	}
	if b, ok := g.open[name]; ok {
		g.inRegion[name] += t.Sub(b)
		delete(g.open, name)
	}
}

// quantile of d (sorted in place).
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[int(q*float64(len(d)-1))]
}

// markdown writes the breakdown as a table of p50 and p99 per segment.
func (p *ttfbPath) markdown(w io.Writer) {
	fmt.Fprintf(w, "| segment (%d requests) | p50 | p99 |\n|---|---|---|\n", len(p.total))
	row := func(name string, d []time.Duration) {
		fmt.Fprintf(w, "| %s | %.1fµs | %.1fµs |\n", name, float64(quantile(d, .5))/1e3, float64(quantile(d, .99))/1e3)
	}
	row("request arrived → its goroutine runs (scheduler)", p.wait)
	row("→ upstream request write begins (read, parse, admit, build)", p.request)
	row("… of which in system calls", p.reqSys)
	row("→ the upstream's answer arrived (the upstream's time and loopback)", p.upstream)
	row("→ the goroutine runs again (scheduler)", p.wait2)
	row("→ the first write to the client begins (read, parse, relay)", p.answer)
	row("… of which in system calls", p.answerSys)
	row("**request arrived → first write to the client**", p.total)
	if len(p.regions) == 0 {
		return
	}
	names := make([]string, 0, len(p.regions))
	for name := range p.regions {
		names = append(names, name)
	}
	slices.Sort(names)
	fmt.Fprintf(w, "\nThe gateway's steps (runtime/trace regions) in the same requests:\n\n| region | requests | p50 | p99 |\n|---|---|---|---|\n")
	for _, name := range names {
		d := p.regions[name]
		fmt.Fprintf(w, "| %s | %d | %.1fµs | %.1fµs |\n", name, len(d), float64(quantile(d, .5))/1e3, float64(quantile(d, .99))/1e3)
	}
}
