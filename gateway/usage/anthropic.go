package usage

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/holdfast/holdfast/gateway/jsonscan"
)

// Anthropic accumulates usage from an Anthropic Messages stream. The zero
// value is ready to use.
//
// Mapping: InputTokens is usage.input_tokens as reported (Anthropic already
// excludes cache reads and writes from it); CacheCreationInputTokens is
// cache_creation_input_tokens, split by cache_creation.ephemeral_5m/1h;
// CacheReadInputTokens is cache_read_input_tokens; OutputTokens is
// output_tokens.
//
// message_start sets every figure. message_delta figures are cumulative
// totals: each one present replaces the earlier value and is never added to
// it (adding them double-counts cache reads, bifrost #5354). Complete is set
// by a message_delta carrying usage.
type Anthropic struct {
	u         Usage
	split5m   int64
	split1h   int64
	haveSplit bool
}

// anthropicUsage uses optInt to tell an absent or null field (keep the
// earlier figure) from a present one (replace it).
type anthropicUsage struct {
	InputTokens              optInt `json:"input_tokens"`
	CacheCreationInputTokens optInt `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     optInt `json:"cache_read_input_tokens"`
	OutputTokens             optInt `json:"output_tokens"`
	CacheCreation            *struct {
		Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
}

type anthropicError struct {
	Type string `json:"type"`
}

// Observe implements Accumulator.
func (a *Anthropic) Observe(raw []byte) EventInfo {
	if anthropicIgnored(raw) {
		return EventInfo{} // most of a stream: content deltas, pings
	}
	ev := ParseEvent(raw)
	name := ev.Name
	if len(name) == 0 && hasKey(ev.Data, keyType) {
		// Anthropic always names events; a relay that drops the event line
		// still leaves the same name in data.type.
		if t, ok := anthropicType(ev.Data); ok {
			name = anthropicEventName(t)
		}
	}
	switch string(name) {
	case "message_start":
		var m messageStart
		if !m.decode(ev.Data) {
			return EventInfo{}
		}
		a.u.ID, a.u.Model = decodeString(m.id.raw, a.u.ID), decodeString(m.model.raw, a.u.Model)
		if m.usage.present {
			a.applyFields(&m.usage)
		}
	case "message_delta":
		var m messageDelta
		if !m.decode(ev.Data) {
			return EventInfo{}
		}
		if m.stopReason.set {
			a.u.StopReason = decodeString(m.stopReason.raw, a.u.StopReason)
		}
		if m.usage.present {
			a.applyFields(&m.usage)
			a.u.Complete = true
		}
	case "message_stop":
		return EventInfo{Terminal: true}
	case "error":
		// An unreadable error is still an error.
		a.u.ErrorType = orDefault(decodeString(anthropicErrorType(ev.Data).raw, a.u.ErrorType), "error")
		return EventInfo{Terminal: true}
	}
	return EventInfo{}
}

// anthropicEventNames are the names Observe acts on.
var anthropicEventNames = [...][]byte{
	[]byte("message_start"), []byte("message_delta"), []byte("message_stop"), []byte("error"),
}

// anthropicEventName maps data.type to the event name it stands for (nil
// when Observe ignores it), without decoding it into a new string.
func anthropicEventName(t str) []byte {
	for _, n := range anthropicEventNames {
		if jsonscan.StringIs(t.raw, string(n)) {
			return n
		}
	}
	return nil
}

func (a *Anthropic) apply(u *anthropicUsage) {
	f := usageFields{present: true, u: *u}
	if u.CacheCreation != nil {
		f.cacheCreation, f.split5m, f.split1h = true, u.CacheCreation.Ephemeral5m, u.CacheCreation.Ephemeral1h
	}
	a.applyFields(&f)
}

// Usage implements Accumulator. The cache-creation split always sums to
// CacheCreationInputTokens, so pricing can rely on it: without a reported
// split every write counts as 5-minute (the default TTL; older API versions
// report no split); with one, the 1h figure is trusted and any unattributed
// remainder counts as 5-minute; a split larger than the total raises the
// total to the split's sum.
func (a *Anthropic) Usage() Usage {
	u := a.u
	total := u.CacheCreationInputTokens
	switch {
	case !a.haveSplit:
		u.CacheCreation5mInputTokens, u.CacheCreation1hInputTokens = total, 0
	case a.split5m+a.split1h > total:
		u.CacheCreationInputTokens = a.split5m + a.split1h
		u.CacheCreation5mInputTokens, u.CacheCreation1hInputTokens = a.split5m, a.split1h
	default:
		u.CacheCreation5mInputTokens, u.CacheCreation1hInputTokens = total-a.split1h, a.split1h
	}
	return u
}

// AnthropicBody extracts usage from a non-streaming Messages response or an
// Anthropic error envelope.
func AnthropicBody(body []byte) (Usage, error) {
	var m struct {
		ID         string          `json:"id"`
		Model      string          `json:"model"`
		StopReason string          `json:"stop_reason"`
		Usage      *anthropicUsage `json:"usage"`
		Error      *anthropicError `json:"error"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return Usage{}, err
	}
	var a Anthropic
	a.u.ID, a.u.Model, a.u.StopReason = m.ID, m.Model, m.StopReason
	if m.Usage != nil {
		a.apply(m.Usage)
		a.u.Complete = true
	}
	if m.Error != nil {
		a.u.ErrorType = orDefault(m.Error.Type, "error")
	}
	return a.Usage(), nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// optInt is an *int64 without the allocation: set is false when the member
// is absent or null (a later null clears an earlier value, as it sets a
// pointer to nil). A value that is not an integer fitting int64 is an error,
// as it is for *int64.
type optInt struct {
	v   int64
	set bool
}

var errNotInt64 = errors.New("usage: token count is not an int64")

// UnmarshalJSON implements json.Unmarshaler. encoding/json has validated
// the value; it calls this for null too.
func (o *optInt) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*o = optInt{}
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return errNotInt64
	}
	*o = optInt{v: v, set: true}
	return nil
}
