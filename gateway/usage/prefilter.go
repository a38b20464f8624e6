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

// anthropicIgnored reports whether Anthropic.Observe would do nothing with
// raw because of its name alone, without parsing it: raw starts with an
// "event" field whose value is not empty (an empty name defers to
// data.type) and not one of anthropicEventNames, and no later line before
// the blank line that ends the event (where ParseEvent stops) starts with
// "event" (the last such field wins). Anthropic ends lines in "\n" alone:
// an event with a "\r" anywhere is left to the full parse, so lines are
// found with one vectorised search for "\r" and one for "\n" per line
// (there are three). The events Observe acts on are told apart before the
// search for "\r": they pay for this check on top of their parse. A false
// answer only means the full parse decides; a true one is exact on any
// input (TestAnthropicIgnored, FuzzObserveDifferential).
func anthropicIgnored(raw []byte) bool {
	const field = "event:"
	if len(raw) < len(field) || string(raw[:len(field)]) != field {
		return false
	}
	i := len(field)
	if i < len(raw) && raw[i] == ' ' {
		i++
	}
	j := indexFrom(raw, i, '\n') // raw[i:j] is the name, unless it has a '\r'
	if j == i {
		return false
	}
	switch string(raw[i:j]) { // anthropicEventNames, as a switch
	case "message_start", "message_delta", "message_stop", "error":
		return false // before the search for '\r': these are parsed anyway
	}
	if bytes.IndexByte(raw, '\r') >= 0 {
		return false
	}
	// raw[j] ends a line; stop at the end or at a blank line.
	for j+1 < len(raw) && raw[j+1] != '\n' {
		if bytes.HasPrefix(raw[j+1:], eventField) {
			return false
		}
		j = indexFrom(raw, j+1, '\n')
	}
	return true
}

var eventField = []byte("event")

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
