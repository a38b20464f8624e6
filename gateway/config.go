package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/holdfast/holdfast/actor/clock"
	"github.com/prometheus/client_golang/prometheus"
)

// Auth modes (gateway.auth).
const (
	AuthNone = "none" // single local user "local"; loopback only unless force_no_auth
	AuthKeys = "keys" // holdfast virtual keys, checked by the user's account actor
	AuthBYOK = "byok" // the client's own provider key, shape-checked and forwarded
)

// Provider types (providers.NAME.type).
const (
	TypeAnthropic = "anthropic"
	TypeOpenAI    = "openai" // OpenAI and every compatible API (Groq, Cerebras, ...)
	TypeGemini    = "gemini"
	TypeMock      = "mock" // in-process fake answering all three formats
)

// Config is the `gateway:` section of the node configuration. Decode YAML
// over DefaultConfig(), then call Validate.
type Config struct {
	// Auth is none, keys or byok. none serves one local user and is
	// refused on a non-loopback address unless ForceNoAuth.
	Auth string `yaml:"auth"`
	// ForceNoAuth allows auth none on a non-loopback address.
	ForceNoAuth bool `yaml:"force_no_auth"`
	// MaxBodyBytes bounds a request body; beyond it the answer is 413 in
	// the API family's envelope.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// SpillThresholdBytes: a body larger than this is kept in a temporary
	// file (still replayable for retries) instead of memory.
	SpillThresholdBytes int64 `yaml:"spill_threshold_bytes"`
	// SpillDir is where spilled bodies go; empty: os.TempDir(). Images
	// built FROM scratch have no /tmp: point this at a writable volume.
	SpillDir string `yaml:"spill_dir"`
	// MaxRetries is how many times a request is retried upstream (0..2)
	// on 429, 529, other 5xx and connection errors, only before any byte
	// reached the client.
	MaxRetries int `yaml:"max_retries"`
	// UpstreamHeaderTimeout bounds the wait for the provider's response
	// headers, per attempt, for streams and count_tokens. A non-streaming
	// call gets its headers only after the whole generation: it waits at
	// least 10 minutes.
	UpstreamHeaderTimeout time.Duration `yaml:"upstream_header_timeout"`
	// StreamIdleTimeout bounds the silence between two reads of a
	// response body; tripping it is the failure sse_stall.
	StreamIdleTimeout time.Duration `yaml:"stream_idle_timeout"`
	// InsertIncludeUsage lets the gateway add
	// stream_options.include_usage to OpenAI-compatible stream requests
	// that lack it (and drop the extra usage chunk from the response).
	// Off: such streams carry no usage and the figures are estimates.
	InsertIncludeUsage bool `yaml:"insert_include_usage"`
	// SpeculativeUpstream sends an admitted request upstream while the
	// admit's writes are still being committed, instead of after: the
	// commit (a group commit, about a millisecond with fsync) overlaps the
	// provider's time to first byte. Nothing of the answer reaches the
	// client before the admit is durable (the output gate still holds the
	// client's bytes), and when it fails to become durable the upstream
	// request is cancelled and the client gets admit_unavailable (503;
	// Anthropic 529). What it gives up: a
	// node that crashes within that millisecond has sent a request whose
	// tokens it never recorded. Only for an account actor on this node
	// (a forwarded admit returns durable). Default true.
	SpeculativeUpstream bool `yaml:"speculative_upstream"`
	// DeferAdmitCommits lets the admits of a provider whose first bytes
	// have all taken at least twice runtime.commit_defer over the last
	// 10 s defer their commit, to share it with the other admits and
	// settles of up to commit_defer, until that provider's answer begins
	// (or any answer is there to send): a commit per commit_defer instead of
	// one per call, and nothing added to the client's first byte while
	// a commit takes less than the provider's first byte minus
	// commit_defer (fsync in milliseconds or less, as on any SSD). Only
	// with speculative_upstream and an account actor on this node.
	// Default true.
	DeferAdmitCommits bool `yaml:"defer_admit_commits"`
	// MaxConcurrentCalls bounds the calls being served at once (from
	// arrival to the end of the response; settles after it do not
	// count). A call beyond it is answered at once with the family's
	// overloaded error (Anthropic 529, OpenAI and Gemini 503) and
	// retry-after, failure gateway_overloaded, instead of waiting for
	// memory or file descriptors that are not there: every stream holds
	// two sockets. 0 (default): derived from the process's open-file
	// limit, (RLIMIT_NOFILE - 256) / 2, at least 64; -1: no bound.
	MaxConcurrentCalls int `yaml:"max_concurrent_calls"`
	// UpstreamClient picks the HTTP client of the providers: auto (the
	// default) sends to a plain http:// base_url with no proxy configured
	// for it (a local vLLM, ollama or llama.cpp server, a sidecar, a LAN
	// provider) with holdfast's own HTTP/1.1 client (gateway/h1), which
	// writes the request and reads the answer on the call's goroutine,
	// and every other provider (https://: TLS, HTTP/2; proxies from
	// HTTP_PROXY and friends) with Go's net/http Transport; net_http uses
	// Go's for every provider.
	UpstreamClient string `yaml:"upstream_client"`
	// SettleLinger is how long a user's first finished call waits for
	// more of that user's calls before their settles go to the account
	// actor as one turn (the client has its answer by then: only the
	// bookkeeping waits). Under load a hot user costs one settle turn per
	// linger instead of per call. 0: at once (batches still form while a
	// settle turn is in flight). At most 1s.
	SettleLinger time.Duration `yaml:"settle_linger"`
	// RedirectRetiredModels rewrites a retired model to its replacement
	// instead of refusing the request with 400.
	RedirectRetiredModels bool `yaml:"redirect_retired_models"`
	// AccountNamespace is the namespace of the per-user account actors.
	AccountNamespace string `yaml:"account_namespace"`
	// UsageExactThreshold: when a user's input-token bucket was at or
	// below this fraction of its limit after the previous admit, the
	// gateway asks the provider's count_tokens (Anthropic) for an exact
	// input figure before admitting.
	UsageExactThreshold float64 `yaml:"usage_exact_threshold"`
	// DefaultOutputTokens is the output estimate reserved at admit when
	// the request has no top-level max_tokens / max_completion_tokens.
	DefaultOutputTokens int64 `yaml:"default_output_tokens"`
	// UsageEvents shapes the per-call usage events sent to
	// Options.Events (in a cluster: the JetStream stream read by
	// `holdctl events`). Without a sink (a single node) it has no effect.
	UsageEvents UsageEventsConfig `yaml:"usage_events"`
}

// UsageEventsConfig is `gateway.usage_events`.
type UsageEventsConfig struct {
	// Enabled publishes usage events when the node has a sink (default
	// true; a single node has none).
	Enabled bool `yaml:"enabled"`
	// SuccessSampleRate is the share of successful calls published, in
	// [0, 1] (default 1: all). Calls that failed (status >= 400, a named
	// failure, a provider error in the stream, a failed settle) are
	// always published. Sampling is deterministic per gateway: of the
	// first n successes, exactly floor(n*rate) are published, evenly
	// spread; each event carries the rate it was sampled at.
	SuccessSampleRate float64 `yaml:"success_sample_rate"`
}

// gateway.upstream_client values.
const (
	UpstreamClientAuto    = "auto"
	UpstreamClientNetHTTP = "net_http"
)

// DefaultConfig returns the defaults of every gateway setting.
func DefaultConfig() Config {
	return Config{
		Auth:                  AuthNone,
		MaxBodyBytes:          32 << 20,
		SpillThresholdBytes:   1 << 20,
		MaxRetries:            2,
		UpstreamHeaderTimeout: 60 * time.Second,
		StreamIdleTimeout:     60 * time.Second,
		InsertIncludeUsage:    true,
		SpeculativeUpstream:   true,
		DeferAdmitCommits:     true,
		UpstreamClient:        UpstreamClientAuto,
		SettleLinger:          5 * time.Millisecond,
		AccountNamespace:      "account",
		UsageExactThreshold:   0.2,
		DefaultOutputTokens:   4096,
		UsageEvents:           UsageEventsConfig{Enabled: true, SuccessSampleRate: 1},
	}
}

// Validate reports every invalid setting, each naming its key under
// gateway.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("gateway.%s: %s", key, fmt.Sprintf(format, args...)))
	}
	switch c.Auth {
	case AuthNone, AuthKeys, AuthBYOK:
	default:
		bad("auth", "%q: want none, keys or byok", c.Auth)
	}
	if c.MaxBodyBytes <= 0 {
		bad("max_body_bytes", "%d: must be positive", c.MaxBodyBytes)
	}
	if c.SpillThresholdBytes <= 0 {
		bad("spill_threshold_bytes", "%d: must be positive", c.SpillThresholdBytes)
	}
	if c.MaxRetries < 0 || c.MaxRetries > 2 {
		bad("max_retries", "%d: want 0, 1 or 2", c.MaxRetries)
	}
	if c.UpstreamHeaderTimeout <= 0 {
		bad("upstream_header_timeout", "%v: must be positive", c.UpstreamHeaderTimeout)
	}
	if c.StreamIdleTimeout <= 0 {
		bad("stream_idle_timeout", "%v: must be positive", c.StreamIdleTimeout)
	}
	if c.AccountNamespace == "" {
		bad("account_namespace", "must not be empty")
	}
	if !(c.UsageExactThreshold >= 0 && c.UsageExactThreshold <= 1) {
		bad("usage_exact_threshold", "%v: want a fraction between 0 and 1", c.UsageExactThreshold)
	}
	if c.SettleLinger < 0 || c.SettleLinger > time.Second {
		bad("settle_linger", "%v: want 0 to 1s", c.SettleLinger)
	}
	switch c.UpstreamClient {
	case UpstreamClientAuto, UpstreamClientNetHTTP:
	default:
		bad("upstream_client", "%q: want %s or %s", c.UpstreamClient, UpstreamClientAuto, UpstreamClientNetHTTP)
	}
	if c.MaxConcurrentCalls < -1 {
		bad("max_concurrent_calls", "%d: want -1 (no bound), 0 (from the open-file limit) or a positive number", c.MaxConcurrentCalls)
	}
	if c.DefaultOutputTokens <= 0 {
		bad("default_output_tokens", "%d: must be positive", c.DefaultOutputTokens)
	}
	if r := c.UsageEvents.SuccessSampleRate; !(r >= 0 && r <= 1) {
		bad("usage_events.success_sample_rate", "%v: want a fraction between 0 and 1", r)
	}
	return errors.Join(errs...)
}

// ProviderConfig is one entry of the `providers:` map.
type ProviderConfig struct {
	// Type is anthropic, openai (any compatible API), gemini or mock.
	Type string `yaml:"type"`
	// BaseURL is the API root as the provider's SDK takes it; empty: the
	// provider's own. The gateway appends /v1/messages (anthropic),
	// /chat/completions (openai) or /v1beta/models/... (gemini).
	BaseURL string `yaml:"base_url"`
	// APIKeyEnv names an environment variable holding the provider key.
	APIKeyEnv string `yaml:"api_key_env"`
	// APIKeyFile is a file holding the provider key (a Kubernetes Secret
	// mount); a change is picked up by the next request, no restart.
	APIKeyFile string `yaml:"api_key_file"`
	// Models are model-name prefixes routed to this provider. Optional:
	// an API family with one provider routes everything to it.
	Models []string `yaml:"models"`
}

// Default API roots per provider type.
var defaultBaseURLs = map[string]string{
	TypeAnthropic: "https://api.anthropic.com",
	TypeOpenAI:    "https://api.openai.com/v1",
	TypeGemini:    "https://generativelanguage.googleapis.com",
}

// DefaultProviders is the providers map used when the configuration has
// none: the in-process mock only, so a fresh node answers with no key. A
// `providers:` map in the configuration replaces it entirely.
func DefaultProviders() map[string]ProviderConfig {
	return map[string]ProviderConfig{"mock": {Type: TypeMock}}
}

// ValidateProviders reports every invalid provider entry, each naming
// its key under providers. needKeys says whether the gateway itself
// needs provider keys (every auth mode but byok).
func ValidateProviders(providers map[string]ProviderConfig, needKeys bool) error {
	var errs []error
	names := make([]string, 0, len(providers))
	for n := range providers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		p := providers[name]
		bad := func(key, format string, args ...any) {
			errs = append(errs, fmt.Errorf("providers.%s.%s: %s", name, key, fmt.Sprintf(format, args...)))
		}
		if name == "" || strings.ContainsAny(name, " \t\r\n") {
			errs = append(errs, fmt.Errorf("providers: invalid provider name %q", name))
		}
		switch p.Type {
		case TypeAnthropic, TypeOpenAI, TypeGemini, TypeMock:
		case "":
			bad("type", "missing: want anthropic, openai, gemini or mock")
			continue
		default:
			bad("type", "%q: want anthropic, openai, gemini or mock", p.Type)
			continue
		}
		if p.BaseURL != "" {
			u, err := url.Parse(p.BaseURL)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
				bad("base_url", "%q: want an absolute http(s) URL without query", p.BaseURL)
			} else if u.User != nil {
				bad("base_url", "must not carry credentials; use api_key_env or api_key_file")
			}
			if p.Type == TypeMock {
				bad("base_url", "a mock provider has no base URL")
			}
		}
		if p.APIKeyEnv != "" && p.APIKeyFile != "" {
			bad("api_key_env", "set api_key_env or api_key_file, not both")
		}
		if p.Type != TypeMock && needKeys && p.APIKeyEnv == "" && p.APIKeyFile == "" {
			bad("api_key_env", "a %s provider needs api_key_env or api_key_file (or gateway.auth: byok)", p.Type)
		}
		for i, m := range p.Models {
			if m == "" {
				bad(fmt.Sprintf("models[%d]", i), "empty prefix")
			}
		}
	}
	return errors.Join(errs...)
}

// Options are what the node injects.
type Options struct {
	// Logger receives one JSON line per call (nil: slog.Default()).
	Logger *slog.Logger
	// Registerer receives the gateway's metrics (nil: a private registry).
	Registerer prometheus.Registerer
	// Clock tells the time and runs the timeouts (nil: clock.Real{}).
	Clock clock.Clock
	// Sleep waits between retries (nil: a timer on Clock, cut short by
	// ctx). Tests inject one that records and returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
	// HTTPClient sends upstream requests. nil: a client over Transport.
	// Its redirects should be off: a redirect would carry the provider key
	// to another host.
	HTTPClient *http.Client
	// Transport is used when HTTPClient is nil (nil: a clone of
	// http.DefaultTransport with more idle connections per host, and
	// gateway/h1 for the providers gateway.upstream_client gives it).
	// Either one set sends every provider's requests through it.
	Transport http.RoundTripper
	// BindAddr is the address the gateway listens on, to enforce that
	// auth none is served on loopback only.
	BindAddr string
	// LookupEnv reads api_key_env variables (nil: os.LookupEnv).
	LookupEnv func(string) (string, bool)
	// Early admits with the output gate handed back
	// (gateway.speculative_upstream): the node's router or runtime,
	// without layers that do not serve the account namespace. nil: every
	// admit waits for its commit.
	Early EarlyCaller
	// Events receives a usage event per call (sampled by
	// gateway.usage_events); nil: none are made (a single node).
	Events EventSink
	// CommitDefer is the runtime's commit_defer: how long a deferred
	// admit may wait for a commit to share (gateway.defer_admit_commits).
	// 0: no admit is deferred.
	CommitDefer time.Duration
}

// isLoopback reports whether addr (host:port or host) listens on
// loopback only. An empty host is every interface.
func isLoopback(addr string) bool {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
