//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Cluster e2e tests: three real holdfast processes on loopback, each with
// its own data directory and ports, forming one cluster (embedded NATS
// routes, memberlist gossip, gRPC between nodes), configured by YAML with
// a short lease so that failover happens in seconds.

const (
	clusterP        = 16 // runtime.partitions: P per placement group, 2P in all
	clusterLeaseTTL = 3 * time.Second
	clusterEpsilon  = 300 * time.Millisecond
	// clusterRenewInterval is cluster.renew_interval in clusterConfig.
	clusterRenewInterval = 500 * time.Millisecond
)

// procCluster is N holdfast processes forming one cluster.
type procCluster struct {
	t     *testing.T
	ids   []string
	nodes []*Node
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("cluster e2e tests start real processes; skipped under -short")
	}
}

// freeLoopbackAddr picks a port on 127.0.0.1 free for TCP and UDP. The
// gossip and NATS route addresses must be known before any node starts
// (each node lists the others'), so they cannot be port 0; and they are
// picked below the kernel's ephemeral range: a port in it, released
// before its node binds it, is soon taken by some outgoing connection (a
// peer dialing a route not yet listening can even connect to itself),
// which made a node fail with "address already in use".
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 12000 {
				lo = v
			}
		}
	}
	for range 200 {
		port := 10000 + rand.IntN(lo-10000)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr
	}
	t.Fatalf("no free loopback port below %d after 200 tries", lo)
	return ""
}

func yamlList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// clusterConfig is node i's YAML.
func clusterConfig(id, gossip, natsCluster string, join, routes []string) string {
	return fmt.Sprintf(`node_id: %s
shutdown_timeout: 40s
log:
  level: info
runtime:
  partitions: %d
cluster:
  enabled: true
  insecure: true
  gossip_addr: %q
  nats_addr: "127.0.0.1:0"
  nats_cluster_addr: %q
  nats_routes: %s
  join: %s
  lease_ttl: %s
  epsilon: %s
  renew_interval: 500ms
  retry_interval: 100ms
  gossip_probe_interval: 200ms
  handoff_timeout: 10s
  drain_timeout: 30s
  kv_timeout: 1s
`, id, clusterP, gossip, natsCluster, yamlList(routes), yamlList(join), clusterLeaseTTL, clusterEpsilon)
}

// startProcCluster starts n processes at once (a node is not ready before
// JetStream has a quorum, so they cannot be started one by one with a
// readiness wait), then waits until every node is ready and the cluster is
// stable in every node's view.
func startProcCluster(t *testing.T, n int) *procCluster {
	t.Helper()
	c := &procCluster{t: t}
	gossip, routes := make([]string, n), make([]string, n)
	for i := range n {
		c.ids = append(c.ids, fmt.Sprintf("node-%d", i+1))
		gossip[i], routes[i] = freeLoopbackAddr(t), freeLoopbackAddr(t)
	}
	start := time.Now()
	for i := range n {
		var join, rts []string
		for j := range n {
			if j != i {
				join, rts = append(join, gossip[j]), append(rts, routes[j])
			}
		}
		c.nodes = append(c.nodes, launchNode(t, NodeOptions{Config: clusterConfig(c.ids[i], gossip[i], routes[i], join, rts)}))
	}
	for _, nd := range c.nodes {
		nd.waitReady(t, 60*time.Second)
	}
	c.waitStable(60*time.Second, c.ids...)
	t.Logf("%d-node cluster up and stable in %v", n, time.Since(start).Round(time.Millisecond))
	return c
}

// launchNode starts a holdfast process like StartNode, waiting only for its
// "serving" log line (its bound addresses), not for /readyz.
func launchNode(t *testing.T, opts NodeOptions) *Node {
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
	p := filepath.Join(t.TempDir(), "holdfast.yaml")
	if err := os.WriteFile(p, []byte(opts.Config), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--data-dir", n.DataDir, "--http", "127.0.0.1:0", "--grpc", "127.0.0.1:0", "--config", p}, opts.Args...)
	n.out = &lockedBuffer{}
	n.cmd = exec.Command(b.Holdfast, args...)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	n.exited = make(chan struct{})
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
	WaitFor(t, 30*time.Second, "the serving log line", func() (bool, string) {
		select {
		case <-exited:
			t.Fatalf("holdfast exited during start-up (%v):\n%s", n.state, out.String())
		default:
		}
		n.HTTPAddr, n.GRPCAddr = servingAddrs(out.String())
		return n.HTTPAddr != "", tail(out.String(), 500)
	})
	return n
}

// waitReady waits until GET /readyz answers 200.
func (n *Node) waitReady(t *testing.T, limit time.Duration) {
	t.Helper()
	WaitFor(t, limit, "GET /readyz = 200 on "+n.HTTPAddr, func() (bool, string) {
		if isClosed(n.Exited()) {
			t.Fatalf("holdfast exited before ready (%v):\n%s", n.state, tail(n.Logs(), 4000))
		}
		r, err := n.Do("GET", "/readyz", "")
		if err != nil {
			return false, err.Error()
		}
		return r.Status == 200, r.String()
	})
}

// --- holdctl -o json views ---

type ctlMember struct {
	NodeID          string `json:"node_id"`
	State           string `json:"state"`
	GRPCAddr        string `json:"grpc_addr"`
	HTTPAddr        string `json:"http_addr"`
	PartitionsOwned int64  `json:"partitions_owned"`
	Reachable       bool   `json:"reachable"`
}

type ctlStatus struct {
	NodeID     string      `json:"node_id"`
	State      string      `json:"state"`
	Partitions int64       `json:"partitions"`
	Clustered  bool        `json:"clustered"`
	Members    []ctlMember `json:"members"`
}

type ctlPartition struct {
	Partition   uint32 `json:"partition"`
	Owner       string `json:"owner"`
	Epoch       uint64 `json:"epoch"`
	Orphaned    bool   `json:"orphaned"`
	HandoffID   string `json:"handoff_id"`
	Desired     string `json:"desired"`
	OnOwnerLoss string `json:"on_owner_loss"`
}

type ctlRing struct {
	Partitions   []ctlPartition `json:"partitions"`
	MovesPending int64          `json:"moves_pending"`
}

type ctlWhere struct {
	Partition uint32 `json:"partition"`
	Owner     string `json:"owner"`
	Epoch     uint64 `json:"epoch"`
}

// ctlJSON runs `holdctl --addr NODE ARGS -o json` and decodes stdout into
// v; ok is false (with the result) when holdctl did not exit 0.
func ctlJSON(t *testing.T, n *Node, v any, args ...string) (Result, bool) {
	t.Helper()
	r := n.Ctl(t, append(args, "-o", "json")...)
	if r.Code != 0 {
		return r, false
	}
	if err := json.Unmarshal([]byte(r.Stdout), v); err != nil {
		t.Fatalf("%v: stdout is not the expected JSON: %v", r, err)
	}
	return r, true
}

func (c *procCluster) ring(t *testing.T, n *Node) (ctlRing, error) {
	var rg ctlRing
	if r, ok := ctlJSON(t, n, &rg, "ring"); !ok {
		return rg, fmt.Errorf("%v", r)
	}
	return rg, nil
}

// ownedBy counts the partitions the ring lists as owned by id.
func (rg ctlRing) ownedBy(id string) int {
	k := 0
	for _, p := range rg.Partitions {
		if p.Owner == id {
			k++
		}
	}
	return k
}

// stable reports whether node n is serving, sees exactly the members want
// serving, and lists all 2P partitions owned (not orphaned) by their
// desired owner, each one of want.
func (c *procCluster) stable(t *testing.T, n *Node, want ...string) (bool, string) {
	var st ctlStatus
	if r, ok := ctlJSON(t, n, &st, "status"); !ok {
		return false, r.String()
	}
	var serving []string
	for _, m := range st.Members {
		if m.State == "serving" {
			serving = append(serving, m.NodeID)
		}
	}
	sort.Strings(serving)
	w := append([]string(nil), want...)
	sort.Strings(w)
	if st.State != "serving" || !st.Clustered || strings.Join(serving, ",") != strings.Join(w, ",") {
		return false, fmt.Sprintf("%s: state %s, serving members %v, want %v", st.NodeID, st.State, serving, w)
	}
	rg, err := c.ring(t, n)
	if err != nil {
		return false, err.Error()
	}
	if len(rg.Partitions) != 2*clusterP {
		return false, fmt.Sprintf("%s: ring lists %d partitions, want %d", st.NodeID, len(rg.Partitions), 2*clusterP)
	}
	for _, p := range rg.Partitions {
		if p.Owner == "" || p.Orphaned || p.Owner != p.Desired || !contains(want, p.Owner) {
			return false, fmt.Sprintf("%s: partition %+v", st.NodeID, p)
		}
	}
	if rg.MovesPending != 0 {
		return false, fmt.Sprintf("%s: %d moves pending", st.NodeID, rg.MovesPending)
	}
	return true, ""
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// waitStable waits until every running member of want is stable (see
// stable) with exactly want serving.
func (c *procCluster) waitStable(limit time.Duration, want ...string) {
	c.t.Helper()
	WaitFor(c.t, limit, fmt.Sprintf("a stable cluster of %v", want), func() (bool, string) {
		for _, id := range want {
			if ok, d := c.stable(c.t, c.node(id), want...); !ok {
				return false, d
			}
		}
		return true, ""
	})
}

func (c *procCluster) node(id string) *Node {
	for i, x := range c.ids {
		if x == id {
			return c.nodes[i]
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

// where runs `holdctl where NS KEY -o json` through n.
func where(t *testing.T, n *Node, ns, key string) ctlWhere {
	t.Helper()
	var w ctlWhere
	if r, ok := ctlJSON(t, n, &w, "where", ns, key); !ok {
		t.Fatalf("holdctl where %s %s: %v", ns, key, r)
	}
	return w
}

// keyOwnedBy finds a key of namespace ns whose partition owner is owner.
func keyOwnedBy(t *testing.T, via *Node, ns, prefix, owner string) (string, ctlWhere) {
	t.Helper()
	for i := range 200 {
		key := fmt.Sprintf("%s%d", prefix, i)
		if w := where(t, via, ns, key); w.Owner == owner {
			return key, w
		}
	}
	t.Fatalf("no key %s* of %s owned by %s among 200", prefix, ns, owner)
	return "", ctlWhere{}
}

// --- HTTP actor API ---

// apiError is the JSON error body of the actor API.
type apiError struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Details map[string]string `json:"details"`
	} `json:"error"`
}

// outcome classifies one HTTP call: "ok", "503 REASON" (retryable),
// "503 REASON (not retryable)", "STATUS REASON", or a transport error class.
func outcome(r HTTPResult, err error) (class string, retryable bool, detail string) {
	if err != nil {
		switch {
		case isTimeout(err):
			return "HANG", false, err.Error()
		case strings.Contains(err.Error(), "connection refused"):
			return "connection refused", false, err.Error()
		case strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "connection reset"):
			return "connection lost", false, err.Error()
		}
		return "transport error", false, err.Error()
	}
	if r.Status/100 == 2 {
		return "ok", false, ""
	}
	var e apiError
	if json.Unmarshal(r.Body, &e) != nil {
		return fmt.Sprintf("%d (no JSON error)", r.Status), false, r.String()
	}
	retryable = r.Status == 503 && e.Error.Details["retryable"] == "true"
	class = fmt.Sprintf("%d %s", r.Status, e.Error.Code)
	if st := e.Error.Details["state"]; st != "" {
		var words []string
		for _, w := range strings.Fields(st) {
			if !strings.HasPrefix(w, "node-") {
				words = append(words, w)
			}
		}
		class += "/" + strings.Join(words, " ")
	}
	if !retryable {
		class += " (not retryable)"
	}
	return class, retryable, strings.TrimSpace(r.String())
}

// tally counts outcome classes and keeps the first details of the
// unexpected ones; safe for concurrent use.
type tally struct {
	mu      sync.Mutex
	counts  map[string]int
	details []string
}

func newTally() *tally { return &tally{counts: map[string]int{}} }

func (ty *tally) add(class, detail string, keep bool) {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	ty.counts[class]++
	if keep && len(ty.details) < 10 {
		ty.details = append(ty.details, detail)
	}
}

func (ty *tally) snapshot() (map[string]int, []string) {
	ty.mu.Lock()
	defer ty.mu.Unlock()
	m := make(map[string]int, len(ty.counts))
	for k, v := range ty.counts {
		m[k] = v
	}
	return m, append([]string(nil), ty.details...)
}

func (ty *tally) String() string {
	m, _ := ty.snapshot()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, m[k])
	}
	return "{" + b.String() + "}"
}

func kvGet(n *Node, actorKey, key string) (HTTPResult, error) {
	return n.Do("GET", "/v1/actors/kv/"+actorKey+"/storage/"+key, "")
}

func kvPut(n *Node, actorKey, key, value, reqID string) (HTTPResult, error) {
	return n.Do("PUT", "/v1/actors/kv/"+actorKey+"/storage/"+key, value, "Idempotency-Key", reqID)
}
