//go:build chaos

package chaos

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestComposeFile runs deploy/docker-compose.yml as a user would (the
// image built by deploy/Dockerfile, the default 1024 partitions, mTLS from
// `holdfast certs init --keep`), writes through one node, reads through
// another, then stops a node with SIGTERM: it must hand off every
// partition before it exits (a clean drain), and nothing written is lost;
// started again, it rejoins and serves every key.
func TestComposeFile(t *testing.T) {
	if bin.skipped != "" {
		t.Skip(bin.skipped)
	}
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("no docker-compose here")
	}
	root := moduleRoot(t)
	ctxDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ctxDir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"holdfast", "holdctl"} {
		data, err := os.ReadFile(filepath.Join(bin.dir, b))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctxDir, "bin", b), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	image := "holdfast-chaos-compose:" + randHex(6)
	docker(t, "build", "-q", "-t", image, "-f", filepath.Join(root, "deploy", "Dockerfile"), ctxDir)
	t.Cleanup(func() { dockerErr("rmi", "-f", image) })

	project := "hfchaos" + randHex(4)
	env := append(os.Environ(), "HOLDFAST_IMAGE="+image)
	var httpPorts []string
	for i := 1; i <= 3; i++ {
		h, g := freePort(t), freePort(t)
		httpPorts = append(httpPorts, h)
		env = append(env, fmt.Sprintf("HOLDFAST_HTTP_%d=%s", i, h), fmt.Sprintf("HOLDFAST_GRPC_%d=%s", i, g))
	}
	compose := func(args ...string) (string, error) {
		cmd := exec.Command("docker-compose", append([]string{"-p", project, "-f", filepath.Join(root, "deploy", "docker-compose.yml")}, args...)...)
		cmd.Env = env
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := compose("logs", "--tail", "60")
			t.Logf("compose logs:\n%s", out)
		}
		compose("down", "-v", "--timeout", "5")
	})
	if out, err := compose("up", "-d", "--no-build"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	c := &cluster{t: t} // for its HTTP helpers; the nodes are reached through the published ports
	c.http = c.httpClient()
	get := func(i int, path string, hdr ...string) result {
		return c.doURL("http://127.0.0.1:"+httpPorts[i]+path, "GET", "", hdr...)
	}
	c.waitFor(120*time.Second, "every node ready", func() error {
		for i := range 3 {
			if r := get(i, "/readyz"); r.err != nil || r.status != 200 {
				return fmt.Errorf("node-%d: %v", i+1, r)
			}
		}
		return nil
	})
	const n = 40
	for k := range n {
		r := c.doURL(fmt.Sprintf("http://127.0.0.1:%s/v1/actors/kv/app%d/storage/v", httpPorts[0], k), "PUT", fmt.Sprintf("value-%d", k),
			"Authorization", "Bearer dev-token-change-me", "Idempotency-Key", fmt.Sprintf("compose-%d", k))
		if r.err != nil || r.status/100 != 2 {
			t.Fatalf("put app%d through node-1: %v", k, r)
		}
	}
	readAll := func(via int) {
		t.Helper()
		for k := range n {
			r := get(via, fmt.Sprintf("/v1/actors/kv/app%d/storage/v", k), "Authorization", "Bearer dev-token-change-me")
			if r.err != nil || r.status != 200 || r.body != fmt.Sprintf("value-%d", k) {
				t.Fatalf("get app%d through node-%d: %v", k, via+1, r)
			}
		}
	}
	readAll(2)

	start := time.Now()
	if out, err := compose("stop", "--timeout", "60", "node-2"); err != nil {
		t.Fatalf("docker-compose stop node-2: %v\n%s", err, out)
	}
	t.Logf("node-2 stopped (SIGTERM, drain) in %v", time.Since(start).Round(time.Millisecond))
	logs, _ := compose("logs", "--no-color", "node-2")
	if !strings.Contains(logs, `"msg":"holdfast node stopped","node_id":"node-2","err":null`) {
		t.Fatalf("node-2 did not stop cleanly (drain incomplete?); its last lines:\n%s", tail(logs, 15))
	}
	readAll(0)
	readAll(2)

	// Back on its volume (a rolling restart's second half): it rejoins,
	// takes its share back by handoff, and serves every key again.
	start = time.Now()
	if out, err := compose("start", "node-2"); err != nil {
		t.Fatalf("docker-compose start node-2: %v\n%s", err, out)
	}
	c.waitFor(120*time.Second, "node-2 ready again", func() error {
		if r := get(1, "/readyz"); r.err != nil || r.status != 200 {
			return fmt.Errorf("%v", r)
		}
		return nil
	})
	t.Logf("node-2 ready again %v after its start", time.Since(start).Round(time.Millisecond))
	readAll(1)
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// freePort returns a loopback TCP port free at the time of the call.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
