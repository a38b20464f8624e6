// Package fakeupstream is a fake LLM provider for gateway tests: one local
// HTTP server (real TCP on 127.0.0.1) that answers like the Anthropic
// Messages API, the OpenAI Chat Completions API and the Gemini
// generateContent API, records every request byte for byte, and can be
// scripted to fail the way the real services fail.
//
// Routes:
//
//	POST /v1/messages                         Anthropic (stream when "stream":true)
//	POST /v1/messages/count_tokens            Anthropic {"input_tokens":N}
//	POST .../chat/completions                 OpenAI and compatibles (any prefix, so
//	                                          an SDK base URL of URL()+"/v1" works)
//	POST /v1beta/models/{model}:generateContent
//	POST /v1beta/models/{model}:streamGenerateContent[?alt=sse]
//
// Faithfulness. What a proxy sees is what the providers send: the SSE
// framing, event order, JSON field names, null fields, the usage fields
// (Anthropic cache_creation 5m/1h split and the cumulative usage repeated in
// message_delta; OpenAI's usage chunk with "choices":[] only when
// stream_options.include_usage is true, "usage":null on the other chunks
// then, and no usage key at all otherwise; Gemini running usageMetadata),
// the error envelopes, the request-id and rate-limit headers, and the
// in-stream error events. Anthropic ping events carry the real
// {"type": "ping"} spelling. Gemini SSE events end in CRLF CRLF and the
// non-SSE stream is a JSON array, as Google sends them. Not faithful: the
// text is canned, token counts are an estimate (ceil(bytes/4), see Tokens),
// IDs are derived from the request sequence number so output is
// deterministic (see Render), OpenAI's random "obfuscation" field is
// omitted, only text content blocks are produced, and requests are not
// validated: any body is accepted.
//
// Scripts (see Script) are queued with Push or PushFor and consumed one per
// provider request; with an empty queue the server answers with a realistic
// success. A Gate lets a test hold the server before each event, so it can
// prove that a proxy forwards event i before event i+1 exists.
package fakeupstream
