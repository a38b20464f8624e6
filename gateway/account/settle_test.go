package account_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/gateway/account"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

func TestSettleCorrectsEstimatesOnce(t *testing.T) {
	e := newEnv(t, account.Defaults{InputTokensPerMinute: 6000, OutputTokensPerMinute: 3000})
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{InputTokensEstimate: 1000, OutputTokensEstimate: 2000}))
	if in, _ := e.level("alice", "bucket/input_tokens_per_minute"); in != 5000 {
		t.Fatalf("input level after admit %d", in)
	}
	req := &holdfastv1.AccountSettleRequest{
		RequestId: "s1", Provider: "anthropic", Model: "claude-sonnet-4-5",
		Usage:                &holdfastv1.TokenUsage{InputTokens: 100, CacheCreationInputTokens: 200, CacheReadInputTokens: 300, OutputTokens: 150},
		CostNanos:            1_234_567,
		InputTokensEstimate:  1000,
		OutputTokensEstimate: 2000,
	}
	want := &holdfastv1.UsageTotals{Period: "2030-11-27", Requests: 1, InputTokens: 100, OutputTokens: 150,
		CacheCreationInputTokens: 200, CacheReadInputTokens: 300, CostNanos: 1_234_567}
	check := func(what string) {
		t.Helper()
		// Capacity − actual: input counts cache writes and reads.
		if in, _ := e.level("alice", "bucket/input_tokens_per_minute"); in != 6000-600 {
			t.Fatalf("%s: input level %d, want %d", what, in, 6000-600)
		}
		if out, _ := e.level("alice", "bucket/output_tokens_per_minute"); out != 3000-150 {
			t.Fatalf("%s: output level %d, want %d", what, out, 3000-150)
		}
		if d := e.usage("alice", "").GetDay(); !proto.Equal(d, want) {
			t.Fatalf("%s: day totals %v, want %v", what, d, want)
		}
	}
	if got := e.settle("alice", req); !proto.Equal(got, want) {
		t.Fatalf("settle replied %v, want %v", got, want)
	}
	check("after settle")
	// A retried debit (same request ID, as after an unknown outcome)
	// counts once, even a little later.
	e.clk.Advance(time.Second)
	before := e.userDump("alice")
	if got := e.settle("alice", proto.Clone(req).(*holdfastv1.AccountSettleRequest)); !proto.Equal(got, want) {
		t.Fatalf("retried settle replied %v", got)
	}
	if !equalMaps(before, e.userDump("alice")) {
		t.Fatal("a retried settle changed the state")
	}

	// Usage above the estimate goes into debt: later admits wait for it.
	e.settle("alice", &holdfastv1.AccountSettleRequest{RequestId: "s2", Usage: &holdfastv1.TokenUsage{OutputTokens: 5000}})
	// 2850 + 50 refilled in the second − 5000 = −2100; at 50/s: 42 s.
	wantRefused(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}), account.OutputTokensPerMinute, 42_000)

	// Cache writes reported only as the 5m/1h split count as their sum.
	got := e.settle("alice", &holdfastv1.AccountSettleRequest{Usage: &holdfastv1.TokenUsage{CacheCreation_5MInputTokens: 10, CacheCreation_1HInputTokens: 20}})
	if got.GetCacheCreationInputTokens() != 230 || got.GetRequests() != 3 || got.GetOutputTokens() != 5150 {
		t.Fatalf("totals %v", got)
	}
	// A stream cut short is charged what was reported (here: nothing of
	// the output estimate), which gives the rest back.
	e.clk.Advance(time.Hour)
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{InputTokensEstimate: 100, OutputTokensEstimate: 3000}))
	e.settle("alice", &holdfastv1.AccountSettleRequest{Usage: &holdfastv1.TokenUsage{InputTokens: 100, OutputTokens: 7}, InputTokensEstimate: 100, OutputTokensEstimate: 3000})
	if out, _ := e.level("alice", "bucket/output_tokens_per_minute"); out != 3000-7 {
		t.Fatalf("output level after a short stream %d", out)
	}

	_, err := e.cl.Settle(ctx(), "alice", &holdfastv1.AccountSettleRequest{CostNanos: -1})
	if err == nil {
		t.Fatal("negative cost accepted")
	}
}

func TestFailedSettleGivesBackEstimates(t *testing.T) {
	e := newEnv(t, exact)
	wantAllowed(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{InputTokensEstimate: 300, OutputTokensEstimate: 200}))
	req := &holdfastv1.AccountSettleRequest{Failed: true, InputTokensEstimate: 300, OutputTokensEstimate: 200}
	got := e.settle("alice", req)
	e.settle("alice", req) // the same request again: counts once
	want := &holdfastv1.UsageTotals{Period: "2030-11-27", Errors: 1}
	if !proto.Equal(got, want) || !proto.Equal(e.usage("alice", "").GetDay(), want) {
		t.Fatalf("totals %v / %v, want %v", got, e.usage("alice", "").GetDay(), want)
	}
	if in, _ := e.level("alice", "bucket/input_tokens_per_minute"); in != 600 {
		t.Fatalf("input level %d, want 600", in)
	}
	if out, _ := e.level("alice", "bucket/output_tokens_per_minute"); out != 300 {
		t.Fatalf("output level %d, want 300", out)
	}
	// The request itself stays counted against requests per minute.
	if rq, _ := e.level("alice", "bucket/requests_per_minute"); rq != 5 {
		t.Fatalf("requests level %d, want 5", rq)
	}
	if h := e.usage("alice", "").GetHours(); len(h) != 1 || h[0].GetErrors() != 1 || h[0].GetRequests() != 0 || h[0].GetPeriod() != "2030-11-27T12" {
		t.Fatalf("hours %v", h)
	}
}

// TestTotalsExactAcrossHoursAndDays settles many calls over a midnight,
// with retries, and checks every hour and day total against a model.
func TestTotalsExactAcrossHoursAndDays(t *testing.T) {
	start := time.Date(2030, 11, 27, 21, 0, 0, 0, time.UTC)
	e := newEnvAt(t, account.Defaults{}, start)
	e.start(actor.NewMemStore())
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[string]*holdfastv1.UsageTotals{} // period -> totals
	add := func(period string, d *holdfastv1.UsageTotals) {
		m := model[period]
		if m == nil {
			m = &holdfastv1.UsageTotals{Period: period}
			model[period] = m
		}
		m.Requests += d.Requests
		m.Errors += d.Errors
		m.InputTokens += d.InputTokens
		m.OutputTokens += d.OutputTokens
		m.CacheCreationInputTokens += d.CacheCreationInputTokens
		m.CacheReadInputTokens += d.CacheReadInputTokens
		m.CostNanos += d.CostNanos
	}
	for i := range 150 {
		u := &holdfastv1.TokenUsage{
			InputTokens: rng.Int64N(100_000), OutputTokens: rng.Int64N(20_000),
			CacheCreationInputTokens: rng.Int64N(5000), CacheReadInputTokens: rng.Int64N(50_000),
		}
		failed := i%13 == 0
		req := &holdfastv1.AccountSettleRequest{
			RequestId: fmt.Sprintf("call-%d", i), Usage: u, CostNanos: rng.Int64N(10_000_000_000), Failed: failed,
			InputTokensEstimate: rng.Int64N(100_000), OutputTokensEstimate: rng.Int64N(20_000),
		}
		now := e.clk.Now()
		d := &holdfastv1.UsageTotals{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
			CacheCreationInputTokens: u.CacheCreationInputTokens, CacheReadInputTokens: u.CacheReadInputTokens, CostNanos: req.CostNanos}
		if failed {
			d.Errors = 1
		} else {
			d.Requests = 1
		}
		add(now.Format("2006-01-02"), d)
		add(now.Format("2006-01-02T15"), d)
		e.settle("user-1", req)
		if i%7 == 0 { // a retry of the same debit
			e.settle("user-1", proto.Clone(req).(*holdfastv1.AccountSettleRequest))
		}
		e.clk.Advance(4*time.Minute + 13*time.Second)
	}
	days := []string{"2030-11-27", "2030-11-28"}
	for _, day := range days {
		got := e.usage("user-1", day)
		if !proto.Equal(got.GetDay(), model[day]) {
			t.Fatalf("day %s: got %v, want %v", day, got.GetDay(), model[day])
		}
		var want []string
		for p := range model {
			if len(p) > 10 && p[:10] == day {
				want = append(want, p)
			}
		}
		slices.Sort(want)
		if len(got.GetHours()) != len(want) {
			t.Fatalf("day %s: %d hours, want %d", day, len(got.GetHours()), len(want))
		}
		sum := &holdfastv1.UsageTotals{Period: day}
		for i, h := range got.GetHours() {
			if h.GetPeriod() != want[i] || !proto.Equal(h, model[want[i]]) {
				t.Fatalf("hour %s: got %v, want %v", want[i], h, model[want[i]])
			}
			sum.Requests += h.Requests
			sum.Errors += h.Errors
			sum.InputTokens += h.InputTokens
			sum.OutputTokens += h.OutputTokens
			sum.CacheCreationInputTokens += h.CacheCreationInputTokens
			sum.CacheReadInputTokens += h.CacheReadInputTokens
			sum.CostNanos += h.CostNanos
		}
		if !proto.Equal(sum, got.GetDay()) {
			t.Fatalf("day %s: hours add up to %v, day says %v", day, sum, got.GetDay())
		}
	}
	if e.usage("user-1", "2030-11-26").GetDay().GetRequests() != 0 {
		t.Fatal("usage on a day without traffic")
	}
	if _, err := e.svc.GetUsage(ctx(), &holdfastv1.GetUsageRequest{User: "user-1", Day: "2030-11-27T00"}); err == nil {
		t.Fatal("a malformed day accepted")
	}
}

// TestDayRolloverAndLateAlarm: day counters roll over at UTC midnight, and
// the tidy alarm, even when it runs a day late (the node was down), keeps
// the current day whole and honours the retentions.
func TestDayRolloverAndLateAlarm(t *testing.T) {
	day := func(n int, hh, mm, ss int) time.Time {
		return time.Date(2030, 11, 27+n, hh, mm, ss, 0, time.UTC)
	}
	d := account.Defaults{DailyBudgetNanos: 10, DayRetention: 48 * time.Hour, HourRetention: time.Hour}
	dir := t.TempDir()
	e := newEnvAt(t, d, day(0, 23, 30, 0))
	e.start(openBolt(t, dir))

	e.settle("alice", &holdfastv1.AccountSettleRequest{RequestId: "a", CostNanos: 10})
	wantRefused(t, e.admit("alice", &holdfastv1.AccountAdmitRequest{}), account.RefusedDailyBudget, 30*60*1000)
	if at := e.alarm("alice"); !at.GetScheduled() || !at.GetAt().AsTime().Equal(day(1, 0, 1, 0)) {
		t.Fatalf("tidy alarm %v, want at %v", at, day(1, 0, 1, 0))
	}

	// Past midnight, before the alarm: a new day, a new budget.
	e.clk.Set(day(1, 0, 0, 30))
	r := e.admit("alice", &holdfastv1.AccountAdmitRequest{})
	wantAllowed(t, r)
	if r.GetBudgetRemainingNanos() != 10 {
		t.Fatalf("new day's budget %d", r.GetBudgetRemainingNanos())
	}
	e.settle("alice", &holdfastv1.AccountSettleRequest{RequestId: "b", CostNanos: 3})
	if got := e.usage("alice", "2030-11-27").GetDay(); got.GetCostNanos() != 10 || got.GetRequests() != 1 {
		t.Fatalf("old day %v", got)
	}
	if got := e.usage("alice", "2030-11-28").GetDay(); got.GetCostNanos() != 3 || got.GetRequests() != 1 {
		t.Fatalf("new day %v", got)
	}

	// The node is down when the alarm is due and comes back a day later;
	// traffic arrives before the overdue alarm runs (the clock has not
	// moved since the restart), and the node goes down again until 03:00,
	// when today's 00:00 hour is already older than the hour retention.
	e.stop()
	e.clk.Set(day(2, 0, 0, 10))
	e.start(openBolt(t, dir))
	e.settle("alice", &holdfastv1.AccountSettleRequest{RequestId: "c", CostNanos: 4})
	if e.alarm("alice").GetFiredCount() != 0 {
		t.Fatal("alarm ran before the clock moved")
	}
	e.stop()
	e.clk.Set(day(2, 3, 0, 0))
	e.start(openBolt(t, dir))
	e.clk.Advance(0) // the overdue alarm fires now, at 03:00
	e.waitAlarmFired("alice", 1)
	if last := e.alarm("alice").GetLastFired().AsTime(); !last.Equal(day(2, 3, 0, 0)) {
		t.Fatalf("alarm ran at %v", last)
	}

	if got := e.usage("alice", "2030-11-29"); got.GetDay().GetCostNanos() != 4 || len(got.GetHours()) != 1 || got.GetHours()[0].GetCostNanos() != 4 {
		t.Fatalf("the late alarm touched the current day: %v", got)
	}
	if got := e.usage("alice", "2030-11-28"); got.GetDay().GetCostNanos() != 3 || len(got.GetHours()) != 0 {
		t.Fatalf("yesterday: day total kept (48 h), hours tidied (1 h): %v", got)
	}
	if got := e.usage("alice", "2030-11-27"); got.GetDay().GetCostNanos() != 0 || len(got.GetHours()) != 0 {
		t.Fatalf("the day before yesterday was not tidied: %v", got)
	}
	dump := e.userDump("alice")
	for _, k := range []string{"spend/2030-11-27", "usage/d/2030-11-27", "usage/h/2030-11-27T23", "usage/h/2030-11-28T00"} {
		if _, ok := dump[k]; ok {
			t.Errorf("%s not tidied", k)
		}
	}
	for _, k := range []string{"spend/2030-11-28", "spend/2030-11-29", "usage/d/2030-11-28", "usage/d/2030-11-29", "usage/h/2030-11-29T00"} {
		if _, ok := dump[k]; !ok {
			t.Errorf("%s tidied", k)
		}
	}
	r = e.admit("alice", &holdfastv1.AccountAdmitRequest{})
	wantAllowed(t, r)
	if r.GetBudgetRemainingNanos() != 6 {
		t.Fatalf("budget after the late alarm %d, want 6", r.GetBudgetRemainingNanos())
	}
	// Re-armed for a minute after the next midnight; on time, it tidies
	// the day that fell out of the window.
	next := day(3, 0, 1, 0)
	if at := e.alarm("alice"); !at.GetScheduled() || !at.GetAt().AsTime().Equal(next) {
		t.Fatalf("alarm %v, want at %v", at, next)
	}
	e.clk.Set(next)
	e.waitAlarmFired("alice", 2)
	dump = e.userDump("alice")
	if _, ok := dump["usage/d/2030-11-28"]; ok {
		t.Error("usage/d/2030-11-28 kept beyond 48 h")
	}
	if _, ok := dump["usage/d/2030-11-29"]; !ok {
		t.Error("usage/d/2030-11-29 tidied within 48 h")
	}
	if _, ok := dump["spend/2030-11-28"]; ok {
		t.Error("spend/2030-11-28 kept beyond yesterday")
	}
}
