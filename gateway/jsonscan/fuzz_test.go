package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
)

// FuzzScan checks Scan against encoding/json as the reference: same
// acceptance, same top-level values (last duplicate wins), and an edit that
// always yields valid JSON equal to the original plus include_usage.
func FuzzScan(f *testing.F) {
	f.Add([]byte(`{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o","stream":true}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		fields, err := Scan(body)
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		isObject := json.Valid(body) && len(trimmed) > 0 && trimmed[0] == '{'
		if isObject != (err == nil) {
			t.Fatalf("Scan error = %v, but encoding/json valid object = %v", err, isObject)
		}
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(body) {
				t.Fatalf("bad error %#v", err)
			}
			return
		}

		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		var model string
		rawModel, ok := m["model"]
		wantHasModel := ok && json.Unmarshal(rawModel, &model) == nil && rawModel[0] == '"'
		if fields.HasModel != wantHasModel || fields.Model != model && wantHasModel {
			t.Fatalf("model = %q/%v, encoding/json says %q/%v", fields.Model, fields.HasModel, model, wantHasModel)
		}
		if wantHasModel && string(body[fields.ModelValue.Start:fields.ModelValue.End]) != string(rawModel) {
			t.Fatalf("ModelValue span %q, want %q", body[fields.ModelValue.Start:fields.ModelValue.End], rawModel)
		}
		// max_tokens / max_completion_tokens: the later of the two keys in
		// the body wins, so compare only when one of them is present alone.
		rawMax, hasMax := m["max_tokens"]
		if rawMC, ok := m["max_completion_tokens"]; ok {
			rawMax, hasMax = rawMC, !hasMax
		}
		if hasMax {
			n, err := strconv.ParseInt(string(rawMax), 10, 64)
			plain := err == nil && n >= 0 && rawMax[0] != '-'
			if fields.HasMaxTokens != plain || plain && fields.MaxTokens != n {
				t.Fatalf("max tokens %d/%v for %q", fields.MaxTokens, fields.HasMaxTokens, rawMax)
			}
		}
		if want := string(m["stream"]) == "true"; fields.Stream != want {
			t.Fatalf("stream = %v, want %v", fields.Stream, want)
		}
		rawSO, hasSO := m["stream_options"]
		if fields.HasStreamOptions != hasSO {
			t.Fatalf("HasStreamOptions = %v, want %v", fields.HasStreamOptions, hasSO)
		}
		var so map[string]json.RawMessage
		soObject := hasSO && rawSO[0] == '{' && json.Unmarshal(rawSO, &so) == nil
		rawIU, hasIU := so["include_usage"]
		if fields.HasIncludeUsage != hasIU || fields.IncludeUsage != (string(rawIU) == "true") {
			t.Fatalf("include_usage = %v/%v, want %v/%q", fields.HasIncludeUsage, fields.IncludeUsage, hasIU, rawIU)
		}
		if hasSO && string(body[fields.StreamOptions.Start:fields.StreamOptions.End]) != string(rawSO) {
			t.Fatalf("StreamOptions span %q, want %q", body[fields.StreamOptions.Start:fields.StreamOptions.End], rawSO)
		}

		out, edited := InsertIncludeUsage(body, fields)
		wantEdit := fields.Stream && !hasIU && (!hasSO || soObject || string(rawSO) == "null")
		if edited != wantEdit {
			t.Fatalf("InsertIncludeUsage edited = %v, want %v", edited, wantEdit)
		}
		if !edited {
			if !bytes.Equal(out, body) {
				t.Fatal("no edit reported but body changed")
			}
			return
		}
		if err := checkEdit(body, out); err != nil {
			t.Fatal(err)
		}
	})
}
