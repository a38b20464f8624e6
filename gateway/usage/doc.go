// Package usage reads token usage from provider responses while they pass
// through the gateway, without delaying or altering them.
//
// Contract:
//
//   - Splitter cuts a byte stream, fed in chunks split anywhere, into SSE
//     events: each event is yielded as its exact raw bytes including the
//     terminating blank line, so the proxy forwards it unchanged and never
//     holds a complete event back. Concatenating the events and the bytes returned at End gives
//     the input back. The result never depends on how the input was chunked.
//     Events are bounded (DefaultMaxEventSize); a larger one is an
//     *EventTooLargeError, which also bounds memory per stream.
//   - Accumulators (Anthropic, OpenAI, Gemini) are fed complete events and
//     keep a provider-neutral Usage. They parse only events that can carry
//     usage, errors or the stop reason; content deltas are rejected by a byte
//     pre-filter (prefilter.go): Anthropic's on the event line alone, before
//     the event is parsed, OpenAI's and Gemini's on the keys of the data. A
//     malformed usage event is ignored rather than breaking the stream, and
//     leaves Usage.Complete false if no later event completes it.
//   - Events are decoded exactly as encoding/json would decode them into
//     the documented struct shapes (case-insensitive keys, escapes, last
//     duplicate wins or merges, a wrong type rejects the event), but by
//     the allocation-free walker of package jsonscan: observing an event
//     allocates nothing beyond the strings kept in Usage.
//     FuzzObserveDifferential holds the observers to the encoding/json
//     versions they replaced (oracle_test.go).
//   - Anthropic usage in message_delta is cumulative: figures present there
//     replace earlier ones and are never added to them.
//   - Tee combines a Splitter and an Accumulator behind an io.Writer for the
//     proxy loop: each Write forwards the events it completes and flushes
//     once (one socket write per upstream read, not per event), optionally
//     dropping the OpenAI usage-only chunk that the gateway itself
//     requested. A run of consecutive events of one Write that pass
//     unchanged goes to the client as one write, not one per event; the
//     bytes and flushes are exactly those of a write per event
//     (TestTeeBatchingMatchesPerEvent, FuzzSSE).
//   - FromBody extracts the same Usage from a whole non-streaming response.
//
// Nothing here does I/O of its own or starts goroutines.
package usage
