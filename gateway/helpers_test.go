package gateway

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/actor/clock"
	"github.com/holdfast/holdfast/api"
	"github.com/holdfast/holdfast/gateway/vkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/fakeupstream"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// Provider keys the gateway holds in tests; they must never leak.
const (
	anthropicKey = "sk-ant-provider-SECRET-0123456789abcdef"
	openaiKey    = "sk-provider-SECRET-openai-0123456789"
	geminiKey    = "AIzaProviderSECRETgemini0123456789abcd"
)

var testEnvVars = map[string]string{
	"ANTHROPIC_KEY": anthropicKey,
	"OPENAI_KEY":    openaiKey,
	"GEMINI_KEY":    geminiKey,
}

// fakeCaller stands in for the account actors: it answers admits with a
// scripted decision and records every call.
type fakeCaller struct {
	mu      sync.Mutex
	ids     []actor.ID
	admits  []*holdfastv1.AccountAdmitRequest
	settles []*holdfastv1.AccountSettleRequest
	// decide answers admit n (0-based); nil: allowed, no limits.
	decide func(n int, r *holdfastv1.AccountAdmitRequest) (*holdfastv1.AccountAdmitResponse, error)
	// settleErr fails settle attempt n when it returns an error.
	settleErr func(n int) error
	// settleEnter, if set, is called as a settle (or a batch) arrives,
	// before any lock: a test may block in it.
	settleEnter func()
	settleTry   int
	batches     int // batch settles among the settle tries
	settled     chan *holdfastv1.AccountSettleRequest
}

func newFakeCaller() *fakeCaller {
	return &fakeCaller{settled: make(chan *holdfastv1.AccountSettleRequest, 64)}
}

func (f *fakeCaller) Call(ctx context.Context, id actor.ID, msg proto.Message) (proto.Message, error) {
	switch msg.(type) {
	case *holdfastv1.AccountSettleRequest, *holdfastv1.AccountSettleBatchRequest:
		if f.settleEnter != nil {
			f.settleEnter()
		}
	}
	f.mu.Lock()
	f.ids = append(f.ids, id)
	switch m := msg.(type) {
	case *holdfastv1.AccountAdmitRequest:
		n := len(f.admits)
		f.admits = append(f.admits, proto.Clone(m).(*holdfastv1.AccountAdmitRequest))
		decide := f.decide
		f.mu.Unlock()
		if decide == nil {
			return &holdfastv1.AccountAdmitResponse{Allowed: true}, nil
		}
		return decide(n, m)
	case *holdfastv1.AccountSettleRequest:
		n := f.settleTry
		f.settleTry++
		if f.settleErr != nil {
			if err := f.settleErr(n); err != nil {
				f.mu.Unlock()
				return nil, err
			}
		}
		f.settles = append(f.settles, proto.Clone(m).(*holdfastv1.AccountSettleRequest))
		f.mu.Unlock()
		f.settled <- m
		return &holdfastv1.AccountSettleRequest{}, nil
	case *holdfastv1.AccountSettleBatchRequest:
		// Recorded as its settles, each with the batch's actor and ID.
		n := f.settleTry
		f.settleTry++
		f.batches++
		if f.settleErr != nil {
			if err := f.settleErr(n); err != nil {
				f.mu.Unlock()
				return nil, err
			}
		}
		var items []*holdfastv1.AccountSettleRequest
		for _, s := range m.GetSettles() {
			c := proto.Clone(s).(*holdfastv1.AccountSettleRequest)
			c.Actor, c.RequestId = m.GetActor(), m.GetRequestId()
			items = append(items, c)
		}
		f.settles = append(f.settles, items...)
		f.mu.Unlock()
		for _, c := range items {
			f.settled <- c
		}
		return &holdfastv1.AccountSettleBatchResponse{}, nil
	}
	f.mu.Unlock()
	return nil, errors.New("fakeCaller: unexpected message")
}

func (f *fakeCaller) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ids)
}

func (f *fakeCaller) admitList() []*holdfastv1.AccountAdmitRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*holdfastv1.AccountAdmitRequest(nil), f.admits...)
}

// waitSettle returns the next settle, failing the test after a generous
// guard (a deadlock guard, not a timing assertion).
func (f *fakeCaller) waitSettle(t *testing.T) *holdfastv1.AccountSettleRequest {
	t.Helper()
	select {
	case s := <-f.settled:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no settle arrived")
		return nil
	}
}

// syncBuffer collects log lines from concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// sleeper records the waits the gateway asks for and returns at once.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
	hook  func(d time.Duration) // runs before returning, outside the lock
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	hook := s.hook
	s.mu.Unlock()
	if hook != nil {
		hook(d)
	}
	return ctx.Err()
}

func (s *sleeper) list() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

var testStart = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

type env struct {
	t      testing.TB
	fake   *fakeupstream.Server
	gw     *Gateway
	srv    *httptest.Server
	caller *fakeCaller
	clk    *clock.Fake
	sleep  *sleeper
	logs   *syncBuffer
	reg    *prometheus.Registry
}

type envOpts struct {
	cfg       Config
	providers func(fakeURL string) map[string]ProviderConfig
	transport func(http.RoundTripper) http.RoundTripper
	wrapClock func(*clock.Fake) clock.Clock
	noCaller  bool
	caller    api.Caller // when set, used instead of the fake caller
	noLogs    bool       // benchmarks: do not keep log lines
	events    EventSink
	early     EarlyCaller // Options.Early
	// commitDefer is Options.CommitDefer (deferred admit commits); 0:
	// none, as a node with runtime.commit_defer 0.
	commitDefer time.Duration
}

// standardProviders: one real-typed provider per family, all pointing at
// the fake upstream.
func standardProviders(u string) map[string]ProviderConfig {
	return map[string]ProviderConfig{
		"anthropic": {Type: TypeAnthropic, BaseURL: u, APIKeyEnv: "ANTHROPIC_KEY"},
		"openai":    {Type: TypeOpenAI, BaseURL: u + "/v1", APIKeyEnv: "OPENAI_KEY"},
		"gemini":    {Type: TypeGemini, BaseURL: u, APIKeyEnv: "GEMINI_KEY"},
	}
}

func newEnv(t testing.TB, mods ...func(*envOpts)) *env {
	t.Helper()
	o := envOpts{cfg: DefaultConfig(), providers: standardProviders}
	o.cfg.SettleLinger = 0 // the fake clock would hold every settle; see TestSettleLinger
	for _, m := range mods {
		m(&o)
	}
	e := &env{t: t, caller: newFakeCaller(), clk: clock.NewFake(testStart), sleep: &sleeper{},
		logs: &syncBuffer{}, reg: prometheus.NewRegistry()}
	e.fake = fakeupstream.New(fakeupstream.Options{})
	t.Cleanup(e.fake.Close)
	// nil: the gateway's own clients, gateway/h1 for the fake upstream
	// (plain http://), as a node runs them.
	var tr http.RoundTripper
	if o.transport != nil {
		tr = o.transport(defaultTransport())
	}
	var c api.Caller
	if !o.noCaller {
		c = e.caller
	}
	if o.caller != nil {
		c = o.caller
	}
	var clk clock.Clock = e.clk
	if o.wrapClock != nil {
		clk = o.wrapClock(e.clk)
	}
	var logOut io.Writer = e.logs
	if o.noLogs {
		logOut = io.Discard
	}
	gw, err := New(o.cfg, o.providers(e.fake.URL()), nil, nil, c, Options{
		Logger:      slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:  e.reg,
		Clock:       clk,
		Sleep:       e.sleep.sleep,
		Transport:   tr,
		BindAddr:    "127.0.0.1:8080",
		Events:      o.events,
		Early:       o.early,
		CommitDefer: o.commitDefer,
		LookupEnv: func(k string) (string, bool) {
			v, ok := testEnvVars[k]
			return v, ok
		},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.gw = gw
	e.srv = httptest.NewServer(gw.Handler())
	t.Cleanup(func() {
		e.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := gw.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// quiesce waits for background settles and log lines.
func (e *env) quiesce() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.gw.Close(ctx); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
}

func withConfig(f func(*Config)) func(*envOpts) { return func(o *envOpts) { f(&o.cfg) } }

func keysMode(o *envOpts) { o.cfg.Auth = AuthKeys }

func (e *env) anthropic(key string, opts ...aoption.RequestOption) *anthropic.Client {
	all := append([]aoption.RequestOption{aoption.WithBaseURL(e.srv.URL), aoption.WithAPIKey(key), aoption.WithMaxRetries(0)}, opts...)
	c := anthropic.NewClient(all...)
	return &c
}

func (e *env) openai(key string, opts ...ooption.RequestOption) *openai.Client {
	all := append([]ooption.RequestOption{ooption.WithBaseURL(e.srv.URL + "/v1"), ooption.WithAPIKey(key), ooption.WithMaxRetries(0)}, opts...)
	c := openai.NewClient(all...)
	return &c
}

// post sends body raw through the gateway.
func (e *env) post(path string, body []byte, header http.Header) *http.Response {
	e.t.Helper()
	return e.postCtx(e.t.Context(), path, body, header)
}

func (e *env) postCtx(ctx context.Context, path string, body []byte, header http.Header) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if have[k] != v {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				total += m.GetCounter().GetValue()
			case m.Gauge != nil:
				total += m.GetGauge().GetValue()
			case m.Histogram != nil:
				total += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return total
}

func readAll(t testing.TB, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

// splitEvents cuts an SSE byte stream into its events.
func splitEvents(b []byte) [][]byte {
	var out [][]byte
	br := bufio.NewReader(bytes.NewReader(b))
	for {
		ev, err := fakeupstream.ReadEvent(br)
		if len(ev) > 0 {
			out = append(out, ev)
		}
		if err != nil {
			return out
		}
	}
}

func newVKey(t testing.TB, user string) string {
	t.Helper()
	k, err := vkey.New(user, strings.NewReader(strings.Repeat("0123456789abcdef", 4)))
	if err != nil {
		t.Fatal(err)
	}
	return k.Token
}

func anthropicParams(text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}
