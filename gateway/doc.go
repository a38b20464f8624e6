// Package gateway is holdfast's HTTP front door to LLM providers: the
// provider routes, the policy pre-flight on the user's account actor,
// byte-exact forwarding, streaming with a usage tee, retries, error
// envelopes, settlement, metrics and the per-call log line. It assembles
// the building blocks in its sub-packages (jsonscan, usage, pricing,
// envelope, vkey) and talks to actors only through api.Caller.
//
// Routes (Handler; mount it at /v1/ and /v1beta/):
//
//	POST /v1/messages                                Anthropic Messages, stream or not
//	POST /v1/messages/count_tokens                   Anthropic token count
//	POST /v1/chat/completions                        OpenAI-compatible (any number of providers)
//	POST /v1beta/models/{model}:generateContent      Gemini
//	POST /v1beta/models/{model}:streamGenerateContent[?alt=sse]
//
// Anything else is 404 in the envelope of the API family the path belongs
// to. A request goes to the provider named by x-holdfast-provider, else to
// the provider whose `models` prefixes match the model (longest wins),
// else to the family's only provider or its only one without `models`.
//
// Contract:
//
//   - Bodies are read whole up to gateway.max_body_bytes (413 beyond),
//     spilled to an unlinked temporary file above spill_threshold_bytes,
//     and forwarded byte for byte: never decoded and re-encoded. The model
//     is found with jsonscan (400 when missing). Two edits exist, both
//     textual splices of the original bytes: an OpenAI-compatible stream
//     request without stream_options.include_usage gets
//     jsonscan.InsertIncludeUsage (switch: insert_include_usage) and the
//     usage-only chunk it causes is withheld from the client; and, with
//     redirect_retired_models, a retired model's string is replaced by its
//     replacement in place.
//   - Policy runs before anything goes upstream. keys: the virtual key
//     (x-api-key / authorization: Bearer / x-goog-api-key or key=) is
//     parsed locally; malformed or a bad checksum is 401 without any
//     actor call; a well-formed key costs one AccountAdmitRequest turn on
//     the user's actor (the user is the key's routing part). byok: the
//     client's own provider key is shape-checked (20-512 characters of
//     [A-Za-z0-9_-]; sk-ant-, sk- or AIza only on the vendors' own hosts,
//     as OpenAI-compatible providers have keys of their own shapes),
//     forwarded, never stored; the user is the first 32 hex digits of its
//     SHA-256. none: the single user "local", loopback only unless
//     force_no_auth. Estimates at admit: input ceil(body bytes / 4);
//     output the top-level max_tokens (or max_completion_tokens), else
//     default_output_tokens; spend their price. When the previous admit of
//     the same user and key left at most usage_exact_threshold of its
//     input-token bucket, an Anthropic request's input is first counted
//     exactly with the provider's count_tokens.
//   - Refusals use each family's error envelope with retry-after, so the
//     official SDKs behave: 429 for limits (x-should-retry: false for an
//     exhausted budget), 401 for keys, 400 naming the configured providers
//     for an unroutable model, 400 naming the replacement for a retired one.
//   - Responses stream through as they arrive: every complete SSE event
//     of an upstream read is forwarded, and flushed once at the end of
//     that read, before the gateway waits for more upstream bytes (as
//     nginx with proxy_buffering off; a flush per event cost a write
//     system call each); only the start of an event not yet complete
//     waits. The events of a read go to the response writer as one write
//     where they can (a write per event cost a pass through net/http's
//     writer each); the bytes and flushes are the same. The status and headers (request-id, *-ratelimit-*) are the
//     provider's.
//     They are sent with the first byte, so that an attempt that failed
//     before any byte can still be retried. Upstream silence is bounded
//     (upstream_header_timeout, stream_idle_timeout = sse_stall). A stream
//     the upstream breaks off, or that stalls, is cut the same way for the
//     client (the connection is aborted): nothing is fabricated, and the
//     client's SDK sees an error rather than a clean end. A client that
//     goes away cancels the upstream request at once.
//   - Retries (at most max_retries): on 429, 529, other 5xx, connection
//     errors and header timeouts, only before any byte reached the client,
//     after max(retry-after, min(8s, 500ms·2^n + jitter)) through the
//     injected Sleep. When the provider asks for more than 30s the error is
//     passed on at once. After retrying, the provider's last error goes to
//     the client with x-should-retry: false. An error event inside a
//     stream is passed on and ends the stream; it is never retried.
//   - After the call, an AccountSettleRequest (request ID: the gateway
//     request ID + ".settle", so a retried settle counts once) debits the
//     usage the provider reported (a stream cut short: what was reported
//     so far; nothing reported but output sent: estimates, labelled so) and
//     its cost priced in nano-dollars; a call that produced nothing settles
//     failed=true. The settle runs after the response, in the background;
//     Close waits for it. At most 256 settles are in flight to the actors
//     (the rest wait in the gateway, not in an actor's mailbox, where they
//     would get admits refused); a settle refused for a full mailbox did
//     not run and is retried until taken, within its 30 s; other errors
//     get three attempts, then settle_failed.
//   - Every response carries x-holdfast-request-id. Each call writes one
//     slog line and counts Prometheus metrics (see metrics.go); failures
//     are named by the taxonomy (overload_529, in_stream_overloaded,
//     rate_limit_429, sse_stall, key_rotation_401, model_retired,
//     upstream_5xx, client_cancelled, budget_exhausted, cache_silent_miss,
//     and upstream_connection, upstream_timeout, upstream_protocol (an
//     event over the size limit, a status code outside 100-999),
//     upstream_401,
//     upstream_4xx, in_stream_error, rate_limited, unauthenticated,
//     forbidden, no_route, no_price, too_large, bad_request,
//     admit_unavailable, provider_key, not_found).
//   - With an EventSink (Options.Events; in a cluster the JetStream usage
//     stream), each call with a known user also yields one Event (see
//     events.go) after its log line: every failed call, and
//     gateway.usage_events.success_sample_rate of the successes. The sink
//     never blocks a call; what it drops it counts. Events are analytics:
//     exact totals stay in the account actor.
//   - Provider keys come from api_key_env or api_key_file; a changed file
//     is used from the next request on, and a request keeps the key it
//     started with. No key — provider or virtual — ever appears in a log
//     line, an error message or a response header.
//   - The mock provider type answers all three formats in-process, so a
//     node with no configuration serves a streaming curl with no key.
package gateway
