package usage

import "bytes"

// The accumulators decode JSON only for events that may matter. These
// checks look for a quoted key followed by a colon. A key cannot occur
// verbatim inside a JSON string (its closing quote would have to be
// escaped), so a hit is a real key somewhere in the document: a false
// positive costs one decode, and the decode decides. Keys written with
// escapes (`"us\u0061ge"`) or in another case are not recognised (the
// decode would accept them); no provider sends them. The verdict is part
// of the observable behaviour (a skipped chunk's id is not taken), so any
// change here must keep it on valid JSON; FuzzObserveDifferential checks.

// hasKey reports whether data contains the member key `"name":`.
func hasKey(data []byte, quoted []byte) bool {
	return anyKey(data, []keySpec{{quoted, false}})
}

// hasNonNullKey reports whether data contains `"name":` with a value other
// than null. OpenAI chunks all carry "usage":null and "finish_reason":null
// until the interesting one, so presence alone would not filter anything.
func hasNonNullKey(data []byte, quoted []byte) bool {
	return anyKey(data, []keySpec{{quoted, true}})
}

// keySpec is one key anyKey looks for: quoted is `"name"`; nonNull asks
// for a value other than null.
type keySpec struct {
	quoted  []byte
	nonNull bool
}

// anyKey reports whether data has a member matching one of keys, in one
// pass however many keys: a member ends its key at a ':', so it visits
// every ':' (a vectorised search; there are few per event) and compares
// the quoted text that ends, before optional whitespace, just before it.
// Inside a JSON string a '"' is escaped, so in valid JSON a match is a
// real key; in invalid JSON the answer does not matter, as the decode that
// follows fails either way.
func anyKey(data []byte, keys []keySpec) bool {
	for off := 0; off < len(data); {
		c := bytes.IndexByte(data[off:], ':')
		if c < 0 {
			return false
		}
		c += off
		off = c + 1
		j := c - 1
		for j >= 0 && isSpace(data[j]) {
			j--
		}
		if j < 0 || data[j] != '"' {
			continue
		}
		v := skipSpace(data, c+1)
		if v >= len(data) {
			return false
		}
		for _, k := range keys {
			// Compare the last letter first: it rejects almost every key.
			n := len(k.quoted)
			if j+1 >= n && data[j-1] == k.quoted[n-2] && string(data[j+1-n:j+1]) == string(k.quoted) && (!k.nonNull || data[v] != 'n') {
				return true
			}
		}
	}
	return false
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

var (
	// openaiKeys: a chunk worth decoding has non-null usage or
	// finish_reason, or an error.
	openaiKeys = []keySpec{{keyUsage, true}, {keyFinishReason, true}, {keyError, false}}
	// geminiKeys: a chunk worth decoding has one of these at all.
	geminiKeys = []keySpec{{keyUsageMetadata, false}, {keyFinishReasonG, false}, {keyError, false}}

	keyUsage         = []byte(`"usage"`)
	keyError         = []byte(`"error"`)
	keyFinishReason  = []byte(`"finish_reason"`)
	keyUsageMetadata = []byte(`"usageMetadata"`)
	keyFinishReasonG = []byte(`"finishReason"`)
	keyType          = []byte(`"type"`)
)
