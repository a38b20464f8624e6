package main

import (
	"flag"
	"fmt"
	"maps"
	"slices"
	"strings"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// hotKeyJSON and hotNodeJSON are `holdctl hot -o json`; the names are
// stable.
type hotKeyJSON struct {
	Namespace         string  `json:"namespace"`
	Key               string  `json:"key"`
	Shard             uint32  `json:"shard"`
	State             string  `json:"state"`
	Shards            uint32  `json:"shards"`
	Generation        uint64  `json:"generation"`
	TurnsPerSecond    float64 `json:"turns_per_second"`
	KeyTurnsPerSecond float64 `json:"key_turns_per_second"`
	AllowancesGranted int64   `json:"allowances_granted"`
}

type heldJSON struct {
	Namespace  string           `json:"namespace"`
	Key        string           `json:"key"`
	Shard      uint32           `json:"shard"`
	Allowances int64            `json:"allowances"`
	Tokens     map[string]int64 `json:"tokens"`
	UsedTakes  int64            `json:"used_takes"`
}

type hotNodeJSON struct {
	NodeID string       `json:"node_id"`
	Keys   []hotKeyJSON `json:"keys"`
	Held   []heldJSON   `json:"held"`
	Error  string       `json:"error,omitempty"`
}

func hotCommand() *command {
	return &command{
		name: "hot", remote: true,
		summary: "list the ratelimit keys above their hot threshold, their splits and allowances, on every node",
		about: "Per node: the keys (and shards) it owns that are hot or split — state (unsplit, split, merging,\n" +
			"static; shard, retired), shards and split generation, turns/s of the actor and estimated for the\n" +
			"key, allowances granted and outstanding — then the allowances the node holds of other owners' keys.",
		flags: "  --local               only the addressed node (default: every member)\n",
		setup: func(fs *flag.FlagSet) action {
			local := fs.Bool("local", false, "")
			return func(inv *invocation, _ []string) error {
				r, err := call(inv, inv.admin.Hot, &holdfastv1.HotRequest{Local: *local})
				if err != nil {
					return err
				}
				if inv.jsonMode() {
					out := struct {
						Nodes []hotNodeJSON `json:"nodes"`
					}{Nodes: []hotNodeJSON{}}
					for _, n := range r.GetNodes() {
						nj := hotNodeJSON{NodeID: n.GetNodeId(), Keys: []hotKeyJSON{}, Held: []heldJSON{}, Error: n.GetError()}
						for _, k := range n.GetKeys() {
							a := k.GetActor()
							nj.Keys = append(nj.Keys, hotKeyJSON{a.GetNamespace(), a.GetKey(), a.GetShard(), k.GetState(), k.GetShards(),
								k.GetGeneration(), k.GetTurnsPerSecond(), k.GetKeyTurnsPerSecond(), k.GetAllowancesGranted()})
						}
						for _, h := range n.GetHeld() {
							a := h.GetActor()
							tokens := h.GetTokens()
							if tokens == nil {
								tokens = map[string]int64{}
							}
							nj.Held = append(nj.Held, heldJSON{a.GetNamespace(), a.GetKey(), a.GetShard(), h.GetAllowances(), tokens, h.GetUsedTakes()})
						}
						out.Nodes = append(out.Nodes, nj)
					}
					return inv.writeJSON(out)
				}
				tw := newTable(inv.stdout)
				fmt.Fprintf(tw, "NODE\tNAMESPACE\tKEY\tSHARD\tSTATE\tSHARDS\tGEN\tTURNS/S\tKEY TURNS/S\tGRANTED\n")
				for _, n := range r.GetNodes() {
					if n.GetError() != "" {
						fmt.Fprintf(tw, "%s\t(error: %s)\t\t\t\t\t\t\t\t\n", n.GetNodeId(), n.GetError())
					}
					for _, k := range n.GetKeys() {
						a := k.GetActor()
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%.1f\t%.1f\t%d\n", n.GetNodeId(), a.GetNamespace(), a.GetKey(), a.GetShard(),
							k.GetState(), k.GetShards(), k.GetGeneration(), k.GetTurnsPerSecond(), k.GetKeyTurnsPerSecond(), k.GetAllowancesGranted())
					}
				}
				held := false
				for _, n := range r.GetNodes() {
					held = held || len(n.GetHeld()) > 0
				}
				if held {
					fmt.Fprintf(tw, "\nNODE\tNAMESPACE\tKEY\tSHARD\tALLOWANCES\tTOKENS\tUSED TAKES\n")
					for _, n := range r.GetNodes() {
						for _, h := range n.GetHeld() {
							a := h.GetActor()
							var parts []string
							for _, b := range slices.Sorted(maps.Keys(h.GetTokens())) {
								parts = append(parts, fmt.Sprintf("%s=%d", b, h.GetTokens()[b]))
							}
							fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d\n", n.GetNodeId(), a.GetNamespace(), a.GetKey(), a.GetShard(),
								h.GetAllowances(), dash(strings.Join(parts, " ")), h.GetUsedTakes())
						}
					}
				}
				return tw.Flush()
			}
		},
	}
}
