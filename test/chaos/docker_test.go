//go:build chaos

package chaos

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The cluster's short leases, so that the suite runs in minutes.
const (
	leaseTTL     = 3 * time.Second
	leaseEpsilon = 300 * time.Millisecond
)

// chaosToken is the API token of the chaos cluster's nodes (they bind
// beyond loopback, so every API needs one).
const chaosToken = "chaos-suite-token"

// bin holds the static binaries, built once for the package.
var bin struct {
	dir     string // holdfast, holdctl, Dockerfile
	image   string
	skipped string // why the suite cannot run here
}

func TestMain(m *testing.M) {
	code := func() int {
		if err := exec.Command("docker", "info").Run(); err != nil {
			bin.skipped = "no Docker Engine here (docker info: " + err.Error() + ")"
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "holdfast-chaos-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		bin.dir = dir
		if err := buildImage(dir); err != nil {
			fmt.Fprintln(os.Stderr, "chaos: building the image:", err)
			return 1
		}
		defer exec.Command("docker", "rmi", "-f", bin.image).Run()
		return m.Run()
	}()
	os.Exit(code)
}

// buildImage builds bin/holdfast and holdctl statically and an image FROM
// scratch holding the server.
func buildImage(dir string) error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return err
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	for _, cmd := range []string{"holdfast", "holdctl"} {
		c := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, cmd), "./cmd/"+cmd)
		c.Dir = root
		c.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := c.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", cmd, err, b)
		}
	}
	dockerfile := "FROM scratch\nCOPY holdfast /holdfast\nWORKDIR /data\nENTRYPOINT [\"/holdfast\", \"serve\", \"--config\", \"/etc/holdfast.yaml\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return err
	}
	bin.image = "holdfast-chaos:" + randHex(6)
	c := exec.Command("docker", "build", "-q", "-t", bin.image, ".")
	c.Dir = dir
	if b, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("docker build: %v\n%s", err, b)
	}
	return nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// docker runs the docker CLI, failing t on an error.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := dockerErr(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func dockerErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	return strings.TrimSpace(string(b)), err
}

// cluster is three holdfast containers on one private network.
type cluster struct {
	t      *testing.T
	net    string
	prefix string // container name prefix
	ips    []string
	ids    []string
	cfgDir string
	http   *http.Client
}

const nodes = 3

// startCluster creates the network (a random /24 in 10.0.0.0/8, retried
// on a clash with an existing network) and the three containers, and
// waits until every node is ready.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	if bin.skipped != "" {
		t.Skip(bin.skipped)
	}
	c := &cluster{t: t, prefix: "holdfast-chaos-" + randHex(4), cfgDir: t.TempDir()}
	c.http = c.httpClient()
	c.net = c.prefix
	var subnet string
	for try := 0; ; try++ {
		b := make([]byte, 2)
		rand.Read(b)
		subnet = fmt.Sprintf("10.%d.%d", 100+int(b[0])%150, b[1])
		out, err := dockerErr("network", "create", "--driver", "bridge", "--subnet", subnet+".0/24", c.net)
		if err == nil {
			break
		}
		if try == 10 {
			t.Fatalf("docker network create: %v\n%s", err, out)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, id := range c.ids {
				out, _ := dockerErr("logs", "--tail", "80", c.container(id))
				t.Logf("--- %s (last 80 lines) ---\n%s", id, out)
			}
		}
		for _, id := range c.ids {
			dockerErr("rm", "-f", "-v", c.container(id))
		}
		dockerErr("network", "rm", c.net)
	})
	for i := range nodes {
		c.ids = append(c.ids, fmt.Sprintf("node-%d", i+1))
		c.ips = append(c.ips, fmt.Sprintf("%s.%d", subnet, 11+i))
	}
	for i := range nodes {
		cfg := filepath.Join(c.cfgDir, c.ids[i]+".yaml")
		if err := os.WriteFile(cfg, []byte(c.config(i)), 0o644); err != nil {
			t.Fatal(err)
		}
		docker(t, "run", "-d", "--name", c.container(c.ids[i]), "--hostname", c.ids[i],
			"--network", c.net, "--ip", c.ips[i], "--tmpfs", "/tmp",
			"-v", cfg+":/etc/holdfast.yaml:ro", bin.image)
	}
	for i := range nodes {
		c.waitReady(i, 90*time.Second)
	}
	c.waitFor(60*time.Second, "every node to see three serving members", func() error {
		for i := range nodes {
			var st struct {
				Members []struct {
					NodeID string `json:"node_id"`
					State  string `json:"state"`
				} `json:"members"`
			}
			if err := c.ctlJSON(i, &st, "status"); err != nil {
				return err
			}
			serving := 0
			for _, m := range st.Members {
				if m.State == "serving" {
					serving++
				}
			}
			if serving != nodes {
				return fmt.Errorf("%s sees %d serving members", c.ids[i], serving)
			}
		}
		return nil
	})
	c.waitStable()
	return c
}

// waitStable waits until every node's ring has every partition with its
// desired owner (no move pending, none orphaned), so that a scenario's
// fault, not a rebalance still under way, moves the key it watches.
func (c *cluster) waitStable() {
	c.t.Helper()
	c.waitFor(90*time.Second, "every partition at its desired owner in every node's view", func() error {
		for i := range nodes {
			var ring struct {
				Partitions []struct {
					Partition uint32 `json:"partition"`
					Owner     string `json:"owner"`
					Desired   string `json:"desired"`
					Orphaned  bool   `json:"orphaned"`
				} `json:"partitions"`
			}
			if err := c.ctlJSON(i, &ring, "ring"); err != nil {
				return err
			}
			for _, p := range ring.Partitions {
				if p.Owner == "" || p.Orphaned || p.Owner != p.Desired {
					return fmt.Errorf("%s: partition %d owner %q desired %q orphaned %v", c.ids[i], p.Partition, p.Owner, p.Desired, p.Orphaned)
				}
			}
		}
		return nil
	})
}

func (c *cluster) container(id string) string { return c.prefix + "-" + id }

// config is node i's YAML: every listener on the container's address,
// short leases so the suite runs in minutes, a kv namespace that resets on
// owner loss beside the default (wait) one.
func (c *cluster) config(i int) string {
	var join []string
	for j := range nodes {
		if j != i {
			join = append(join, fmt.Sprintf("%q", c.ips[j]+":7946"))
		}
	}
	return fmt.Sprintf(`node_id: %s
data_dir: /data
http_addr: 0.0.0.0:8080
grpc_addr: 0.0.0.0:7070
auth:
  token: %s
log:
  level: info
gateway:
  auth: keys
runtime:
  partitions: 32
namespaces:
  kvreset:
    kind: kv
    on_owner_loss: reset
cluster:
  enabled: true
  insecure: true
  gossip_addr: 0.0.0.0:7946
  advertise_addr: %s:7946
  nats_addr: 127.0.0.1:4222
  nats_cluster_addr: 0.0.0.0:6222
  join: [%s]
  lease_ttl: %s
  epsilon: %s
  renew_interval: 500ms
  retry_interval: 100ms
  gossip_probe_interval: 200ms
  kv_timeout: 1s
`, c.ids[i], chaosToken, c.ips[i], strings.Join(join, ", "), leaseTTL, leaseEpsilon)
}

// waitFor polls cond until it returns nil or d passes.
func (c *cluster) waitFor(d time.Duration, what string, cond func() error) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for {
		if err = cond(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for %s: %v", d, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *cluster) waitReady(i int, d time.Duration) {
	c.t.Helper()
	c.waitFor(d, c.ids[i]+" to be ready", func() error {
		resp, err := c.http.Get("http://" + c.ips[i] + ":8080/readyz")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d: %s", resp.StatusCode, body)
		}
		return nil
	})
}

// ctlJSON runs holdctl against node i and decodes its JSON output.
func (c *cluster) ctlJSON(i int, v any, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin.dir, "holdctl"), append([]string{"--addr", c.ips[i] + ":7070", "-o", "json"}, args...)...)
	cmd.Env = append(os.Environ(), "HOLDCTL_TOKEN="+chaosToken)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("holdctl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return json.Unmarshal(stdout.Bytes(), v)
}

type whereResult struct {
	Partition uint32 `json:"partition"`
	Owner     string `json:"owner"`
	Epoch     uint64 `json:"epoch"`
}

func (c *cluster) where(via int, ns, key string) (whereResult, error) {
	var w whereResult
	err := c.ctlJSON(via, &w, "where", ns, key)
	return w, err
}

// keyOwnedBy finds a key of ns owned by node `owner`.
func (c *cluster) keyOwnedBy(ns, prefix string, owner int) (string, whereResult) {
	c.t.Helper()
	for i := range 300 {
		key := fmt.Sprintf("%s%d", prefix, i)
		w, err := c.where(0, ns, key)
		if err != nil {
			c.t.Fatal(err)
		}
		if w.Owner == c.ids[owner] {
			return key, w
		}
	}
	c.t.Fatalf("no key %s* of %s owned by %s", prefix, ns, c.ids[owner])
	return "", whereResult{}
}

// result is one HTTP call's outcome.
type result struct {
	status int
	body   string
	err    error
}

func (r result) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.status, strings.TrimSpace(r.body))
}

func (c *cluster) do(i int, method, path, body string, hdr ...string) result {
	return c.doURL("http://"+c.ips[i]+":8080"+path, method, body, append([]string{"Authorization", "Bearer " + chaosToken}, hdr...)...)
}

func (*cluster) httpClient() *http.Client { return &http.Client{Timeout: 10 * time.Second} }

// doURL makes one request with the headers given as name, value pairs.
func (c *cluster) doURL(url, method, body string, hdr ...string) result {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return result{err: err}
	}
	for j := 0; j+1 < len(hdr); j += 2 {
		req.Header.Set(hdr[j], hdr[j+1])
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, body: string(b), err: err}
}

func (c *cluster) put(via int, ns, actorKey, value string) result {
	return c.do(via, "PUT", "/v1/actors/"+ns+"/"+actorKey+"/storage/v", value, "Idempotency-Key", "put-"+randHex(8))
}

func (c *cluster) get(via int, ns, actorKey string) result {
	return c.do(via, "GET", "/v1/actors/"+ns+"/"+actorKey+"/storage/v", "")
}

// retryable reports whether r is the "unavailable, retry" answer (503 with
// retryable=true in the error details).
func retryable(r result) bool {
	if r.err != nil || r.status != 503 {
		return false
	}
	var e struct {
		Error struct {
			Details map[string]string `json:"details"`
		} `json:"error"`
	}
	return json.Unmarshal([]byte(r.body), &e) == nil && e.Error.Details["retryable"] == "true"
}
