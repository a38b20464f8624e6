package usage

import (
	"encoding/json"
	"testing"
)

// TestOptIntMatchesPointer checks that optInt decodes as *int64 does:
// absent and null (even after a value) are unset, an integer is set, and
// anything else fails the whole decode.
func TestOptIntMatchesPointer(t *testing.T) {
	type ptr struct {
		N *int64 `json:"n"`
	}
	type opt struct {
		N optInt `json:"n"`
	}
	for _, in := range []string{
		`{}`, `{"n":null}`, `{"n":5}`, `{"n":-0}`, `{"n":-7}`, `{"n":5,"n":null}`, `{"n":null,"n":3}`,
		`{"n":1.5}`, `{"n":1e2}`, `{"n":"5"}`, `{"n":true}`, `{"n":[1]}`, `{"n":{"a":1}}`,
		`{"n":9223372036854775807}`, `{"n":9223372036854775808}`, `{"n":-9223372036854775808}`,
		`{"N":4}`, `{"n":2,"N":null}`, `{"n" : 12 }`,
	} {
		var p ptr
		var o opt
		perr, oerr := json.Unmarshal([]byte(in), &p), json.Unmarshal([]byte(in), &o)
		if (perr == nil) != (oerr == nil) {
			t.Fatalf("%s: *int64 error %v, optInt error %v", in, perr, oerr)
		}
		if perr != nil {
			continue
		}
		if (p.N != nil) != o.N.set || p.N != nil && *p.N != o.N.v {
			t.Fatalf("%s: *int64 %v, optInt %+v", in, p.N, o.N)
		}
	}
}
