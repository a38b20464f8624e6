package main

import (
	"flag"
	"fmt"
	"strconv"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

type actorSummaryJSON struct {
	Namespace string  `json:"namespace"`
	Key       string  `json:"key"`
	Shard     uint32  `json:"shard"`
	Partition int64   `json:"partition"`
	Keys      int64   `json:"keys"`
	InMemory  bool    `json:"in_memory"`
	Alarm     *string `json:"alarm"`
}

func newActorSummaryJSON(s *holdfastv1.ActorSummary) actorSummaryJSON {
	return actorSummaryJSON{
		Namespace: s.GetActor().GetNamespace(), Key: s.GetActor().GetKey(), Shard: s.GetActor().GetShard(),
		Partition: s.GetPartition(), Keys: s.GetKeys(), InMemory: s.GetInMemory(), Alarm: jsonTime(s.GetAlarm()),
	}
}

func actorsCommands() []*command {
	return []*command{
		{
			name: "actors list", args: "NAMESPACE", minArgs: 1, maxArgs: 1, remote: true,
			summary: "list the actors of a namespace",
			about:   `JSON output: {"actors":[{"namespace","key","shard","partition","keys","in_memory","alarm"}...],"truncated":BOOL}.`,
			flags: "  --prefix P            only actor keys starting with P\n" +
				"  --limit N             at most N actors (0: the node's default, 1000)\n",
			setup: func(fs *flag.FlagSet) action {
				prefix := fs.String("prefix", "", "")
				limit := fs.Int64("limit", 0, "")
				return func(inv *invocation, args []string) error {
					if args[0] == "" {
						return usagef("NAMESPACE must not be empty")
					}
					if *limit < 0 {
						return usagef("--limit must not be negative")
					}
					resp, err := call(inv, inv.admin.ListActors, &holdfastv1.ListActorsRequest{
						Namespace: args[0], Prefix: *prefix, Limit: *limit,
					})
					if err != nil {
						return err
					}
					if inv.jsonMode() {
						out := struct {
							Actors    []actorSummaryJSON `json:"actors"`
							Truncated bool               `json:"truncated"`
						}{Actors: make([]actorSummaryJSON, 0, len(resp.GetActors())), Truncated: resp.GetTruncated()}
						for _, a := range resp.GetActors() {
							out.Actors = append(out.Actors, newActorSummaryJSON(a))
						}
						return inv.writeJSON(out)
					}
					tw := newTable(inv.stdout)
					fmt.Fprintf(tw, "KEY\tSHARD\tPARTITION\tKEYS\tIN MEMORY\tALARM\n")
					for _, a := range resp.GetActors() {
						fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", displayKey(a.GetActor().GetKey()), a.GetActor().GetShard(),
							a.GetPartition(), a.GetKeys(), yesNo(a.GetInMemory()), humanTime(a.GetAlarm(), "-"))
					}
					if err := tw.Flush(); err != nil {
						return err
					}
					if resp.GetTruncated() {
						fmt.Fprintf(inv.stderr, "holdctl: listing truncated after %d actors (use --limit or --prefix)\n", len(resp.GetActors()))
					}
					return nil
				}
			},
		},
		{
			name: "actors get", args: "NAMESPACE KEY", minArgs: 2, maxArgs: 2, remote: true,
			summary: "show an actor: summary, alarm and stored entries",
			about:   "Values print as text when they are printable UTF-8, else as 0x-prefixed hex.",
			flags: "  --limit N             at most N entries (0: the node's default, 1000)\n" +
				shardHelp,
			setup: func(fs *flag.FlagSet) action {
				limit := fs.Int64("limit", 0, "")
				shard := fs.Uint("shard", 0, "")
				return func(inv *invocation, args []string) error {
					ref, err := actorRef(args[0], args[1], *shard)
					if err != nil {
						return err
					}
					if *limit < 0 {
						return usagef("--limit must not be negative")
					}
					resp, err := call(inv, inv.admin.GetActor, &holdfastv1.GetActorRequest{Actor: ref, Limit: *limit})
					if err != nil {
						return err
					}
					sum := resp.GetSummary()
					if sum == nil {
						sum = &holdfastv1.ActorSummary{Actor: ref}
					} else if sum.GetActor() == nil {
						sum.Actor = ref
					}
					if inv.jsonMode() {
						out := struct {
							Actor     actorSummaryJSON `json:"actor"`
							Alarm     *alarmJSON       `json:"alarm"`
							Entries   []jsonEntry      `json:"entries"`
							Truncated bool             `json:"truncated"`
						}{Actor: newActorSummaryJSON(sum), Entries: make([]jsonEntry, 0, len(resp.GetEntries())), Truncated: resp.GetTruncated()}
						if resp.GetAlarm() != nil {
							a := newAlarmJSON(ref, resp.GetAlarm())
							out.Alarm = &a
						}
						for _, e := range resp.GetEntries() {
							out.Entries = append(out.Entries, newJSONEntry(e.GetKey(), e.GetValue()))
						}
						return inv.writeJSON(out)
					}
					tw := newTable(inv.stdout)
					fmt.Fprintf(tw, "actor\t%s/%s (shard %d)\n", ref.GetNamespace(), displayKey(ref.GetKey()), ref.GetShard())
					fmt.Fprintf(tw, "partition\t%d\n", sum.GetPartition())
					fmt.Fprintf(tw, "keys\t%s\n", strconv.FormatInt(sum.GetKeys(), 10))
					fmt.Fprintf(tw, "in memory\t%s\n", yesNo(sum.GetInMemory()))
					if resp.GetAlarm() != nil {
						writeAlarmRows(tw, resp.GetAlarm())
					} else {
						fmt.Fprintf(tw, "scheduled\t%s\n", humanTime(sum.GetAlarm(), "no"))
					}
					if err := tw.Flush(); err != nil {
						return err
					}
					fmt.Fprintln(inv.stdout)
					return inv.printEntries(resp.GetEntries(), resp.GetTruncated())
				}
			},
		},
		{
			name: "actors delete", args: "NAMESPACE KEY", minArgs: 2, maxArgs: 2, remote: true,
			summary: "delete an actor: all its keys and its alarm",
			flags:   shardHelp + requestIDHelp,
			setup: func(fs *flag.FlagSet) action {
				shard := fs.Uint("shard", 0, "")
				reqID := fs.String("request-id", "", "")
				return func(inv *invocation, args []string) error {
					ref, err := actorRef(args[0], args[1], *shard)
					if err != nil {
						return err
					}
					id := inv.newRequestID(*reqID)
					resp, err := call(inv, inv.admin.DeleteActor, &holdfastv1.DeleteActorRequest{Actor: ref, RequestId: id})
					if err != nil {
						return err
					}
					if inv.jsonMode() {
						return inv.writeJSON(struct {
							Namespace   string `json:"namespace"`
							Key         string `json:"key"`
							DeletedKeys int64  `json:"deleted_keys"`
							RequestID   string `json:"request_id"`
						}{ref.Namespace, ref.Key, resp.GetDeletedKeys(), id})
					}
					_, err = fmt.Fprintf(inv.stdout, "deleted actor %s/%s (%d keys)\n", ref.Namespace, displayKey(ref.Key), resp.GetDeletedKeys())
					return err
				}
			},
		},
	}
}
