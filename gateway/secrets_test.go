package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
	"github.com/holdfast/holdfast/test/fakeupstream"
	"github.com/openai/openai-go/v3"
)

const (
	fileKeyA = "sk-ant-file-key-A-SECRET-0123456789"
	fileKeyB = "sk-ant-file-key-B-SECRET-0123456789-rotated"
)

func keyFileEnv(t *testing.T, mods ...func(*envOpts)) (*env, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "anthropic-key")
	if err := os.WriteFile(path, []byte(fileKeyA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	all := append([]func(*envOpts){func(o *envOpts) {
		o.providers = func(u string) map[string]ProviderConfig {
			p := standardProviders(u)
			p["anthropic"] = ProviderConfig{Type: TypeAnthropic, BaseURL: u, APIKeyFile: path}
			return p
		}
	}}, mods...)
	return newEnv(t, all...), path
}

// Every path a key could leak through — log lines, error bodies, response
// headers, SDK error strings, usage events — is collected and searched.
func TestNoKeyEverLeaks(t *testing.T) {
	sink := &recordingSink{}
	e, _ := keyFileEnv(t, keysMode, withSink(sink))
	vk := newVKey(t, "erin")
	otherVK := newVKey(t, "frank")
	var collected strings.Builder
	collect := func(resp *http.Response) {
		collected.WriteString(fmt.Sprint(resp.StatusCode, resp.Header, "\n"))
		collected.Write(readAll(t, resp.Body))
		collected.WriteString("\n")
	}
	collectErr := func(err error) {
		if err != nil {
			collected.WriteString(err.Error() + "\n")
			var a *anthropic.Error
			if errors.As(err, &a) {
				collected.WriteString(fmt.Sprint(a.Response.Header, "\n"))
			}
			var o *openai.Error
			if errors.As(err, &o) {
				collected.WriteString(fmt.Sprint(o.Response.Header, "\n"))
			}
		}
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	// Successes.
	_, _, err := streamAnthropic(t, e.anthropic(vk))
	collectErr(err)
	collect(e.post("/v1/chat/completions", []byte(`{"model":"gpt-4o","stream":true,"messages":[]}`), hdr("Authorization", "Bearer "+vk)))
	collect(e.post("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key="+vk, []byte(`{}`), nil))
	// Upstream errors, given up after retries, and a 401.
	e.fake.Push(fakeupstream.Overloaded(), fakeupstream.Overloaded(), fakeupstream.Overloaded())
	_, err = e.anthropic(vk).Messages.New(t.Context(), anthropicParams("x"))
	collectErr(err)
	e.fake.Push(fakeupstream.HTTPError(401))
	_, err = e.openai(vk).Chat.Completions.New(t.Context(), openai.ChatCompletionNewParams{Model: "gpt-4o",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("x")}})
	collectErr(err)
	e.fake.Push(fakeupstream.HTTPError(500))
	collect(e.post("/v1beta/models/gemini-2.5-flash:generateContent?key="+vk, []byte(`{}`), nil))
	e.fake.Push(fakeupstream.StreamErrorAfter(2))
	_, _, err = streamAnthropic(t, e.anthropic(vk))
	collectErr(err)
	e.fake.Push(fakeupstream.ResetBeforeHeaders(), fakeupstream.ResetBeforeHeaders(), fakeupstream.ResetBeforeHeaders())
	collect(e.post("/v1/messages", streamBody, hdr("X-Api-Key", vk)))
	// Refusals: by the actor, locally, bad input.
	e.caller.decide = func(n int, r *holdfastv1.AccountAdmitRequest) (*holdfastv1.AccountAdmitResponse, error) {
		if r.GetActor().GetKey() == "frank" {
			return nil, errors.New("actor failed for key " + r.GetKeyId())
		}
		return &holdfastv1.AccountAdmitResponse{RefusedBy: "daily_budget", RetryAfterMs: 1000}, nil
	}
	_, err = e.anthropic(vk).Messages.New(t.Context(), anthropicParams("x"))
	collectErr(err)
	_, err = e.anthropic(otherVK).Messages.New(t.Context(), anthropicParams("x"))
	collectErr(err)
	_, err = e.anthropic(vk[:len(vk)-2]+"aa").Messages.New(t.Context(), anthropicParams("x"))
	collectErr(err)
	collect(e.post("/v1/messages", []byte(`{"messages":[]}`), hdr("X-Api-Key", vk)))
	collect(e.post("/v1/nope?key="+vk, []byte(`{}`), hdr("Authorization", "Bearer "+vk)))
	collect(e.post("/v1beta/models/x:generateContent?key="+vk, []byte(`not json`), nil))
	e.quiesce()
	collected.WriteString(e.logs.String())
	events := sink.JSON(t)
	collected.WriteString(events)

	all := collected.String()
	if !strings.Contains(e.logs.String(), `"request_id"`) || strings.Count(e.logs.String(), "\n") < 12 {
		t.Fatalf("too few log lines collected:\n%s", e.logs.String())
	}
	if strings.Count(events, "\n") < 10 {
		t.Fatalf("too few usage events collected:\n%s", events)
	}
	for name, secret := range map[string]string{
		"anthropic file key": fileKeyA, "openai key": openaiKey, "gemini key": geminiKey,
		"virtual key": vk, "other virtual key": otherVK, "mistyped virtual key": vk[:len(vk)-2],
	} {
		if strings.Contains(all, secret) {
			t.Errorf("%s leaked:\n%s", name, all)
		}
	}
	// Providers got their keys, never a virtual key.
	for _, r := range e.fake.Requests() {
		for k, v := range r.Header {
			if strings.Contains(strings.Join(v, " "), "hf_1") {
				t.Errorf("virtual key sent upstream in %s", k)
			}
		}
		if strings.Contains(r.RawQuery, "key=") {
			t.Errorf("key= forwarded upstream: %s", r.RawQuery)
		}
	}
}

func TestKeyFileRotation(t *testing.T) {
	e, path := keyFileEnv(t)
	readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	if got := e.fake.Last().Header.Get("X-Api-Key"); got != fileKeyA {
		t.Fatalf("first key %q", got)
	}
	// An in-flight request: its first attempt fails, and during the wait
	// the key file changes. Its retry keeps the key it started with.
	var once sync.Once
	e.sleep.hook = func(time.Duration) {
		once.Do(func() {
			if err := os.WriteFile(path, []byte(fileKeyB+"\n"), 0o600); err != nil {
				t.Error(err)
			}
		})
	}
	e.fake.Push(fakeupstream.Overloaded())
	readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	reqs := e.fake.Requests()
	if a, b := reqs[len(reqs)-2].Header.Get("X-Api-Key"), reqs[len(reqs)-1].Header.Get("X-Api-Key"); a != fileKeyA || b != fileKeyA {
		t.Fatalf("in-flight attempts used %q then %q", a, b)
	}
	// The next request picks the new key up, with no restart.
	readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	if got := e.fake.Last().Header.Get("X-Api-Key"); got != fileKeyB {
		t.Fatalf("after rotation %q", got)
	}
	// A 401 right after the rotation is named key_rotation_401.
	e.fake.Push(fakeupstream.HTTPError(401))
	resp := e.post("/v1/messages", streamBody, nil)
	readAll(t, resp.Body)
	if resp.StatusCode != 401 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// Same content rewritten (same size, maybe same mtime): still B, and
	// a change of content with the same size is seen within fileRecheck.
	same := strings.Replace(fileKeyB, "B", "C", 1)
	if err := os.WriteFile(path, []byte(same+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(fileRecheck)
	readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	if got := e.fake.Last().Header.Get("X-Api-Key"); got != same {
		t.Fatalf("same-size rotation: %q", got)
	}
	// Later, a 401 with an unchanged key is a plain upstream_401.
	e.clk.Advance(keyRotationWindow)
	e.fake.Push(fakeupstream.HTTPError(401))
	readAll(t, e.post("/v1/messages", streamBody, nil).Body)
	e.quiesce()
	if e.metric("holdfast_gateway_failures_total", "failure", "key_rotation_401") != 1 ||
		e.metric("holdfast_gateway_failures_total", "failure", "upstream_401") != 1 {
		t.Fatalf("401 classification: %s", e.logs.String())
	}
	// A missing key file at start-up names the key, not the content.
	_, err := New(DefaultConfig(), map[string]ProviderConfig{"a": {Type: TypeAnthropic, APIKeyFile: path + ".missing"}},
		nil, nil, nil, Options{BindAddr: "127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "providers.a.api_key_file") {
		t.Fatalf("%v", err)
	}
}
