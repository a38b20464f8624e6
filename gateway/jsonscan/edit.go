package jsonscan

import "bytes"

const (
	streamOptionsField = `"stream_options":{"include_usage":true}`
	includeUsageField  = `"include_usage":true`
)

// InsertIncludeUsage asks an OpenAI-compatible upstream to report usage in a
// streamed response, because without stream_options.include_usage the stream
// carries no token counts at all. f must come from Scan(body).
//
// It returns a new slice equal to body plus one minimal edit, and true:
//   - no top-level stream_options: `"stream_options":{"include_usage":true}`
//     is inserted right after the top-level '{' (followed by ',' unless the
//     object is empty). Inserting first rather than last keeps the edit
//     independent of where the object ends and cannot create a duplicate key.
//   - stream_options is an object without include_usage: `"include_usage":true`
//     is inserted right after its '{' (with ',' unless it is empty).
//   - stream_options is null (which providers treat as absent): the four
//     bytes null are replaced by {"include_usage":true}.
//
// It returns body unchanged and false when there is nothing to do or nothing
// it may do: stream is not true; include_usage is already true; include_usage
// is present with any other value (the client explicitly declined, and
// overriding it would change what the client receives); stream_options has
// another non-object type (the upstream will reject the request anyway); or
// f does not describe body. body itself is never modified.
func InsertIncludeUsage(body []byte, f Fields) ([]byte, bool) {
	if !f.Stream || f.HasIncludeUsage || f.Open < 0 || f.Open >= len(body) || body[f.Open] != '{' {
		return body, false
	}
	if !f.HasStreamOptions {
		sep := ","
		if f.Empty {
			sep = ""
		}
		return splice(body, f.Open+1, f.Open+1, streamOptionsField+sep), true
	}
	so := f.StreamOptions
	if so.Start < 0 || so.End > len(body) || so.Start >= so.End {
		return body, false
	}
	switch v := body[so.Start:so.End]; {
	case v[0] == '{':
		sep := ","
		if f.StreamOptionsEmpty {
			sep = ""
		}
		return splice(body, so.Start+1, so.Start+1, includeUsageField+sep), true
	case bytes.Equal(v, []byte("null")):
		return splice(body, so.Start, so.End, "{"+includeUsageField+"}"), true
	}
	return body, false
}

// splice returns a fresh copy of body with body[from:to] replaced by s.
func splice(body []byte, from, to int, s string) []byte {
	out := make([]byte, 0, len(body)-(to-from)+len(s))
	out = append(out, body[:from]...)
	out = append(out, s...)
	return append(out, body[to:]...)
}
