package gateway

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/gateway/jsonscan"
	"github.com/holdfast/holdfast/test/fakeupstream"
)

// bigBody is a Messages request of about n bytes with the model last, as
// the SDKs write it.
func bigBody(n int, model string, stream bool) []byte {
	var b bytes.Buffer
	b.WriteString(`{"messages":[{"role":"user","content":"`)
	chunk := "lorem ipsum \u00e9t\\u00e9 \\\"quoted\\\" "
	for b.Len() < n {
		b.WriteString(chunk)
	}
	b.WriteString(`"}],"max_tokens":64,`)
	if stream {
		b.WriteString(`"stream":true,`)
	}
	b.WriteString(`"model":"` + model + `"}`)
	return b.Bytes()
}

func TestBodiesForwardedByteForByte(t *testing.T) {
	e := newEnv(t)
	bodies := map[string]string{
		"unusual whitespace":          " \r\n\t{ \"max_tokens\" :\t1024 ,\n\n  \"messages\" : [ { \"role\" : \"user\" , \"content\" : \"hi\" } ] ,\r\n \"model\"\t:\t\"claude-sonnet-4-5\" }\n\t ",
		"model last, unicode escapes": `{"messages":[{"role":"user","content":"caf\u00e9 \ud83d\ude00 \u2028 <tag> & \/ done"}],"max_tokens":5,"metadata":{"user_id":"\u0041"},"model":"claude\u002dsonnet-4-5"}`,
		"cache_control blocks": `{"system":[{"type":"text","text":"You are helpful.","cache_control":{"type":"ephemeral","ttl":"1h"}}],` +
			`"messages":[{"role":"user","content":[{"type":"text","text":"long doc","cache_control":{"type":"ephemeral"}}]}],` +
			`"tools":[{"name":"t","input_schema":{"type":"object","properties":{"model":{"type":"string"}}},"cache_control":{"type":"ephemeral"}}],"max_tokens":10,"unknown_future_field":[1,2.50,-0e+1,null],"model":"claude-sonnet-4-5"}`,
		"duplicate keys kept": `{"model":"x","max_tokens":1,"messages":[],"model":"claude-sonnet-4-5"}`,
		"stream with escapes": `{"model":"claude-sonnet-4-5","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"line\nbreak\ttab"}]}`,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			resp := e.post("/v1/messages", []byte(body), nil)
			readAll(t, resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := e.fake.Last().Body; !bytes.Equal(got, []byte(body)) {
				t.Fatalf("upstream received\n%q\nwant\n%q", got, body)
			}
		})
	}
}

func TestLargeBodySpilledAndForwardedExactly(t *testing.T) {
	e := newEnv(t)
	body := bigBody(10<<20, "claude-sonnet-4-5", true)
	u := &fakeupstream.Usage{InputTokens: 1, OutputTokens: 1} // spare the fake estimating 10 MB
	e.fake.Push(fakeupstream.Script{Usage: u})
	resp := e.post("/v1/messages", body, nil)
	out := readAll(t, resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(out, []byte("message_stop")) {
		t.Fatalf("status %d, body %.200q", resp.StatusCode, out)
	}
	if got := e.fake.Last().Body; !bytes.Equal(got, body) {
		t.Fatalf("upstream received %d bytes, want the same %d bytes", len(got), len(body))
	}
	// Chunked upload (no content-length) of a spilled body, and a retry
	// replaying it.
	body = bigBody(2<<20, "claude-sonnet-4-5", true)
	e.fake.Push(fakeupstream.Overloaded(), fakeupstream.Script{Usage: u})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/v1/messages", struct{ *bytes.Reader }{bytes.NewReader(body)})
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, r2.Body)
	r2.Body.Close()
	reqs := e.fake.Requests()
	if r2.StatusCode != 200 || len(reqs) != 3 || !bytes.Equal(reqs[1].Body, body) || !bytes.Equal(reqs[2].Body, body) {
		t.Fatalf("status %d, %d upstream requests", r2.StatusCode, len(reqs))
	}
}

func TestReadBodySpills(t *testing.T) {
	body := bigBody(3<<20, "gpt-4o", true)
	b, err := readBody(bytes.NewReader(body), -1, 32<<20, 1<<20, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.spilled() || b.Len() != int64(len(body)) {
		t.Fatalf("spilled %v len %d", b.spilled(), b.Len())
	}
	// The include_usage edit on a spilled body, and the model edit.
	err = b.view(func(raw []byte) error {
		f, err := jsonscan.Scan(raw)
		if err != nil {
			return err
		}
		out, ok := jsonscan.InsertIncludeUsage(raw, f)
		if !ok {
			t.Fatal("no edit")
		}
		if err := b.addEdit(diffEdit(raw, out)); err != nil {
			return err
		}
		return b.addEdit(edit{from: int64(f.ModelValue.Start), to: int64(f.ModelValue.End), ins: []byte(`"gpt-4.1"`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	f, _ := jsonscan.Scan(body)
	want, _ := jsonscan.InsertIncludeUsage(body, f)
	want = bytes.Replace(want, []byte(`"model":"gpt-4o"`), []byte(`"model":"gpt-4.1"`), 1)
	if !bytes.Equal(got, want) || int64(len(got)) != b.Len() {
		t.Fatalf("edited spilled body differs (%d vs %d bytes)", len(got), len(want))
	}
	// Over the limit.
	if _, err := readBody(bytes.NewReader(body), int64(len(body)), 2<<20, 1<<20, t.TempDir()); err != errBodyTooLarge {
		t.Fatalf("over limit: %v", err)
	}
}

func TestDiffEdit(t *testing.T) {
	for _, tc := range [][2]string{
		{`{"a":1}`, `{"x":true,"a":1}`},
		{`{"stream_options":null}`, `{"stream_options":{"include_usage":true}}`},
		{`{}`, `{"x":1}`},
		{`{"aaaa":1}`, `{"aaaaaa":1}`},
	} {
		e := diffEdit([]byte(tc[0]), []byte(tc[1]))
		got := tc[0][:e.from] + string(e.ins) + tc[0][e.to:]
		if got != tc[1] {
			t.Errorf("%q → %q via %+v gives %q", tc[0], tc[1], e, got)
		}
	}
}

// The one sanctioned edit: exactly jsonscan.InsertIncludeUsage's bytes go
// upstream, and the client gets the stream it asked for — the upstream's
// stream minus the usage chunk, every other byte identical.
func TestOpenAIIncludeUsageEdit(t *testing.T) {
	for _, size := range []int{0, 2 << 20} { // in memory, and spilled
		e := newEnv(t)
		body := []byte(`{"messages":[{"role":"user","content":"hi"}],"stream":true,"model":"gpt-4o-mini"}`)
		if size > 0 {
			body = bigBody(size, "gpt-4o-mini", true)
		}
		sc := fakeupstream.Script{Usage: &fakeupstream.Usage{InputTokens: 70, CacheRead: 30, OutputTokens: 9}}
		e.fake.Push(sc)
		resp := e.post("/v1/chat/completions", body, http.Header{"Authorization": {"Bearer whatever"}})
		got := readAll(t, resp.Body)
		f, _ := jsonscan.Scan(body)
		want, ok := jsonscan.InsertIncludeUsage(body, f)
		rec := e.fake.Last()
		if !ok || !bytes.Equal(rec.Body, want) {
			t.Fatalf("size %d: upstream body is not the documented minimal edit", size)
		}
		upEvents := splitEvents(rec.Sent)
		var usageEvent []byte
		var rest [][]byte
		for _, ev := range upEvents {
			if bytes.Contains(ev, []byte(`"choices":[]`)) {
				usageEvent = ev
				continue
			}
			rest = append(rest, ev)
		}
		if usageEvent == nil {
			t.Fatal("the upstream sent no usage chunk: the edit did not take")
		}
		if !bytes.Equal(got, bytes.Join(rest, nil)) {
			t.Fatalf("client stream\n%q\nwant the upstream's minus the usage chunk\n%q", got, bytes.Join(rest, nil))
		}
		s := e.caller.waitSettle(t)
		if u := s.GetUsage(); u.GetInputTokens() != 70 || u.GetCacheReadInputTokens() != 30 || u.GetOutputTokens() != 9 {
			t.Fatalf("settled usage %v", u)
		}
		e.quiesce()
		if !strings.Contains(e.logs.String(), `"estimated":false`) {
			t.Fatalf("log %s", e.logs.String())
		}
	}
}

func TestOpenAIClientAskedForUsageIsUntouched(t *testing.T) {
	e := newEnv(t)
	body := []byte(`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]}`)
	resp := e.post("/v1/chat/completions", body, nil)
	got := readAll(t, resp.Body)
	rec := e.fake.Last()
	if !bytes.Equal(rec.Body, body) || !bytes.Equal(got, rec.Sent) || !bytes.Contains(got, []byte(`"choices":[]`)) {
		t.Fatalf("body or stream altered:\n%q\n%q", rec.Body, got)
	}
}

func TestInsertIncludeUsageOff(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.InsertIncludeUsage = false }))
	body := []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hello there"}]}`)
	resp := e.post("/v1/chat/completions", body, nil)
	got := readAll(t, resp.Body)
	rec := e.fake.Last()
	if !bytes.Equal(rec.Body, body) || !bytes.Equal(got, rec.Sent) {
		t.Fatalf("with insert_include_usage off the body and stream must pass untouched")
	}
	s := e.caller.waitSettle(t)
	nEvents := len(splitEvents(got))
	if s.GetFailed() || s.GetUsage().GetOutputTokens() != int64(nEvents) || s.GetUsage().GetInputTokens() != int64((len(body)+3)/4) {
		t.Fatalf("estimated settle %v (events %d)", s, nEvents)
	}
	e.quiesce()
	if !strings.Contains(e.logs.String(), `"estimated":true`) {
		t.Fatalf("log line does not label the estimate: %s", e.logs.String())
	}
	if e.metric("holdfast_gateway_tokens_total", "kind", "output", "estimated", "true") != float64(nEvents) {
		t.Fatal("estimated tokens not labelled in the metric")
	}
}

func TestRedirectRetiredModelEditsOnlyTheModel(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.RedirectRetiredModels = true }))
	body := `{"messages":[{"role":"user","content":"claude-3-opus-20240229"}], "model" : "claude-3-opus-20240229" ,"max_tokens":5}`
	resp := e.post("/v1/messages", []byte(body), nil)
	readAll(t, resp.Body)
	want := `{"messages":[{"role":"user","content":"claude-3-opus-20240229"}], "model" : "claude-opus-4-7" ,"max_tokens":5}`
	if resp.StatusCode != 200 || string(e.fake.Last().Body) != want {
		t.Fatalf("status %d, upstream body %s", resp.StatusCode, e.fake.Last().Body)
	}
	s := e.caller.waitSettle(t)
	if s.GetModel() != "claude-opus-4-7" {
		t.Fatalf("settled model %q", s.GetModel())
	}
	var m map[string]any
	if json.Unmarshal(e.fake.Last().Body, &m) != nil {
		t.Fatal("edited body is not JSON")
	}
}

// An upstream error body the provider chose to compress (without being
// asked: the gateway asks for no encoding) reaches the client as sent,
// with its Content-Encoding, so the client can decode it.
func TestCompressedErrorBodyKeepsItsEncoding(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.MaxRetries = 0 }))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}`))
	zw.Close()
	e.fake.Push(fakeupstream.Script{Status: 400, ErrorBody: gz.Bytes(), Header: http.Header{"Content-Encoding": {"gzip"}}})
	resp := e.post("/v1/messages", streamBody, http.Header{"Accept-Encoding": {"gzip"}})
	got := readAll(t, resp.Body)
	if resp.StatusCode != 400 || resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(got, gz.Bytes()) {
		t.Fatalf("status %d, Content-Encoding %q, body %q: want 400 and the gzip bytes as sent", resp.StatusCode, resp.Header.Get("Content-Encoding"), got)
	}
}
