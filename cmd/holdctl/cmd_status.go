package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strconv"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = ""

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "print holdctl's version",
		setup: func(fs *flag.FlagSet) action {
			return func(inv *invocation, _ []string) error {
				if inv.jsonMode() {
					return inv.writeJSON(struct {
						Version   string `json:"version"`
						GoVersion string `json:"go_version"`
					}{versionString(), runtime.Version()})
				}
				_, err := fmt.Fprintf(inv.stdout, "holdctl %s (%s)\n", versionString(), runtime.Version())
				return err
			}
		},
	}
}

type namespaceJSON struct {
	Name           string `json:"name"`
	Kind           string `json:"kind"`
	Durability     string `json:"durability"`
	ActorsInMemory int64  `json:"actors_in_memory"`
}

type statusJSON struct {
	NodeID         string          `json:"node_id"`
	Version        string          `json:"version"`
	State          string          `json:"state"`
	Started        *string         `json:"started"`
	DataDir        string          `json:"data_dir"`
	HTTPAddr       string          `json:"http_addr"`
	GRPCAddr       string          `json:"grpc_addr"`
	Partitions     int64           `json:"partitions"`
	ActorsInMemory int64           `json:"actors_in_memory"`
	DurableSeq     uint64          `json:"durable_seq"`
	Commits        int64           `json:"commits"`
	AlarmsPending  int64           `json:"alarms_pending"`
	Namespaces     []namespaceJSON `json:"namespaces"`
	Clustered      bool            `json:"clustered"`
	Members        []memberJSON    `json:"members"`
}

func statusCommand() *command {
	return &command{
		name:    "status",
		summary: "show the node's status and namespaces",
		remote:  true,
		setup: func(fs *flag.FlagSet) action {
			return func(inv *invocation, _ []string) error {
				st, err := call(inv, inv.admin.Status, &holdfastv1.StatusRequest{})
				if err != nil {
					return err
				}
				if inv.jsonMode() {
					out := statusJSON{
						NodeID: st.GetNodeId(), Version: st.GetVersion(), State: st.GetState(),
						Started: jsonTime(st.GetStarted()), DataDir: st.GetDataDir(),
						HTTPAddr: st.GetHttpAddr(), GRPCAddr: st.GetGrpcAddr(),
						Partitions: st.GetPartitions(), ActorsInMemory: st.GetActorsInMemory(),
						DurableSeq: st.GetDurableSeq(), Commits: st.GetCommits(),
						AlarmsPending: st.GetAlarmsPending(),
						Namespaces:    make([]namespaceJSON, 0, len(st.GetNamespaces())),
						Clustered:     st.GetClustered(),
						Members:       membersJSON(st.GetMembers()),
					}
					for _, ns := range st.GetNamespaces() {
						out.Namespaces = append(out.Namespaces, namespaceJSON{
							Name: ns.GetName(), Kind: ns.GetKind(), Durability: ns.GetDurability(),
							ActorsInMemory: ns.GetActorsInMemory(),
						})
					}
					return inv.writeJSON(out)
				}
				tw := newTable(inv.stdout)
				rows := [][2]string{
					{"node", st.GetNodeId()},
					{"state", st.GetState()},
					{"version", st.GetVersion()},
					{"started", humanTime(st.GetStarted(), "-")},
					{"grpc addr", st.GetGrpcAddr()},
					{"http addr", st.GetHttpAddr()},
					{"data dir", st.GetDataDir()},
					{"partitions", strconv.FormatInt(st.GetPartitions(), 10)},
					{"actors in memory", strconv.FormatInt(st.GetActorsInMemory(), 10)},
					{"durable seq", strconv.FormatUint(st.GetDurableSeq(), 10)},
					{"commits", strconv.FormatInt(st.GetCommits(), 10)},
					{"alarms pending", strconv.FormatInt(st.GetAlarmsPending(), 10)},
				}
				for _, r := range rows {
					fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
				}
				if len(st.GetNamespaces()) > 0 {
					fmt.Fprintf(tw, "\nNAMESPACE\tKIND\tDURABILITY\tACTORS IN MEMORY\n")
					for _, ns := range st.GetNamespaces() {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", ns.GetName(), ns.GetKind(), ns.GetDurability(), ns.GetActorsInMemory())
					}
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if st.GetClustered() {
					printMembers(inv, st.GetMembers())
				}
				return nil
			}
		},
	}
}
