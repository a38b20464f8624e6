//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestClusterProcessesTour starts three processes and checks what an
// operator sees (status, ring, where through every node) and that any node
// takes any call: kv writes through one node are read through the others.
func TestClusterProcessesTour(t *testing.T) {
	skipShort(t)
	t.Parallel()
	c := startProcCluster(t, 3)

	t.Run("status", func(t *testing.T) {
		for i, n := range c.nodes {
			var st ctlStatus
			if r, ok := ctlJSON(t, n, &st, "status"); !ok {
				t.Fatalf("holdctl status: %v", r)
			}
			if st.NodeID != c.ids[i] || !st.Clustered || st.State != "serving" || st.Partitions != 2*clusterP || len(st.Members) != 3 {
				t.Errorf("status through %s: %+v", c.ids[i], st)
			}
			total := int64(0)
			for _, m := range st.Members {
				total += m.PartitionsOwned
				if m.State != "serving" || m.GRPCAddr == "" || m.HTTPAddr == "" || !m.Reachable {
					t.Errorf("status through %s: member %+v", c.ids[i], m)
				}
			}
			if total != 2*clusterP {
				t.Errorf("status through %s: members own %d partitions in all, want %d", c.ids[i], total, 2*clusterP)
			}
		}
	})

	t.Run("ring", func(t *testing.T) {
		var first []ctlPartition
		for i, n := range c.nodes {
			rg, err := c.ring(t, n)
			if err != nil {
				t.Fatal(err)
			}
			if len(rg.Partitions) != 2*clusterP || rg.MovesPending != 0 {
				t.Fatalf("ring through %s: %d partitions, %d moves pending", c.ids[i], len(rg.Partitions), rg.MovesPending)
			}
			per := map[string]int{}
			for _, p := range rg.Partitions {
				per[p.Owner]++
				wantLoss := "wait"
				if p.Partition >= clusterP {
					wantLoss = "reset"
				}
				if p.Owner == "" || p.Owner != p.Desired || p.Orphaned || p.Epoch == 0 || p.OnOwnerLoss != wantLoss {
					t.Errorf("ring through %s: %+v (on_owner_loss want %s)", c.ids[i], p, wantLoss)
				}
			}
			if len(per) != 3 {
				t.Errorf("ring through %s: owners %v, want all three nodes", c.ids[i], per)
			}
			if first == nil {
				first = rg.Partitions
				t.Logf("partitions per owner: %v", per)
			} else if fmt.Sprint(stripHandoff(first)) != fmt.Sprint(stripHandoff(rg.Partitions)) {
				t.Errorf("ring through %s differs from ring through %s", c.ids[i], c.ids[0])
			}
		}
	})

	// Keys of kv and ratelimit, owned by every node.
	var kvKeys []string
	t.Run("where", func(t *testing.T) {
		owners := map[string]bool{}
		for i := 0; len(owners) < 3 || len(kvKeys) < 6; i++ {
			if i > 200 {
				t.Fatalf("200 kv keys owned only by %v", owners)
			}
			key := fmt.Sprintf("tour%d", i)
			for _, ns := range []string{"kv", "ratelimit"} {
				var raw [3]string
				for j, n := range c.nodes {
					r := n.Ctl(t, "where", ns, key, "-o", "json")
					if r.Code != 0 {
						t.Fatalf("holdctl where %s %s through %s: %v", ns, key, c.ids[j], r)
					}
					raw[j] = strings.TrimSpace(r.Stdout)
					var m map[string]json.RawMessage
					DecodeJSON(t, []byte(raw[j]), &m)
					keys := make([]string, 0, len(m))
					for k := range m {
						keys = append(keys, k)
					}
					sort.Strings(keys)
					if strings.Join(keys, ",") != "epoch,owner,partition" {
						t.Fatalf("where -o json keys %v, want exactly epoch, owner, partition: %s", keys, raw[j])
					}
				}
				if raw[0] != raw[1] || raw[1] != raw[2] {
					t.Errorf("where %s %s differs between nodes: %q", ns, key, raw)
				}
				var w ctlWhere
				DecodeJSON(t, []byte(raw[0]), &w)
				if !contains(c.ids, w.Owner) || w.Epoch == 0 {
					t.Errorf("where %s %s: %s", ns, key, raw[0])
				}
				if (ns == "kv") != (w.Partition < clusterP) {
					t.Errorf("where %s %s: partition %d, want the %s group", ns, key, w.Partition, ns)
				}
				if ns == "kv" {
					owners[w.Owner] = true
					kvKeys = append(kvKeys, key)
				}
			}
		}
	})

	t.Run("any node takes any call", func(t *testing.T) {
		for i, key := range kvKeys {
			via := c.nodes[i%3]
			value := fmt.Sprintf("value-%d-%s", i, key)
			if r, err := kvPut(via, key, "f", value, "tour-"+key); err != nil || r.Status != 200 {
				t.Fatalf("PUT kv/%s through %s: %v %v", key, c.ids[i%3], r, err)
			}
			for j, n := range c.nodes {
				r, err := kvGet(n, key, "f")
				if err != nil || r.Status != 200 || string(r.Body) != value {
					t.Errorf("GET kv/%s/storage/f through %s (written through %s): %v %v, want %q", key, c.ids[j], c.ids[i%3], r, err, value)
				}
			}
		}
		// A rate limit set through one node, taken through the others.
		rl := "tour-rl"
		r := c.nodes[0].MustDo(t, "POST", "/v1/actors/ratelimit/"+rl+"/ratelimit.set", `{"buckets":{"b":{"capacity":4,"refill_per_second":0.001}}}`, "Idempotency-Key", "tour-rl-set")
		if r.Status != 200 {
			t.Fatalf("ratelimit.set: %v", r)
		}
		allowed := 0
		for i := range 6 {
			r := c.nodes[1+i%2].MustDo(t, "POST", "/v1/actors/ratelimit/"+rl+"/ratelimit.take", `{"amounts":{"b":1}}`, "Idempotency-Key", fmt.Sprintf("tour-rl-%d", i))
			if r.Status != 200 {
				t.Fatalf("ratelimit.take: %v", r)
			}
			var tk takeJSON
			DecodeJSON(t, r.Body, &tk)
			if tk.Allowed {
				allowed++
			}
		}
		if allowed != 4 {
			t.Errorf("%d of 6 takes allowed through two nodes, capacity 4", allowed)
		}
	})
}

func stripHandoff(ps []ctlPartition) []ctlPartition {
	out := make([]ctlPartition, len(ps))
	for i, p := range ps {
		p.HandoffID = ""
		out[i] = p
	}
	return out
}

// TestClusterDrainCommand drains a node with `holdctl drain NODE` sent
// through another node: the node hands off every partition, keeps running
// and still takes calls (forwarding them).
func TestClusterDrainCommand(t *testing.T) {
	skipShort(t)
	t.Parallel()
	c := startProcCluster(t, 3)
	a, victim := c.nodes[0], c.nodes[2]
	id := c.ids[2]
	// A value owned by the node to drain, written before the drain.
	key, w := keyOwnedBy(t, a, "kv", "drain", id)
	if r, err := kvPut(a, key, "f", "before", "drain-before"); err != nil || r.Status != 200 {
		t.Fatalf("PUT: %v %v", r, err)
	}

	before, err := c.ring(t, a)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var d struct {
		NodeID   string `json:"node_id"`
		Draining bool   `json:"draining"`
	}
	if r, ok := ctlJSON(t, a, &d, "drain", id); !ok || d.NodeID != id || !d.Draining {
		t.Fatalf("holdctl drain %s through %s: %v %+v", id, c.ids[0], r, d)
	}
	for _, via := range []*Node{a, c.nodes[1], victim} {
		WaitFor(t, 40*time.Second, "no partition owned by "+id, func() (bool, string) {
			rg, err := c.ring(t, via)
			if err != nil {
				return false, err.Error()
			}
			if k := rg.ownedBy(id); k > 0 || rg.MovesPending > 0 {
				return false, fmt.Sprintf("%d partitions still owned by %s, %d moves pending", k, id, rg.MovesPending)
			}
			for _, p := range rg.Partitions {
				if p.Owner == "" || p.Orphaned || p.Desired == id {
					return false, fmt.Sprintf("partition %+v", p)
				}
			}
			return true, ""
		})
	}
	t.Logf("drained %s (%d partitions before) in %v", id, before.ownedBy(id), time.Since(start).Round(time.Millisecond))
	if isClosed(victim.Exited()) {
		t.Fatalf("%s exited after a drain (%v); it must keep running", id, victim.state)
	}
	var st ctlStatus
	if r, ok := ctlJSON(t, a, &st, "status"); !ok {
		t.Fatalf("status: %v", r)
	}
	for _, m := range st.Members {
		if m.NodeID == id && (m.State != "draining" || m.PartitionsOwned != 0) {
			t.Errorf("status: drained member %+v, want state draining, 0 partitions", m)
		}
	}
	// The drained node still answers: health, and calls it forwards.
	if r := victim.MustDo(t, "GET", "/healthz", ""); r.Status != 200 {
		t.Errorf("GET /healthz on the drained node: %v", r)
	}
	if r, err := kvGet(victim, key, "f"); err != nil || r.Status != 200 || string(r.Body) != "before" {
		t.Errorf("GET through the drained node of a value written before the drain: %v %v", r, err)
	}
	if r, err := kvPut(victim, key, "g", "after", "drain-after"); err != nil || r.Status != 200 {
		t.Errorf("PUT through the drained node: %v %v", r, err)
	}
	if r, err := kvGet(a, key, "g"); err != nil || r.Status != 200 || string(r.Body) != "after" {
		t.Errorf("GET through %s of a value written through the drained node: %v %v", c.ids[0], r, err)
	}
	if w2 := where(t, victim, "kv", key); w2.Owner == id || w2.Epoch <= w.Epoch {
		t.Errorf("where after the drain: %+v (before: %+v)", w2, w)
	}
}
