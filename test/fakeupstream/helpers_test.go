package fakeupstream

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	aoption "github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/openai/openai-go/v3"
	ooption "github.com/openai/openai-go/v3/option"
)

func newFake(t *testing.T) *Server {
	t.Helper()
	s := New(Options{})
	t.Cleanup(s.Close)
	return s
}

func anthropicClient(s *Server) *anthropic.Client {
	c := anthropic.NewClient(
		aoption.WithBaseURL(s.URL()),
		aoption.WithAPIKey("sk-ant-test"),
		aoption.WithMaxRetries(0),
	)
	return &c
}

func openaiClient(s *Server) *openai.Client {
	c := openai.NewClient(
		ooption.WithBaseURL(s.URL()+"/v1"),
		ooption.WithAPIKey("sk-test"),
		ooption.WithMaxRetries(0),
	)
	return &c
}

func anthropicParams(text string) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(text))},
	}
}

// post sends body raw and returns the response (headers read, body not).
func post(t *testing.T, url string, body []byte, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return b
}

// sseEvents splits an Anthropic stream into (name, data) pairs.
func sseEvents(t *testing.T, b []byte) [][2]string {
	t.Helper()
	var out [][2]string
	for _, ev := range strings.SplitAfter(string(b), "\n\n") {
		if ev == "" {
			continue
		}
		name, rest, ok := strings.Cut(ev, "\n")
		if !ok || !strings.HasPrefix(name, "event: ") || !strings.HasPrefix(rest, "data: ") || !strings.HasSuffix(rest, "\n\n") {
			t.Fatalf("malformed event %q", ev)
		}
		data := strings.TrimSuffix(strings.TrimPrefix(rest, "data: "), "\n\n")
		if strings.Contains(data, "\n") {
			t.Fatalf("multi-line data in %q", ev)
		}
		out = append(out, [2]string{strings.TrimPrefix(name, "event: "), data})
	}
	return out
}
