package jsonscan

// Span is a half-open byte range [Start, End) in a body.
type Span struct{ Start, End int }

// Fields is what Scan learns about a request body. Offsets refer to the body
// passed to Scan and are only meaningful with that exact slice.
type Fields struct {
	// Model is the decoded value of the top-level "model" string; HasModel
	// says the (last) top-level "model" exists and is a string.
	Model    string
	HasModel bool
	// ModelValue is the raw span of that string value, quotes included, so
	// a caller can replace the model in place; {-1, -1} when !HasModel.
	ModelValue Span

	// MaxTokens is the (last) top-level "max_tokens" or
	// "max_completion_tokens" when it is a non-negative integer literal
	// that fits an int64; HasMaxTokens says it is. Any other value of
	// the last such key clears both.
	MaxTokens    int64
	HasMaxTokens bool

	// Stream is true when the (last) top-level "stream" is the literal true.
	Stream bool

	// HasStreamOptions says a top-level "stream_options" key exists, whatever
	// its value. StreamOptions is the raw span of its last value.
	HasStreamOptions bool
	StreamOptions    Span
	// StreamOptionsEmpty: stream_options is the empty object.
	StreamOptionsEmpty bool

	// HasIncludeUsage says stream_options is an object containing an
	// "include_usage" key; IncludeUsage that its last value is true.
	HasIncludeUsage bool
	IncludeUsage    bool

	// Open is the offset of the top-level '{'; Empty says it has no members.
	Open  int
	Empty bool
}

// Scan validates body as a JSON object and extracts Fields from its
// top-level members, skipping every nested value without decoding it.
func Scan(body []byte) (Fields, error) {
	f := Fields{StreamOptions: Span{-1, -1}, ModelValue: Span{-1, -1}}
	i := skipSpace(body, 0)
	if i >= len(body) {
		return Fields{}, syntaxErr(len(body), ErrUnexpectedEnd)
	}
	if body[i] != '{' {
		return Fields{}, syntaxErr(i, ErrNotObject)
	}
	f.Open = i
	f.Empty = true
	end, err := walkObject(body, i, 1, func(m member) (int, error) {
		f.Empty = false
		switch {
		case keyIs(m.key, m.escaped, "model"):
			return f.model(body, m.valStart)
		case keyIs(m.key, m.escaped, "stream"):
			end, err := skipValue(body, m.valStart, 1)
			f.Stream = err == nil && string(body[m.valStart:end]) == "true"
			return end, err
		case keyIs(m.key, m.escaped, "stream_options"):
			return f.streamOptions(body, m.valStart)
		case keyIs(m.key, m.escaped, "max_tokens"), keyIs(m.key, m.escaped, "max_completion_tokens"):
			end, err := skipValue(body, m.valStart, 1)
			if err == nil {
				f.MaxTokens, f.HasMaxTokens = parseCount(body[m.valStart:end])
			}
			return end, err
		}
		return -1, nil
	})
	if err != nil {
		return Fields{}, err
	}
	if j := skipSpace(body, end); j < len(body) {
		return Fields{}, syntaxErr(j, ErrTrailingData)
	}
	return f, nil
}

func (f *Fields) model(body []byte, i int) (int, error) {
	end, err := skipValue(body, i, 1)
	if err != nil {
		return 0, err
	}
	// A later non-string "model" overrides an earlier string one.
	f.Model, f.HasModel, f.ModelValue = "", false, Span{-1, -1}
	if body[i] == '"' {
		f.Model, f.HasModel, f.ModelValue = decodeString(body[i+1:end-1]), true, Span{i, end}
	}
	return end, nil
}

func (f *Fields) streamOptions(body []byte, i int) (int, error) {
	// Last occurrence wins: forget what an earlier stream_options said.
	f.HasStreamOptions = true
	f.StreamOptionsEmpty, f.HasIncludeUsage, f.IncludeUsage = false, false, false
	var end int
	var err error
	if i < len(body) && body[i] == '{' {
		f.StreamOptionsEmpty = true
		end, err = walkObject(body, i, 2, func(m member) (int, error) {
			f.StreamOptionsEmpty = false
			if !keyIs(m.key, m.escaped, "include_usage") {
				return -1, nil
			}
			end, err := skipValue(body, m.valStart, 2)
			f.HasIncludeUsage = true
			f.IncludeUsage = err == nil && string(body[m.valStart:end]) == "true"
			return end, err
		})
	} else {
		end, err = skipValue(body, i, 1)
	}
	if err != nil {
		return 0, err
	}
	f.StreamOptions = Span{i, end}
	return end, nil
}

// parseCount reads a validated JSON number that is a plain non-negative
// integer fitting an int64 ("0", "1024"); anything else (a sign, a
// fraction, an exponent, a literal, overflow) is not a count.
func parseCount(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0') // 19 digits cannot overflow a uint64
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}
