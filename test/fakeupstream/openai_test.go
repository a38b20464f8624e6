package fakeupstream

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
)

func openaiParams(includeUsage bool) openai.ChatCompletionNewParams {
	p := openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hello")},
	}
	if includeUsage {
		p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	}
	return p
}

func TestOpenAISDKStreamWithUsage(t *testing.T) {
	fake := newFake(t)
	fake.Push(Script{Chunks: []string{"Hi", " there"}, Usage: &Usage{InputTokens: 20, OutputTokens: 3, CacheRead: 80}})
	stream := openaiClient(fake).Chat.Completions.NewStreaming(t.Context(), openaiParams(true))
	var acc openai.ChatCompletionAccumulator
	usageChunks := 0
	for stream.Next() {
		c := stream.Current()
		if !acc.AddChunk(c) {
			t.Fatalf("accumulator refused chunk %s", c.RawJSON())
		}
		if c.Usage.TotalTokens != 0 {
			usageChunks++
			if len(c.Choices) != 0 {
				t.Fatalf("usage chunk with choices: %s", c.RawJSON())
			}
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Choices) != 1 || acc.Choices[0].Message.Content != "Hi there" || acc.Choices[0].FinishReason != "stop" {
		t.Fatalf("choices %+v", acc.Choices)
	}
	u := acc.Usage
	if usageChunks != 1 || u.PromptTokens != 100 || u.CompletionTokens != 3 || u.TotalTokens != 103 || u.PromptTokensDetails.CachedTokens != 80 {
		t.Fatalf("%d usage chunks, usage %+v", usageChunks, u)
	}

	rec := fake.Last()
	if rec.Path != "/v1/chat/completions" || rec.Header.Get("Authorization") != "Bearer sk-test" {
		t.Fatalf("recorded %s %v", rec.Path, rec.Header)
	}
	events := bytes.SplitAfter(rec.Sent, []byte("\n\n"))
	events = events[:len(events)-1] // empty tail
	if string(events[len(events)-1]) != "data: [DONE]\n\n" {
		t.Fatalf("last event %q", events[len(events)-1])
	}
	usageEv := events[len(events)-2]
	if !bytes.Contains(usageEv, []byte(`"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":3,"total_tokens":103,"prompt_tokens_details":{"cached_tokens":80,`)) {
		t.Fatalf("usage chunk %s", usageEv)
	}
	for _, ev := range events[:len(events)-2] {
		if !bytes.HasPrefix(ev, []byte("data: {")) || !bytes.HasSuffix(ev, []byte(`,"usage":null}`+"\n\n")) {
			t.Fatalf("chunk without usage:null: %s", ev)
		}
	}
	if !bytes.Equal(rec.Sent, Render(rec.Script, rec)) {
		t.Fatal("Render differs from what was sent")
	}
}

func TestOpenAIStreamWithoutIncludeUsageHasNoUsage(t *testing.T) {
	fake := newFake(t)
	stream := openaiClient(fake).Chat.Completions.NewStreaming(t.Context(), openaiParams(false))
	var acc openai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != DefaultText || acc.Usage.TotalTokens != 0 {
		t.Fatalf("content %q usage %+v", acc.Choices[0].Message.Content, acc.Usage)
	}
	sent := fake.Last().Sent
	if bytes.Contains(sent, []byte(`"usage"`)) || !bytes.HasSuffix(sent, []byte("}\n\ndata: [DONE]\n\n")) {
		t.Fatalf("stream:\n%s", sent)
	}
}

func TestOpenAISDKNonStream(t *testing.T) {
	fake := newFake(t)
	fake.Push(Script{Text: "four", Model: "gpt-test", Usage: &Usage{InputTokens: 9, OutputTokens: 1}})
	c, err := openaiClient(fake).Chat.Completions.New(t.Context(), openaiParams(false))
	if err != nil {
		t.Fatal(err)
	}
	if c.Choices[0].Message.Content != "four" || c.Model != "gpt-test" || c.Usage.PromptTokens != 9 || c.Usage.TotalTokens != 10 ||
		!strings.HasPrefix(c.ID, "chatcmpl-") {
		t.Fatalf("completion %+v", c)
	}
}

func TestOpenAISDKErrors(t *testing.T) {
	fake := newFake(t)
	fake.Push(RateLimited(3))
	_, err := openaiClient(fake).Chat.Completions.New(t.Context(), openaiParams(false))
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 429 || apiErr.Code != "rate_limit_exceeded" ||
		apiErr.Response.Header.Get("Retry-After") != "3" {
		t.Fatalf("error %T %v", err, err)
	}

	fake.Push(StreamErrorAfter(2))
	stream := openaiClient(fake).Chat.Completions.NewStreaming(t.Context(), openaiParams(true))
	n := 0
	for stream.Next() {
		n++
	}
	if stream.Err() == nil || !strings.Contains(stream.Err().Error(), "server_error") || n != 2 {
		t.Fatalf("after %d chunks: %v", n, stream.Err())
	}
	if sent := fake.Last().Sent; !bytes.HasSuffix(sent, []byte(`data: {"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`+"\n\n")) {
		t.Fatalf("stream:\n%s", sent)
	}
}
