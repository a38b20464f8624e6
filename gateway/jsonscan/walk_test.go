package jsonscan

import (
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"
)

func TestParseIntMatchesStrconv(t *testing.T) {
	for _, v := range []string{
		"0", "-0", "7", "-7", "1024", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
		"-9223372036854775809", "18446744073709551615", "18446744073709551616", "99999999999999999999",
		"1.0", "1e2", "1E+2", "-1.5e-3", "0.0", "", "-",
	} {
		want, err := strconv.ParseInt(v, 10, 64)
		got, ok := ParseInt([]byte(v))
		if ok != (err == nil) || ok && got != want {
			t.Errorf("ParseInt(%q) = %d, %v; strconv says %d, %v", v, got, ok, want, err)
		}
	}
}

// FuzzKeyFold checks Key.Fold against encoding/json's own choice of struct
// field for a key: escapes, case, non-ASCII folding (Kelvin sign, long s)
// and invalid UTF-8 included.
func FuzzKeyFold(f *testing.F) {
	for _, k := range []string{`usage`, `USAGE`, `us\u0061ge`, `u\u017fage`, `ſtop_reaſon`, `\u212a`, `K`, `stop_reason`,
		`input_to\u212Aens`, `promptTokenCount`, `PROMPTTOKENCOUNT`, `usage `, `usag`, "us\xffage", `\ud800`, `İ`} {
		f.Add(k)
	}
	names := []string{"usage", "stop_reason", "k", "input_tokens", "promptTokenCount", "i"}
	f.Fuzz(func(t *testing.T, key string) {
		doc := []byte(`{"` + key + `":1}`)
		if !json.Valid(doc) {
			return
		}
		it := Members(doc, 0, 1)
		if !it.Next() {
			t.Fatalf("no member in %s", doc)
		}
		k := it.Key()
		for _, name := range names {
			got := k.Fold(name)
			if want := jsonMatches(t, doc, name); got != want {
				t.Fatalf("Key(%q).Fold(%q) = %v, encoding/json %v", key, name, got, want)
			}
		}
		var decoded map[string]any
		if err := json.Unmarshal(doc, &decoded); err != nil {
			t.Fatal(err)
		}
		for dk := range decoded {
			// Is compares unescaped keys byte for byte (the names it is
			// asked about are ASCII), so only valid UTF-8 must agree.
			if utf8.Valid(k.Raw()) && !k.Is(dk) || !StringIs(k.Raw(), dk) || DecodeString(k.Raw()) != dk {
				t.Fatalf("key %q decodes to %q", key, dk)
			}
		}
	})
}

// jsonMatches reports whether encoding/json decodes doc's member into a
// struct field named name.
func jsonMatches(t *testing.T, doc []byte, name string) bool {
	t.Helper()
	var set bool
	var err error
	switch name {
	case "usage":
		var s struct {
			V *int `json:"usage"`
		}
		err, set = json.Unmarshal(doc, &s), s.V != nil
	case "stop_reason":
		var s struct {
			V *int `json:"stop_reason"`
		}
		err, set = json.Unmarshal(doc, &s), s.V != nil
	case "k":
		var s struct {
			V *int `json:"k"`
		}
		err, set = json.Unmarshal(doc, &s), s.V != nil
	case "input_tokens":
		var s struct {
			V *int `json:"input_tokens"`
		}
		err, set = json.Unmarshal(doc, &s), s.V != nil
	case "promptTokenCount":
		var s struct {
			V *int `json:"promptTokenCount"`
		}
		err, set = json.Unmarshal(doc, &s), s.V != nil
	case "i":
		var s struct {
			V *int `json:"i"`
		}
		err, set = json.Unmarshal(doc, &s), s.V != nil
	default:
		t.Fatalf("no struct for %q", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// TestMembers walks objects with the iterator, consuming some values and
// leaving others, and checks keys, value spans and errors.
func TestMembers(t *testing.T) {
	type member struct{ key, value string }
	tests := []struct {
		doc     string
		want    []member
		wantErr bool
	}{
		{`{}`, nil, false},
		{`{ }`, nil, false},
		{`{"a":1,"b" : [1,{"c":2}] ,"d":{"e":"f"},"g":null}`, []member{{"a", "1"}, {"b", `[1,{"c":2}]`}, {"d", `{"e":"f"}`}, {"g", "null"}}, false},
		{`{"a\"b":"x\\"}`, []member{{`a\"b`, `"x\\"`}}, false},
		{`{"a":1,}`, []member{{"a", "1"}}, true},
		{`{"a":1 "b":2}`, []member{{"a", "1"}}, true},
		{`{"a" 1}`, nil, true},
		{`{"a":[1,2}`, []member{{"a", "[1,2}"}}, true},
		{`{"a":1`, []member{{"a", "1"}}, true},
		{`{a:1}`, nil, true},
		{`{`, nil, true},
	}
	for _, tt := range tests {
		for _, consume := range []bool{false, true} {
			b := []byte(tt.doc)
			it := Members(b, 0, 1)
			var got []member
			for it.Next() {
				v := it.Value()
				end := len(b)
				if consume {
					e, err := SkipValue(b, v, it.Depth())
					it.Consumed(e, err)
					if err == nil {
						end = e
					}
				} else if e, err := SkipValue(b, v, it.Depth()); err == nil {
					end = e
				}
				got = append(got, member{string(it.Key().Raw()), string(b[v:end])})
			}
			end, err := it.End()
			if (err != nil) != tt.wantErr {
				t.Errorf("%s (consume %v): err %v", tt.doc, consume, err)
			}
			if err == nil && end != len(b) {
				t.Errorf("%s: end %d", tt.doc, end)
			}
			if len(got) != len(tt.want) {
				t.Errorf("%s (consume %v): members %q, want %q", tt.doc, consume, got, tt.want)
				continue
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("%s (consume %v): member %d %q, want %q", tt.doc, consume, i, got[i], tt.want[i])
				}
			}
		}
	}
}

func TestCheckEnd(t *testing.T) {
	if err := CheckEnd([]byte("{} \n"), 2); err != nil {
		t.Error(err)
	}
	if err := CheckEnd([]byte("{} x"), 2); err == nil {
		t.Error("trailing data accepted")
	}
}
