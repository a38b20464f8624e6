//go:build linux

// Package e2e runs the real holdfast and holdctl binaries as child
// processes: the tour a new user follows, crash and graceful-stop
// durability, data-directory refusals and bad input.
//
// The binaries are built once per test run (CGO_ENABLED=0, without -race)
// into a temporary directory. Every node is started on loopback port 0 with
// its own data directory; its bound addresses are read from the "serving"
// log line, so nodes never race other processes for a port. Every wait is a
// bounded poll on a condition; child processes are killed (their whole
// process group) in t.Cleanup, whatever the outcome of the test.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Binaries are the paths of the built holdfast and holdctl.
type Binaries struct {
	Holdfast string
	Holdctl  string
}

var (
	buildOnce sync.Once
	buildDir  string
	bins      Binaries
	buildErr  error
)

// Build builds both binaries once per test run and returns their paths.
// A build failure fails (not skips) every test that needs them. With
// $HOLDFAST_E2E_BINDIR set, the binaries already in that directory are
// used instead.
func Build(t testing.TB) Binaries {
	t.Helper()
	buildOnce.Do(func() {
		if dir := os.Getenv("HOLDFAST_E2E_BINDIR"); dir != "" {
			bins = Binaries{Holdfast: filepath.Join(dir, "holdfast"), Holdctl: filepath.Join(dir, "holdctl")}
			return
		}
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		buildDir, err = os.MkdirTemp("", "holdfast-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		start := time.Now()
		cmd := exec.Command(goTool(), "build", "-trimpath", "-o", buildDir+string(os.PathSeparator), "./cmd/holdfast", "./cmd/holdctl")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/holdfast ./cmd/holdctl: %v\n%s", err, out)
			return
		}
		bins = Binaries{Holdfast: filepath.Join(buildDir, "holdfast"), Holdctl: filepath.Join(buildDir, "holdctl")}
		fmt.Fprintf(os.Stderr, "e2e: built holdfast and holdctl in %v\n", time.Since(start).Round(time.Millisecond))
	})
	if buildErr != nil {
		t.Fatalf("building the binaries: %v", buildErr)
	}
	return bins
}

// RemoveBuilds deletes the built binaries (call from TestMain).
func RemoveBuilds() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	// go test puts its toolchain's bin first on PATH; fall back to the
	// standard install location.
	return "/usr/local/go/bin/go"
}

// moduleRoot finds the directory holding go.mod, upwards from the working
// directory (go test runs in the package directory).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Seed returns the random seed of a test: $HOLDFAST_E2E_SEED when set, else
// the clock. It is logged so that a failing run can be replayed.
func Seed(t testing.TB) (uint64, *rand.Rand) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("HOLDFAST_E2E_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("HOLDFAST_E2E_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (replay with HOLDFAST_E2E_SEED=%d)", seed, seed)
	return seed, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// lockedBuffer collects a child's output; safe for concurrent use.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// NodeOptions say how to start a node. The zero value is a default node on
// a fresh data directory.
type NodeOptions struct {
	DataDir string   // "" : a new t.TempDir()
	Config  string   // YAML; written to a file passed with --config
	Args    []string // extra `serve` arguments
}

// Node is one running holdfast process.
type Node struct {
	t        testing.TB
	bins     Binaries
	opts     NodeOptions
	DataDir  string
	HTTPAddr string
	GRPCAddr string
	HTTP     *http.Client

	cmd    *exec.Cmd
	out    *lockedBuffer
	exited chan struct{}
	state  *os.ProcessState
}

// StartNode starts a node and waits until /readyz answers 200. It fails
// the test if the node exits or does not become ready within 30 s.
func StartNode(t testing.TB, opts NodeOptions) *Node {
	t.Helper()
	n := newNode(t, opts)
	n.start()
	return n
}

// LaunchNode starts a node and waits only for its bound addresses (its
// "serving" log line), not for /readyz: a cluster member is not ready
// before its peers are up. WaitReady waits for the rest.
func LaunchNode(t testing.TB, opts NodeOptions) *Node {
	t.Helper()
	n := newNode(t, opts)
	n.launch()
	return n
}

func newNode(t testing.TB, opts NodeOptions) *Node {
	t.Helper()
	b := Build(t)
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(t.TempDir(), "data")
	}
	n := &Node{t: t, bins: b, opts: opts, DataDir: opts.DataDir}
	n.HTTP = &http.Client{
		Timeout: 20 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: 128, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
			DisableCompression: true,
		},
	}
	t.Cleanup(n.HTTP.CloseIdleConnections)
	return n
}

// Restart starts the node again on the same data directory, after it has
// exited (Kill, or Term and WaitExit).
func (n *Node) Restart() {
	n.t.Helper()
	select {
	case <-n.exited:
	default:
		n.t.Fatalf("Restart of a node that is still running (pid %d)", n.cmd.Process.Pid)
	}
	n.HTTP.CloseIdleConnections()
	n.start()
}

// start launches the process and waits until /readyz answers 200.
func (n *Node) start() {
	n.t.Helper()
	n.launch()
	n.WaitReady(30 * time.Second)
}

// launch starts the process and waits for its bound addresses.
func (n *Node) launch() {
	t := n.t
	t.Helper()
	args := []string{"serve", "--data-dir", n.DataDir, "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0"}
	if n.opts.Config != "" {
		p := filepath.Join(t.TempDir(), "holdfast.yaml")
		if err := os.WriteFile(p, []byte(n.opts.Config), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", p)
	}
	args = append(args, n.opts.Args...)
	n.out = &lockedBuffer{}
	n.cmd = exec.Command(n.bins.Holdfast, args...)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	// Its own process group (so a kill reaches anything it starts), and
	// killed if the test process dies first.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	n.exited = make(chan struct{})
	n.state = nil
	n.HTTPAddr, n.GRPCAddr = "", ""
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting holdfast: %v", err)
	}
	cmd, exited, out := n.cmd, n.exited, n.out
	go func() {
		cmd.Wait()
		n.state = cmd.ProcessState
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				t.Errorf("holdfast pid %d did not die after SIGKILL", cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("holdfast pid %d output (tail):\n%s", cmd.Process.Pid, tail(out.String(), 6000))
		}
	})

	// The bound addresses come from the "serving" log line.
	deadline := time.Now().Add(30 * time.Second)
	for n.HTTPAddr == "" {
		select {
		case <-exited:
			t.Fatalf("holdfast exited during start-up (%v):\n%s", n.state, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("holdfast did not log its serving addresses within 30s:\n%s", out.String())
		}
		n.HTTPAddr, n.GRPCAddr = servingAddrs(out.String())
		if n.HTTPAddr == "" {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// WaitReady waits until GET /readyz answers 200; it fails the test if the
// process exits first or limit passes.
func (n *Node) WaitReady(limit time.Duration) {
	t := n.t
	t.Helper()
	exited, out := n.exited, n.out
	WaitFor(t, limit, "GET /readyz = 200 on "+n.HTTPAddr, func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("holdfast exited before ready (%v):\n%s", n.state, out.String())
		default:
		}
		resp, err := n.HTTP.Get(n.URL("/readyz"))
		if err != nil {
			return false, err.Error()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200, fmt.Sprintf("%d %s", resp.StatusCode, body)
	})
}

// servingAddrs finds the addresses in the JSON "holdfast node serving" line.
func servingAddrs(logs string) (httpAddr, grpcAddr string) {
	for _, line := range strings.Split(logs, "\n") {
		if !strings.Contains(line, "holdfast node serving") {
			continue
		}
		var m struct {
			Msg      string `json:"msg"`
			HTTPAddr string `json:"http_addr"`
			GRPCAddr string `json:"grpc_addr"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.HTTPAddr != "" && m.GRPCAddr != "" {
			return m.HTTPAddr, m.GRPCAddr
		}
	}
	return "", ""
}

// Pid is the running process's id.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// Logs returns everything the current process wrote so far.
func (n *Node) Logs() string { return n.out.String() }

// URL is the node's HTTP URL for path.
func (n *Node) URL(path string) string { return "http://" + n.HTTPAddr + path }

// Kill sends SIGKILL to the node's process group and waits for it to die.
func (n *Node) Kill() {
	n.t.Helper()
	syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		n.t.Fatalf("holdfast pid %d still running 10s after SIGKILL", n.cmd.Process.Pid)
	}
}

// Term sends SIGTERM to the node process (not waiting).
func (n *Node) Term() {
	n.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		n.t.Fatalf("SIGTERM: %v", err)
	}
}

// Exited is closed when the process has exited.
func (n *Node) Exited() <-chan struct{} { return n.exited }

// WaitExit waits at most d for the process to exit and returns its exit
// code; ok is false if it was still running (it is then left running).
func (n *Node) WaitExit(d time.Duration) (code int, ok bool) {
	select {
	case <-n.exited:
		return n.state.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

// Result is the outcome of one run of a binary.
type Result struct {
	Args     []string
	Stdout   string
	Stderr   string
	Code     int // exit status; -1 if killed by a signal or not run
	Elapsed  time.Duration
	TimedOut bool
}

func (r Result) String() string {
	return fmt.Sprintf("%q: exit %d after %v\nstdout: %s\nstderr: %s", r.Args, r.Code, r.Elapsed.Round(time.Millisecond), r.Stdout, r.Stderr)
}

// run runs a binary with a bound on its run time; on expiry its process
// group is killed and TimedOut is set.
func run(t testing.TB, limit time.Duration, bin string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	r := Result{Args: append([]string{filepath.Base(bin)}, args...), Stdout: stdout.String(), Stderr: stderr.String(), Elapsed: time.Since(start), Code: -1}
	if cmd.ProcessState != nil {
		r.Code = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		r.TimedOut = true
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) && !r.TimedOut {
		t.Fatalf("running %s: %v", bin, err)
	}
	return r
}

// Ctl runs holdctl against the node's gRPC address; t is the calling
// (sub)test.
func (n *Node) Ctl(t testing.TB, args ...string) Result {
	t.Helper()
	return run(t, 30*time.Second, n.bins.Holdctl, append([]string{"--addr", n.GRPCAddr}, args...)...)
}

// RunHoldfast runs the holdfast binary to completion (at most limit).
func RunHoldfast(t testing.TB, limit time.Duration, args ...string) Result {
	t.Helper()
	return run(t, limit, Build(t).Holdfast, args...)
}

// HTTPResult is one HTTP exchange.
type HTTPResult struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r HTTPResult) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// Do sends one request to the node and reads the whole reply.
func (n *Node) Do(method, path, body string, header ...string) (HTTPResult, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, n.URL(path), rd)
	if err != nil {
		return HTTPResult{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := n.HTTP.Do(req)
	if err != nil {
		return HTTPResult{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return HTTPResult{}, err
	}
	return HTTPResult{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// MustDo is Do failing t (the calling test) on a transport error.
func (n *Node) MustDo(t testing.TB, method, path, body string, header ...string) HTTPResult {
	t.Helper()
	r, err := n.Do(method, path, body, header...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// WaitFor polls cond every 50 ms until it holds, failing the test after
// limit with the last detail cond reported. A condition, never a timing
// assertion: limit is a generous "did not happen" bound.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s", limit, what, detail)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DecodeJSON unmarshals b into v, failing the test with the text on error.
func DecodeJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %q: %v", b, err)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
