package usage

import "github.com/holdfast/holdfast/gateway/jsonscan"

// The observers read events with the allocation-free walker of package
// jsonscan instead of encoding/json, reproducing exactly what
// json.Unmarshal into the documented struct shapes would yield (the
// differential fuzz test FuzzObserveDifferential holds them to it):
//
//   - the whole event must be valid JSON, or nothing is taken from it;
//   - keys match struct fields as encoding/json matches them: after
//     unescaping, case-insensitively (jsonscan.Key.Fold);
//   - a value of the wrong JSON type is an UnmarshalTypeError: decoding
//     goes on, but the event as a whole is rejected (decoder.typeErr);
//   - null leaves a string or number alone and clears a pointer;
//   - a repeated key decodes again into the same place: a scalar is
//     replaced (last wins), an object is merged into the earlier one unless
//     a null cleared it in between, and arrays follow encoding/json's slice
//     reuse (finishes).

// decoder carries the one piece of state every typed read shares: whether
// some value had the wrong type.
type decoder struct {
	typeErr bool
}

// str is a string member as its raw bytes between the quotes; set says a
// string was seen (for a *string field: and not cleared by a later null).
type str struct {
	raw []byte
	set bool
}

// decodeDoc validates data as one JSON document and reads its top-level
// value with read (called with the offset of the value's first byte; depth
// 0 is the value's enclosing container). It reports whether json.Unmarshal
// would have succeeded; when it would not, what read stored is to be
// ignored.
func (d *decoder) decodeDoc(data []byte, read func(b []byte, i int) (int, error)) bool {
	return d.validDoc(data, read) && !d.typeErr
}

// validDoc is decodeDoc, but reports only whether data is valid JSON:
// json.Unmarshal checks that before decoding anything, while a type error
// leaves in place whatever was decoded before and after it.
func (d *decoder) validDoc(data []byte, read func(b []byte, i int) (int, error)) bool {
	i := jsonscan.SkipSpace(data, 0)
	end, err := read(data, i)
	if err == nil {
		err = jsonscan.CheckEnd(data, end)
	}
	return err == nil
}

// object reads a value that decodes into a struct: members go to member
// (which returns -1, nil to leave a value to be skipped), null is ignored,
// anything else is a type error. depth is the enclosing container's.
func (d *decoder) object(b []byte, i, depth int, member func(k jsonscan.Key, v, depth int) (int, error)) (int, error) {
	if i < len(b) && b[i] == '{' {
		it := jsonscan.Members(b, i, depth+1)
		for it.Next() {
			if end, err := member(it.Key(), it.Value(), it.Depth()); end >= 0 || err != nil {
				it.Consumed(end, err)
			}
		}
		return it.End()
	}
	return d.other(b, i, depth)
}

// other skips a value that must be an object or null; anything else is a
// type error.
func (d *decoder) other(b []byte, i, depth int) (int, error) {
	end, err := jsonscan.SkipValue(b, i, depth)
	if err == nil && b[i] != 'n' {
		d.typeErr = true
	}
	return end, err
}

// isNull reports whether the validated value at b[i] is null (the only
// value starting with 'n').
func isNull(b []byte, i int) bool { return i < len(b) && b[i] == 'n' }

// string reads a value into a string field (ptr false: null is ignored) or
// a *string field (ptr true: null clears it).
func (d *decoder) string(b []byte, i, depth int, dst *str, ptr bool) (int, error) {
	if i < len(b) && b[i] == '"' {
		end, _, err := jsonscan.SkipString(b, i)
		if err == nil {
			*dst = str{raw: b[i+1 : end-1], set: true}
		}
		return end, err
	}
	end, err := jsonscan.SkipValue(b, i, depth)
	switch {
	case err != nil:
	case b[i] == 'n':
		if ptr {
			*dst = str{}
		}
	default:
		d.typeErr = true
	}
	return end, err
}

// int64 reads a value into an int64 field: an integer literal that fits,
// else a type error; null leaves it alone.
func (d *decoder) int64(b []byte, i, depth int, dst *int64) (int, error) {
	end, err := jsonscan.SkipValue(b, i, depth)
	if err != nil || b[i] == 'n' {
		return end, err
	}
	if n, ok := jsonscan.ParseInt(b[i:end]); ok {
		*dst = n
	} else {
		d.typeErr = true
	}
	return end, err
}

// optInt reads a value into an optInt field: null unsets it, an integer
// literal that fits sets it, anything else is an error.
func (d *decoder) optInt(b []byte, i, depth int, dst *optInt) (int, error) {
	end, err := jsonscan.SkipValue(b, i, depth)
	if err != nil {
		return end, err
	}
	if b[i] == 'n' {
		*dst = optInt{}
	} else if n, ok := jsonscan.ParseInt(b[i:end]); ok {
		*dst = optInt{v: n, set: true}
	} else {
		d.typeErr = true
	}
	return end, err
}

// ptrObject reads a value into a pointer-to-struct field whose presence is
// *present and whose fields reset clears: an object allocates the struct if
// the pointer is nil and merges into it, null sets the pointer to nil, and
// anything else allocates it and is a type error (encoding/json allocates
// before it looks at the value).
func (d *decoder) ptrObject(b []byte, i, depth int, present *bool, reset func(), member func(k jsonscan.Key, v, depth int) (int, error)) (int, error) {
	if isNull(b, i) {
		*present = false
		return jsonscan.SkipValue(b, i, depth)
	}
	if !*present {
		*present = true
		reset()
	}
	return d.object(b, i, depth, member)
}

// decodeString returns the Go value of s, reusing old when it is equal so
// that a figure repeated in every event costs no allocation.
func decodeString(s []byte, old string) string {
	if jsonscan.StringIs(s, old) {
		return old
	}
	for _, c := range commonValues {
		if jsonscan.StringIs(s, c) {
			return c
		}
	}
	return jsonscan.DecodeString(s)
}

// commonValues are stop reasons and error types interned to save an
// allocation per stream.
var commonValues = [...]string{
	"end_turn", "tool_use", "max_tokens", "stop_sequence", "pause_turn", "refusal",
	"stop", "length", "tool_calls", "content_filter",
	"STOP", "MAX_TOKENS", "SAFETY",
	"overloaded_error", "api_error", "server_error",
}
