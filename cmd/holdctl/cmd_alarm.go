package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

type alarmJSON struct {
	Namespace  string  `json:"namespace"`
	Key        string  `json:"key"`
	Scheduled  bool    `json:"scheduled"`
	At         *string `json:"at"`
	LastFired  *string `json:"last_fired"`
	FiredCount int64   `json:"fired_count"`
	Retries    int64   `json:"retries"`
}

func newAlarmJSON(ref *holdfastv1.ActorRef, a *holdfastv1.AlarmState) alarmJSON {
	out := alarmJSON{
		Namespace: ref.GetNamespace(), Key: ref.GetKey(),
		Scheduled: a.GetScheduled(), LastFired: jsonTime(a.GetLastFired()),
		FiredCount: a.GetFiredCount(), Retries: a.GetRetries(),
	}
	if a.GetScheduled() {
		out.At = jsonTime(a.GetAt())
	}
	return out
}

func alarmCommands() []*command {
	return []*command{
		{
			name: "alarm set", args: "NAMESPACE KEY", minArgs: 2, maxArgs: 2, remote: true,
			summary: "schedule the actor's alarm (--in DURATION or --at TIME)",
			about:   "An actor has one alarm; setting it replaces the previous one.",
			flags: "  --in DURATION         fire after DURATION (Go syntax: 90s, 1h30m, 4.5s)\n" +
				"  --at TIME             fire at TIME (RFC 3339, e.g. 2030-01-02T15:04:05Z)\n" +
				shardHelp + requestIDHelp,
			setup: func(fs *flag.FlagSet) action {
				in := fs.String("in", "", "")
				at := fs.String("at", "", "")
				shard := fs.Uint("shard", 0, "")
				reqID := fs.String("request-id", "", "")
				return func(inv *invocation, args []string) error {
					ref, err := actorRef(args[0], args[1], *shard)
					if err != nil {
						return err
					}
					if (*in == "") == (*at == "") {
						return usagef("give exactly one of --in and --at")
					}
					req := &holdfastv1.AlarmSetRequest{Actor: ref}
					if *in != "" {
						d, err := time.ParseDuration(*in)
						if err != nil || d < 0 {
							return usagef("--in wants a non-negative duration such as 30s or 1h, got %q", *in)
						}
						// Round up to whole milliseconds: never fire early.
						req.InMs = int64((d + time.Millisecond - 1) / time.Millisecond)
					} else {
						t, err := time.Parse(time.RFC3339, *at)
						if err != nil {
							return usagef("--at wants an RFC 3339 time such as 2030-01-02T15:04:05Z, got %q", *at)
						}
						req.At = timestamppb.New(t)
					}
					req.RequestId = inv.newRequestID(*reqID)
					st, err := call(inv, inv.actor.AlarmSet, req)
					if err != nil {
						return err
					}
					return inv.printAlarm(ref, st)
				}
			},
		},
		alarmSimple("alarm get", "show the actor's alarm", false,
			func(inv *invocation, ref *holdfastv1.ActorRef, _ string) (*holdfastv1.AlarmState, error) {
				return call(inv, inv.actor.AlarmGet, &holdfastv1.AlarmGetRequest{Actor: ref})
			}),
		alarmSimple("alarm delete", "cancel the actor's alarm", true,
			func(inv *invocation, ref *holdfastv1.ActorRef, id string) (*holdfastv1.AlarmState, error) {
				return call(inv, inv.actor.AlarmDelete, &holdfastv1.AlarmDeleteRequest{Actor: ref, RequestId: id})
			}),
	}
}

// alarmSimple builds alarm get and alarm delete, which differ only in the call.
func alarmSimple(name, summary string, mutating bool,
	do func(inv *invocation, ref *holdfastv1.ActorRef, requestID string) (*holdfastv1.AlarmState, error)) *command {
	flags := shardHelp
	if mutating {
		flags += requestIDHelp
	}
	return &command{
		name: name, args: "NAMESPACE KEY", minArgs: 2, maxArgs: 2, remote: true,
		summary: summary, flags: flags,
		setup: func(fs *flag.FlagSet) action {
			shard := fs.Uint("shard", 0, "")
			var reqID *string
			if mutating {
				reqID = fs.String("request-id", "", "")
			}
			return func(inv *invocation, args []string) error {
				ref, err := actorRef(args[0], args[1], *shard)
				if err != nil {
					return err
				}
				id := ""
				if mutating {
					id = inv.newRequestID(*reqID)
				}
				st, err := do(inv, ref, id)
				if err != nil {
					return err
				}
				return inv.printAlarm(ref, st)
			}
		},
	}
}

func (inv *invocation) printAlarm(ref *holdfastv1.ActorRef, a *holdfastv1.AlarmState) error {
	if inv.jsonMode() {
		return inv.writeJSON(newAlarmJSON(ref, a))
	}
	tw := newTable(inv.stdout)
	fmt.Fprintf(tw, "actor\t%s/%s\n", ref.GetNamespace(), displayKey(ref.GetKey()))
	writeAlarmRows(tw, a)
	return tw.Flush()
}

// writeAlarmRows writes the alarm lines of a key/value table.
func writeAlarmRows(tw io.Writer, a *holdfastv1.AlarmState) {
	scheduled := "no"
	if a.GetScheduled() {
		scheduled = humanTime(a.GetAt(), "yes")
	}
	fmt.Fprintf(tw, "scheduled\t%s\n", scheduled)
	fmt.Fprintf(tw, "last fired\t%s\n", humanTime(a.GetLastFired(), "never"))
	fmt.Fprintf(tw, "fired count\t%s\n", strconv.FormatInt(a.GetFiredCount(), 10))
	fmt.Fprintf(tw, "retries\t%s\n", strconv.FormatInt(a.GetRetries(), 10))
}
