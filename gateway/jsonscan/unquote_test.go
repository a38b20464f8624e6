package jsonscan

import (
	"encoding/json"
	"testing"
)

// The decoded model must be exactly what encoding/json (and so most
// providers) would see, including its replacement of broken input.
func TestDecodeStringMatchesEncodingJSON(t *testing.T) {
	raws := []string{
		`plain`, ``, `a\"b`, `back\\slash`, `\/`, `\b\f\n\r\t`,
		`\u0041\u00e9\u4e2d`, `\ud83d\ude00`, `\ud83d`, `\ud83dx`, `\ude00\ud83d`,
		`\ud83d\u0041`, `\ud83d\ud83d\ude00`, "caf\xc3\xa9", "bad\xffbyte", "\xed\xa0\x80",
		"trunc\xe4\xb8", `\u0000`, `claude\u002dopus`,
	}
	for _, raw := range raws {
		var want string
		if err := json.Unmarshal([]byte(`"`+raw+`"`), &want); err != nil {
			t.Fatalf("encoding/json rejects %q: %v", raw, err)
		}
		if got := decodeString([]byte(raw)); got != want {
			t.Errorf("decodeString(%q) = %q, want %q", raw, got, want)
		}
	}
}
