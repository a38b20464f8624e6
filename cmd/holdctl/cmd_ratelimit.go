package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"

	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

const rlNamespaceHelp = "  --namespace NS        namespace of kind ratelimit (default ratelimit)\n"

type bucketJSON struct {
	Name            string  `json:"name"`
	Capacity        float64 `json:"capacity"`
	RefillPerSecond float64 `json:"refill_per_second"`
	Level           float64 `json:"level"`
	Source          string  `json:"source"`
}

type rateLimitStateJSON struct {
	Buckets          []bucketJSON `json:"buckets"`
	Day              string       `json:"day"`
	SpendTodayNanos  int64        `json:"spend_today_nanos"`
	DailyBudgetNanos int64        `json:"daily_budget_nanos"`
}

type takeJSON struct {
	Allowed      bool               `json:"allowed"`
	Remaining    map[string]float64 `json:"remaining"`
	RetryAfterMs int64              `json:"retry_after_ms"`
	RefusedBy    string             `json:"refused_by,omitempty"`
}

func ratelimitCommands() []*command {
	return []*command{
		{
			name: "ratelimit set", args: "KEY", minArgs: 1, maxArgs: 1, remote: true,
			summary: "set per-key bucket limits and daily budget; prints the state",
			about: "Example: holdctl ratelimit set user-42 --bucket requests=10/0.5 --bucket tokens=1000/50\n" +
				"A bucket named here replaces the namespace default of the same name.",
			flags: "  --bucket NAME=CAPACITY/REFILL_PER_SECOND\n" +
				"                        a per-key bucket limit (repeatable)\n" +
				"  --daily-budget-usd X  daily spend budget in dollars (up to 9 decimals)\n" +
				"  --clear-budget        remove the per-key budget (back to the namespace default)\n" +
				"  --replace             remove every per-key limit first\n" +
				rlNamespaceHelp + requestIDHelp,
			setup: func(fs *flag.FlagSet) action {
				var buckets bucketFlag
				var budget usdFlag
				fs.Var(&buckets, "bucket", "")
				fs.Var(&budget, "daily-budget-usd", "")
				clearBudget := fs.Bool("clear-budget", false, "")
				replace := fs.Bool("replace", false, "")
				ns := fs.String("namespace", "ratelimit", "")
				reqID := fs.String("request-id", "", "")
				return func(inv *invocation, args []string) error {
					ref, err := actorRef(*ns, args[0], 0)
					if err != nil {
						return err
					}
					if budget.set && *clearBudget {
						return usagef("--daily-budget-usd and --clear-budget exclude each other")
					}
					if budget.set && budget.nanos == 0 {
						// 0 means "unchanged" on the wire.
						return usagef("--daily-budget-usd must be above 0 (use --clear-budget to remove the budget)")
					}
					if len(buckets.m) == 0 && !budget.set && !*clearBudget && !*replace {
						return usagef("nothing to set: give --bucket, --daily-budget-usd, --clear-budget or --replace")
					}
					req := &holdfastv1.RateLimitSetRequest{
						Actor: ref, RequestId: inv.newRequestID(*reqID),
						Buckets: buckets.m, Replace: *replace,
					}
					switch {
					case budget.set:
						req.DailyBudgetNanos = budget.nanos
					case *clearBudget:
						req.DailyBudgetNanos = -1
					}
					st, err := call(inv, inv.actor.RateLimitSet, req)
					if err != nil {
						return err
					}
					return inv.printRateLimitState(st)
				}
			},
		},
		{
			name: "ratelimit take", args: "KEY NAME=N...", minArgs: 1, maxArgs: -1, remote: true,
			summary: "take tokens, all or nothing (exit status 3 when refused)",
			about: "JSON output: {\"allowed\":BOOL,\"remaining\":{NAME:NUMBER},\"retry_after_ms\":N},\n" +
				"plus \"refused_by\" when refused. retry_after_ms is -1 when the take can never succeed.",
			flags: "  --spend-estimate-usd X  also check X dollars against today's remaining budget\n" +
				rlNamespaceHelp + requestIDHelp,
			setup: func(fs *flag.FlagSet) action {
				var spend usdFlag
				fs.Var(&spend, "spend-estimate-usd", "")
				ns := fs.String("namespace", "ratelimit", "")
				reqID := fs.String("request-id", "", "")
				return func(inv *invocation, args []string) error {
					ref, err := actorRef(*ns, args[0], 0)
					if err != nil {
						return err
					}
					amounts, err := parseAmounts(args[1:])
					if err != nil {
						return err
					}
					if len(amounts) == 0 && !spend.set {
						return usagef("give at least one NAME=N (or --spend-estimate-usd)")
					}
					resp, err := call(inv, inv.actor.RateLimitTake, &holdfastv1.RateLimitTakeRequest{
						Actor: ref, RequestId: inv.newRequestID(*reqID),
						Amounts: amounts, SpendEstimateNanos: spend.nanos,
					})
					if err != nil {
						return err
					}
					if err := inv.printTake(resp); err != nil {
						return err
					}
					if !resp.GetAllowed() {
						return &exitError{code: exitRefused}
					}
					return nil
				}
			},
		},
		{
			name: "ratelimit get", args: "KEY", minArgs: 1, maxArgs: 1, remote: true,
			summary: "show a key's buckets and today's spend",
			flags:   rlNamespaceHelp,
			setup: func(fs *flag.FlagSet) action {
				ns := fs.String("namespace", "ratelimit", "")
				return func(inv *invocation, args []string) error {
					ref, err := actorRef(*ns, args[0], 0)
					if err != nil {
						return err
					}
					st, err := call(inv, inv.actor.RateLimitGet, &holdfastv1.RateLimitGetRequest{Actor: ref})
					if err != nil {
						return err
					}
					return inv.printRateLimitState(st)
				}
			},
		},
	}
}

func (inv *invocation) printTake(resp *holdfastv1.RateLimitTakeResponse) error {
	if inv.jsonMode() {
		out := takeJSON{
			Allowed:      resp.GetAllowed(),
			Remaining:    make(map[string]float64, len(resp.GetRemaining())),
			RetryAfterMs: resp.GetRetryAfterMs(),
		}
		for k, v := range resp.GetRemaining() {
			out.Remaining[k] = v
		}
		if !resp.GetAllowed() {
			out.RefusedBy = resp.GetRefusedBy()
		}
		return inv.writeJSON(out)
	}
	names := make([]string, 0, len(resp.GetRemaining()))
	for k := range resp.GetRemaining() {
		names = append(names, k)
	}
	sort.Strings(names)
	rem := make([]string, len(names))
	for i, k := range names {
		rem[i] = k + "=" + formatFloat(resp.GetRemaining()[k])
	}
	remaining := ""
	if len(rem) > 0 {
		remaining = " (remaining " + strings.Join(rem, ", ") + ")"
	}
	if resp.GetAllowed() {
		_, err := fmt.Fprintf(inv.stdout, "allowed%s\n", remaining)
		return err
	}
	by := resp.GetRefusedBy()
	if by == "" {
		by = "the limiter"
	}
	when := "retry after " + (time.Duration(resp.GetRetryAfterMs()) * time.Millisecond).String()
	if resp.GetRetryAfterMs() < 0 {
		when = "can never succeed (amount above capacity)"
	}
	_, err := fmt.Fprintf(inv.stdout, "refused by %s: %s%s\n", by, when, remaining)
	return err
}

func (inv *invocation) printRateLimitState(st *holdfastv1.RateLimitState) error {
	if inv.jsonMode() {
		out := rateLimitStateJSON{
			Buckets:          make([]bucketJSON, 0, len(st.GetBuckets())),
			Day:              st.GetDay(),
			SpendTodayNanos:  st.GetSpendTodayNanos(),
			DailyBudgetNanos: st.GetDailyBudgetNanos(),
		}
		for _, b := range st.GetBuckets() {
			out.Buckets = append(out.Buckets, bucketJSON{
				Name: b.GetName(), Capacity: b.GetCapacity(), RefillPerSecond: b.GetRefillPerSecond(),
				Level: b.GetLevel(), Source: b.GetSource(),
			})
		}
		return inv.writeJSON(out)
	}
	tw := newTable(inv.stdout)
	fmt.Fprintf(tw, "BUCKET\tCAPACITY\tREFILL/S\tLEVEL\tSOURCE\n")
	for _, b := range st.GetBuckets() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", displayKey(b.GetName()), formatFloat(b.GetCapacity()),
			formatFloat(b.GetRefillPerSecond()), formatFloat(b.GetLevel()), b.GetSource())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	day := st.GetDay()
	if day == "" {
		day = "today"
	}
	budget := "no daily budget"
	if st.GetDailyBudgetNanos() > 0 {
		budget = "of " + formatUSD(st.GetDailyBudgetNanos()) + " daily budget"
	}
	_, err := fmt.Fprintf(inv.stdout, "\nspend %s: %s %s\n", day, formatUSD(st.GetSpendTodayNanos()), budget)
	return err
}
