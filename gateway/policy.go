package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/trace"
	"strings"
	"time"

	"github.com/holdfast/holdfast/actor"
	"github.com/holdfast/holdfast/gateway/envelope"
	"github.com/holdfast/holdfast/gateway/jsonscan"
	"github.com/holdfast/holdfast/gateway/pricing"
	"github.com/holdfast/holdfast/gateway/vkey"
	holdfastv1 "github.com/holdfast/holdfast/proto/holdfast/v1"
)

// LocalUser is the one user of auth none.
const LocalUser = "local"

// clientCredential returns the key the client sent, where its family's
// SDK puts it: Anthropic x-api-key (or authorization: Bearer), OpenAI
// authorization: Bearer, Gemini x-goog-api-key or the key= query
// parameter.
func clientCredential(r *http.Request, f envelope.Family) string {
	bearer := func() string {
		a := r.Header.Get("Authorization")
		if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
			return strings.TrimSpace(a[7:])
		}
		return ""
	}
	switch f {
	case envelope.Anthropic:
		if k := r.Header.Get("X-Api-Key"); k != "" {
			return k
		}
		return bearer()
	case envelope.OpenAI:
		return bearer()
	case envelope.Gemini:
		if k := r.Header.Get("X-Goog-Api-Key"); k != "" {
			return k
		}
		return r.URL.Query().Get("key")
	}
	return ""
}

// authenticate checks the client's credential locally, without any
// actor: a malformed or mistyped virtual key ends here with 401.
func (c *call) authenticate() *refusal {
	switch c.g.cfg.Auth {
	case AuthNone:
		c.user = LocalUser
	case AuthKeys:
		tok := clientCredential(c.r, c.fam)
		if tok == "" {
			return &refusal{kind: envelope.Unauthenticated, failure: "unauthenticated",
				msg: "Missing API key: send a holdfast virtual key (hf_1...) " + credentialWhere(c.fam) + "."}
		}
		parsed, err := vkey.Parse(tok)
		if err != nil {
			msg := "Invalid API key: not a well-formed holdfast virtual key."
			if errors.Is(err, vkey.ErrChecksum) {
				msg = "Invalid API key: checksum mismatch (mistyped or truncated key?)."
			}
			return &refusal{kind: envelope.Unauthenticated, failure: "unauthenticated", msg: msg}
		}
		h, _ := vkey.Hash(tok)
		c.user, c.keyID, c.keyHash = parsed.User, parsed.ID, h[:]
	case AuthBYOK:
		tok := clientCredential(c.r, c.fam)
		if tok == "" {
			return &refusal{kind: envelope.Unauthenticated, failure: "unauthenticated",
				msg: "Missing API key: send your own provider key " + credentialWhere(c.fam) + "."}
		}
		sum := sha256.Sum256([]byte(tok))
		c.user, c.clientK = hex.EncodeToString(sum[:])[:32], tok
	}
	return nil
}

func credentialWhere(f envelope.Family) string {
	switch f {
	case envelope.Anthropic:
		return "in x-api-key"
	case envelope.Gemini:
		return "in x-goog-api-key or key="
	}
	return "as authorization: Bearer KEY"
}

// byokShapeOK checks the shape of a client's own key for the provider it
// will be sent to. It only catches a key pasted into the wrong client; the
// provider decides whether the key is valid. The vendors' own prefixes
// (sk-ant-, sk-, AIza) are asked for only by the vendors' own hosts: an
// OpenAI-compatible provider (Groq's gsk_..., Cerebras's csk-..., a
// self-hosted server) has keys of its own shape.
func byokShapeOK(p *provider, k string) bool {
	if len(k) < 20 || len(k) > 512 {
		return p.typ == TypeMock && k != "" && len(k) <= 512
	}
	for i := 0; i < len(k); i++ {
		ch := k[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return p.typ == TypeMock && ch > ' ' && ch < 0x7f
		}
	}
	return strings.HasPrefix(k, p.keyPrefix)
}

// vendorKeyPrefix is the prefix of every key of a provider of type typ at
// base when that is the vendor's own API (by the URL's host), else "".
// Worked out once per provider, when the route table is built.
func vendorKeyPrefix(typ, base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	switch host := u.Hostname(); {
	case typ == TypeAnthropic && host == "api.anthropic.com":
		return "sk-ant-"
	case typ == TypeOpenAI && host == "api.openai.com":
		return "sk-"
	case typ == TypeGemini && host == "generativelanguage.googleapis.com":
		return "AIza"
	}
	return ""
}

// readRequest reads the body whole, bounded by max_body_bytes.
func (c *call) readRequest() *refusal {
	cfg := c.g.cfg
	tooLarge := func() *refusal { // built only when needed: no Sprintf per call
		return &refusal{kind: envelope.TooLarge, failure: "too_large",
			msg: fmt.Sprintf("Request body exceeds this gateway's limit of %d bytes.", cfg.MaxBodyBytes)}
	}
	if c.r.ContentLength > cfg.MaxBodyBytes {
		return tooLarge()
	}
	b, err := readBody(c.r.Body, c.r.ContentLength, cfg.MaxBodyBytes, cfg.SpillThresholdBytes, cfg.SpillDir)
	switch {
	case errors.Is(err, errBodyTooLarge):
		return tooLarge()
	case err != nil:
		if c.r.Context().Err() != nil {
			c.failure = "client_cancelled"
			c.status = 499
			return &refusal{kind: envelope.BadRequest, failure: "client_cancelled"}
		}
		return &refusal{kind: envelope.BadRequest, failure: "bad_request", msg: "Could not read the request body."}
	}
	c.body = b
	return nil
}

// preflight finds the model and provider, applies the sanctioned edits,
// estimates, and admits the call with the user's account actor.
func (c *call) preflight() *refusal {
	g := c.g
	var ref *refusal
	err := c.body.view(func(raw []byte) error {
		ref = c.inspect(raw)
		return nil
	})
	if err != nil {
		return &refusal{kind: envelope.Internal, failure: "internal", msg: "Could not read the spilled request body."}
	}
	if ref != nil {
		return ref
	}
	// Provider key, taken once: all attempts of this request use it.
	if c.p.key != nil {
		k, err := c.p.key.get()
		if err != nil {
			c.detail = err.Error()
			return &refusal{kind: envelope.Internal, failure: "provider_key",
				msg: fmt.Sprintf("Provider %s has no usable API key; see the gateway log.", c.p.name)}
		}
		c.upstreamKey = k
	} else if g.cfg.Auth == AuthBYOK {
		c.upstreamKey = c.clientK
	}
	if g.caller == nil {
		return nil
	}
	if c.countBody != nil {
		c.exactCount()
	}
	return c.admit()
}

// inspect reads what the policy needs from the original bytes. raw is
// only valid during the call.
func (c *call) inspect(raw []byte) *refusal {
	g := c.g
	f, err := jsonscan.Scan(raw)
	if err != nil {
		return &refusal{kind: envelope.BadRequest, failure: "bad_request",
			msg: "The request body is not a JSON object: " + err.Error()}
	}
	switch c.rt.op {
	case opGenerate, opStreamGenerate:
		c.requested = c.rt.model
		c.stream = c.rt.op == opStreamGenerate
	default:
		if !f.HasModel || f.Model == "" {
			return &refusal{kind: envelope.BadRequest, failure: "bad_request",
				msg: "The request body has no top-level \"model\" string."}
		}
		c.requested = f.Model
		c.stream = f.Stream && c.rt.op != opCountTokens
	}
	c.model = c.requested

	// Retired models: refuse naming the replacement, or redirect.
	if repl, at, ok := g.retired.Retired(c.requested, g.clk.Now()); ok {
		if !g.cfg.RedirectRetiredModels || repl == "" {
			msg := fmt.Sprintf("Model %q was retired on %s.", c.requested, at.UTC().Format(time.DateOnly))
			if repl != "" {
				msg += fmt.Sprintf(" Use %q instead.", repl)
			}
			return &refusal{kind: envelope.BadRequest, failure: "model_retired", msg: msg}
		}
		c.model = repl
		c.detail = "redirected from retired model " + c.requested
		if c.rt.op != opGenerate && c.rt.op != opStreamGenerate {
			q, _ := json.Marshal(repl)
			if err := c.body.addEdit(edit{from: int64(f.ModelValue.Start), to: int64(f.ModelValue.End), ins: q}); err != nil {
				return &refusal{kind: envelope.Internal, failure: "internal"}
			}
		}
	}

	p, msg := g.pick(c.fam, c.model, c.r.Header.Get(HeaderProvider))
	if p == nil {
		return &refusal{kind: envelope.BadRequest, failure: "no_route", msg: msg}
	}
	c.p = p
	if g.cfg.Auth == AuthBYOK && !byokShapeOK(p, c.clientK) {
		return &refusal{kind: envelope.Unauthenticated, failure: "unauthenticated",
			msg: fmt.Sprintf("The key sent does not look like a %s API key.", p.typ)}
	}

	// The one sanctioned edit: ask an OpenAI-compatible stream for usage.
	if c.rt.op == opChat && c.stream {
		switch {
		case f.HasIncludeUsage && f.IncludeUsage:
		case f.HasIncludeUsage || !g.cfg.InsertIncludeUsage:
			c.estimated = true // the client declined usage, or the edit is off
		default:
			if out, ok := jsonscan.InsertIncludeUsage(raw, f); ok {
				if err := c.body.addEdit(diffEdit(raw, out)); err != nil {
					return &refusal{kind: envelope.Internal, failure: "internal"}
				}
				c.inserted = true
			} else {
				c.estimated = true
			}
		}
	}

	// Estimates for the admit: input ceil(bytes/4), the usual ratio of
	// English text and JSON to tokens; output max_tokens, else a default.
	c.inEst = (c.body.size + 3) / 4
	c.outEst = g.cfg.DefaultOutputTokens
	if f.HasMaxTokens {
		c.outEst = f.MaxTokens
	}
	if c.rt.op == opCountTokens {
		c.inEst, c.outEst = 0, 0
	}
	if ref := c.priceEstimate(); ref != nil {
		return ref
	}
	if c.rt.op == opMessages {
		c.prefixHash, c.hasPrefix = promptPrefixHash(p.name, c.model, raw)
		if c.nearLimit() && (p.typ == TypeAnthropic || p.typ == TypeMock) {
			c.countBody = countTokensBody(raw, c.model, c.model != c.requested)
		}
	}
	return nil
}

// priceEstimate prices the estimates; an unpriced model is refused (a
// call nobody can price must not be free), except on a mock provider.
func (c *call) priceEstimate() *refusal {
	cost, err := c.g.prices.Cost(c.model, pricing.Usage{InputTokens: c.inEst, OutputTokens: c.outEst})
	switch {
	case err == nil:
		c.spendEst = cost
	case c.p.typ == TypeMock:
		c.spendEst = 0
	case errors.Is(err, pricing.ErrUnknownModel):
		return &refusal{kind: envelope.BadRequest, failure: "no_price",
			msg: fmt.Sprintf("Model %q has no price configured on this gateway (pricing:); provider %s serves it.", c.model, c.p.name)}
	default:
		c.spendEst = 0 // an overflowing estimate: let the actor refuse it on tokens
	}
	return nil
}

// admitState is a user's input-token bucket after its last admit.
type admitState struct {
	remaining, limit int64
}

func (c *call) remainingKey() string { return c.user + "\x00" + c.keyID }

// nearLimit: the previous admit of this user (and key) left at most
// usage_exact_threshold of the input-token bucket.
func (c *call) nearLimit() bool {
	st, ok := c.g.remaining.get(c.remainingKey())
	return ok && st.limit > 0 && float64(st.remaining) <= c.g.cfg.UsageExactThreshold*float64(st.limit)
}

// countTokensFields are the request fields count_tokens accepts.
var countTokensFields = []string{"model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers"}

// countTokensBody builds a count_tokens request from a Messages request:
// only the accepted top-level members, their values copied as they are.
// This is a side request of the gateway's own; the forwarded body is not
// touched.
func countTokensBody(raw []byte, model string, replaceModel bool) []byte {
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return nil
	}
	out := make(map[string]json.RawMessage, len(countTokensFields))
	for _, k := range countTokensFields {
		if v, ok := top[k]; ok {
			out[k] = v
		}
	}
	if replaceModel {
		q, _ := json.Marshal(model)
		out["model"] = q
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil
	}
	return b
}

// exactCount asks the provider's count_tokens for the input figure. Any
// failure keeps the byte estimate.
func (c *call) exactCount() {
	ctx, cancel := context.WithCancel(c.r.Context())
	defer cancel()
	t := c.g.clk.AfterFunc(c.g.cfg.UpstreamHeaderTimeout, cancel)
	defer t.Stop()
	countRoute := route{op: opCountTokens}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.p.upstreamURL(countRoute, c.model, ""), strings.NewReader(string(c.countBody)))
	if err != nil {
		return
	}
	req.Header = upstreamHeader(c.r.Header)
	req.Header.Set("Content-Type", "application/json")
	setProviderKey(req, c.p.typ, c.upstreamKey)
	resp, err := c.g.do(c.p, req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	var out struct {
		InputTokens *int64 `json:"input_tokens"`
	}
	if json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 1<<20)).Decode(&out) != nil || out.InputTokens == nil || *out.InputTokens < 0 {
		return
	}
	c.inEst, c.exactInput = *out.InputTokens, true
	_ = c.priceEstimate()
}

// accountID is the user's account actor.
func (c *call) accountID() actor.ID {
	return actor.ID{Namespace: c.g.cfg.AccountNamespace, Key: c.user}
}

func (c *call) actorRef() *holdfastv1.ActorRef {
	return &holdfastv1.ActorRef{Namespace: c.g.cfg.AccountNamespace, Key: c.user}
}

// admit is the one pre-flight turn on the user's account actor: key
// check (keys mode), rate limits and budget, all or nothing.
//
// It carries no request ID: the gateway never resends an admit (a failed
// one fails the call), so a record would cost two keys per call and
// protect nothing. The settle, which must count once, carries one; a
// cluster router adds one to whatever it forwards.
func (c *call) admit() *refusal {
	req := &holdfastv1.AccountAdmitRequest{
		Actor:                c.actorRef(),
		KeyId:                c.keyID,
		KeyHash:              c.keyHash,
		Provider:             c.p.name,
		Model:                c.model,
		InputTokensEstimate:  c.inEst,
		OutputTokensEstimate: c.outEst,
		SpendEstimateNanos:   c.spendEst,
	}
	reg := trace.StartRegion(c.r.Context(), "gateway.admit")
	resp, err := c.callAdmit(c.r.Context(), req)
	reg.End()
	if err != nil {
		if c.r.Context().Err() != nil {
			c.failure, c.status = "client_cancelled", 499
			return &refusal{kind: envelope.Unavailable, failure: "client_cancelled"}
		}
		c.detail = "admit: " + err.Error()
		ref := admitLost()
		return &ref
	}
	ar, ok := resp.(*holdfastv1.AccountAdmitResponse)
	if !ok {
		c.detail = fmt.Sprintf("admit: unexpected reply %T", resp)
		return &refusal{kind: envelope.Internal, failure: "internal"}
	}
	// Remember the bucket for the exact-count decision, unless the key was
	// refused: a forged key must not make the gateway call count_tokens.
	if !strings.HasPrefix(ar.GetRefusedBy(), "key_") {
		c.g.remaining.put(c.remainingKey(), admitState{ar.GetInputTokensRemaining(), ar.GetInputTokensLimit()})
	}
	if ar.GetAllowed() {
		c.admitted = true
		return nil
	}
	return refusalFor(ar, c.model, c.p.name)
}

// refusalFor maps the actor's refusal to the family's envelope.
func refusalFor(ar *holdfastv1.AccountAdmitResponse, model, provider string) *refusal {
	ra := time.Duration(ar.GetRetryAfterMs()) * time.Millisecond
	never := ar.GetRetryAfterMs() < 0
	if never {
		ra = 0
	}
	switch by := ar.GetRefusedBy(); by {
	case "key_unknown", "key_revoked":
		msg := "Invalid API key."
		if by == "key_revoked" {
			msg = "This API key has been revoked."
		}
		return &refusal{kind: envelope.Unauthenticated, failure: "unauthenticated", msg: msg}
	case "provider_not_allowed":
		return &refusal{kind: envelope.Forbidden, failure: "forbidden", msg: fmt.Sprintf("This key may not use provider %s.", provider)}
	case "model_not_allowed":
		return &refusal{kind: envelope.Forbidden, failure: "forbidden", msg: fmt.Sprintf("This key may not use model %q.", model)}
	case "daily_budget":
		return &refusal{kind: envelope.BudgetExhausted, failure: "budget_exhausted", retryAfter: ra, noRetry: true,
			msg: "Daily spend budget exhausted."}
	default:
		msg := "Rate limit exceeded"
		if by != "" {
			msg += " (" + strings.ReplaceAll(by, "_", " ") + ")"
		}
		return &refusal{kind: envelope.RateLimited, failure: "rate_limited", retryAfter: ra, noRetry: never, msg: msg + "."}
	}
}
