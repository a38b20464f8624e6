package gateway

import (
	"strings"
	"testing"

	"github.com/holdfast/holdfast/gateway/h1"
)

// gateway.upstream_client auto sends plain http:// providers through
// gateway/h1 and the rest (https://, the mock) as before; net_http sends
// every provider through Go's net/http.
func TestUpstreamClientChoice(t *testing.T) {
	providers := map[string]ProviderConfig{
		"local": {Type: TypeOpenAI, BaseURL: "http://127.0.0.1:11434/v1", APIKeyEnv: "OPENAI_KEY"},
		"cloud": {Type: TypeAnthropic, BaseURL: "https://api.anthropic.com", APIKeyEnv: "ANTHROPIC_KEY"},
		"mock":  {Type: TypeMock},
	}
	lookup := func(string) (string, bool) { return "sk-test-0123456789", true }
	for _, tc := range []struct {
		client string
		want   map[string]string // provider → its round tripper ("" = the gateway's net/http client)
	}{
		{UpstreamClientAuto, map[string]string{"local": "*h1.Transport", "cloud": "", "mock": "gateway.mockTransport"}},
		{UpstreamClientNetHTTP, map[string]string{"local": "", "cloud": "", "mock": "gateway.mockTransport"}},
	} {
		cfg := DefaultConfig()
		cfg.UpstreamClient = tc.client
		g, err := New(cfg, providers, nil, nil, nil, Options{LookupEnv: lookup, BindAddr: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range g.all {
			got := ""
			if p.rt != nil {
				got = typeName(p.rt)
			}
			if got != tc.want[p.name] {
				t.Errorf("upstream_client %s: provider %s uses %q, want %q", tc.client, p.name, got, tc.want[p.name])
			}
		}
		if (g.h1 != nil) != (tc.client == UpstreamClientAuto) {
			t.Errorf("upstream_client %s: h1 transport %v", tc.client, g.h1)
		}
	}
	cfg := DefaultConfig()
	cfg.UpstreamClient = "h2"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "upstream_client") {
		t.Fatalf("upstream_client h2: %v", err)
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *h1.Transport:
		return "*h1.Transport"
	case mockTransport:
		return "gateway.mockTransport"
	}
	return "other"
}
