package usage

import "github.com/holdfast/holdfast/gateway/jsonscan"

// openaiFields is an openaiChunk as decoded by the walker.
type openaiFields struct {
	id, model str
	choices   finishes
	usage     struct {
		present            bool
		prompt, completion int64
		details            bool // prompt_tokens_details non-nil
		cached             int64
	}
	errRaw []byte // the last "error" value, as a json.RawMessage
}

func (c *openaiFields) decode(data []byte) bool {
	c.choices = finishes{key: "finish_reason", ptr: true}
	var d decoder
	u := &c.usage
	return d.decodeDoc(data, func(b []byte, i int) (int, error) {
		return d.object(b, i, 0, func(k jsonscan.Key, v, depth int) (int, error) {
			switch {
			case k.Fold("id"):
				return d.string(b, v, depth, &c.id, false)
			case k.Fold("model"):
				return d.string(b, v, depth, &c.model, false)
			case k.Fold("choices"):
				return c.choices.decode(&d, b, v, depth)
			case k.Fold("error"):
				end, err := jsonscan.SkipValue(b, v, depth)
				if err == nil {
					c.errRaw = b[v:end]
				}
				return end, err
			case k.Fold("usage"):
				return d.ptrObject(b, v, depth, &u.present, func() { u.prompt, u.completion, u.details, u.cached = 0, 0, false, 0 },
					func(k jsonscan.Key, v, depth int) (int, error) {
						switch {
						case k.Fold("prompt_tokens"):
							return d.int64(b, v, depth, &u.prompt)
						case k.Fold("completion_tokens"):
							return d.int64(b, v, depth, &u.completion)
						case k.Fold("prompt_tokens_details"):
							return d.ptrObject(b, v, depth, &u.details, func() { u.cached = 0 },
								func(k jsonscan.Key, v, depth int) (int, error) {
									if k.Fold("cached_tokens") {
										return d.int64(b, v, depth, &u.cached)
									}
									return -1, nil
								})
						}
						return -1, nil
					})
			}
			return -1, nil
		})
	})
}

// openaiErrorName is openaiErrorType without allocating. isErr is false
// for an absent or null error; otherwise name is the raw string to report
// (its type, else its code when that is a non-empty string), and empty
// means "error".
func openaiErrorName(raw []byte) (name str, isErr bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return str{}, false
	}
	var typ, code str
	var d decoder
	if !d.decodeDoc(raw, func(b []byte, i int) (int, error) {
		return d.object(b, i, 0, func(k jsonscan.Key, v, depth int) (int, error) {
			switch {
			case k.Fold("type"):
				return d.string(b, v, depth, &typ, false)
			case k.Fold("code"):
				// A json.RawMessage: the last value, whatever it is; only
				// a string is used.
				end, err := jsonscan.SkipValue(b, v, depth)
				code = str{}
				if err == nil && b[v] == '"' {
					code = str{raw: b[v+1 : end-1], set: true}
				}
				return end, err
			}
			return -1, nil
		})
	}) {
		return str{}, true
	}
	if len(typ.raw) > 0 {
		return typ, true
	}
	return code, true
}
