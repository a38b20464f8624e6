package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"
)

// now is the clock used for relative times ("in 4.5s"); tests replace it.
var now = time.Now

func (inv *invocation) jsonMode() bool { return inv.g.output == "json" }

// writeJSON writes v as the one JSON document of the command.
func (inv *invocation) writeJSON(v any) error {
	enc := json.NewEncoder(inv.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// jsonEntry is a stored key and value. value is the text when the bytes are
// valid UTF-8; otherwise value is null and value_base64 holds the bytes.
type jsonEntry struct {
	Key         string  `json:"key"`
	Value       *string `json:"value"`
	ValueBase64 string  `json:"value_base64,omitempty"`
}

func newJSONEntry(key string, v []byte) jsonEntry {
	e := jsonEntry{Key: key}
	if utf8.Valid(v) {
		s := string(v)
		e.Value = &s
	} else {
		e.ValueBase64 = base64.StdEncoding.EncodeToString(v)
	}
	return e
}

// printable reports whether b is UTF-8 text without control characters.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// displayValue is a value for a table: the text when printable, else hex.
func displayValue(b []byte) string {
	if printable(b) {
		return string(b)
	}
	return "0x" + hex.EncodeToString(b)
}

// displayKey is a key for a table: quoted when it would break the layout.
func displayKey(k string) string {
	if k != "" && printable([]byte(k)) {
		return k
	}
	return strconv.Quote(k)
}

// timestamp returns t and true when ts is set (a zero timestamp is unset).
func timestamp(ts *timestamppb.Timestamp) (time.Time, bool) {
	if ts == nil || (ts.GetSeconds() == 0 && ts.GetNanos() == 0) {
		return time.Time{}, false
	}
	return ts.AsTime(), true
}

// jsonTime is an RFC 3339 UTC time, or nil (JSON null) when unset.
func jsonTime(ts *timestamppb.Timestamp) *string {
	t, ok := timestamp(ts)
	if !ok {
		return nil
	}
	s := t.UTC().Format(time.RFC3339Nano)
	return &s
}

// humanTime is "RFC3339 (in 4.5s)" / "RFC3339 (3m ago)", or none.
func humanTime(ts *timestamppb.Timestamp, none string) string {
	t, ok := timestamp(ts)
	if !ok {
		return none
	}
	return t.UTC().Format(time.RFC3339Nano) + " (" + relative(t.Sub(now())) + ")"
}

// relative renders a time offset from now, rounded to suit its size.
func relative(d time.Duration) string {
	ago := d < 0
	if ago {
		d = -d
	}
	switch {
	case d < time.Minute:
		d = d.Round(100 * time.Millisecond)
	case d < time.Hour:
		d = d.Round(time.Second)
	default:
		d = d.Round(time.Minute)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	switch {
	case d == 0:
		return "now"
	case ago:
		return s + " ago"
	default:
		return "in " + s
	}
}

// formatFloat prints a bucket number compactly (at most 3 decimals).
func formatFloat(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(math.Round(f*1000)/1000, 'f', -1, 64)
}

// formatUSD prints nano-dollars exactly: 12345678901 -> "$12.345678901",
// 1500000000 -> "$1.50".
func formatUSD(nanos int64) string {
	sign := ""
	u := uint64(nanos)
	if nanos < 0 {
		sign = "-"
		u = uint64(-(nanos + 1)) + 1
	}
	frac := strconv.FormatUint(u%1_000_000_000, 10)
	frac = strings.Repeat("0", 9-len(frac)) + frac
	frac = strings.TrimRight(frac, "0")
	for len(frac) < 2 {
		frac += "0"
	}
	return sign + "$" + strconv.FormatUint(u/1_000_000_000, 10) + "." + frac
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
