package main

import (
	"flag"
	"fmt"
	"strconv"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

type memberJSON struct {
	NodeID          string   `json:"node_id"`
	Region          string   `json:"region"`
	State           string   `json:"state"`
	GRPCAddr        string   `json:"grpc_addr"`
	HTTPAddr        string   `json:"http_addr"`
	LeaseAgeSeconds *float64 `json:"lease_age_seconds"`
	LeaseRevoked    bool     `json:"lease_revoked"`
	PartitionsOwned int64    `json:"partitions_owned"`
	Load            int64    `json:"load"`
	Reachable       bool     `json:"reachable"`
}

func membersJSON(ms []*holdfastv1.MemberInfo) []memberJSON {
	out := make([]memberJSON, 0, len(ms))
	for _, m := range ms {
		mj := memberJSON{NodeID: m.GetNodeId(), Region: m.GetRegion(), State: m.GetState(), GRPCAddr: m.GetGrpcAddr(),
			HTTPAddr: m.GetHttpAddr(), LeaseRevoked: m.GetLeaseRevoked(), PartitionsOwned: m.GetPartitionsOwned(),
			Load: m.GetLoad(), Reachable: m.GetReachable()}
		if age := m.GetLeaseAgeSeconds(); age >= 0 {
			mj.LeaseAgeSeconds = &age
		}
		out = append(out, mj)
	}
	return out
}

type partitionJSON struct {
	Partition   uint32 `json:"partition"`
	Owner       string `json:"owner"`
	Epoch       uint64 `json:"epoch"`
	Orphaned    bool   `json:"orphaned"`
	HandoffID   string `json:"handoff_id,omitempty"`
	Desired     string `json:"desired"`
	OnOwnerLoss string `json:"on_owner_loss"`
}

func clusterCommands() []*command {
	return []*command{
		{
			name: "ring", remote: true,
			summary: "list every partition's owner and epoch, and the moves in progress",
			about:   "A move is pending where the owner differs from the desired owner (the placement over the serving members).",
			setup: func(fs *flag.FlagSet) action {
				return func(inv *invocation, _ []string) error {
					r, err := call(inv, inv.admin.Ring, &holdfastv1.RingRequest{})
					if err != nil {
						return err
					}
					if inv.jsonMode() {
						out := struct {
							Partitions   []partitionJSON `json:"partitions"`
							MovesPending int64           `json:"moves_pending"`
						}{Partitions: make([]partitionJSON, 0, len(r.GetPartitions())), MovesPending: r.GetMovesPending()}
						for _, p := range r.GetPartitions() {
							out.Partitions = append(out.Partitions, partitionJSON{p.GetPartition(), p.GetOwner(), p.GetEpoch(), p.GetOrphaned(), p.GetHandoffId(), p.GetDesired(), p.GetOnOwnerLoss()})
						}
						return inv.writeJSON(out)
					}
					tw := newTable(inv.stdout)
					fmt.Fprintf(tw, "PARTITION\tOWNER\tEPOCH\tDESIRED\tON OWNER LOSS\tSTATE\n")
					for _, p := range r.GetPartitions() {
						state := ""
						switch {
						case p.GetOrphaned():
							state = "orphaned"
						case p.GetOwner() == "":
							state = "unowned"
						case p.GetOwner() != p.GetDesired():
							state = "moving"
						}
						fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", p.GetPartition(), dash(p.GetOwner()), p.GetEpoch(), dash(p.GetDesired()), p.GetOnOwnerLoss(), state)
					}
					fmt.Fprintf(tw, "\nmoves pending\t%d\n", r.GetMovesPending())
					return tw.Flush()
				}
			},
		},
		{
			name: "where", args: "NAMESPACE KEY", minArgs: 2, maxArgs: 2, remote: true,
			summary: "show the partition, owner and epoch of one actor",
			flags:   shardHelp,
			setup: func(fs *flag.FlagSet) action {
				shard := fs.Uint("shard", 0, "")
				return func(inv *invocation, args []string) error {
					ref, err := actorRef(args[0], args[1], *shard)
					if err != nil {
						return err
					}
					w, err := call(inv, inv.admin.Where, &holdfastv1.WhereRequest{Actor: ref})
					if err != nil {
						return err
					}
					if inv.jsonMode() {
						return inv.writeJSON(struct {
							Partition uint32 `json:"partition"`
							Owner     string `json:"owner"`
							Epoch     uint64 `json:"epoch"`
						}{w.GetPartition(), w.GetOwner(), w.GetEpoch()})
					}
					tw := newTable(inv.stdout)
					fmt.Fprintf(tw, "partition\t%d\nowner\t%s\nepoch\t%d\n", w.GetPartition(), dash(w.GetOwner()), w.GetEpoch())
					return tw.Flush()
				}
			},
		},
		{
			name: "drain", args: "NODE", minArgs: 1, maxArgs: 1, remote: true,
			summary: "hand off every partition of NODE to the other members",
			about:   "Returns once the drain has begun; `holdctl status` shows the node draining and its partitions leaving.",
			setup: func(fs *flag.FlagSet) action {
				return func(inv *invocation, args []string) error {
					d, err := call(inv, inv.admin.Drain, &holdfastv1.DrainNodeRequest{NodeId: args[0]})
					if err != nil {
						return err
					}
					if inv.jsonMode() {
						return inv.writeJSON(struct {
							NodeID   string `json:"node_id"`
							Draining bool   `json:"draining"`
						}{d.GetNodeId(), true})
					}
					_, err = fmt.Fprintf(inv.stdout, "draining %s\n", d.GetNodeId())
					return err
				}
			},
		},
	}
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printMembers(inv *invocation, ms []*holdfastv1.MemberInfo) {
	tw := newTable(inv.stdout)
	fmt.Fprintf(tw, "\nMEMBER\tREGION\tSTATE\tLEASE AGE\tPARTITIONS\tREACHABLE\tGRPC ADDR\n")
	for _, m := range ms {
		age := "-"
		if a := m.GetLeaseAgeSeconds(); a >= 0 {
			age = strconv.FormatFloat(a, 'f', 1, 64) + "s"
			if m.GetLeaseRevoked() {
				age += " (revoked)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%v\t%s\n", m.GetNodeId(), dash(m.GetRegion()), m.GetState(), age, m.GetPartitionsOwned(), m.GetReachable(), m.GetGrpcAddr())
	}
	tw.Flush()
}
