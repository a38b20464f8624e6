package jsonscan

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
)

func TestInsertIncludeUsage(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string // "" means: no edit expected
	}{
		{"absent", `{"model":"gpt-4o","stream":true,"messages":[]}`,
			`{"stream_options":{"include_usage":true},"model":"gpt-4o","stream":true,"messages":[]}`},
		{"absent, whitespace kept", " {\n  \"stream\": true\n}\n",
			" {\"stream_options\":{\"include_usage\":true},\n  \"stream\": true\n}\n"},
		{"empty stream_options", `{"stream":true,"stream_options":{}}`,
			`{"stream":true,"stream_options":{"include_usage":true}}`},
		{"empty stream_options with space", `{"stream":true,"stream_options":{ }}`,
			`{"stream":true,"stream_options":{"include_usage":true }}`},
		{"other stream option", `{"stream":true,"stream_options":{"continuous_usage_stats":false}}`,
			`{"stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":false}}`},
		{"null stream_options", `{"stream":true,"stream_options":null,"model":"m"}`,
			`{"stream":true,"stream_options":{"include_usage":true},"model":"m"}`},
		{"duplicate stream_options edits the last", `{"stream_options":{"a":1},"stream":true,"stream_options":{"b":2}}`,
			`{"stream_options":{"a":1},"stream":true,"stream_options":{"include_usage":true,"b":2}}`},
		{"already true", `{"stream":true,"stream_options":{"include_usage":true}}`, ""},
		{"explicitly false: client said no", `{"stream":true,"stream_options":{"include_usage":false}}`, ""},
		{"include_usage null: client said something", `{"stream":true,"stream_options":{"include_usage":null}}`, ""},
		{"not streaming", `{"model":"m","stream":false}`, ""},
		{"stream absent", `{"model":"m"}`, ""},
		{"stream_options wrong type", `{"stream":true,"stream_options":"yes"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			f, err := Scan(body)
			if err != nil {
				t.Fatal(err)
			}
			out, ok := InsertIncludeUsage(body, f)
			if string(body) != tt.body {
				t.Fatal("input body was modified")
			}
			if tt.want == "" {
				if ok || !bytes.Equal(out, body) {
					t.Fatalf("edited to %s, want no edit", out)
				}
				return
			}
			if !ok || string(out) != tt.want {
				t.Fatalf("got %s (%v)\nwant %s", out, ok, tt.want)
			}
			if err := checkEdit(body, out); err != nil {
				t.Fatal(err)
			}
			g, err := Scan(out)
			if err != nil || !g.IncludeUsage || !g.Stream {
				t.Fatalf("rescan of edited body: %+v, %v", g, err)
			}
		})
	}
}

// Empty top-level object: the edit must not leave a dangling comma.
func TestInsertIncludeUsageEmptyObject(t *testing.T) {
	f := Fields{Stream: true, Open: 0, Empty: true}
	out, ok := InsertIncludeUsage([]byte("{}"), f)
	if !ok || string(out) != `{"stream_options":{"include_usage":true}}` {
		t.Fatalf("got %s %v", out, ok)
	}
}

// Fields that do not describe the body must not produce an edit.
func TestInsertIncludeUsageForeignFields(t *testing.T) {
	for _, f := range []Fields{
		{Stream: true, Open: 5},
		{Stream: true, Open: -1},
		{Stream: true, Open: 0, HasStreamOptions: true, StreamOptions: Span{3, 99}},
	} {
		if out, ok := InsertIncludeUsage([]byte(`{"a":1}`), f); ok {
			t.Errorf("%+v: edited to %s", f, out)
		}
	}
}

// checkEdit verifies that edited decodes to orig plus exactly
// stream_options.include_usage = true, and that removing the inserted bytes
// gives orig back (the edit is one contiguous insertion or null
// replacement).
func checkEdit(orig, edited []byte) error {
	if !json.Valid(edited) {
		return fmt.Errorf("edited body is not valid JSON: %s", edited)
	}
	var want, got map[string]any
	if err := decode(orig, &want); err != nil {
		return err
	}
	if err := decode(edited, &got); err != nil {
		return err
	}
	switch so := want["stream_options"].(type) {
	case map[string]any:
		so["include_usage"] = true
	default: // absent or null
		want["stream_options"] = map[string]any{"include_usage": true}
	}
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("edited body decodes to %v, want %v", got, want)
	}
	// Every other byte identical: a common prefix and suffix cover orig,
	// except for the four bytes of a replaced null.
	p := 0
	for p < len(orig) && orig[p] == edited[p] {
		p++
	}
	s := 0
	for s < len(orig)-p && orig[len(orig)-1-s] == edited[len(edited)-1-s] {
		s++
	}
	if changed := len(orig) - p - s; changed != 0 && string(orig[p:p+changed]) != "null" {
		return fmt.Errorf("edit changed original bytes %q", orig[p:p+changed])
	}
	return nil
}

func decode(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}
