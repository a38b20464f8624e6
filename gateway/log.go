package gateway

import (
	"context"
	"log/slog"
	"strings"

	"github.com/holdfast/holdfast/gateway/pricing"
)

// logLine writes the call's one log line. It carries no key, no header
// and no body: the user (the key's routing part, or the hash of a byok
// key), the key ID (public, shown by `keys list`), provider, model,
// figures and the failure name.
func (c *call) logLine(settleErr error) {
	level := slog.LevelInfo
	if c.status >= 400 || c.failure != "" || settleErr != nil {
		level = slog.LevelWarn
	}
	prov := ""
	if c.p != nil {
		prov = c.p.name
	}
	end := c.g.clk.Now()
	attrs := make([]slog.Attr, 0, 28)
	attrs = append(attrs,
		slog.String("request_id", c.id),
		slog.String("route", c.routeName()),
		slog.String("user", c.user),
	)
	if c.keyID != "" {
		attrs = append(attrs, slog.String("key_id", c.keyID))
	}
	attrs = append(attrs,
		slog.String("provider", prov),
		slog.String("model", c.model),
	)
	if c.requested != c.model {
		attrs = append(attrs, slog.String("requested_model", c.requested))
	}
	u := c.usage
	attrs = append(attrs,
		slog.Bool("stream", c.stream),
		slog.Int("status", c.status),
		slog.Int64("input_tokens", u.InputTokens),
		slog.Int64("output_tokens", u.OutputTokens),
		slog.Int64("cache_write_5m_tokens", u.CacheCreation5mInputTokens),
		slog.Int64("cache_write_1h_tokens", u.CacheCreation1hInputTokens),
		slog.Int64("cache_read_tokens", u.CacheReadInputTokens),
		slog.Bool("estimated", c.estimated),
		slog.Int64("input_estimate", c.inEst),
		slog.Bool("exact_input", c.exactInput),
		slog.Int64("cost_nanos", c.cost),
		slog.String("cost_usd", pricing.NanosToUSD(c.cost)),
		slog.Float64("latency_ms", float64(end.Sub(c.start).Microseconds())/1000),
		slog.Float64("ttfb_ms", float64(c.ttfb.Microseconds())/1000),
		slog.Int("attempts", c.attempts),
	)
	failure := c.failure
	if c.silentMiss {
		failure = strings.TrimPrefix(failure+",cache_silent_miss", ",")
	}
	if failure != "" {
		attrs = append(attrs, slog.String("failure", failure))
	}
	if u.ErrorType != "" {
		attrs = append(attrs, slog.String("error_type", u.ErrorType))
	}
	if c.detail != "" {
		attrs = append(attrs, slog.String("detail", c.detail))
	}
	if settleErr != nil {
		attrs = append(attrs, slog.String("settle_error", settleErr.Error()))
	}
	c.g.log.LogAttrs(context.Background(), level, "gateway call", attrs...)
}

// routeName names the route without the query string (Gemini's key=).
func (c *call) routeName() string {
	switch c.rt.op {
	case opMessages:
		return "anthropic.messages"
	case opCountTokens:
		return "anthropic.count_tokens"
	case opChat:
		return "openai.chat_completions"
	case opGenerate:
		return "gemini.generateContent"
	case opStreamGenerate:
		return "gemini.streamGenerateContent"
	}
	return "unmatched"
}
