package envelope

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Golden bodies, written out by hand from the providers' documented
// shapes: a change here changes what clients see.
func TestBodyGolden(t *testing.T) {
	type golden struct {
		status int
		body   string
	}
	const rid = "req_01"
	want := map[Family]map[Kind]golden{
		Anthropic: {
			BadRequest:      {400, `{"type":"error","error":{"type":"invalid_request_error","message":"m"},"request_id":"req_01"}`},
			Unauthenticated: {401, `{"type":"error","error":{"type":"authentication_error","message":"m"},"request_id":"req_01"}`},
			Forbidden:       {403, `{"type":"error","error":{"type":"permission_error","message":"m"},"request_id":"req_01"}`},
			NotFound:        {404, `{"type":"error","error":{"type":"not_found_error","message":"m"},"request_id":"req_01"}`},
			TooLarge:        {413, `{"type":"error","error":{"type":"request_too_large","message":"m"},"request_id":"req_01"}`},
			RateLimited:     {429, `{"type":"error","error":{"type":"rate_limit_error","message":"m"},"request_id":"req_01"}`},
			BudgetExhausted: {429, `{"type":"error","error":{"type":"rate_limit_error","message":"m"},"request_id":"req_01"}`},
			Internal:        {500, `{"type":"error","error":{"type":"api_error","message":"m"},"request_id":"req_01"}`},
			Unavailable:     {529, `{"type":"error","error":{"type":"overloaded_error","message":"m"},"request_id":"req_01"}`},
			Timeout:         {504, `{"type":"error","error":{"type":"timeout_error","message":"m"},"request_id":"req_01"}`},
		},
		OpenAI: {
			BadRequest:      {400, `{"error":{"message":"m","type":"invalid_request_error","param":null,"code":null}}`},
			Unauthenticated: {401, `{"error":{"message":"m","type":"authentication_error","param":null,"code":"invalid_api_key"}}`},
			Forbidden:       {403, `{"error":{"message":"m","type":"permission_error","param":null,"code":null}}`},
			NotFound:        {404, `{"error":{"message":"m","type":"invalid_request_error","param":null,"code":null}}`},
			TooLarge:        {413, `{"error":{"message":"m","type":"invalid_request_error","param":null,"code":null}}`},
			RateLimited:     {429, `{"error":{"message":"m","type":"rate_limit_exceeded","param":null,"code":"rate_limit_exceeded"}}`},
			BudgetExhausted: {429, `{"error":{"message":"m","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`},
			Internal:        {500, `{"error":{"message":"m","type":"server_error","param":null,"code":null}}`},
			Unavailable:     {503, `{"error":{"message":"m","type":"server_error","param":null,"code":null}}`},
			Timeout:         {504, `{"error":{"message":"m","type":"server_error","param":null,"code":null}}`},
		},
		Gemini: {
			BadRequest:      {400, `{"error":{"code":400,"message":"m","status":"INVALID_ARGUMENT"}}`},
			Unauthenticated: {401, `{"error":{"code":401,"message":"m","status":"UNAUTHENTICATED"}}`},
			Forbidden:       {403, `{"error":{"code":403,"message":"m","status":"PERMISSION_DENIED"}}`},
			NotFound:        {404, `{"error":{"code":404,"message":"m","status":"NOT_FOUND"}}`},
			TooLarge:        {413, `{"error":{"code":413,"message":"m","status":"INVALID_ARGUMENT"}}`},
			RateLimited:     {429, `{"error":{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED"}}`},
			BudgetExhausted: {429, `{"error":{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED"}}`},
			Internal:        {500, `{"error":{"code":500,"message":"m","status":"INTERNAL"}}`},
			Unavailable:     {503, `{"error":{"code":503,"message":"m","status":"UNAVAILABLE"}}`},
			Timeout:         {504, `{"error":{"code":504,"message":"m","status":"DEADLINE_EXCEEDED"}}`},
		},
	}
	for f, kinds := range want {
		if len(kinds) != len(kindNames) {
			t.Errorf("%v: golden covers %d kinds of %d", f, len(kinds), len(kindNames))
		}
		for k, g := range kinds {
			status, body := Body(f, Refusal{Kind: k, Message: "m", RequestID: rid})
			if status != g.status || string(body) != g.body {
				t.Errorf("%v/%v:\n got %d %s\nwant %d %s", f, k, status, body, g.status, g.body)
			}
			if Status(f, k) != g.status {
				t.Errorf("Status(%v, %v) = %d", f, k, Status(f, k))
			}
		}
	}
}

func TestBodyDefaultsAndFallbacks(t *testing.T) {
	tests := []struct {
		name string
		f    Family
		r    Refusal
		want string
	}{
		{"default message, no request id", Anthropic, Refusal{Kind: Unavailable},
			`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded."}}`},
		{"Overloaded alias", Anthropic, Refusal{Kind: Overloaded, Message: "x"},
			`{"type":"error","error":{"type":"overloaded_error","message":"x"}}`},
		{"unknown kind is a 500", Gemini, Refusal{Kind: Kind(99), Message: "x"},
			`{"error":{"code":500,"message":"x","status":"INTERNAL"}}`},
		{"zero kind is a 500", Anthropic, Refusal{Message: "x"},
			`{"type":"error","error":{"type":"api_error","message":"x"}}`},
		{"unknown family is OpenAI", Family(0), Refusal{Kind: RateLimited, Message: "x"},
			`{"error":{"message":"x","type":"rate_limit_exceeded","param":null,"code":"rate_limit_exceeded"}}`},
		{"escaping", OpenAI, Refusal{Kind: BadRequest, Message: "a \"q\"\n\\ <b>&\u2028 é\x01"},
			`{"error":{"message":"a \"q\"\n\\ \u003cb\u003e\u0026\u2028 é\u0001","type":"invalid_request_error","param":null,"code":null}}`},
		{"invalid utf-8 replaced", Gemini, Refusal{Kind: BadRequest, Message: "a\xffb"},
			`{"error":{"code":400,"message":"a\ufffdb","status":"INVALID_ARGUMENT"}}`},
	}
	for _, tc := range tests {
		_, body := Body(tc.f, tc.r)
		if string(body) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, body, tc.want)
		}
		if !json.Valid(body) {
			t.Errorf("%s: invalid JSON", tc.name)
		}
	}
}

// The shapes the official SDKs decode. Decoding with DisallowUnknownFields
// also proves no stray field was added.
type sdkAnthropicError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
	RequestID string `json:"request_id"`
}

type sdkOpenAIError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

type sdkGeminiError struct {
	Error struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

func strictDecode(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

func TestSDKShapesParse(t *testing.T) {
	msg := "Rate limit: \"tokens\" <exceeded> ✓\n"
	for k := range kindNames {
		_, b := Body(Anthropic, Refusal{Kind: k, Message: msg, RequestID: "req_9"})
		var a sdkAnthropicError
		strictDecode(t, b, &a)
		if a.Type != "error" || a.Error.Type != table[Anthropic][k].typ || a.Error.Message != msg || a.RequestID != "req_9" {
			t.Errorf("anthropic %v: %+v", k, a)
		}

		_, b = Body(OpenAI, Refusal{Kind: k, Message: msg})
		var o sdkOpenAIError
		strictDecode(t, b, &o)
		if o.Error.Message != msg || o.Error.Type == "" || o.Error.Param != nil {
			t.Errorf("openai %v: %+v", k, o)
		}
		if k == RateLimited && (o.Error.Code == nil || *o.Error.Code != "rate_limit_exceeded") {
			t.Errorf("openai rate limit code: %v", o.Error.Code)
		}

		status, b := Body(Gemini, Refusal{Kind: k, Message: msg})
		var g sdkGeminiError
		strictDecode(t, b, &g)
		if g.Error.Code != status || g.Error.Message != msg || g.Error.Status == "" {
			t.Errorf("gemini %v: %+v", k, g)
		}
	}
}
