package account

import (
	"fmt"
	"strings"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/ratelimit"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"google.golang.org/protobuf/proto"
)

// hourLayout names an hour's totals: "2026-11-27T13" (UTC).
const hourLayout = "2006-01-02T15"

// ValidateDay checks a day as AccountUsageRequest.day takes it: a canonical
// UTC date, YYYY-MM-DD.
func ValidateDay(day string) error {
	if d, err := time.Parse(time.DateOnly, day); err != nil || d.Format(time.DateOnly) != day {
		return invalid(ErrInvalidDay, fmt.Sprintf("day %q: want YYYY-MM-DD", day), "field", "day")
	}
	return nil
}

// usage returns a day's totals (today when m.day is empty) and the totals
// of its hours that saw traffic, in order.
func (h *handler) usage(t *actor.Turn, m *holdfastv1.AccountUsageRequest) (*holdfastv1.AccountUsageResponse, error) {
	day := m.GetDay()
	if day == "" {
		day = ratelimit.DayKey(t.Now().UnixNano())
	} else if err := ValidateDay(day); err != nil {
		return nil, err
	}
	resp := &holdfastv1.AccountUsageResponse{User: t.ID().Key, Day: &holdfastv1.UsageTotals{}}
	if err := getProto(t, keyUsageDayPrefix+day, resp.Day); err != nil {
		return nil, err
	}
	resp.Day.Period = day
	hours, err := listAll(t, keyUsageHourPrefix+day+"T")
	if err != nil {
		return nil, err
	}
	for _, e := range hours {
		u := &holdfastv1.UsageTotals{}
		if err := proto.Unmarshal(e.Value, u); err != nil {
			return nil, storageErr(e.Key, err)
		}
		u.Period = strings.TrimPrefix(e.Key, keyUsageHourPrefix)
		resp.Hours = append(resp.Hours, u)
	}
	return resp, nil
}

// Alarm tidies old totals and spend counters and re-arms itself for the
// next midnight while any remain. It reckons from the time it runs, never
// from when it was due, and never deletes the current day (nor anything
// dated later), so an alarm that runs late cannot wipe the new day.
func (h *handler) Alarm(t *actor.Turn) error {
	now := t.Now().UnixNano()
	today := floorDiv(now, nanosPerDay)
	remaining := 0

	// Day-keyed entries: usage/d/DAY, spend/DAY, keyspend/ID/DAY.
	keepDays := int((h.d.DayRetention + 24*time.Hour - 1) / (24 * time.Hour))
	for _, p := range []struct {
		prefix string
		keep   int
	}{{keyUsageDayPrefix, keepDays}, {keySpendPrefix, spendKeepDays}, {keyKeySpendPrefix, spendKeepDays}} {
		kvs, err := listAll(t, p.prefix)
		if err != nil {
			return err
		}
		led := ratelimit.Ledger{}
		full := map[string][]string{} // day -> storage keys
		for _, e := range kvs {
			rest := strings.TrimPrefix(e.Key, p.prefix)
			day := rest[strings.LastIndexByte(rest, '/')+1:]
			led[day] = 0
			full[day] = append(full[day], e.Key)
		}
		old := led.Tidy(now, p.keep)
		deleted := 0
		for _, day := range old {
			for _, k := range full[day] {
				if _, err := t.Delete(k); err != nil {
					return err
				}
				deleted++
			}
		}
		remaining += len(kvs) - deleted
	}

	// Hours that ended more than HourRetention ago, and not of today.
	hours, err := listAll(t, keyUsageHourPrefix)
	if err != nil {
		return err
	}
	cutoff := now - int64(h.d.HourRetention)
	for _, e := range hours {
		name := strings.TrimPrefix(e.Key, keyUsageHourPrefix)
		start, err := time.Parse(hourLayout, name)
		if err != nil || start.Format(hourLayout) != name {
			remaining++ // not ours to judge
			continue
		}
		s := start.UnixNano()
		if floorDiv(s, nanosPerDay) < today && s+int64(time.Hour) <= cutoff {
			if _, err := t.Delete(e.Key); err != nil {
				return err
			}
			continue
		}
		remaining++
	}
	if remaining > 0 {
		return t.SetAlarm(time.Unix(0, nextMidnight(now)).Add(tidyAfterMidnight))
	}
	return nil
}
