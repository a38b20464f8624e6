package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/holdfast/holdfast/test/fakeupstream"
)

// raise sets RLIMIT_NOFILE's soft limit to the hard limit.
func raise() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
		return rl.Max
	}
	return 0
}

// captureStream asks fakeupstream for one realistic Anthropic stream and
// returns its bytes, so the dedicated fake replays exactly what it sends.
func captureStream() ([]byte, int, error) {
	fu := fakeupstream.New(fakeupstream.Options{})
	defer fu.Close()
	req, _ := http.NewRequest("POST", fu.URL()+"/v1/messages", strings.NewReader(string(reqBody)))
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, strings.Count(string(b), "event: "), err
}

// child is a re-executed copy of this binary in another mode.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startChild(args ...string) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	c := &child{cmd: exec.Command(exe, args...)}
	c.cmd.Stderr = os.Stderr
	if c.in, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.out = bufio.NewReaderSize(out, 1<<20)
	return c, c.cmd.Start()
}

func (c *child) stop() {
	c.in.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

func (c *child) do(m cmd) (result, error) {
	b, _ := json.Marshal(m)
	if _, err := c.in.Write(append(b, '\n')); err != nil {
		return result{}, err
	}
	line, err := c.out.ReadBytes('\n')
	if err != nil {
		return result{}, err
	}
	var r result
	return r, json.Unmarshal(line, &r)
}

// procCPU is the CPU seconds (user+system) of process pid.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return math.NaN()
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ
}

// rssKiB is VmRSS of pid ("self" for this process).
func rssKiB(pid string) float64 {
	b, _ := os.ReadFile("/proc/" + pid + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			v, _ := strconv.ParseFloat(strings.Fields(l)[1], 64)
			return v
		}
	}
	return math.NaN()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// nginx is the reference streaming proxy, a child process in the
// foreground (daemon off, master_process off: one process, one worker).
type nginx struct {
	cmd  *exec.Cmd
	addr string
	ver  string
}

func startNginx(dir, upstream string) (*nginx, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("nginx binary not found (install it: `apt-get install -y nginx` on Debian/Ubuntu)")
	}
	v, _ := exec.Command(bin, "-v").CombinedOutput()
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 19000; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream fake { server %[2]s; keepalive 256; }
    server {
        listen 127.0.0.1:%[3]d backlog=4096;
        location / {
            proxy_pass http://fake;
            proxy_buffering off;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, dir, upstream, port)
	p := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	n := &nginx{cmd: exec.Command(bin, "-c", p, "-p", dir, "-e", filepath.Join(dir, "error.log")), addr: fmt.Sprintf("127.0.0.1:%d", port), ver: strings.TrimSpace(string(v))}
	n.cmd.Stderr = os.Stderr
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	for i := 0; i < 100; i++ {
		if c, err := net.Dial("tcp", n.addr); err == nil {
			c.Close()
			return n, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.stop()
	return nil, fmt.Errorf("nginx did not start listening on %s (see %s/error.log)", n.addr, dir)
}

func (n *nginx) stop() {
	n.cmd.Process.Signal(syscall.SIGQUIT)
	done := make(chan struct{})
	go func() { n.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		n.cmd.Process.Kill()
		<-done
	}
}

// histogram is one Prometheus histogram's cumulative buckets.
type histogram struct {
	le    []float64
	count []float64
}

// scrapeHist reads histogram name (with label selector sel, e.g.
// `namespace="account"`, or "") from a /metrics endpoint.
func scrapeHist(ctx context.Context, url, name, sel string) (histogram, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return histogram{}, err
	}
	defer resp.Body.Close()
	var h histogram
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"_bucket{") || (sel != "" && !strings.Contains(l, sel)) {
			continue
		}
		i := strings.Index(l, `le="`)
		j := strings.Index(l[i+4:], `"`)
		le, _ := strconv.ParseFloat(l[i+4:i+4+j], 64)
		v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		h.le = append(h.le, le)
		h.count = append(h.count, v)
	}
	return h, sc.Err()
}

// scrapeCounter sums the series of a counter whose labels contain sel
// ("" for all; 0 when absent).
func scrapeCounter(ctx context.Context, url, name, sel string) float64 {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	sum := 0.0
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+" ") && !(strings.HasPrefix(l, name+"{") && strings.Contains(l, sel)) {
			continue
		}
		f, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		sum += f
	}
	return sum
}

// quantile of the observations between a (before) and b (after), linear
// inside a bucket as Prometheus' histogram_quantile does.
func (b histogram) quantile(a histogram, q float64) (float64, float64) {
	if len(b.le) == 0 {
		return math.NaN(), 0
	}
	d := make([]float64, len(b.count))
	for i := range d {
		d[i] = b.count[i]
		if i < len(a.count) {
			d[i] -= a.count[i]
		}
	}
	total := d[len(d)-1]
	if total <= 0 {
		return math.NaN(), 0
	}
	rank := q * total
	prevLe, prevC := 0.0, 0.0
	for i := range d {
		if d[i] >= rank {
			if math.IsInf(b.le[i], 1) {
				return prevLe, total
			}
			if d[i] == prevC {
				return b.le[i], total
			}
			return prevLe + (b.le[i]-prevLe)*(rank-prevC)/(d[i]-prevC), total
		}
		prevLe, prevC = b.le[i], d[i]
	}
	return math.NaN(), total
}
