package usage

import "bytes"

// The accumulators decode JSON only for events that may matter. These
// checks look for a quoted key followed by a colon. A key cannot occur
// verbatim inside a JSON string (its closing quote would have to be
// escaped), so a hit is a real key somewhere in the document: a false
// positive costs one decode, and the decode decides. Keys written with
// escapes (`"us\u0061ge"`) are not recognised; no provider sends them.

// hasKey reports whether data contains the member key `"name":`.
func hasKey(data []byte, quoted []byte) bool {
	return findKey(data, quoted, false)
}

// hasNonNullKey reports whether data contains `"name":` with a value other
// than null. OpenAI chunks all carry "usage":null and "finish_reason":null
// until the interesting one, so presence alone would not filter anything.
func hasNonNullKey(data []byte, quoted []byte) bool {
	return findKey(data, quoted, true)
}

func findKey(data, quoted []byte, nonNull bool) bool {
	for off := 0; ; {
		k := bytes.Index(data[off:], quoted)
		if k < 0 {
			return false
		}
		i := skipSpace(data, off+k+len(quoted))
		off += k + len(quoted)
		if i >= len(data) || data[i] != ':' {
			continue
		}
		i = skipSpace(data, i+1)
		if i >= len(data) {
			return false
		}
		if !nonNull || data[i] != 'n' {
			return true
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

var (
	keyUsage         = []byte(`"usage"`)
	keyError         = []byte(`"error"`)
	keyFinishReason  = []byte(`"finish_reason"`)
	keyUsageMetadata = []byte(`"usageMetadata"`)
	keyFinishReasonG = []byte(`"finishReason"`)
	keyType          = []byte(`"type"`)
)
