package ratelimit

import (
	"errors"
	"math"
	"slices"
	"testing"
	"time"
)

// at returns the Unix-nanosecond time of an RFC 3339 string.
func at(t *testing.T, s string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixNano()
}

func TestDayKey(t *testing.T) {
	tests := []struct {
		now  string
		want string
	}{
		{"1970-01-01T00:00:00Z", "1970-01-01"},
		{"2026-11-27T23:59:59.999999999Z", "2026-11-27"},
		{"2026-11-28T00:00:00Z", "2026-11-28"},
		{"2026-11-28T01:00:00+02:00", "2026-11-27"}, // UTC, not the offset's local day
		{"1969-12-31T23:59:59.999999999Z", "1969-12-31"},
	}
	for _, tc := range tests {
		if got := DayKey(at(t, tc.now)); got != tc.want {
			t.Errorf("DayKey(%s) = %s, want %s", tc.now, got, tc.want)
		}
	}
}

// DayKey keeps the key of the last day it formatted: every instant of
// that day is answered from it, and the first instant of the next day (or
// of an earlier one: a clock set back) is formatted afresh, never given
// the kept key. Each answer is checked against formatting it directly.
func TestDayKeyCacheAcrossMidnight(t *testing.T) {
	midnight := at(t, "2026-11-28T00:00:00Z")
	seq := []int64{
		midnight - 12*int64(time.Hour), // noon: formatted
		midnight - 1,                   // the same day's last nanosecond: kept
		midnight,                       // the next day: formatted
		midnight + 1,
		midnight - 1, // back a nanosecond: the day before again
		midnight,
		midnight + nanosPerDay - 1,
		midnight + nanosPerDay,
		0, -1, 0, // 1970 and the nanosecond before it (floor, not truncation)
	}
	for i, now := range seq {
		want := time.Unix(0, now).UTC().Format(time.DateOnly)
		if got := DayKey(now); got != want {
			t.Fatalf("step %d: DayKey(%d) = %s, want %s", i, now, got, want)
		}
		// The key just kept parses to its day, and its neighbours are
		// not taken for it.
		if d, err := parseDay(want); err != nil || d != floorDiv(now, nanosPerDay) {
			t.Fatalf("step %d: parseDay(%s) = %d, %v; want %d", i, want, d, err, floorDiv(now, nanosPerDay))
		}
		other := time.Unix(0, now+nanosPerDay).UTC().Format(time.DateOnly)
		if d, err := parseDay(other); err != nil || d != floorDiv(now, nanosPerDay)+1 {
			t.Fatalf("step %d: parseDay(%s) = %d, %v; want %d", i, other, d, err, floorDiv(now, nanosPerDay)+1)
		}
	}
}

// Callers on both sides of midnight at once each get their own day's key.
func TestDayKeyConcurrentDays(t *testing.T) {
	midnight := at(t, "2026-11-28T00:00:00Z")
	done := make(chan string, 2)
	for _, now := range []int64{midnight - 1, midnight} {
		go func() {
			want := time.Unix(0, now).UTC().Format(time.DateOnly)
			for range 2000 {
				if got := DayKey(now); got != want {
					done <- "DayKey(" + want + ") = " + got
					return
				}
			}
			done <- ""
		}()
	}
	for range 2 {
		if msg := <-done; msg != "" {
			t.Fatal(msg)
		}
	}
}

func TestCheck(t *testing.T) {
	const dollar = 1_000_000_000
	ledger := Ledger{"2026-11-27": 7 * dollar, "2026-11-26": 100 * dollar}
	tests := []struct {
		name     string
		now      string
		budget   int64
		estimate int64
		fits     bool
		rem      int64
		err      error
	}{
		{"fits", "2026-11-27T12:00:00Z", 10 * dollar, 2 * dollar, true, 3 * dollar, nil},
		{"fits exactly", "2026-11-27T12:00:00Z", 10 * dollar, 3 * dollar, true, 3 * dollar, nil},
		{"one nano over", "2026-11-27T12:00:00Z", 10 * dollar, 3*dollar + 1, false, 3 * dollar, nil},
		{"huge estimate", "2026-11-27T12:00:00Z", 10 * dollar, math.MaxInt64, false, 3 * dollar, nil},
		{"exhausted refuses a zero estimate", "2026-11-27T12:00:00Z", 7 * dollar, 0, false, 0, nil},
		{"overshot reports zero, not negative", "2026-11-27T12:00:00Z", 5 * dollar, 0, false, 0, nil},
		{"yesterday's spend does not count today", "2026-11-27T00:00:00Z", 10 * dollar, 3 * dollar, true, 3 * dollar, nil},
		{"a new day starts fresh", "2026-11-28T00:00:00Z", 10 * dollar, 10 * dollar, true, 10 * dollar, nil},
		{"zero budget is unlimited", "2026-11-26T12:00:00Z", 0, math.MaxInt64, true, Unlimited, nil},
		{"negative estimate", "2026-11-27T12:00:00Z", 10 * dollar, -1, false, 0, ErrNegativeSpend},
		{"negative budget", "2026-11-27T12:00:00Z", -1, 0, false, 0, ErrInvalidBudget},
	}
	for _, tc := range tests {
		fits, rem, err := ledger.Check(at(t, tc.now), tc.budget, tc.estimate)
		if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) || fits != tc.fits || rem != tc.rem {
			t.Errorf("%s: Check = %v, %d, %v; want %v, %d, %v", tc.name, fits, rem, err, tc.fits, tc.rem, tc.err)
		}
	}
	if len(ledger) != 2 || ledger["2026-11-27"] != 7*dollar {
		t.Errorf("Check modified the ledger: %v", ledger)
	}
}

func TestRemaining(t *testing.T) {
	l := Ledger{"2026-11-27": 40}
	now := at(t, "2026-11-27T08:00:00Z")
	tests := []struct {
		budget, want int64
		err          error
	}{
		{100, 60, nil},
		{40, 0, nil},
		{1, 0, nil},
		{0, Unlimited, nil},
		{math.MaxInt64, math.MaxInt64 - 40, nil},
		{-5, 0, ErrInvalidBudget},
	}
	for _, tc := range tests {
		got, err := l.Remaining(now, tc.budget)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("Remaining(budget %d) = %d, %v; want %d, %v", tc.budget, got, err, tc.want, tc.err)
		}
	}
}

func TestAdd(t *testing.T) {
	tests := []struct {
		name  string
		start int64 // counter before
		delta int64
		want  int64
	}{
		{"add", 10, 5, 15},
		{"correct down", 10, -4, 6},
		{"over-correction stops at zero", 10, -11, 0},
		{"min int64 correction", 10, math.MinInt64, 0},
		{"saturates at max", math.MaxInt64 - 1, 5, math.MaxInt64},
		{"max plus max", math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{"zero", 3, 0, 3},
	}
	for _, tc := range tests {
		l := Ledger{"2026-11-27": tc.start, "2026-11-28": 99}
		got, err := l.Add("2026-11-27", tc.delta)
		if err != nil || got != tc.want || l["2026-11-27"] != tc.want || l["2026-11-28"] != 99 {
			t.Errorf("%s: Add = %d, %v; ledger %v; want %d and the other day untouched", tc.name, got, err, l, tc.want)
		}
	}

	l := Ledger{}
	if got, err := l.Add("2026-11-27", 5); err != nil || got != 5 || l["2026-11-27"] != 5 {
		t.Errorf("Add on a new day = %d, %v; ledger %v", got, err, l)
	}
	for _, day := range []string{"", "garbage", "2026-11-7", "2026-02-30", "2026-11-27T00:00:00Z", " 2026-11-27", "2026/11/27"} {
		if _, err := l.Add(day, 1); !errors.Is(err, ErrInvalidDay) {
			t.Errorf("Add(%q) error = %v, want ErrInvalidDay", day, err)
		}
	}
	if len(l) != 1 {
		t.Errorf("invalid Adds stored something: %v", l)
	}
}

func TestTidy(t *testing.T) {
	ledger := Ledger{
		"2026-11-19": 1, "2026-11-20": 1, "2026-11-21": 1, "2026-11-25": 1,
		"2026-11-26": 1, "2026-11-27": 1, "2026-11-28": 1, // future: another clock ahead
		"1969-12-31": 1, "garbage": 1, "2026-11-5": 1,
	}
	tests := []struct {
		name string
		now  string
		keep int
		want []string
	}{
		{"late tidy just after midnight keeps the new day", "2026-11-27T00:00:00.000000001Z", 1,
			[]string{"1969-12-31", "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-25", "2026-11-26"}},
		{"exactly midnight is the new day", "2026-11-27T00:00:00Z", 1,
			[]string{"1969-12-31", "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-25", "2026-11-26"}},
		{"last nanosecond of the old day keeps it", "2026-11-26T23:59:59.999999999Z", 1,
			[]string{"1969-12-31", "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-25"}},
		{"keep zero still keeps today", "2026-11-27T12:00:00Z", 0,
			[]string{"1969-12-31", "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-25", "2026-11-26"}},
		{"negative keep still keeps today", "2026-11-27T12:00:00Z", -3,
			[]string{"1969-12-31", "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-25", "2026-11-26"}},
		{"keep a week", "2026-11-27T12:00:00Z", 7,
			[]string{"1969-12-31", "2026-11-19", "2026-11-20"}},
		{"keep forever", "2026-11-27T12:00:00Z", math.MaxInt, nil},
		{"before 1970", "1969-12-31T23:00:00Z", 1, nil},
	}
	for _, tc := range tests {
		got := ledger.Tidy(at(t, tc.now), tc.keep)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: Tidy = %v, want %v", tc.name, got, tc.want)
		}
	}
	if len(ledger) != 10 {
		t.Errorf("Tidy modified the ledger: %v", ledger)
	}
}
