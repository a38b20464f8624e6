package usage

import "github.com/holdfast/holdfast/gateway/jsonscan"

// usageFields is the decoded form of an Anthropic "usage" object: an
// *anthropicUsage in encoding/json terms.
type usageFields struct {
	present bool
	u       anthropicUsage
	// cacheCreation stands for the non-nil u.CacheCreation.
	cacheCreation bool
	split5m       int64
	split1h       int64
}

func (d *decoder) anthropicUsage(b []byte, i, depth int, f *usageFields) (int, error) {
	return d.ptrObject(b, i, depth, &f.present, func() { *f = usageFields{present: true} },
		func(k jsonscan.Key, v, depth int) (int, error) {
			switch {
			case k.Fold("input_tokens"):
				return d.optInt(b, v, depth, &f.u.InputTokens)
			case k.Fold("cache_creation_input_tokens"):
				return d.optInt(b, v, depth, &f.u.CacheCreationInputTokens)
			case k.Fold("cache_read_input_tokens"):
				return d.optInt(b, v, depth, &f.u.CacheReadInputTokens)
			case k.Fold("output_tokens"):
				return d.optInt(b, v, depth, &f.u.OutputTokens)
			case k.Fold("cache_creation"):
				return d.ptrObject(b, v, depth, &f.cacheCreation, func() { f.split5m, f.split1h = 0, 0 },
					func(k jsonscan.Key, v, depth int) (int, error) {
						switch {
						case k.Fold("ephemeral_5m_input_tokens"):
							return d.int64(b, v, depth, &f.split5m)
						case k.Fold("ephemeral_1h_input_tokens"):
							return d.int64(b, v, depth, &f.split1h)
						}
						return -1, nil
					})
			}
			return -1, nil
		})
}

// applyFields takes the figures f carries: each count present replaces the
// earlier one, and a reported cache_creation split replaces the split.
func (a *Anthropic) applyFields(f *usageFields) {
	set := func(dst *int64, src optInt) {
		if src.set {
			*dst = nonNegative(src.v)
		}
	}
	set(&a.u.InputTokens, f.u.InputTokens)
	set(&a.u.CacheCreationInputTokens, f.u.CacheCreationInputTokens)
	set(&a.u.CacheReadInputTokens, f.u.CacheReadInputTokens)
	set(&a.u.OutputTokens, f.u.OutputTokens)
	if f.cacheCreation {
		a.split5m = nonNegative(f.split5m)
		a.split1h = nonNegative(f.split1h)
		a.haveSplit = true
	}
}

// anthropicType reads data.type as struct{Type string} would, for events
// that arrive without an event line. ok is false when that decode fails.
func anthropicType(data []byte) (typ str, ok bool) {
	var d decoder
	ok = d.decodeDoc(data, func(b []byte, i int) (int, error) {
		return d.object(b, i, 0, func(k jsonscan.Key, v, depth int) (int, error) {
			if k.Fold("type") {
				return d.string(b, v, depth, &typ, false)
			}
			return -1, nil
		})
	})
	return typ, ok
}

// messageStart is message_start's
// {"message":{"id","model","usage":{...}}}.
type messageStart struct {
	id, model str
	usage     usageFields
}

func (m *messageStart) decode(data []byte) bool {
	var d decoder
	return d.decodeDoc(data, func(b []byte, i int) (int, error) {
		return d.object(b, i, 0, func(k jsonscan.Key, v, depth int) (int, error) {
			if !k.Fold("message") {
				return -1, nil
			}
			return d.object(b, v, depth, func(k jsonscan.Key, v, depth int) (int, error) {
				switch {
				case k.Fold("id"):
					return d.string(b, v, depth, &m.id, false)
				case k.Fold("model"):
					return d.string(b, v, depth, &m.model, false)
				case k.Fold("usage"):
					return d.anthropicUsage(b, v, depth, &m.usage)
				}
				return -1, nil
			})
		})
	})
}

// messageDelta is message_delta's {"delta":{"stop_reason"},"usage":{...}}.
type messageDelta struct {
	stopReason str // a *string
	usage      usageFields
}

func (m *messageDelta) decode(data []byte) bool {
	var d decoder
	return d.decodeDoc(data, func(b []byte, i int) (int, error) {
		return d.object(b, i, 0, func(k jsonscan.Key, v, depth int) (int, error) {
			switch {
			case k.Fold("delta"):
				return d.object(b, v, depth, func(k jsonscan.Key, v, depth int) (int, error) {
					if k.Fold("stop_reason") {
						return d.string(b, v, depth, &m.stopReason, true)
					}
					return -1, nil
				})
			case k.Fold("usage"):
				return d.anthropicUsage(b, v, depth, &m.usage)
			}
			return -1, nil
		})
	})
}

// anthropicErrorType is error.type of an error event as json.Unmarshal
// into struct{Error anthropicError} leaves it: nothing from malformed JSON
// (checked before decoding starts), and otherwise whatever was assigned,
// even when some other member had the wrong type.
func anthropicErrorType(data []byte) str {
	var d decoder
	var typ str
	valid := d.validDoc(data, func(b []byte, i int) (int, error) {
		return d.object(b, i, 0, func(k jsonscan.Key, v, depth int) (int, error) {
			if !k.Fold("error") {
				return -1, nil
			}
			return d.object(b, v, depth, func(k jsonscan.Key, v, depth int) (int, error) {
				if k.Fold("type") {
					return d.string(b, v, depth, &typ, false)
				}
				return -1, nil
			})
		})
	})
	if !valid {
		return str{}
	}
	return typ
}
