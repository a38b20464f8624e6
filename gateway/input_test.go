package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

type envelopeBody struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Code    any    `json:"code"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

func decodeEnvelope(t *testing.T, resp *http.Response) envelopeBody {
	t.Helper()
	var e envelopeBody
	b := readAll(t, resp.Body)
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("not an envelope: %q", b)
	}
	return e
}

func TestBodyOverTheLimit(t *testing.T) {
	e := newEnv(t, withConfig(func(c *Config) { c.MaxBodyBytes = 4096; c.SpillThresholdBytes = 1024 }))
	body := bigBody(5000, "claude-sonnet-4-5", false)
	for _, tc := range []struct{ path, want string }{
		{"/v1/messages", "request_too_large"},
		{"/v1/chat/completions", "invalid_request_error"},
		{"/v1beta/models/gemini-2.5-flash:generateContent", "INVALID_ARGUMENT"},
	} {
		resp := e.post(tc.path, body, nil)
		env := decodeEnvelope(t, resp)
		if resp.StatusCode != 413 || (env.Error.Type != tc.want && env.Error.Status != tc.want) {
			t.Fatalf("%s: %d %+v", tc.path, resp.StatusCode, env)
		}
		// Chunked, with no length announced.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+tc.path, struct{ *bytes.Reader }{bytes.NewReader(body)})
		r2, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r2.Body.Close()
		if r2.StatusCode != 413 {
			t.Fatalf("chunked %s: %d", tc.path, r2.StatusCode)
		}
	}
	// Just under the limit, spilled: fine.
	resp := e.post("/v1/messages", bigBody(3000, "claude-sonnet-4-5", false), nil)
	readAll(t, resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("under the limit: %d", resp.StatusCode)
	}
	if e.fake.Count() != 1 || len(e.caller.admitList()) != 1 {
		t.Fatal("an oversized request reached the actor or the upstream")
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, path, body, want string
	}{
		{"no model", "/v1/messages", `{"max_tokens":1,"messages":[]}`, `no top-level "model"`},
		{"model not a string", "/v1/chat/completions", `{"model":42,"messages":[]}`, `no top-level "model"`},
		{"nested model only", "/v1/messages", `{"messages":[{"model":"x"}]}`, `no top-level "model"`},
		{"not json", "/v1/messages", `{"model":"claude-sonnet-4-5",`, "not a JSON object"},
		{"retired", "/v1/messages", `{"model":"claude-3-opus-20240229","max_tokens":1,"messages":[]}`, `Use "claude-opus-4-7" instead`},
	} {
		resp := e.post(tc.path, []byte(tc.body), nil)
		env := decodeEnvelope(t, resp)
		if resp.StatusCode != 400 || !strings.Contains(env.Error.Message, tc.want) || env.Error.Type != "invalid_request_error" {
			t.Errorf("%s: %d %+v", tc.name, resp.StatusCode, env)
		}
	}
	if e.fake.Count() != 0 || e.caller.count() != 0 {
		t.Fatal("bad requests went on")
	}
	e.quiesce()
	if e.metric("holdfast_gateway_failures_total", "failure", "model_retired") != 1 {
		t.Fatal("model_retired not counted")
	}
}

func TestRoutingTable(t *testing.T) {
	e := newEnv(t, func(o *envOpts) {
		o.providers = func(u string) map[string]ProviderConfig {
			return map[string]ProviderConfig{
				"openai":    {Type: TypeOpenAI, BaseURL: u + "/v1", APIKeyEnv: "OPENAI_KEY", Models: []string{"gpt-", "o1"}},
				"groq":      {Type: TypeOpenAI, BaseURL: u + "/groq/v1", APIKeyEnv: "OPENAI_KEY", Models: []string{"llama-", "gpt-4o-mini-groq"}},
				"anthropic": {Type: TypeAnthropic, BaseURL: u, APIKeyEnv: "ANTHROPIC_KEY", Models: []string{"claude-opus"}},
			}
		}
	})
	chat := func(model string, h http.Header) *http.Response {
		return e.post("/v1/chat/completions", []byte(`{"model":"`+model+`","messages":[]}`), h)
	}
	// Prefix routing.
	readAll(t, chat("gpt-4o", nil).Body)
	if p := e.fake.Last().Path; p != "/v1/chat/completions" {
		t.Fatalf("gpt-4o went to %s", p)
	}
	// Explicit provider header wins over prefixes.
	readAll(t, chat("gpt-4o", http.Header{"X-Holdfast-Provider": {"groq"}}).Body)
	if p := e.fake.Last().Path; p != "/groq/v1/chat/completions" {
		t.Fatalf("explicit groq went to %s", p)
	}
	// Unknown model: 400 naming the configured providers.
	env := decodeEnvelope(t, chat("mistral-large", nil))
	for _, want := range []string{`"mistral-large"`, "openai (openai, models: gpt-, o1)", "groq (openai, models: llama-, gpt-4o-mini-groq)"} {
		if !strings.Contains(env.Error.Message, want) {
			t.Errorf("message %q lacks %q", env.Error.Message, want)
		}
	}
	// Unknown provider name.
	resp := chat("gpt-4o", http.Header{"X-Holdfast-Provider": {"nope"}})
	env = decodeEnvelope(t, resp)
	if resp.StatusCode != 400 || !strings.Contains(env.Error.Message, `unknown provider "nope"`) || !strings.Contains(env.Error.Message, "groq") {
		t.Errorf("%d %q", resp.StatusCode, env.Error.Message)
	}
	// A provider of another family named explicitly.
	resp = chat("gpt-4o", http.Header{"X-Holdfast-Provider": {"anthropic"}})
	if resp.StatusCode != 400 {
		t.Errorf("anthropic for chat: %d", resp.StatusCode)
	}
	readAll(t, resp.Body)
	// A routed but unpriced model.
	resp = chat("llama-3.3-70b", nil)
	env = decodeEnvelope(t, resp)
	if resp.StatusCode != 400 || !strings.Contains(env.Error.Message, "no price") {
		t.Errorf("%d %q", resp.StatusCode, env.Error.Message)
	}
	// The only Anthropic provider takes every Anthropic model.
	resp = e.post("/v1/messages", []byte(`{"model":"claude-haiku-4-5","max_tokens":1,"messages":[]}`), nil)
	readAll(t, resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("single-provider family: %d", resp.StatusCode)
	}
	// No Gemini provider at all.
	resp = e.post("/v1beta/models/gemini-2.5-flash:generateContent", []byte(`{}`), nil)
	env = decodeEnvelope(t, resp)
	if resp.StatusCode != 400 || env.Error.Status != "INVALID_ARGUMENT" || !strings.Contains(env.Error.Message, "no provider is configured for the gemini API") {
		t.Errorf("%d %+v", resp.StatusCode, env)
	}
}

func TestNotFoundInTheFamilyEnvelope(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ method, path, want string }{
		{"POST", "/v1/messages/batches", "not_found_error"},
		{"GET", "/v1/messages", "not_found_error"},
		{"GET", "/v1/models", "invalid_request_error"},
		{"POST", "/v1/embeddings", "invalid_request_error"},
		{"POST", "/v1beta/models/gemini-2.5-flash:countTokens", "NOT_FOUND"},
		{"POST", "/v1beta/cachedContents", "NOT_FOUND"},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, e.srv.URL+tc.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		env := decodeEnvelope(t, resp)
		resp.Body.Close()
		if resp.StatusCode != 404 || (env.Error.Type != tc.want && env.Error.Status != tc.want) || resp.Header.Get(HeaderRequestID) == "" {
			t.Errorf("%s %s: %d %+v", tc.method, tc.path, resp.StatusCode, env)
		}
	}
}

func TestConfigValidateNamesKeys(t *testing.T) {
	c := DefaultConfig()
	c.Auth = "open"
	c.MaxRetries = 3
	c.MaxBodyBytes = 0
	c.StreamIdleTimeout = 0
	c.UsageExactThreshold = 1.5
	c.AccountNamespace = ""
	err := c.Validate()
	for _, key := range []string{"gateway.auth", "gateway.max_retries", "gateway.max_body_bytes", "gateway.stream_idle_timeout", "gateway.usage_exact_threshold", "gateway.account_namespace"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%v does not name %s", err, key)
		}
	}
	err = ValidateProviders(map[string]ProviderConfig{
		"a": {Type: "azure"},
		"b": {Type: TypeAnthropic},
		"c": {Type: TypeOpenAI, BaseURL: "ftp://x", APIKeyEnv: "X", APIKeyFile: "/f"},
		"d": {Type: TypeMock, BaseURL: "http://x"},
	}, true)
	for _, key := range []string{"providers.a.type", "providers.b.api_key_env", "providers.c.base_url", "providers.c.api_key_env: set api_key_env or api_key_file, not both", "providers.d.base_url"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%v does not name %s", err, key)
		}
	}
	if err := ValidateProviders(DefaultProviders(), true); err != nil {
		t.Fatal(err)
	}
}

func TestConfigYAML(t *testing.T) {
	src := `
auth: keys
max_retries: 0
upstream_header_timeout: 30s
stream_idle_timeout: 2m
insert_include_usage: false
spill_threshold_bytes: 2097152
`
	c := DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Auth != AuthKeys || c.MaxRetries != 0 || c.UpstreamHeaderTimeout != 30*time.Second || c.StreamIdleTimeout != 2*time.Minute ||
		c.InsertIncludeUsage || c.SpillThresholdBytes != 2<<20 || c.MaxBodyBytes != 32<<20 || c.AccountNamespace != "account" || c.UsageExactThreshold != 0.2 {
		t.Fatalf("%+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var p map[string]ProviderConfig
	if err := yaml.Unmarshal([]byte("groq: {type: openai, base_url: https://api.groq.com/openai/v1, api_key_file: /run/secrets/groq, models: [llama-]}"), &p); err != nil ||
		p["groq"].Models[0] != "llama-" || p["groq"].APIKeyFile != "/run/secrets/groq" {
		t.Fatalf("%v %+v", err, p)
	}
}

func TestRetryWait(t *testing.T) {
	for n, base := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second} {
		for range 50 {
			w := retryWait(n, 0)
			if w < min(base, retryCap) || w > min(base*5/4, retryCap) {
				t.Fatalf("n=%d: %v", n, w)
			}
		}
	}
	if w := retryWait(0, 7*time.Second); w != 7*time.Second {
		t.Fatal(w)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After": {"1.5"}}, 1500 * time.Millisecond},
		{http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"3"}}, 250 * time.Millisecond},
		{http.Header{"Retry-After": {now.Add(10 * time.Second).Format(http.TimeFormat)}}, 10 * time.Second},
		{http.Header{"Retry-After": {"-1"}}, 0},
		{http.Header{"Retry-After": {"soon"}}, 0},
	} {
		if got := parseRetryAfter(tc.h, now); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.h, got, tc.want)
		}
	}
}

func TestForwardQueryDropsKey(t *testing.T) {
	for in, want := range map[string]string{
		"alt=sse&key=abc": "alt=sse",
		"key=abc&alt=sse": "alt=sse",
		"%6Bey=abc&x=1":   "x=1",
		"keys=1&monkey=2": "keys=1&monkey=2",
		"":                "",
	} {
		if got := forwardQuery(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
