package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/holdfast/holdfast/gateway/envelope"
	"github.com/holdfast/holdfast/gateway/h1"
	"github.com/holdfast/holdfast/gateway/usage"
)

// op is one provider route the gateway serves.
type op int

const (
	opMessages       op = iota + 1 // Anthropic POST /v1/messages
	opCountTokens                  // Anthropic POST /v1/messages/count_tokens
	opChat                         // OpenAI POST /v1/chat/completions
	opGenerate                     // Gemini POST /v1beta/models/{model}:generateContent
	opStreamGenerate               // Gemini POST /v1beta/models/{model}:streamGenerateContent
)

func (o op) family() envelope.Family {
	switch o {
	case opMessages, opCountTokens:
		return envelope.Anthropic
	case opChat:
		return envelope.OpenAI
	}
	return envelope.Gemini
}

// route is a matched request path.
type route struct {
	op       op
	model    string // Gemini: the model from the path, unescaped
	rawModel string // Gemini: the path segment as sent
}

const geminiPrefix = "/v1beta/models/"

// matchRoute recognises the provider routes (POST only).
func matchRoute(r *http.Request) (route, bool) {
	if r.Method != http.MethodPost {
		return route{}, false
	}
	switch p := r.URL.EscapedPath(); {
	case p == "/v1/messages":
		return route{op: opMessages}, true
	case p == "/v1/messages/count_tokens":
		return route{op: opCountTokens}, true
	case p == "/v1/chat/completions":
		return route{op: opChat}, true
	case strings.HasPrefix(p, geminiPrefix):
		rest := p[len(geminiPrefix):]
		i := strings.LastIndexByte(rest, ':')
		if i <= 0 || strings.Contains(rest[:i], "/") {
			return route{}, false
		}
		raw, method := rest[:i], rest[i+1:]
		model, err := url.PathUnescape(raw)
		if err != nil || model == "" {
			return route{}, false
		}
		switch method {
		case "generateContent":
			return route{op: opGenerate, model: model, rawModel: raw}, true
		case "streamGenerateContent":
			return route{op: opStreamGenerate, model: model, rawModel: raw}, true
		}
	}
	return route{}, false
}

// provider is one configured upstream.
type provider struct {
	name   string
	typ    string
	base   string   // API root without a trailing '/'
	models []string // routed prefixes
	key    *keySource
	rt     http.RoundTripper // non-nil for mock: answers in-process
	// h1, when non-nil, sends the requests whose body is at most
	// h1MaxBody: a plain http:// base_url (gateway.upstream_client).
	h1 *h1.Transport
	// keyPrefix is the prefix every byok key must have: the vendor's own,
	// on the vendor's own host (vendorKeyPrefix); "" for any other.
	keyPrefix string
	// firstBytes: how soon its answers begin (deferred admit commits),
	// for streamed requests [1] and the others [0], apart: a whole
	// unstreamed answer is always slow, and must not make the streams of
	// a fast provider look slow.
	firstBytes [2]firstBytes
}

// serves reports whether p answers requests of family f.
func (p *provider) serves(f envelope.Family) bool {
	switch p.typ {
	case TypeMock:
		return true
	case TypeAnthropic:
		return f == envelope.Anthropic
	case TypeOpenAI:
		return f == envelope.OpenAI
	case TypeGemini:
		return f == envelope.Gemini
	}
	return false
}

// usageProvider is the wire format p's responses to o are in.
func usageProvider(o op) usage.Provider {
	switch o.family() {
	case envelope.Anthropic:
		return usage.ProviderAnthropic
	case envelope.OpenAI:
		return usage.ProviderOpenAI
	}
	return usage.ProviderGemini
}

// upstreamURL is where an attempt goes. model is the (possibly
// redirected) model for Gemini paths; rawModel is kept when it is the
// client's own. query is the client's query without key=.
func (p *provider) upstreamURL(rt route, model string, query string) string {
	var path string
	switch rt.op {
	case opMessages:
		path = "/v1/messages"
	case opCountTokens:
		path = "/v1/messages/count_tokens"
	case opChat:
		path = "/chat/completions"
		if p.typ == TypeMock {
			path = "/v1/chat/completions"
		}
	case opGenerate, opStreamGenerate:
		seg := rt.rawModel
		if model != rt.model {
			seg = url.PathEscape(model)
		}
		method := ":generateContent"
		if rt.op == opStreamGenerate {
			method = ":streamGenerateContent"
		}
		path = geminiPrefix + seg + method
	}
	u := p.base + path
	if query != "" {
		u += "?" + query
	}
	return u
}

// familyProviders lists, by name, the providers serving f.
func (g *Gateway) familyProviders(f envelope.Family) []*provider {
	return g.byFamily[f]
}

// pick chooses the provider for a request of family f and model:
//  1. the x-holdfast-provider header, which must name a provider of f;
//  2. the provider whose models prefix the model (longest prefix wins);
//  3. the one provider of f without a models list (the catch-all), or the
//     only provider of f at all.
//
// A failure is a message for a 400 naming what is configured.
func (g *Gateway) pick(f envelope.Family, model, explicit string) (*provider, string) {
	cands := g.familyProviders(f)
	if explicit != "" {
		for _, p := range cands {
			if p.name == explicit {
				return p, ""
			}
		}
		return nil, fmt.Sprintf("unknown provider %q (x-holdfast-provider) for the %s API; configured: %s",
			explicit, f, describe(cands))
	}
	var best *provider
	bestLen := -1
	for _, p := range cands {
		for _, m := range p.models {
			if strings.HasPrefix(model, m) && len(m) > bestLen {
				best, bestLen = p, len(m)
			}
		}
	}
	if best != nil {
		return best, ""
	}
	var catchAll []*provider
	for _, p := range cands {
		if len(p.models) == 0 {
			catchAll = append(catchAll, p)
		}
	}
	switch {
	case len(cands) == 1:
		return cands[0], ""
	case len(catchAll) == 1:
		return catchAll[0], ""
	case len(cands) == 0:
		return nil, fmt.Sprintf("no provider is configured for the %s API; configured providers: %s", f, describe(g.all))
	}
	return nil, fmt.Sprintf("no provider serves model %q on the %s API; configured: %s (send x-holdfast-provider: NAME to choose)",
		model, f, describe(cands))
}

// describe lists providers as "name (type, models: a, b)".
func describe(ps []*provider) string {
	if len(ps) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(ps))
	for _, p := range ps {
		s := p.name + " (" + p.typ
		if len(p.models) > 0 {
			s += ", models: " + strings.Join(p.models, ", ")
		}
		parts = append(parts, s+")")
	}
	return strings.Join(parts, "; ")
}

// buildProviders turns the config into providers, sorted by name.
func (g *Gateway) buildProviders(cfg map[string]ProviderConfig, lookup func(string) (string, bool)) error {
	names := make([]string, 0, len(cfg))
	for n := range cfg {
		names = append(names, n)
	}
	sort.Strings(names)
	g.byFamily = map[envelope.Family][]*provider{}
	for _, name := range names {
		pc := cfg[name]
		p := &provider{name: name, typ: pc.Type, models: append([]string(nil), pc.Models...)}
		for i := range p.firstBytes {
			p.firstBytes[i].since = g.clk.Now() // lastFast 0: counted fast until shown slow
		}
		if pc.Type == TypeMock {
			p.base = "http://mock.holdfast.invalid"
			p.rt = mockTransport{}
		} else {
			p.base = strings.TrimRight(pc.BaseURL, "/")
			if p.base == "" {
				p.base = defaultBaseURLs[pc.Type]
			}
			if g.cfg.Auth != AuthBYOK {
				k, err := newKeySource(name, pc, g.clk, lookup)
				if err != nil {
					return err
				}
				p.key = k
			}
		}
		if g.h1 != nil && p.rt == nil && directHTTP(p.base) {
			p.h1 = g.h1
		}
		p.keyPrefix = vendorKeyPrefix(p.typ, p.base)
		g.all = append(g.all, p)
		for _, f := range []envelope.Family{envelope.Anthropic, envelope.OpenAI, envelope.Gemini} {
			if p.serves(f) {
				g.byFamily[f] = append(g.byFamily[f], p)
			}
		}
	}
	return nil
}

// directHTTP reports whether base is a plain http:// URL that no proxy
// from the environment (HTTP_PROXY, NO_PROXY...) applies to: what
// gateway/h1 can serve.
func directHTTP(base string) bool {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return false
	}
	proxy, err := http.ProxyFromEnvironment(&http.Request{URL: u})
	return err == nil && proxy == nil
}
