//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast/test/harness"
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
		gossip[i], routes[i] = harness.FreeLoopbackAddr(t), harness.FreeLoopbackAddr(t)
	}
	start := time.Now()
	for i := range n {
		var join, rts []string
		for j := range n {
			if j != i {
				join, rts = append(join, gossip[j]), append(rts, routes[j])
			}
		}
		c.nodes = append(c.nodes, LaunchNode(t, NodeOptions{Config: clusterConfig(c.ids[i], gossip[i], routes[i], join, rts)}))
	}
	for _, nd := range c.nodes {
		nd.WaitReady(60 * time.Second)
	}
	c.waitStable(60*time.Second, c.ids...)
	t.Logf("%d-node cluster up and stable in %v", n, time.Since(start).Round(time.Millisecond))
	return c
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
