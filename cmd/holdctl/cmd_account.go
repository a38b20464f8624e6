package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// The gateway's accounts: holdctl keys, limits and usage speak
// holdfast.v1.AccountService.

const (
	limitRPM       = "requests_per_minute"
	limitITPM      = "input_tokens_per_minute"
	limitOTPM      = "output_tokens_per_minute"
	limitBudgetUSD = "daily_budget_usd"
	// fieldBudget is the wire name of the budget field (nano-dollars).
	fieldBudget = "daily_budget_nanos"
)

func (inv *invocation) accounts() holdfastv1.AccountServiceClient {
	return holdfastv1.NewAccountServiceClient(inv.conn)
}

// checkUser checks a USER argument as the node does: 1-128 bytes of UTF-8.
func checkUser(user string) error {
	switch {
	case user == "":
		return usagef("the user must not be empty")
	case len(user) > 128:
		return usagef("the user is %d bytes, at most 128", len(user))
	case !utf8.ValidString(user):
		return usagef("the user is not valid UTF-8")
	}
	return nil
}

// isKeyID reports whether s is a key ID as keys list shows it: 16
// lowercase hex digits.
func isKeyID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// stringsFlag collects a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error {
	if v == "" {
		return fmt.Errorf("must not be empty")
	}
	*s = append(*s, v)
	return nil
}

// usdNumber renders nano-dollars as an exact JSON number of dollars:
// 1234567 -> 0.001234567, 1500000000 -> 1.5, 0 -> 0.
func usdNumber(nanos int64) json.Number {
	s := strings.TrimPrefix(formatUSD(nanos), "-")
	s = strings.TrimPrefix(s, "$")
	s = strings.TrimRight(s, "0")
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		s = "0"
	}
	if nanos < 0 && s != "0" {
		s = "-" + s
	}
	return json.Number(s)
}

// ---- JSON shapes ----

type accountLimitsJSON struct {
	RequestsPerMinute     int64       `json:"requests_per_minute"`
	InputTokensPerMinute  int64       `json:"input_tokens_per_minute"`
	OutputTokensPerMinute int64       `json:"output_tokens_per_minute"`
	DailyBudgetUSD        json.Number `json:"daily_budget_usd"`
}

func newAccountLimitsJSON(l *holdfastv1.AccountLimits) accountLimitsJSON {
	return accountLimitsJSON{
		RequestsPerMinute: l.GetRequestsPerMinute(), InputTokensPerMinute: l.GetInputTokensPerMinute(),
		OutputTokensPerMinute: l.GetOutputTokensPerMinute(), DailyBudgetUSD: usdNumber(l.GetDailyBudgetNanos()),
	}
}

type accountKeyJSON struct {
	KeyID            string             `json:"key_id"`
	User             string             `json:"user"`
	Name             string             `json:"name"`
	Created          *string            `json:"created"`
	Revoked          bool               `json:"revoked"`
	RevokedAt        *string            `json:"revoked_at"`
	AllowedProviders []string           `json:"allowed_providers"`
	AllowedModels    []string           `json:"allowed_models"`
	Limits           *accountLimitsJSON `json:"limits"`
}

func newAccountKeyJSON(k *holdfastv1.AccountKey) accountKeyJSON {
	out := accountKeyJSON{
		KeyID: k.GetKeyId(), User: k.GetUser(), Name: k.GetName(), Created: jsonTime(k.GetCreated()),
		Revoked: k.GetRevoked(), RevokedAt: jsonTime(k.GetRevokedAt()),
		AllowedProviders: append([]string{}, k.GetAllowedProviders()...),
		AllowedModels:    append([]string{}, k.GetAllowedModels()...),
	}
	if k.GetLimits() != nil {
		l := newAccountLimitsJSON(k.GetLimits())
		out.Limits = &l
	}
	return out
}

// shortTime is an RFC 3339 UTC time to the second, or none.
func shortTime(ts *timestamppb.Timestamp, none string) string {
	t, ok := timestamp(ts)
	if !ok {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

// ---- keys ----

func keysCommands() []*command {
	return []*command{
		{
			name: "keys create", remote: true,
			summary: "issue a virtual key for a user; the key is shown once",
			about: "holdfast stores only the key's hash: copy the key from this output, it cannot be shown again.\n" +
				`JSON output: {"key":KEY,"user":USER,"key_id":KEY_ID}.` + "\n" +
				"Per-key limits apply on top of the user's (both must pass); 0 or absent: none.",
			flags: "  --user USER           the key's user (required)\n" +
				"  --name N              a label shown by keys list\n" +
				"  --allow-provider P    allow only this provider (repeatable; default any)\n" +
				"  --allow-model M       allow only this model; M* matches a prefix (repeatable; default any)\n" +
				"  --requests-per-minute N, --input-tokens-per-minute N, --output-tokens-per-minute N\n" +
				"                        per-key limits\n" +
				"  --daily-budget-usd X  per-key daily budget in dollars (up to 9 decimals)\n" +
				requestIDHelp,
			setup: func(fs *flag.FlagSet) action {
				user := fs.String("user", "", "")
				name := fs.String("name", "", "")
				var providers, models stringsFlag
				fs.Var(&providers, "allow-provider", "")
				fs.Var(&models, "allow-model", "")
				rpm := fs.Int64("requests-per-minute", 0, "")
				itpm := fs.Int64("input-tokens-per-minute", 0, "")
				otpm := fs.Int64("output-tokens-per-minute", 0, "")
				var budget usdFlag
				fs.Var(&budget, "daily-budget-usd", "")
				reqID := fs.String("request-id", "", "")
				return func(inv *invocation, args []string) error {
					if *user == "" {
						return usagef("--user is required")
					}
					if err := checkUser(*user); err != nil {
						return err
					}
					if *rpm < 0 || *itpm < 0 || *otpm < 0 {
						return usagef("per-minute limits must not be negative")
					}
					req := &holdfastv1.CreateKeyRequest{
						User: *user, Name: *name, AllowedProviders: providers, AllowedModels: models,
						RequestId: inv.newRequestID(*reqID),
					}
					if *rpm != 0 || *itpm != 0 || *otpm != 0 || budget.nanos != 0 {
						req.Limits = &holdfastv1.AccountLimits{
							RequestsPerMinute: *rpm, InputTokensPerMinute: *itpm,
							OutputTokensPerMinute: *otpm, DailyBudgetNanos: budget.nanos,
						}
					}
					resp, err := call(inv, inv.accounts().CreateKey, req)
					if err != nil {
						return err
					}
					if inv.jsonMode() {
						return inv.writeJSON(struct {
							Key   string `json:"key"`
							User  string `json:"user"`
							KeyID string `json:"key_id"`
						}{resp.GetKey(), resp.GetInfo().GetUser(), resp.GetInfo().GetKeyId()})
					}
					tw := newTable(inv.stdout)
					fmt.Fprintf(tw, "key_id\t%s\n", resp.GetInfo().GetKeyId())
					fmt.Fprintf(tw, "user\t%s\n", displayKey(resp.GetInfo().GetUser()))
					if resp.GetInfo().GetName() != "" {
						fmt.Fprintf(tw, "name\t%s\n", displayKey(resp.GetInfo().GetName()))
					}
					fmt.Fprintf(tw, "key\t%s\n", resp.GetKey())
					if err := tw.Flush(); err != nil {
						return err
					}
					_, err = fmt.Fprintln(inv.stdout, "\nThis key is shown once: store it now. holdfast keeps only its hash.")
					return err
				}
			},
		},
		{
			name: "keys list", remote: true,
			summary: "list virtual keys (one user's, or every user's)",
			about: `JSON output: {"keys":[{"key_id","user","name","created","revoked","revoked_at",` +
				`"allowed_providers","allowed_models","limits"}...]}. Keys themselves are never shown.`,
			flags: "  --user USER           only this user's keys\n",
			setup: func(fs *flag.FlagSet) action {
				user := fs.String("user", "", "")
				return func(inv *invocation, args []string) error {
					if *user != "" {
						if err := checkUser(*user); err != nil {
							return err
						}
					}
					resp, err := call(inv, inv.accounts().ListKeys, &holdfastv1.ListKeysRequest{User: *user})
					if err != nil {
						return err
					}
					if inv.jsonMode() {
						out := struct {
							Keys []accountKeyJSON `json:"keys"`
						}{Keys: make([]accountKeyJSON, 0, len(resp.GetKeys()))}
						for _, k := range resp.GetKeys() {
							out.Keys = append(out.Keys, newAccountKeyJSON(k))
						}
						return inv.writeJSON(out)
					}
					tw := newTable(inv.stdout)
					fmt.Fprintf(tw, "KEY_ID\tUSER\tNAME\tCREATED\tREVOKED\n")
					for _, k := range resp.GetKeys() {
						name := "-"
						if k.GetName() != "" {
							name = displayKey(k.GetName())
						}
						revoked := "no"
						if k.GetRevoked() {
							revoked = shortTime(k.GetRevokedAt(), "yes")
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.GetKeyId(), displayKey(k.GetUser()), name,
							shortTime(k.GetCreated(), "-"), revoked)
					}
					return tw.Flush()
				}
			},
		},
		{
			name: "keys revoke", args: "KEY_ID", minArgs: 1, maxArgs: 1, remote: true,
			summary: "revoke a virtual key: every node refuses it from now on",
			about:   `KEY_ID is the 16 hex digits keys list shows. JSON output: {"key_id","user","revoked","revoked_at"}.`,
			flags:   requestIDHelp,
			setup: func(fs *flag.FlagSet) action {
				reqID := fs.String("request-id", "", "")
				return func(inv *invocation, args []string) error {
					if !isKeyID(args[0]) {
						return usagef("KEY_ID must be 16 lowercase hex digits, as keys list shows (not the key itself)")
					}
					resp, err := call(inv, inv.accounts().RevokeKey, &holdfastv1.RevokeKeyRequest{
						KeyId: args[0], RequestId: inv.newRequestID(*reqID),
					})
					if err != nil {
						return err
					}
					k := resp.GetKey()
					if inv.jsonMode() {
						return inv.writeJSON(struct {
							KeyID     string  `json:"key_id"`
							User      string  `json:"user"`
							Revoked   bool    `json:"revoked"`
							RevokedAt *string `json:"revoked_at"`
						}{k.GetKeyId(), k.GetUser(), k.GetRevoked(), jsonTime(k.GetRevokedAt())})
					}
					_, err = fmt.Fprintf(inv.stdout, "revoked key %s of user %s at %s\n", k.GetKeyId(),
						displayKey(k.GetUser()), shortTime(k.GetRevokedAt(), "-"))
					return err
				}
			},
		},
	}
}

// ---- limits ----

// parseLimitAssignments parses NAME=VALUE arguments of limits set.
func parseLimitAssignments(args []string) (*holdfastv1.AccountLimits, []string, error) {
	l := &holdfastv1.AccountLimits{}
	var fields []string
	seen := map[string]bool{}
	for _, a := range args {
		name, v, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			return nil, nil, usagef("want NAME=VALUE, got %q", a)
		}
		if seen[name] {
			return nil, nil, usagef("%s given twice", name)
		}
		seen[name] = true
		switch name {
		case limitRPM, limitITPM, limitOTPM:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, nil, usagef("%s must be a non-negative integer, got %q", name, v)
			}
			switch name {
			case limitRPM:
				l.RequestsPerMinute = n
			case limitITPM:
				l.InputTokensPerMinute = n
			default:
				l.OutputTokensPerMinute = n
			}
			fields = append(fields, name)
		case limitBudgetUSD:
			n, err := parseUSDNanos(v)
			if err != nil {
				return nil, nil, usagef("%s: %v", name, err)
			}
			l.DailyBudgetNanos = n
			fields = append(fields, fieldBudget)
		default:
			return nil, nil, usagef("unknown limit %q (want %s, %s, %s or %s)", name, limitRPM, limitITPM, limitOTPM, limitBudgetUSD)
		}
	}
	if len(fields) == 0 {
		return nil, nil, usagef("give at least one NAME=VALUE")
	}
	return l, fields, nil
}

func limitsCommands() []*command {
	return []*command{
		{
			name: "limits set", args: "USER NAME=VALUE...", minArgs: 1, maxArgs: -1, remote: true,
			summary: "set a user's limits (any subset); prints own and effective limits",
			about: "NAME is requests_per_minute, input_tokens_per_minute, output_tokens_per_minute (integers)\n" +
				"or daily_budget_usd (dollars, up to 9 decimals). 0 returns a limit to the namespace default.\n" +
				"Example: holdctl limits set alice requests_per_minute=60 daily_budget_usd=12.50\n" +
				`JSON output: {"user":USER,"own":LIMITS,"effective":LIMITS}, LIMITS = {"requests_per_minute":N,` + "\n" +
				`"input_tokens_per_minute":N,"output_tokens_per_minute":N,"daily_budget_usd":DOLLARS}; effective 0: no limit.`,
			flags: requestIDHelp,
			setup: func(fs *flag.FlagSet) action {
				reqID := fs.String("request-id", "", "")
				return func(inv *invocation, args []string) error {
					if err := checkUser(args[0]); err != nil {
						return err
					}
					l, fields, err := parseLimitAssignments(args[1:])
					if err != nil {
						return err
					}
					resp, err := call(inv, inv.accounts().SetLimits, &holdfastv1.SetLimitsRequest{
						User: args[0], Limits: l, Fields: fields, RequestId: inv.newRequestID(*reqID),
					})
					if err != nil {
						return err
					}
					return inv.printAccountLimits(args[0], resp)
				}
			},
		},
		{
			name: "limits get", args: "USER", minArgs: 1, maxArgs: 1, remote: true,
			summary: "show a user's own and effective limits",
			about:   "JSON output: as limits set.",
			setup: func(fs *flag.FlagSet) action {
				return func(inv *invocation, args []string) error {
					if err := checkUser(args[0]); err != nil {
						return err
					}
					resp, err := call(inv, inv.accounts().GetLimits, &holdfastv1.GetLimitsRequest{User: args[0]})
					if err != nil {
						return err
					}
					return inv.printAccountLimits(args[0], resp)
				}
			},
		},
	}
}

func (inv *invocation) printAccountLimits(user string, resp *holdfastv1.AccountLimitsResponse) error {
	if inv.jsonMode() {
		return inv.writeJSON(struct {
			User      string            `json:"user"`
			Own       accountLimitsJSON `json:"own"`
			Effective accountLimitsJSON `json:"effective"`
		}{user, newAccountLimitsJSON(resp.GetOwn()), newAccountLimitsJSON(resp.GetEffective())})
	}
	count := func(n int64, zero string) string {
		if n == 0 {
			return zero
		}
		return strconv.FormatInt(n, 10)
	}
	usd := func(n int64, zero string) string {
		if n == 0 {
			return zero
		}
		return formatUSD(n)
	}
	own, eff := resp.GetOwn(), resp.GetEffective()
	tw := newTable(inv.stdout)
	fmt.Fprintf(tw, "LIMIT\tOWN\tEFFECTIVE\n")
	fmt.Fprintf(tw, "%s\t%s\t%s\n", limitRPM, count(own.GetRequestsPerMinute(), "default"), count(eff.GetRequestsPerMinute(), "none"))
	fmt.Fprintf(tw, "%s\t%s\t%s\n", limitITPM, count(own.GetInputTokensPerMinute(), "default"), count(eff.GetInputTokensPerMinute(), "none"))
	fmt.Fprintf(tw, "%s\t%s\t%s\n", limitOTPM, count(own.GetOutputTokensPerMinute(), "default"), count(eff.GetOutputTokensPerMinute(), "none"))
	fmt.Fprintf(tw, "%s\t%s\t%s\n", limitBudgetUSD, usd(own.GetDailyBudgetNanos(), "default"), usd(eff.GetDailyBudgetNanos(), "none"))
	return tw.Flush()
}

// ---- usage ----

func usageCommand() *command {
	return &command{
		name: "usage", args: "USER", minArgs: 1, maxArgs: 1, remote: true,
		summary: "show a user's exact usage totals for one UTC day, by hour",
		about: `JSON output: one flat object for the day: {"requests":N,"input_tokens":N,"output_tokens":N,` + "\n" +
			`"cache_creation_input_tokens":N,"cache_read_input_tokens":N,"cost_usd":DOLLARS} (cost exact to the` + "\n" +
			"nano-dollar). input_tokens is what the provider reports (for Anthropic, the uncached part).",
		flags: "  --day YYYY-MM-DD      the UTC day (default today)\n",
		setup: func(fs *flag.FlagSet) action {
			day := fs.String("day", "", "")
			return func(inv *invocation, args []string) error {
				if err := checkUser(args[0]); err != nil {
					return err
				}
				if *day != "" {
					if d, err := time.Parse(time.DateOnly, *day); err != nil || d.Format(time.DateOnly) != *day {
						return usagef("--day %q: want YYYY-MM-DD", *day)
					}
				}
				resp, err := call(inv, inv.accounts().GetUsage, &holdfastv1.GetUsageRequest{User: args[0], Day: *day})
				if err != nil {
					return err
				}
				d := resp.GetDay()
				if inv.jsonMode() {
					return inv.writeJSON(struct {
						Requests                 int64       `json:"requests"`
						InputTokens              int64       `json:"input_tokens"`
						OutputTokens             int64       `json:"output_tokens"`
						CacheCreationInputTokens int64       `json:"cache_creation_input_tokens"`
						CacheReadInputTokens     int64       `json:"cache_read_input_tokens"`
						CostUSD                  json.Number `json:"cost_usd"`
					}{d.GetRequests(), d.GetInputTokens(), d.GetOutputTokens(), d.GetCacheCreationInputTokens(),
						d.GetCacheReadInputTokens(), usdNumber(d.GetCostNanos())})
				}
				period := d.GetPeriod()
				if period == "" {
					period = *day
				}
				fmt.Fprintf(inv.stdout, "usage of %s on %s (UTC)\n\n", displayKey(args[0]), period)
				tw := newTable(inv.stdout)
				fmt.Fprintf(tw, "requests\t%d\n", d.GetRequests())
				fmt.Fprintf(tw, "errors\t%d\n", d.GetErrors())
				fmt.Fprintf(tw, "input_tokens\t%d\n", d.GetInputTokens())
				fmt.Fprintf(tw, "output_tokens\t%d\n", d.GetOutputTokens())
				fmt.Fprintf(tw, "cache_creation_input_tokens\t%d\n", d.GetCacheCreationInputTokens())
				fmt.Fprintf(tw, "cache_read_input_tokens\t%d\n", d.GetCacheReadInputTokens())
				fmt.Fprintf(tw, "cost\t%s\n", formatUSD(d.GetCostNanos()))
				if err := tw.Flush(); err != nil {
					return err
				}
				if len(resp.GetHours()) == 0 {
					return nil
				}
				fmt.Fprintln(inv.stdout)
				tw = newTable(inv.stdout)
				fmt.Fprintf(tw, "HOUR\tREQUESTS\tERRORS\tINPUT\tOUTPUT\tCACHE_WRITE\tCACHE_READ\tCOST\n")
				for _, h := range resp.GetHours() {
					hour := h.GetPeriod()
					if i := strings.IndexByte(hour, 'T'); i >= 0 {
						hour = hour[i+1:] + ":00"
					}
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", hour, h.GetRequests(), h.GetErrors(),
						h.GetInputTokens(), h.GetOutputTokens(), h.GetCacheCreationInputTokens(),
						h.GetCacheReadInputTokens(), formatUSD(h.GetCostNanos()))
				}
				return tw.Flush()
			}
		},
	}
}
