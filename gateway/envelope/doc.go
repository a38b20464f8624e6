// Package envelope writes refusals in each provider family's own error
// format, so the official SDKs (anthropic-sdk-go, openai-go, genai)
// surface them as their normal typed API errors and apply their normal
// retry rules.
//
// Contract:
//   - A refusal is described by a neutral Kind; Status and Body map it to
//     the family's HTTP status and JSON body (see kinds.go for the table).
//   - Bodies are produced by encoding/json, so any message is escaped
//     correctly; field order and bytes are stable (golden-tested).
//   - Write sets content-type application/json, an exact content-length,
//     retry-after (whole seconds, rounded up, as the SDKs parse it) and
//     retry-after-ms when a delay is given, and x-should-retry: false when
//     the gateway has already retried or retrying cannot help — the SDKs
//     otherwise retry 429/5xx/529 on their own and multiply attempts.
//   - FamilyForPath picks the family from a request path.
package envelope
