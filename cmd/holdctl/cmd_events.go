package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"time"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// eventJSON is one usage event in -o json output; the names are stable.
type eventJSON struct {
	Time                     *string     `json:"time"`
	RequestID                string      `json:"request_id"`
	User                     string      `json:"user"`
	KeyID                    string      `json:"key_id"`
	Route                    string      `json:"route"`
	Provider                 string      `json:"provider"`
	Model                    string      `json:"model"`
	RequestedModel           string      `json:"requested_model"`
	Status                   int32       `json:"status"`
	ErrorType                string      `json:"error_type"`
	ProviderErrorType        string      `json:"provider_error_type"`
	Streamed                 bool        `json:"streamed"`
	InputTokens              int64       `json:"input_tokens"`
	OutputTokens             int64       `json:"output_tokens"`
	CacheCreationInputTokens int64       `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64       `json:"cache_read_input_tokens"`
	Estimated                bool        `json:"estimated"`
	CostNanos                int64       `json:"cost_nanos"`
	CostUSD                  json.Number `json:"cost_usd"`
	LatencyMs                float64     `json:"latency_ms"`
	TTFBMs                   float64     `json:"ttfb_ms"`
	Attempts                 int32       `json:"attempts"`
	SampleRate               float64     `json:"sample_rate"`
}

func newEventJSON(e *holdfastv1.UsageEvent) eventJSON {
	return eventJSON{
		Time: jsonTime(e.GetTime()), RequestID: e.GetRequestId(), User: e.GetUser(), KeyID: e.GetKeyId(),
		Route: e.GetRoute(), Provider: e.GetProvider(), Model: e.GetModel(), RequestedModel: e.GetRequestedModel(),
		Status: e.GetStatus(), ErrorType: e.GetErrorType(), ProviderErrorType: e.GetProviderErrorType(),
		Streamed: e.GetStreamed(), InputTokens: e.GetInputTokens(), OutputTokens: e.GetOutputTokens(),
		CacheCreationInputTokens: e.GetCacheCreationInputTokens(), CacheReadInputTokens: e.GetCacheReadInputTokens(),
		Estimated: e.GetEstimated(), CostNanos: e.GetCostNanos(), CostUSD: usdNumber(e.GetCostNanos()),
		LatencyMs: e.GetLatencyMs(), TTFBMs: e.GetTtfbMs(), Attempts: e.GetAttempts(), SampleRate: e.GetSampleRate(),
	}
}

// parseSince reads --since: a duration back from now ("1h", "90m"; "0"
// for every retained event) or an RFC 3339 time.
func parseSince(s string) (*timestamppb.Timestamp, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return timestamppb.New(t), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return nil, usagef("--since %q: want a duration such as 1h or 30m (0: all retained), or an RFC 3339 time", s)
	}
	if d == 0 {
		return nil, nil
	}
	return timestamppb.New(now().Add(-d)), nil
}

func eventsCommand() *command {
	return &command{
		name: "events", args: "USER", minArgs: 1, maxArgs: 1, remote: true,
		summary: "read a user's gateway usage events (cluster only), oldest first",
		about: "Usage events are sampled analytics (every failed call, gateway.usage_events.success_sample_rate of\n" +
			"the successes; weight an event by 1/sample_rate); exact totals are `holdctl usage USER`.\n" +
			"A single node publishes none and answers FAILED_PRECONDITION (exit 1).\n" +
			`JSON output: {"events":[{"time":...,"request_id":...,"user":...,"key_id":...,"route":...,"provider":...,` + "\n" +
			`"model":...,"requested_model":...,"status":N,"error_type":...,"provider_error_type":...,"streamed":B,` + "\n" +
			`"input_tokens":N,"output_tokens":N,"cache_creation_input_tokens":N,"cache_read_input_tokens":N,` + "\n" +
			`"estimated":B,"cost_nanos":N,"cost_usd":DOLLARS,"latency_ms":F,"ttfb_ms":F,"attempts":N,"sample_rate":F}],` + "\n" +
			`"truncated":B}`,
		flags: "  --since D             events of the last D (default 1h; 0: all retained), or since an RFC 3339 time\n" +
			"  --limit N             at most N events (default 1000, at most 10000)\n",
		setup: func(fs *flag.FlagSet) action {
			since := fs.String("since", "1h", "")
			limit := fs.Int64("limit", 1000, "")
			return func(inv *invocation, args []string) error {
				if err := checkUser(args[0]); err != nil {
					return err
				}
				if *limit < 1 || *limit > 10000 {
					return usagef("--limit %d: want 1 to 10000", *limit)
				}
				ts, err := parseSince(*since)
				if err != nil {
					return err
				}
				resp, err := call(inv, inv.admin.Events, &holdfastv1.EventsRequest{User: args[0], Since: ts, Limit: *limit})
				if err != nil {
					return err
				}
				if inv.jsonMode() {
					out := struct {
						Events    []eventJSON `json:"events"`
						Truncated bool        `json:"truncated"`
					}{Events: make([]eventJSON, 0, len(resp.GetEvents())), Truncated: resp.GetTruncated()}
					for _, e := range resp.GetEvents() {
						out.Events = append(out.Events, newEventJSON(e))
					}
					return inv.writeJSON(out)
				}
				if len(resp.GetEvents()) == 0 {
					_, err := fmt.Fprintf(inv.stdout, "no usage events of %s\n", displayKey(args[0]))
					return err
				}
				tw := newTable(inv.stdout)
				fmt.Fprintf(tw, "TIME\tREQUEST ID\tPROVIDER\tMODEL\tSTATUS\tERROR\tINPUT\tOUTPUT\tCACHE_WRITE\tCACHE_READ\tCOST\tLATENCY\tSAMPLE\n")
				for _, e := range resp.GetEvents() {
					when := "-"
					if t := jsonTime(e.GetTime()); t != nil {
						when = *t
					}
					errText := e.GetErrorType()
					if p := e.GetProviderErrorType(); p != "" && p != errText {
						errText = joinNonEmpty(errText, p)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t%sms\t%s\n",
						when, e.GetRequestId(), dash(e.GetProvider()), dash(e.GetModel()), e.GetStatus(), dash(errText),
						e.GetInputTokens(), e.GetOutputTokens(), e.GetCacheCreationInputTokens(), e.GetCacheReadInputTokens(),
						formatUSD(e.GetCostNanos()), strconv.FormatFloat(e.GetLatencyMs(), 'f', 1, 64), formatFloat(e.GetSampleRate()))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if resp.GetTruncated() {
					_, err := fmt.Fprintf(inv.stdout, "\n(more events: raise --limit or narrow --since)\n")
					return err
				}
				return nil
			}
		},
	}
}

func joinNonEmpty(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "/" + b
}
